package walker

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

type found struct{ Path, Image string }

var kindNames = map[ProblemKind]string{Ambiguous: "ambiguous ", Duplicate: "duplicate ", Unlisted: "unlisted ", Tagged: "tagged ", Shared: "shared ", Expansion: "expansion ", NoDigestKey: "no-digest ", Floating: "floating "}

func walk(t *testing.T, doc string, opts ...Option) ([]found, []string) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	fields, problems := New(opts...).Walk(&n)
	var fs []found
	for _, f := range fields {
		if f.Kind == Reference && f.Node.Value != f.Image {
			t.Errorf("%s: Node.Value %q != Image %q", f.Path, f.Node.Value, f.Image)
		}
		fs = append(fs, found{f.Path, f.Image})
	}
	var ps []string
	for _, p := range problems {
		s := kindNames[p.Kind] + p.String()
		if p.Image != "" {
			s += " [" + p.Image + "]"
		}
		if p.Item != nil {
			s = fmt.Sprintf("(item %d %s/%s) %s", p.Item.Index, p.Item.Kind, p.Item.Name, s)
		}
		ps = append(ps, s)
	}
	return fs, ps
}

// walkCase is one document walked, with what must be found in it.
type walkCase struct {
	name         string
	doc          string
	opts         []Option
	want         []found
	wantProblems []string
}

// runWalkCases walks each case's document and compares fields and problems.
func runWalkCases(t *testing.T, tests []walkCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, problems := walk(t, tt.doc, tt.opts...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantProblems, problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWalk(t *testing.T) {
	runWalkCases(t, []walkCase{
		{
			name: "pod with every container list",
			doc: `kind: Pod
spec:
  initContainers: [{name: i, image: "busybox:1"}]
  containers: [{name: a, image: a:1}, {name: b, image: b:1}]
  ephemeralContainers: [{name: e, image: e:1}]`,
			want: []found{{"spec.containers[0].image", "a:1"}, {"spec.containers[1].image", "b:1"}, {"spec.initContainers[0].image", "busybox:1"}, {"spec.ephemeralContainers[0].image", "e:1"}},
		},
		{
			name: "deployment-shaped, any kind",
			doc:  "kind: Anything\nspec:\n  template:\n    spec:\n      containers:\n      - image: x:1\n",
			want: []found{{"spec.template.spec.containers[0].image", "x:1"}},
		},
		{
			name: "cronjob",
			doc:  "kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers: [{image: i:1}]\n          containers: [{image: c:1}]\n",
			want: []found{{"spec.jobTemplate.spec.template.spec.containers[0].image", "c:1"}, {"spec.jobTemplate.spec.template.spec.initContainers[0].image", "i:1"}},
		},
		{
			name: "podtemplate",
			doc:  "kind: PodTemplate\ntemplate:\n  spec:\n    containers: [{image: p:1}]\n",
			want: []found{{"template.spec.containers[0].image", "p:1"}},
		},
		{name: "no images", doc: "kind: Service\nspec:\n  ports: [{port: 80}]\n"},
		{name: "a values file: image keys of no resource", doc: "replicas: 3\nimage: nginx:1.27\nsidecar: {image: envoy:1.30}\n"},
		{name: "not a mapping", doc: "- a\n- b\n"},
		{name: "null containers", doc: "spec:\n  containers: null\n"},
		{
			name: "containers is a map",
			doc:  "spec:\n  containers:\n    web: {image: a:1}\n",
			wantProblems: []string{
				"spec.containers: is a mapping, want a list of containers", // and not also as an unlisted image key
			},
		},
		{
			name: "odd images",
			doc:  "spec:\n  containers:\n  - {name: n, image: 1.5}\n  - {name: t, image: true}\n  - {name: m}\n  - {name: e, image: ''}\n  - {name: l, image: [a]}\n  - plain\n  - {image: null}\n",
			wantProblems: []string{
				"spec.containers[0].image: is a number (1.5), want a string",
				"spec.containers[1].image: is a boolean (true), want a string",
				`spec.containers[2].image: container "m" has no image`,
				`spec.containers[3].image: container "e" has an empty image`,
				"spec.containers[4].image: is a list, want a string",
				"spec.containers[5]: is a string, want a container object",
				"spec.containers[6].image: container without a name has no image",
			},
		},
		{
			name: "quoted number is a string",
			doc:  "spec:\n  containers: [{image: \"1.5\"}]\n",
			want: []found{{"spec.containers[0].image", "1.5"}},
		},
		{
			name: "an image reached through an alias is one field, at the first path the walk meets",
			doc:  "spec:\n  initContainers: [{name: a, image: &img app:1}]\n  containers: [{name: b, image: *img}]\n",
			want: []found{{"spec.containers[0].image", "app:1"}},
		},
		{
			name: "merge key with a list of mappings: the first mapping that has the key gives it",
			doc:  "spec:\n  initContainers:\n  - &a {name: a, image: a:1}\n  - &b {name: b, image: b:1}\n  containers:\n  - <<: [*b, *a]\n",
			want: []found{{"spec.containers[0].image", "b:1"}, {"spec.initContainers[0].image", "a:1"}},
		},
		{
			name: "merge key: a key written beside it wins",
			doc:  "spec:\n  containers:\n  - &base {name: a, image: base:1}\n  - <<: *base\n    name: b\n  - <<: *base\n    image: own:1\n",
			want: []found{{"spec.containers[0].image", "base:1"}, {"spec.containers[2].image", "own:1"}},
		},
	})
}

// TestAliasIsOneField: an image reached through an alias is returned once, and its Node is the
// value where it is written (at its anchor), so that pinning it pins every place that reads it.
func TestAliasIsOneField(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("spec:\n  initContainers: [&c {image: &img app:1}]\n  containers: [{image: *img}, *c]\n"), &n); err != nil {
		t.Fatal(err)
	}
	fields, problems := New().Walk(&n)
	if len(fields) != 1 || len(problems) != 0 {
		t.Fatalf("want one field and no problem, got %+v, %v", fields, problems)
	}
	if f := fields[0]; f.Path != "spec.containers[0].image" || f.Node.Line != 2 || f.Node.Column != 31 {
		t.Errorf("field %s at line %d column %d, want spec.containers[0].image written at 2:31 (its anchor)", f.Path, f.Node.Line, f.Node.Column)
	}
}

// TestREADMEListsEveryPreset keeps the README's "Where digester looks" in step with Presets.
func TestREADMEListsEveryPreset(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "## Where digester looks")
	if start < 0 {
		t.Fatal(`README has no "## Where digester looks" section`)
	}
	section := readme[start:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	for _, p := range Presets {
		row := ""
		for _, l := range strings.Split(section, "\n") {
			if strings.HasPrefix(l, "| "+p.Name+" | `"+p.Group+"` |") {
				row = l
			}
		}
		if row == "" {
			t.Errorf("README lists no preset row for %s (%s)", p.Name, p.Group)
			continue
		}
		for _, k := range p.Kinds {
			if !strings.Contains(row, k) {
				t.Errorf("README's %s row does not name kind %s", p.Name, k)
			}
		}
		for _, path := range append(append(append(p.Images, p.Values...), p.Functions...), p.OCISources...) {
			segs := splitPath(path)
			if last := strings.Join(segs[max(len(segs)-2, 0):], "/"); !strings.Contains(row, last) {
				t.Errorf("README's %s row does not show %s (from %s)", p.Name, last, path)
			}
		}
	}
}

// TestEveryListAtEveryPath: containers, initContainers and ephemeralContainers are each found in
// every place a pod spec sits (README: "Finds every image"), not only in a Pod.
func TestEveryListAtEveryPath(t *testing.T) {
	for _, tc := range []struct {
		kind string
		path []string
	}{
		{"Pod", []string{"spec"}},
		{"Deployment", []string{"spec", "template", "spec"}},
		{"MyWorkload", []string{"spec", "template", "spec"}},
		{"CronJob", []string{"spec", "jobTemplate", "spec", "template", "spec"}},
		{"PodTemplate", []string{"template", "spec"}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			doc, indent := "kind: "+tc.kind+"\n", ""
			for _, k := range tc.path {
				doc += indent + k + ":\n"
				indent += "  "
			}
			var want []found
			for _, list := range []string{"containers", "initContainers", "ephemeralContainers"} {
				doc += fmt.Sprintf("%s%s: [{name: %s, image: %s:1}]\n", indent, list, list, list)
				want = append(want, found{strings.Join(tc.path, ".") + "." + list + "[0].image", list + ":1"})
			}
			got, problems := walk(t, doc)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("fields of\n%s(-want +got):\n%s", doc, diff)
			}
			if len(problems) != 0 {
				t.Errorf("problems: %q", problems)
			}
		})
	}
}

// TestAliasCycle: a hand-built node whose alias names itself (the parser never makes one, a caller
// might) ends the walk instead of looping.
func TestAliasCycle(t *testing.T) {
	cycle := &yaml.Node{Kind: yaml.AliasNode}
	cycle.Alias = cycle
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	obj := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str("spec"),
		{Kind: yaml.MappingNode, Content: []*yaml.Node{str("containers"), cycle}}}}
	done := make(chan []Problem, 1)
	go func() {
		if fields, problems := New().Walk(cycle); fields != nil || problems != nil { // the cycle itself is no object
			t.Errorf("Walk of the cycle: %v, %v", fields, problems)
		}
		_, problems := New().Walk(obj)
		done <- problems
	}()
	select {
	case problems := <-done:
		want := []Problem{{Kind: Expansion, Path: "spec.containers", Node: cycle,
			Message: `an alias is inside the value it names, so that value has no end (kubectl refuses it too: "value contains itself"); nothing in this resource is pinned`}}
		if diff := cmp.Diff(want, problems); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	case <-time.After(10 * time.Second): // a guard against a hung test, not a timing assertion
		t.Fatal("Walk loops on an alias cycle")
	}
}

// TestDeepestDocument: the scan's depth bound is the parser's, so the most deeply nested document
// the parser accepts is scanned to its bottom: an image key there is reported, not passed over.
func TestDeepestDocument(t *testing.T) {
	deep := func(n int) string {
		return "apiVersion: example.com/v1\nkind: Deep\nspec: " + strings.Repeat("[", n) + "{image: x:1}" + strings.Repeat("]", n) + "\n"
	}
	const n = maxDepth - 1 // lists around the mapping
	if err := yaml.Unmarshal([]byte(deep(n+1)), new(yaml.Node)); err == nil {
		t.Fatalf("the parser accepts %d nested lists: this is not the deepest document", n+1)
	}
	_, problems := walk(t, deep(n))
	want := []string{"unlisted spec" + strings.Repeat("[0]", n) + ".image: left alone: digester does not pin spec/image in kind Deep (example.com); to pin it, add {group: example.com, kind: Deep, path: spec/image} to additionalImageFields [x:1]"}
	if diff := cmp.Diff(want, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
