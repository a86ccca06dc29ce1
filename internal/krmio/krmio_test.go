package krmio

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kptdev/krm-functions-sdk/go/fn"
)

const items = `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web # a comment
    annotations:
      internal.config.kubernetes.io/path: 'apps/web.yaml'
  spec:
    template:
      spec:
        containers:
        - name: app
          image: "nginx:1.27"
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec: {containers: [{name: b, image: busybox}]}
`

const withConfig = items + `functionConfig:
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: cfg}
  data: {on-error: warn}
`

// tricky are strings a YAML emitter must quote, fold or escape.
var tricky = []string{
	"nginx:1.27", "123", "1.5", "true", "no", "null", "~", "", " leading", "trailing ", "a: b", "# not a comment",
	"- dash", "'single'", `"double"`, "multi\nline", "tab\there", "ünïcödé", "*alias", "&anchor", "!tag", "%percent",
	"@at", "`tick", "{flow}", "[flow]", "x,y", "?", ":", strings.Repeat("long-", 40), "0x1F", "1e3", "=", "yes", "Off", "y", "1:20", "-1:20:30.5", "12:60", "0o17", ".inf", "2001-12-14",
	"<<", "<<<", "<", "a<<", "<< a", "!!merge", "=", "==",
}

func many(n int) fn.Results {
	var rs fn.Results
	for i := range n {
		s := tricky[i%len(tricky)]
		rs = append(rs, &fn.Result{
			Message:     fmt.Sprintf("pinned %s to sha256:%064d", s, i),
			Severity:    fn.Info,
			ResourceRef: &fn.ResourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: s, Namespace: "ns" + s},
			Field:       &fn.Field{Path: "spec.template.spec.containers[0].image", CurrentValue: s, ProposedValue: s + "@sha256:0"},
			File:        &fn.File{Path: "apps/" + s + ".yaml", Index: i % 3},
		})
	}
	return rs
}

// TestRunMatchesSDK checks that Run writes byte for byte what fn.Run writes, for results the
// fast path writes and for those it leaves to the SDK.
func TestRunMatchesSDK(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		results fn.Results
		success bool
	}{
		{"no results", items, nil, true},
		{"one result per field, many", items, many(1000), true},
		{"function config", withConfig, many(40), true},
		{"digester's results", items, fn.Results{{Message: "pinned nginx:1.27 to sha256:0f", Severity: fn.Info,
			ResourceRef: &fn.ResourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", Namespace: "shop"},
			Field:       &fn.Field{Path: "spec.template.spec.containers[0].image", CurrentValue: "nginx:1.27", ProposedValue: "nginx:1.27@sha256:0f"},
			File:        &fn.File{Path: "apps/web.yaml", Index: 2}}, {Message: "pinned 1 image fields (1 distinct references, 2 registry requests)", Severity: fn.Info}}, true},
		{"no items", "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n", many(3), true},
		{"failure", items, fn.Results{{Message: "cannot pin nginx:1.27: tag not found", Severity: fn.Error,
			ResourceRef: &fn.ResourceRef{Kind: "Pod", Name: "a"}, Field: &fn.Field{Path: "spec.containers[0].image", CurrentValue: "nginx:1.27"}}}, false},
		{"summary only", items, fn.Results{{Message: "pinned 0 image fields", Severity: fn.Info}}, true},
		{"empty field parts", items, fn.Results{{Message: "m", Field: &fn.Field{Path: "p"}, File: &fn.File{Index: 2}}}, true},
		{"tags: SDK path", items, append(many(3), &fn.Result{Message: "t", Tags: map[string]string{"b": "1", "a": "2"}}), true},
		{"number value: SDK path", items, append(many(3), &fn.Result{Message: "n", Field: &fn.Field{Path: "p", CurrentValue: 3}}), true},
		{"invalid UTF-8: SDK path", items, append(many(3), &fn.Result{Message: "bad \xff byte"}), true},
		{"empty resourceRef: SDK path", items, fn.Results{{Message: "m", ResourceRef: &fn.ResourceRef{}}}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := fn.ResourceListProcessorFunc(func(rl *fn.ResourceList) (bool, error) {
				rl.Results = append(rl.Results, c.results...)
				return c.success, nil
			})
			want, wantErr := fn.Run(p, []byte(c.input))
			got, gotErr := Run(p, []byte(c.input))
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("output (-fn.Run +Run):\n%s", diff)
			}
			if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
				t.Errorf("error = %v, want %v as fn.Run", gotErr, wantErr)
			}
			if len(c.results) > 0 && !strings.Contains(string(got), "\nresults:\n") {
				t.Errorf("output has no results:\n%s", got)
			}
		})
	}
}

func TestRunBadInput(t *testing.T) {
	p := fn.ResourceListProcessorFunc(func(*fn.ResourceList) (bool, error) { return true, nil })
	_, wantErr := fn.Run(p, []byte("kind: Other\n"))
	out, err := Run(p, []byte("kind: Other\n"))
	if out != nil || fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Errorf("Run = %q, %v; want nil, %v as fn.Run", out, err, wantErr)
	}
}

// FuzzRunMatchesSDK checks that any strings in results come out as fn.Run writes them.
func FuzzRunMatchesSDK(f *testing.F) {
	for _, s := range tricky {
		f.Add(s, "spec.containers[0].image", s+"@sha256:0", 1)
	}
	f.Fuzz(func(t *testing.T, msg, path, value string, index int) {
		p := fn.ResourceListProcessorFunc(func(rl *fn.ResourceList) (bool, error) {
			rl.Results = append(rl.Results, &fn.Result{Message: msg, Severity: fn.Warning,
				ResourceRef: &fn.ResourceRef{Kind: "Pod", Name: value},
				Field:       &fn.Field{Path: path, CurrentValue: msg, ProposedValue: value},
				File:        &fn.File{Path: value, Index: index}})
			return true, nil
		})
		want, wantErr := fn.Run(p, []byte(items))
		got, gotErr := Run(p, []byte(items))
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("output (-fn.Run +Run):\n%s", diff)
		}
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
			t.Errorf("error = %v, want %v as fn.Run", gotErr, wantErr)
		}
	})
}

// itemInputs are ResourceLists built from the project's golden cases and example package: real
// manifests with comments, quoting, flow style, anchors and odd values.
func itemInputs(t testing.TB) []string {
	files, err := filepath.Glob("../../testdata/golden/*/resources.yaml")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("../../example/*.yaml")
	var out []string
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := fn.ParseKubeObjects(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rl, err := (&fn.ResourceList{Items: objs}).ToYAML()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(rl))
	}
	return append(out,
		"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- a: &x 1\n- b: *x\n",
		"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- kind: A # line\n  # foot of A\n# foot of items\n- kind: B\n  x: [1, {y: 2}]\n  z: |\n    block\n    text\nfunctionConfig: # fc\n  kind: ConfigMap\n  data: {k: v}\n",
	)
}

// TestItemsMatchSDK: items and functionConfig come out as fn.Run writes them.
func TestItemsMatchSDK(t *testing.T) {
	noop := fn.ResourceListProcessorFunc(func(*fn.ResourceList) (bool, error) { return true, nil })
	for i, in := range itemInputs(t) {
		want, wantErr := fn.Run(noop, []byte(in))
		got, gotErr := Run(noop, []byte(in))
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("input %d: output (-fn.Run +Run):\n%s", i, diff)
		}
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
			t.Errorf("input %d: error = %v, want %v as fn.Run", i, gotErr, wantErr)
		}
	}
}

// FuzzItemsMatchSDK: any ResourceList the SDK reads comes out as fn.Run writes it.
func FuzzItemsMatchSDK(f *testing.F) {
	for _, in := range itemInputs(f) {
		f.Add(in)
	}
	noop := fn.ResourceListProcessorFunc(func(*fn.ResourceList) (bool, error) { return true, nil })
	f.Fuzz(func(t *testing.T, in string) {
		want, wantErr := fn.Run(noop, []byte(in))
		got, gotErr := Run(noop, []byte(in))
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("output (-fn.Run +Run):\n%s", diff)
		}
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
			t.Errorf("error = %v, want %v as fn.Run", gotErr, wantErr)
		}
	})
}

// TestSortItemsMatchesSDK: many items, with keys that tie and sort apart only on a later field,
// end in the order rl.Sort gives (sort.Sort is not stable, so ties must be broken alike too).
func TestSortItemsMatchesSDK(t *testing.T) {
	var in strings.Builder
	in.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
	for i := range 500 {
		fmt.Fprintf(&in, "- apiVersion: v%d\n  kind: K%d\n  metadata: {name: n%d, namespace: ns%d}\n  seq: %d\n", i%2, i%3, i%7, i%5, i)
	}
	want, err := fn.ParseResourceList([]byte(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := fn.ParseResourceList([]byte(in.String()))
	want.Sort()
	sortItems(got.Items)
	seq := func(items fn.KubeObjects) []string {
		var out []string
		for _, o := range items {
			n, found, err := o.NestedInt("seq")
			if !found || err != nil {
				t.Fatalf("item without its seq: %v", err)
			}
			out = append(out, strconv.Itoa(n))
		}
		return out
	}
	if diff := cmp.Diff(seq(want.Items), seq(got.Items)); diff != "" {
		t.Errorf("order (-rl.Sort +sortItems):\n%s", diff)
	}
}
