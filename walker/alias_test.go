package walker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// shared is the message of a Shared problem.
func sharedMsg(anchor, at, also string) string {
	where := anchor + " at " + at
	if also != "" {
		where += ", also used at " + also
	}
	return "the image comes from " + where + ", which is no image field: pinning the anchor would change that value too, " +
		"so digester leaves it; to pin the image, write it out instead of sharing it through the anchor"
}

func taggedMsg(tag, why string) string {
	return "the image is written with the YAML tag " + tag + ": " + why + "; digester pins only plain or quoted strings, so it is not pinned; remove the tag"
}

// TestAliases: an image reached more than once through aliases and merge keys is one field, found
// at the first path the walk meets it; an image whose anchor is also read where no image belongs
// is no field but a Shared problem (pinning it would rewrite a label, an env value, an annotation).
func TestAliases(t *testing.T) {
	runWalkCases(t, []walkCase{
		{
			name: "a container aliased and merged (issue 23): one field, at its anchor",
			doc:  "kind: Pod\nspec:\n  containers: [&base {name: a, image: nginx:1.27}, {<<: *base, name: b}]\n  initContainers: [*base]\n",
			want: []found{{"spec.containers[0].image", "nginx:1.27"}},
		},
		{
			name: "an alias of a list of containers",
			doc:  "kind: Pod\nspec:\n  containers: &cs [{name: a, image: a:1}, {name: b, image: b:1}]\n  initContainers: *cs\n",
			want: []found{{"spec.containers[0].image", "a:1"}, {"spec.containers[1].image", "b:1"}},
		},
		{
			name: "an anchor used only by image fields, in every container list and a pod template",
			doc: `apiVersion: batch/v1
kind: CronJob
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers: [{name: i, image: &img "busybox:1.36"}]
          containers: [{name: c, image: *img}]
          ephemeralContainers: [{name: e, image: *img}]`,
			want: []found{{"spec.jobTemplate.spec.template.spec.containers[0].image", "busybox:1.36"}},
		},
		{
			name: "a whole pod spec aliased into a second place a pod spec sits",
			doc:  "kind: Anything\ntemplate:\n  spec: &s\n    containers: [{name: a, image: a:1}]\nspec: *s\n",
			want: []found{{"spec.containers[0].image", "a:1"}},
		},
		{
			name: "a merge key whose image is hidden by the container's own is no use of it",
			doc:  "kind: Pod\nspec:\n  containers:\n  - &base {name: a, image: base:1, env: [{name: A, value: x}]}\n  - <<: *base\n    name: b\n    image: own:1\n",
			want: []found{{"spec.containers[0].image", "base:1"}, {"spec.containers[1].image", "own:1"}},
		},
		{
			name: "an anchored label value used as an image (issue 23)",
			doc:  "apiVersion: v1\nkind: Pod\nmetadata:\n  labels: {app: &img nginx:1.27}\nspec:\n  containers: [{name: a, image: *img}]\n",
			wantProblems: []string{
				"shared spec.containers[0].image: " + sharedMsg("anchor &img", "metadata.labels.app", ""),
			},
		},
		{
			name: "an image anchored in a container and used as an env value",
			doc:  "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - {name: a, image: &img nginx:1.27}\n  - name: b\n    image: b:1\n    env: [{name: UPSTREAM_IMAGE, value: *img}]\n",
			want: []found{{"spec.containers[1].image", "b:1"}},
			wantProblems: []string{
				"shared spec.containers[0].image: " + sharedMsg("anchor &img", "spec.containers[0].image", "spec.containers[1].env[0].value"),
			},
		},
		{
			name: "an image anchored in an annotation",
			doc:  "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations: {example.com/image: &img 'nginx:1.27'}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: *img}]\n",
			wantProblems: []string{
				"shared spec.template.spec.containers[0].image: " + sharedMsg("anchor &img", "metadata.annotations.example.com/image", ""),
			},
		},
		{
			name: "a container anchored and aliased as annotations",
			doc:  "kind: Pod\nspec:\n  containers: [&c {name: a, image: nginx:1.27}]\nx:\n  annotations: *c\n",
			wantProblems: []string{
				"shared spec.containers[0].image: " + sharedMsg("anchor &c", "spec.containers[0]", "x.annotations.image"),
			},
		},
		{
			name: "a container merged into annotations: its image read there through the merge key",
			doc:  "kind: Pod\nspec:\n  containers: [&c {name: a, image: nginx:1.27}]\nx:\n  annotations: {<<: *c, name: n}\n",
			wantProblems: []string{
				"shared spec.containers[0].image: " + sharedMsg("anchor &c", "spec.containers[0]", "x.annotations.image"),
			},
		},
		{
			name: "an image used as a mapping key",
			doc:  "kind: Pod\nspec:\n  containers: [{name: a, image: &img nginx:1.27}]\nmetadata:\n  labels: {*img : x}\n",
			wantProblems: []string{
				"shared spec.containers[0].image: " + sharedMsg("anchor &img", "spec.containers[0].image", "metadata.labels.nginx:1.27"),
			},
		},
		{
			name: "an anchor under a key that is no image field, brought in by a merge key",
			doc:  "kind: Pod\nbase: &base {image: base:1}\nspec:\n  containers:\n  - <<: *base\n    name: a\n",
			wantProblems: []string{
				"shared spec.containers[0].image: " + sharedMsg("anchor &base", "base", "base.image"),
			},
		},
		{
			name: "a List whose items share an anchor: a ConfigMap's data and a Pod's image",
			doc:  "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {IMAGE: &img 'nginx:1.27'}}\n- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: a, image: *img}]}}\n",
			wantProblems: []string{
				"(item 1 Pod/p) shared items[1].spec.containers[0].image: " + sharedMsg("anchor &img", "items[0].data.IMAGE", ""),
			},
		},
		{
			name: "a List whose items are one Pod twice",
			doc:  "apiVersion: v1\nkind: List\nitems:\n- &p {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: a, image: a:1}]}}\n- *p\n",
			want: []found{{"items[0].spec.containers[0].image", "a:1"}},
		},
		{
			name: "a kustomize images entry aliased twice is one entry; one used elsewhere is shared",
			doc:  "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- &a {name: a, newTag: '1'}\n- *a\n- &b {name: b, newTag: '2'}\nreplacements: [*b]\n",
			want: []found{{"images[0]", "a:1"}},
			wantProblems: []string{
				"shared images[2]: " + sharedMsg("anchor &b", "images[2]", "replacements[0]"),
			},
		},
	})
}

// TestTagged: an image field whose value carries an explicit tag other than !!str is no field but
// a Tagged problem, at every kind of place an image is read; explicit !!str is a string; untagged
// numbers and booleans keep their warnings.
func TestTagged(t *testing.T) {
	const custom = "kubectl ignores a tag it does not know and runs the text, but other YAML readers may decode it otherwise"
	runWalkCases(t, []walkCase{
		{
			name: "containers",
			doc:  "kind: Pod\nspec:\n  containers:\n  - {name: a, image: !custom nginx:1.27}\n  - {name: b, image: !!binary bmdpbng6MS4yNw==}\n  - {name: c, image: !!str nginx:1.27}\n  - {name: d, image: !!int 5}\n  - {name: e, image: 5}\n",
			want: []found{{"spec.containers[2].image", "nginx:1.27"}},
			wantProblems: []string{
				"tagged spec.containers[0].image: " + taggedMsg("!custom", custom),
				"tagged spec.containers[1].image: " + taggedMsg("!!binary", "kubectl runs the base64-decoded value, not the text a reviewer reads"),
				"tagged spec.containers[3].image: " + taggedMsg("!!int", "it does not decode to the string written"),
				"spec.containers[4].image: is a number (5), want a string",
			},
		},
		{
			name: "a preset's single image field and an image volume",
			doc:  "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nspec:\n  image: !custom quay.io/prometheus/prometheus:v3\n  volumes: [{name: v, image: {reference: !!binary bW9kZWxzOnYx}}]\n",
			wantProblems: []string{
				"tagged spec.image: " + taggedMsg("!custom", custom),
				"tagged spec.volumes[0].image.reference: " + taggedMsg("!!binary", "kubectl runs the base64-decoded value, not the text a reviewer reads"),
			},
		},
		{
			name: "a tagged value behind an alias",
			doc:  "kind: Pod\nspec:\n  initContainers: [{name: a, image: &i !custom a:1}]\n  containers: [{name: b, image: *i}]\n",
			wantProblems: []string{
				"tagged spec.containers[0].image: " + taggedMsg("!custom", custom),
				"tagged spec.initContainers[0].image: " + taggedMsg("!custom", custom),
			},
		},
	})
}

// TestProblemPositions: the problems one node says are located by it (the file:line:col front ends
// print): a duplicate at its later key, both columns named when the copies share a line (a JSON
// manifest); a tagged value; a shared image at its value; an expansion at its alias.
func TestProblemPositions(t *testing.T) {
	json := `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}, "spec": {"containers": [{"name": "a", "image": "nginx:1.27", "name": "b"}]}}`
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"a JSON manifest on one line", json, []string{
			`1:125 spec.containers[0].name: key "name" appears twice, on one line, at columns 89 and 125; the last value counts, as with kubectl, and the duplicate is left as it is`,
		}},
		{"duplicates on different lines", "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: a:1\n\n    image: b:1\n", []string{
			`7:5 spec.containers[0].image: key "image" appears twice, here and 2 lines above, with different images: kubectl would keep the last, digester does not guess; remove one`,
		}},
		{"a tagged image", "kind: Pod\nspec:\n  containers:\n  - name: a\n    image: !custom a:1\n", []string{
			"5:12 spec.containers[0].image: " + taggedMsg("!custom", "kubectl ignores a tag it does not know and runs the text, but other YAML readers may decode it otherwise"),
		}},
		{"a shared image", "kind: Pod\nmetadata:\n  labels: {app: &img a}\nspec:\n  containers: [{image: *img}]\n", []string{
			"3:17 spec.containers[0].image: " + sharedMsg("anchor &img", "metadata.labels.app", ""),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(tc.doc), &n); err != nil {
				t.Fatal(err)
			}
			_, problems := New().Walk(&n)
			var got []string
			for _, p := range problems {
				if p.Node == nil {
					t.Errorf("%s: no node", p)
					continue
				}
				got = append(got, fmt.Sprintf("%d:%d %s", p.Node.Line, p.Node.Column, p))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExpansionAsYAMLv3: the walker refuses a resource for its aliases exactly where yaml.v3
// starts to refuse decoding it into values ("document contains excessive aliasing"): for a block
// of n scalars aliased k times, the smallest k the walker refuses is found, and yaml.v3 must
// accept the document with one alias fewer and refuse it at that k. A block of 1,000 meets the
// limit below 400,000 nodes (99 % of them may come from aliases); one of 10 near 700,000, where
// yaml.v3's allowed share has started to fall.
func TestExpansionAsYAMLv3(t *testing.T) {
	// A container, a block of n scalars written once, and k aliases of the block.
	doc := func(n, k int) string {
		var b strings.Builder
		b.WriteString("kind: Pod\nspec:\n  containers: [{name: a, image: a:1}]\nblock: &b [")
		b.WriteString(strings.TrimSuffix(strings.Repeat("x,", n), ","))
		b.WriteString("]\nuses: [")
		b.WriteString(strings.TrimSuffix(strings.Repeat("*b,", k), ","))
		b.WriteString("]\n")
		return b.String()
	}
	walk := func(n, k int) (refuses bool) {
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(doc(n, k)), &node); err != nil {
			t.Fatal(err)
		}
		fields, problems := New().Walk(&node)
		refuses = len(problems) == 1 && problems[0].Kind == Expansion && len(fields) == 0
		if walks := len(problems) == 0 && len(fields) == 1; refuses == walks {
			t.Fatalf("n=%d k=%d: fields %+v, problems %v", n, k, fields, problems)
		}
		return refuses
	}
	for _, n := range []int{1000, 10} {
		lo, hi := 0, 1 // the walker walks with lo aliases and refuses hi
		for !walk(n, hi) {
			if lo, hi = hi, hi*2; hi > 1<<17 {
				t.Fatalf("the walker walks a block of %d aliased %d times", n, lo)
			}
		}
		for hi-lo > 1 {
			if mid := (lo + hi) / 2; walk(n, mid) {
				hi = mid
			} else {
				lo = mid
			}
		}
		for _, k := range []int{lo, hi} {
			var v any
			err := yaml.Unmarshal([]byte(doc(n, k)), &v)
			if err != nil && !strings.Contains(err.Error(), "excessive aliasing") {
				t.Fatalf("n=%d k=%d: %v", n, k, err)
			}
			if v3refuses := err != nil; v3refuses != (k == hi) {
				t.Errorf("a block of %d aliased %d times: the walker refuses from %d aliases, yaml.v3 refuses %v", n, k, hi, v3refuses)
			}
		}
	}
}

// TestExpansionLimit: ok's bounds are yaml.v3's, node for node: up to 1,000 nodes a resource may
// be all aliases; past that, at most 99 % of its nodes may come from aliases (exactly 99 % is
// allowed), and past 400,000 nodes the share falls towards 10 %; an alias inside its own value is
// never allowed.
func TestExpansionLimit(t *testing.T) {
	for _, tc := range []struct {
		written, total int
		cycle          bool
		want           bool
	}{
		{written: 2, total: 1000, want: true},
		{written: 2, total: 1001, want: false},
		{written: 100, total: 10000, want: true}, // 99 % aliased
		{written: 99, total: 10000, want: false},
		{written: 4000, total: 400000, want: true},
		{written: 3999, total: 400000, want: false},
		{written: 3_600_000, total: 4_000_000, want: true}, // 10 %
		{written: 3_599_999, total: 4_000_000, want: false},
		{written: 5, total: 5, cycle: true, want: false},
	} {
		x := expansion{written: tc.written, total: tc.total}
		if tc.cycle {
			x.cycle = &yaml.Node{Kind: yaml.AliasNode}
		}
		if got := x.ok(); got != tc.want {
			t.Errorf("written %d, expanded %d, cycle %v: ok %v, want %v", tc.written, tc.total, tc.cycle, got, tc.want)
		}
	}
}

// TestExpansionIsLinear: the count steps on each node it can reach about once, however deep
// anchors nest and however many aliases name them: 300 lists nested in each other, each anchored
// and each aliased once, cost 300² steps when an anchored value was counted anew for each alias.
// The anchors are written in the resource, or before it in the same document (items of one
// ResourceList, which kpt's input is).
func TestExpansionIsLinear(t *testing.T) {
	const n = 300
	var nested, uses strings.Builder
	for i := range n {
		fmt.Fprintf(&nested, "&a%d [", i)
	}
	nested.WriteString("1" + strings.Repeat("]", n))
	for i := range n {
		fmt.Fprintf(&uses, "*a%d, ", n-1-i)
	}
	uses.WriteString("*a0")
	for _, tc := range []struct {
		name, doc string
		resource  func(doc *yaml.Node) *yaml.Node
	}{
		{"anchors in the resource", "kind: Pod\nx: " + nested.String() + "\nuses: [" + uses.String() + "]\n",
			func(doc *yaml.Node) *yaml.Node { return doc.Content[0] }},
		{"anchors before it", "- " + nested.String() + "\n- {kind: Pod, uses: [" + uses.String() + "]}\n",
			func(doc *yaml.Node) *yaml.Node { return doc.Content[0].Content[1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.doc), &doc); err != nil {
				t.Fatal(err)
			}
			x := expand(tc.resource(&doc))
			if x.total < n*n/2 {
				t.Fatalf("written %d, expanded %d: the shape does not expand", x.written, x.total)
			}
			if reach := x.written + 2*n; x.visits < n || x.visits > 2*reach { // it steps on each list at least
				t.Errorf("%d steps for %d nodes written or reached (expanded %d): not linear", x.visits, reach, x.total)
			}
		})
	}
}
