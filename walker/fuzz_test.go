package walker_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/walker"
)

// walkSeeds are YAML documents that reach the walker's corners: every workload shape, anchors,
// aliases, merge keys (including a self-merge and a merge bomb), and fields of the wrong type.
// More seeds are checked in under testdata/fuzz/FuzzWalk.
var walkSeeds = []string{
	"apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27\n  initContainers:\n  - image: 'busybox'\n",
	"kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{image: \"redis:7\"}]\n",
	"template:\n  spec:\n    ephemeralContainers:\n    - image: !!str 42\n",
	"base: &b {image: base:1}\nspec:\n  containers:\n  - <<: *b\n  - <<: [*b]\n    image: own:1\n  - *b\n",
	"spec:\n  containers:\n  - image: 1.5\n  - image: null\n  - image: [a]\n  - image: ''\n  - 7\n",
	"spec: &s {containers: [{image: a:1}]}\nx: *s\n",
	"a: &a {<<: *a}\n<<: *a\n",
	"spec:\n  containers: {image: a}\n",
	"--- \n...\n",
	"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n  - container: {image: a:1}\n    script: {image: a:1, image: b:2}\n    steps: [[{withItems: [{image: x}]}]]\n",
	"apiVersion: v1\nkind: List\nitems:\n- {kind: Pod, spec: {containers: [{image: a}], volumes: [{image: {reference: v:1}}]}}\n- 3\n",
	"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages: [{name: a, newTag: '1'}, {newName: 'b:2', digest: x}, 4]\n",
	"apiVersion: tekton.dev/v1\nkind: PipelineRun\nspec: {pipelineSpec: {tasks: [{taskSpec: {steps: [{image: $(params.i)}]}}]}}\nx: {image: q:1}\n",
	// issue 23: aliases, merge keys, shared anchors, tags, bombs and cycles
	"kind: Pod\nspec:\n  containers: [&base {name: a, image: R}, {<<: *base, name: b}]\n  initContainers: [*base]\n",
	"kind: Pod\nspec:\n  containers: &cs [{name: a, image: a:1}]\n  initContainers: *cs\n  ephemeralContainers: [{<<: [*cs, {image: e}], name: e}]\n",
	"kind: Pod\nmetadata: {labels: {app: &img R}, annotations: {*img : x}}\nspec:\n  containers: [{name: a, image: *img, env: [{name: I, value: *img}]}]\n",
	"kind: Pod\nspec:\n  containers: [{image: !custom R}, {image: !!binary UjpS}, {image: !!str R}, {image: &t !x R}, {image: *t}]\n",
	"apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nspec:\n  containers: &s [{image: a:1}, *s]\n  image: &i x\n  thanos: {image: *i}\n",
	"apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nspec:\n  containers:\n  - &a0 {image: a}\n  - &a1 [*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0,*a0]\n  - &a2 [*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1,*a1]\n  - &a3 [*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2,*a2]\n",
	"apiVersion: v1\nkind: List\nitems:\n- &p {kind: Pod, spec: {containers: [{image: &i a}]}, data: {x: *i}}\n- *p\n",
	"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages: [&e {name: a, newTag: '1'}, *e, {<<: *e, name: b}]\nx: *e\n",
	`{"kind": "Pod", "spec": {"containers": [{"image": "a", "image": "b", "name": "c", "name": "d"}]}}`,
	// issue 22: references in syntaxes of their own
	"apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: set-labels:v1 # c\n  - {image: a@sha256:x, configPath: y} # v2\n  validators: [{image: b:1}, {exec: x}]\n",
	"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values: {image: &i {registry: r, repository: a, tag: 1.5, digest: ''}, x: [*i, {repository: b, tag: '2@sha256:x'}]}\n",
	"apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec: {url: 'oci://r/a', ref: {tag: v1, digest: x, semver: y}}\n",
	"kind: Pod\nspec: {containers: [{image: a, env: [{name: RELATED_IMAGE_A, value: b:1}, {name: RELATED_IMAGE_B}]}]}\n",
}

// FuzzWalk: Walk never panics or hangs on any YAML, never changes the tree, every field it returns
// is a string scalar holding exactly Field.Image, no two fields share a node, and a value it
// refuses (tagged, shared, behind too many aliases) is never also returned as a field.
func FuzzWalk(f *testing.F) {
	for _, s := range walkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for range 8 {
			var doc yaml.Node
			if err := dec.Decode(&doc); err != nil {
				return // the end, or not YAML: nothing more for the walker to see
			}
			checkWalk(t, &doc)
		}
	})
}

func checkWalk(t *testing.T, doc *yaml.Node) {
	t.Helper()
	before := dump(doc)
	w := walker.New()
	fields, problems := w.Walk(doc)
	if after := dump(doc); after != before {
		t.Fatalf("Walk changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, fl := range fields {
		switch {
		case fl.Node == nil:
			t.Fatalf("field %s has no node", fl.Path)
		case strings.TrimSpace(fl.Image) == "":
			t.Fatalf("field %s: empty image returned as a field", fl.Path)
		case fl.Kind == walker.KustomizeImage:
			if fl.Node.Kind != yaml.MappingNode || !strings.HasPrefix(fl.Path[strings.LastIndex(fl.Path, ".")+1:], "images[") {
				t.Fatalf("kustomize field %s: node kind %v", fl.Path, fl.Node.Kind)
			}
		case fl.Kind == walker.HelmImage || fl.Kind == walker.OCIRepositoryRef:
			if fl.Node.Kind != yaml.MappingNode {
				t.Fatalf("%s: a mapping kind's node is kind %v", fl.Path, fl.Node.Kind)
			}
		case fl.Kind == walker.KptFunction:
			if fl.Node.Kind != yaml.ScalarNode || !strings.HasSuffix(fl.Path, ".image") || !strings.HasPrefix(fl.Path, "pipeline.") {
				t.Fatalf("kpt function %s: node kind %v", fl.Path, fl.Node.Kind)
			}
		case fl.Kind == walker.RelatedImage:
			if fl.Node.Kind != yaml.ScalarNode || fl.Node.Value != fl.Image || !strings.HasSuffix(fl.Path, ".value") {
				t.Fatalf("RELATED_IMAGE_ %s: node %v %q, image %q", fl.Path, fl.Node.Kind, fl.Node.Value, fl.Image)
			}
		case fl.Node.Kind != yaml.ScalarNode || fl.Node.ShortTag() != "!!str":
			t.Fatalf("field %s: node is kind %v tag %s, want a string scalar", fl.Path, fl.Node.Kind, fl.Node.ShortTag())
		case fl.Node.Value != fl.Image:
			t.Fatalf("field %s: node holds %q, Field.Image is %q", fl.Path, fl.Node.Value, fl.Image)
		case !strings.HasSuffix(fl.Path, ".image") && !strings.HasSuffix(fl.Path, ".image.reference"):
			t.Fatalf("field path %q ends neither in .image nor in .image.reference", fl.Path)
		}
	}
	nodes := map[*yaml.Node]string{}
	for _, fl := range fields {
		if at, ok := nodes[fl.Node]; ok {
			t.Fatalf("fields %s and %s share a node: pinning one pins both", at, fl.Path)
		}
		nodes[fl.Node] = fl.Path
	}
	for _, p := range problems {
		if p.Path == "" || p.Message == "" {
			t.Fatalf("problem without path or message: %+v", p)
		}
		if p.Kind == walker.Expansion && len(fields) > 0 {
			t.Fatalf("a resource refused for its aliases gave %d fields", len(fields))
		}
		if (p.Kind == walker.Shared || p.Kind == walker.Tagged) && nodes[p.Node] != "" {
			t.Fatalf("%s: a %v problem's node is also returned as field %s", p.Path, p.Kind, nodes[p.Node])
		}
	}
	again, _ := w.Walk(doc)
	if len(again) != len(fields) {
		t.Fatalf("a second Walk found %d fields, the first %d", len(again), len(fields))
	}
}

// dump renders a node tree with everything Walk must leave alone; aliases are shown, not followed.
func dump(n *yaml.Node) string {
	var b strings.Builder
	var rec func(n *yaml.Node, depth int)
	rec = func(n *yaml.Node, depth int) {
		if n == nil {
			return
		}
		fmt.Fprintf(&b, "%*s%d %q %q %d &%s", depth, "", n.Kind, n.Tag, n.Value, n.Style, n.Anchor)
		if n.Alias != nil {
			fmt.Fprintf(&b, " *%s", n.Alias.Anchor)
		}
		b.WriteString("\n")
		for _, c := range n.Content {
			rec(c, depth+1)
		}
	}
	rec(n, 0)
	return b.String()
}

// TestAliasesCannotHangWalk: a mapping that merges itself, a list that holds itself, mappings
// merging the previous one twice level after level, and ten-way aliases nested deep under a
// Prometheus resource's containers (a preset place, where the walk follows lists) are refused
// at once with an Expansion problem, as yaml.v3 and kubectl refuse them, instead of overflowing
// the stack or walking 10^N fields (N=5 took 26 s, N=6 more than 10 minutes).
func TestAliasesCannotHangWalk(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("l0: &l0 {a: 1}\n")
	for i := 1; i <= 64; i++ {
		fmt.Fprintf(&bomb, "l%d: &l%d {<<: [*l%d, *l%d]}\n", i, i, i-1, i-1)
	}
	bomb.WriteString("<<: [*l64, *l64]\nspec:\n  <<: [*l64, *l64]\n  containers:\n  - <<: [*l64, *l64]\n    image: app:1\n")
	for _, tc := range []struct{ name, doc, path, message string }{
		{"self-merge", "a: &a {<<: *a}\n<<: *a\nspec:\n  <<: *a\n  containers:\n  - &c {<<: [*a, *c], image: app:1}\n",
			"a.<<", "alias *a is inside the value it names"},
		{"a mapping whose key is an alias of itself", "kind: Pod\nspec:\n  containers: [{image: a:1}]\nx: &a {*a : 1}\n",
			"x.a", "alias *a is inside the value it names"},
		{"a list that holds itself", "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nspec:\n  containers: &s [{image: a:1}, *s]\n",
			"spec.containers[1]", "alias *s is inside the value it names"},
		{"merge bomb", bomb.String(), "l39.<<[0]", "alias expansion exceeds the limit: the aliases expand this resource from 409 nodes to more than 1099511627776 (alias *l38 alone to more than 1099511627776)"},
		{"prometheus bomb N=5", AliasBomb(5), "spec.containers[5][0]", "alias expansion exceeds the limit: the aliases expand this resource from 74 nodes to 691364 (alias *a4 alone to 62222)"},
		{"prometheus bomb N=6", AliasBomb(6), "spec.containers[6][0]", "alias expansion exceeds the limit: the aliases expand this resource from 85 nodes to 6913585 (alias *a5 alone to 622222)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.doc), &doc); err != nil {
				t.Fatal(err)
			}
			type result struct {
				fields   []walker.Field
				problems []walker.Problem
			}
			done := make(chan result, 1)
			go func() {
				fields, problems := walker.New().Walk(&doc)
				done <- result{fields, problems}
			}()
			select {
			case got := <-done:
				if len(got.fields) != 0 || len(got.problems) != 1 {
					t.Fatalf("fields %+v, problems %+v; want none and one problem", got.fields, got.problems)
				}
				p := got.problems[0]
				if p.Kind != walker.Expansion || p.Path != tc.path || !strings.HasPrefix(p.Message, tc.message) || p.Node == nil {
					t.Errorf("problem %v %s: %s; want Expansion at %s: %s…", p.Kind, p.Path, p.Message, tc.path, tc.message)
				}
			case <-time.After(10 * time.Second): // a hang guard, not a timing assertion (BenchmarkAliasBomb times it)
				t.Fatal("Walk hung")
			}
		})
	}
}

// AliasBomb is the alias bomb of issue 23 at depth n: a Prometheus resource (the preset walks its
// containers, lists inside lists included) whose containers hold ten aliases of the level below,
// n levels deep; 384 bytes for n=5, 434 for n=6.
func AliasBomb(n int) string {
	var b strings.Builder
	b.WriteString("apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: bomb}\nspec:\n  containers:\n  - &a0 {name: a, image: nginx:1.27}\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  - &a%d [%s]\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	return b.String()
}
