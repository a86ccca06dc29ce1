package krmio

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/splice"
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
          args:
          - >-
            ( a &&
              b
            )
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

// run is Run, its output written to a buffer: nil if there is none.
func run(p Processor, in []byte) ([]byte, error) {
	out, err := Run(p, in)
	if out == nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, werr := out.WriteTo(&b); werr != nil {
		return nil, werr
	}
	return b.Bytes(), err
}

// write writes l's output.
func write(t *testing.T, l *List) string {
	t.Helper()
	out, err := l.Output()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := out.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// processor is a Processor that parses every item, calls edit on each (if set), and appends results.
type processor struct {
	results fn.Results
	ok      bool
	edit    func(i int, it *Item, n *yaml.Node) error
}

func (p processor) Process(l *List) (bool, error) {
	for i, it := range l.Items {
		n, err := it.Parse()
		if err != nil {
			return false, err
		}
		if p.edit != nil {
			if err := p.edit(i, it, n); err != nil {
				return false, err
			}
		}
	}
	l.Results = append(l.Results, p.results...)
	return p.ok, nil
}

// sdk is p as an SDK processor: the same results, no edits.
func (p processor) sdk() fn.ResourceListProcessor {
	return fn.ResourceListProcessorFunc(func(rl *fn.ResourceList) (bool, error) {
		rl.Results = append(rl.Results, p.results...)
		return p.ok, nil
	})
}

// cut splits an output ResourceList at its functionConfig or results: items, and the rest.
func cut(out string) (items, rest string) {
	for _, key := range []string{"\nfunctionConfig:", "\nresults:"} {
		if i := strings.Index(out, key); i >= 0 {
			return out[:i+1], out[i+1:]
		}
	}
	return out, ""
}

// TestResultsMatchSDK: results and the functionConfig come out as fn.Run writes them, for results
// written directly and for those left to the SDK; items come out as they went in.
func TestResultsMatchSDK(t *testing.T) {
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
		{"results in the input come first", items + "results:\n- message: before\n  severity: warning\n", many(2), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := processor{results: c.results, ok: c.success}
			want, wantErr := fn.Run(p.sdk(), []byte(c.input))
			got, gotErr := run(p, []byte(c.input))
			wantItems, wantRest := cut(string(want))
			gotItems, gotRest := cut(string(got))
			if diff := cmp.Diff(wantRest, gotRest); diff != "" {
				t.Errorf("functionConfig and results (-fn.Run +Run):\n%s", diff)
			}
			inItems, _ := cut(c.input)
			if diff := cmp.Diff(inItems, gotItems); diff != "" {
				t.Errorf("items (-in +out):\n%s", diff)
			}
			if len(c.input) == len(items) && wantItems == gotItems {
				t.Errorf("the SDK writes these items as they are: the test cannot tell them apart")
			}
			if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
				t.Errorf("error = %v, want %v as fn.Run", gotErr, wantErr)
			}
		})
	}
}

// FuzzResultsMatchSDK checks that any strings in results come out as fn.Run writes them.
func FuzzResultsMatchSDK(f *testing.F) {
	for _, s := range tricky {
		f.Add(s, "spec.containers[0].image", s+"@sha256:0", 1)
	}
	f.Fuzz(func(t *testing.T, msg, path, value string, index int) {
		p := processor{ok: true, results: fn.Results{{Message: msg, Severity: fn.Warning,
			ResourceRef: &fn.ResourceRef{Kind: "Pod", Name: value},
			Field:       &fn.Field{Path: path, CurrentValue: msg, ProposedValue: value},
			File:        &fn.File{Path: value, Index: index}}}}
		want, wantErr := fn.Run(p.sdk(), []byte(items))
		got, gotErr := run(p, []byte(items))
		if wantErr != nil && strings.Contains(wantErr.Error(), "unable to convert strong typed object to yaml node") && gotErr == nil {
			// The SDK's encoder writes YAML its own parser refuses (a line of a tab in a block
			// scalar) and fails; Run writes the results, which must read back as they were given.
			readsBack(t, got, msg, path, value, index)
			return
		}
		_, wantRest := cut(string(want))
		_, gotRest := cut(string(got))
		if diff := cmp.Diff(wantRest, gotRest); diff != "" {
			t.Errorf("results (-fn.Run +Run):\n%s", diff)
		}
		if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) {
			t.Errorf("error = %v, want %v as fn.Run", gotErr, wantErr)
		}
	})
}

// readsBack checks that out holds the one result FuzzResultsMatchSDK gave, string for string.
func readsBack(t *testing.T, out []byte, msg, path, value string, index int) {
	t.Helper()
	var rl struct {
		Results []struct {
			Message     string `yaml:"message"`
			ResourceRef struct {
				Name string `yaml:"name"`
			} `yaml:"resourceRef"`
			Field struct {
				Path          string `yaml:"path"`
				CurrentValue  string `yaml:"currentValue"`
				ProposedValue string `yaml:"proposedValue"`
			} `yaml:"field"`
			File struct {
				Path  string `yaml:"path"`
				Index int    `yaml:"index"`
			} `yaml:"file"`
		} `yaml:"results"`
	}
	if err := yaml.Unmarshal(out, &rl); err != nil || len(rl.Results) != 1 {
		t.Fatalf("the output does not read back as one result (%v):\n%s", err, out)
	}
	r := rl.Results[0]
	got := []any{r.Message, r.ResourceRef.Name, r.Field.Path, r.Field.CurrentValue, r.Field.ProposedValue, r.File.Path, r.File.Index}
	if diff := cmp.Diff([]any{msg, value, path, msg, value, value, index}, got); diff != "" {
		t.Errorf("the result read back (-given +read):\n%s", diff)
	}
}

// TestRunBadInput: input the SDK refuses is refused with the SDK's error, and no output.
func TestRunBadInput(t *testing.T) {
	for _, in := range []string{
		"kind: Other\n",
		"kind: Other\nitems:\n- a: 1\n",
		"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- a: [1\n",
		"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n- just a string\n",
	} {
		_, wantErr := fn.Run(processor{ok: true}.sdk(), []byte(in))
		out, err := run(processor{ok: true}, []byte(in))
		if wantErr == nil || out != nil || fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Errorf("%q: Run = %q, %v; want nil, %v as fn.Run", in, out, err, wantErr)
		}
	}
}

// inputs are ResourceLists written every way the SDK reads: as kpt and kustomize write them, and
// by hand (indented items, comments between and after items, CRLF, a document marker, an item
// whose mapping starts on the line after its "-"), and ways read whole (JSON, flow style, an
// anchor in one item and its alias in another, a byte order mark, a quoted string over lines that
// look like items, no line break at the end).
var inputs = []struct {
	in   string
	text bool // read from its text, not whole
}{
	{items, true},
	{withConfig, true},
	{"apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n  - kind: A\n    x: 1\n  # between\n  - kind: B\n    y: |+\n      keep\n\n  - kind: C\n", true},
	{"---\nkind: ResourceList\n# before items\nitems: # the items\n# first\n- kind: A # a\n  # foot of A\n# head of B\n\n- kind: B\n  when: >-\n    ( a &&\n      b\n    )\n# after the last\nfunctionConfig: # fc\n  kind: ConfigMap\n  data: {k: v}\n", true},
	{"apiVersion: config.kubernetes.io/v1\r\nkind: ResourceList\r\nitems:\r\n- kind: A\r\n  x: \"1\"\r\n- kind: B\r\n", true},
	{"kind: ResourceList\nitems:\n-\n  kind: A\n  v: 1\n- kind: B\n", true},
	{"kind: ResourceList\nitems:\n- kind: A\n  v: |+\n ", false}, // no line break at the end
	{"kind: ResourceList\nfunctionConfig: {kind: C}\nitems:\n- kind: A\n", true},
	{`{"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [{"kind": "A", "s": "x: y"}, {"kind": "B"}]}`, false},
	{"kind: ResourceList\nitems: [{kind: A}, {kind: B, v: [1, 2]}]\n", false},
	{"kind: ResourceList\nitems:\n- kind: A\n  v: &x {a: 1}\n- kind: B\n  v: *x\n", false},
	{"\ufeffkind: ResourceList\nitems:\n- kind: A\n", false},
	{"kind: ResourceList\nitems:\n- kind: A\n  s: \"multi\n- line\"\n", false},
	{"kind: ResourceList\nitems: []\n", false},
}

// readAsRun reads a ResourceList as Run does: from its text, or whole when an item does not parse on its own.
func readAsRun(t testing.TB, in string) *List {
	t.Helper()
	l, err := Read([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range l.Items {
		if _, err := it.Parse(); errors.Is(err, errSplit) {
			if l, err = readWhole([]byte(in)); err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	return l
}

// TestRoundTrip: a function that changes nothing returns every item as the SDK reads it, in the
// SDK's order; items read from their text come back byte for byte, and a folded scalar with
// more-indented lines keeps its value (yaml.v3's writer adds a blank line to it).
func TestRoundTrip(t *testing.T) {
	for i, tt := range inputs {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			out, err := run(processor{ok: true}, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sdkItems(t, tt.in), sdkItems(t, string(out))); diff != "" {
				t.Errorf("items (-in +out):\n%s\n%s", diff, out)
			}
			l := readAsRun(t, tt.in)
			if got := !l.whole; got != tt.text {
				t.Errorf("read from its text: %v, want %v", got, tt.text)
			}
			for _, it := range l.Items {
				if !bytes.Contains(out, it.text) {
					t.Errorf("the output lacks an item's text as it came in:\n%s\noutput:\n%s", it.text, out)
				}
			}
		})
	}
}

// sdkItems returns the items of a ResourceList as the SDK reads them, as values.
// sdkWritesReadable reports whether the SDK writes rl, sorted as fn.Run sorts it, as a
// ResourceList it can read again.
func sdkWritesReadable(rl *fn.ResourceList) bool {
	rl.Sort()
	out, err := rl.ToYAML()
	if err == nil {
		_, err = fn.ParseResourceList(out)
	}
	return err == nil
}

func sdkItems(t testing.TB, rl string) []string {
	t.Helper()
	parsed, err := fn.ParseResourceList([]byte(rl))
	if err != nil {
		t.Fatalf("the SDK cannot read %q: %v", rl, err)
	}
	parsed.Sort()
	var out []string
	for _, it := range parsed.Items {
		out = append(out, strings.Join(values(it.MoveToResourceNode().YNode()), "\n"))
	}
	return out
}

// values is a tree as what it holds: kind, tag and value of every node, comments, style and positions left out.
func values(n *yaml.Node) []string {
	out := []string{fmt.Sprint(n.Kind) + " " + n.ShortTag() + " " + n.Value}
	if n.Kind == yaml.AliasNode {
		return append(out, values(n.Alias)...)
	}
	for _, c := range n.Content {
		out = append(out, values(c)...)
	}
	return out
}

// FuzzRoundTrip: any input the SDK reads comes out with the items the SDK reads, in its order;
// any input it refuses is refused with its error.
func FuzzRoundTrip(f *testing.F) {
	for _, tt := range inputs {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rl, sdkErr := fn.ParseResourceList([]byte(in))
		out, err := run(processor{ok: true}, []byte(in))
		if sdkErr != nil {
			if out != nil || fmt.Sprint(err) != fmt.Sprint(sdkErr) {
				t.Fatalf("Run = %q, %v; the SDK refuses the input: %v", out, err, sdkErr)
			}
			return
		}
		if err != nil {
			var we *WriteError
			if errors.As(err, &we) {
				return // yaml.v3 would change a value of a list read whole: refused, said so
			}
			if strings.Contains(err.Error(), "cannot read back") && !sdkWritesReadable(rl) {
				return // the SDK's own output would not parse either (an alias sorted before its anchor): refused, said so
			}
			t.Fatalf("Run: %v; the SDK reads the input", err)
		}
		if _, err := yaml.Marshal(rl.FunctionConfig.MoveToResourceNode().YNode()); err != nil {
			return
		}
		if diff := cmp.Diff(sdkItems(t, in), sdkItems(t, string(out))); diff != "" {
			t.Fatalf("items (-in +out):\n%s\n%q", diff, out)
		}
	})
}

// TestSortMatchesSDK: many items, with keys that tie and sort apart only on a later field, end in
// the order rl.Sort gives (sort.Sort is not stable, so ties must be broken alike too).
func TestSortMatchesSDK(t *testing.T) {
	var in strings.Builder
	in.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
	for i := range 500 {
		fmt.Fprintf(&in, "- apiVersion: v%d\n  kind: K%d\n  metadata: {name: n%d, namespace: ns%d}\n  seq: %d\n", i%2, i%3, i%7, i%5, i)
	}
	out, err := run(processor{ok: true}, []byte(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	want, err := fn.ParseResourceList([]byte(in.String()))
	if err != nil {
		t.Fatal(err)
	}
	want.Sort()
	got, err := fn.ParseResourceList(out)
	if err != nil {
		t.Fatal(err)
	}
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
		t.Errorf("order (-rl.Sort +Run):\n%s", diff)
	}
}

// TestEdits: edits are made in an item's text; one that cannot be is made in its tree, which is
// written anew if that changes no other value, and refused with a *WriteError if it does; an
// item replaced and an item added are written from their trees.
func TestEdits(t *testing.T) {
	const in = "kind: ResourceList\nitems:\n- kind: A\n  image: 'a:1' # kept\n  other: x\n- kind: B\n  image: |-\n    b:1\n- kind: C\n  image: |-\n    c:1\n  when: >-\n    ( a &&\n      b\n    )\n- kind: D\n  v: 1\n"
	var unwritten []string
	p := processor{ok: true, edit: func(i int, it *Item, n *yaml.Node) error {
		switch i {
		case 3:
			n.Content[3].Value = "2"
			it.Replace(n)
			return nil
		}
		v := n.Content[3]
		if err := it.Edit(splice.Replace(v.Line, v.Column, v.Value, v.Value+"@sha256:0")); err != nil {
			var we *WriteError
			if !errors.As(err, &we) || we.Item != it {
				return fmt.Errorf("item %d: %v, not a *WriteError about it", i, err)
			}
			unwritten = append(unwritten, err.Error())
		}
		return nil
	}}
	l, err := Read([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Process(l); err != nil {
		t.Fatal(err)
	}
	l.Add(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "kind"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: "AA"}}})
	out := write(t, l)
	want := "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" +
		"- kind: A\n  image: 'a:1@sha256:0' # kept\n  other: x\n" +
		"- kind: AA\n" +
		"- kind: B\n  image: |-\n    b:1@sha256:0\n" +
		"- kind: C\n  image: |-\n    c:1\n  when: >-\n    ( a &&\n      b\n    )\n" +
		"- kind: D\n  v: 2\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	wantErr := []string{`the value is a block scalar (|), so it cannot be edited in place, and written anew the resource would change its value at when; write it as a plain or quoted string on one line`}
	if diff := cmp.Diff(wantErr, unwritten); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	l.Reset()
	if out := write(t, l); !strings.HasSuffix(out, strings.TrimPrefix(in, "kind: ResourceList\n")) {
		t.Errorf("after Reset:\n%s", out)
	}
}

// TestGoldenItems: the project's golden cases and example package, as ResourceLists, come back
// byte for byte.
func TestGoldenItems(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/golden/*/resources.yaml")
	more, _ := filepath.Glob("../../example/*.yaml")
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := fn.ParseKubeObjects(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		in, err := (&fn.ResourceList{Items: objs}).ToYAML()
		if err != nil {
			t.Fatal(err)
		}
		out, err := run(processor{ok: true}, in)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(in), string(out)); diff != "" {
			t.Errorf("%s (-in +out):\n%s", f, diff)
		}
	}
}
