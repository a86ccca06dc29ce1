package krmio

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// encode is what toYAML falls back to: kyaml's encoder on a one-item sequence.
func encode(t testing.TB, item *yaml.Node) string {
	t.Helper()
	var buf bytes.Buffer
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{item}}
	if err := yaml.NewEncoder(&buf).Encode(seq); err != nil {
		t.Fatalf("yaml.v3: %v", err)
	}
	return buf.String()
}

// same checks that appendItem writes what yaml.v3 writes, when it writes anything, and returns
// whether it did.
func same(t testing.TB, item *yaml.Node) bool {
	t.Helper()
	got, ok := appendItem([]byte("prefix\n"), item)
	if !ok {
		return false
	}
	if !strings.HasPrefix(string(got), "prefix\n") {
		t.Fatalf("appendItem lost what came before: %q", got)
	}
	if diff := cmp.Diff(encode(t, item), string(got[len("prefix\n"):])); diff != "" {
		t.Errorf("appendItem (-yaml.v3 +appendItem):\n%s", diff)
	}
	return true
}

func parse(t testing.TB, s string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return doc.Content[0]
}

// TestAppendItemCommon: the manifests digester sees are written by appendItem, as yaml.v3 writes them.
func TestAppendItemCommon(t *testing.T) {
	for _, in := range []string{
		`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web, tier: "front"}
  annotations:
    config.kubernetes.io/index: '0'
    internal.config.kubernetes.io/path: 'apps/web.yaml'
    note: "it's here"
    quote: 'say "hi"'
    apostrophe: 'it''s'
  creationTimestamp: null
spec:
  replicas: 3
  paused: false
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels: {}
    spec:
      initContainers: []
      containers:
      - name: app
        image: 127.0.0.1:5000/team/app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
        args: ["--port", "8080", -v, '--x=y']
        command:
        - sh
        - -c
        - echo hi
        ports:
        - containerPort: 8080
          protocol: TCP
        resources:
          limits: {cpu: 0.5, memory: 128Mi}
      - {name: sidecar, image: 'busybox'}
      tolerations:
      - {}
`,
		"kind: A\nx: ~\ny: a b  c\nz: a#b\nw: 'a: b'\n",
		`apiVersion: apps/v1 # a comment
kind: Deployment
spec:
  template:
    spec:
      # the app, pinned by digester
      # (two lines)
      containers:
      - name: app
        image: nginx:1.27@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef # kpt-set: ${image}
        args:
        - --port # the port
        - "8080" #
`,
	} {
		if !same(t, parse(t, in)) {
			t.Errorf("appendItem left this to yaml.v3, but it is what it is for:\n%s", in)
		}
	}
}

// TestAppendItemDeclines: what appendItem does not reproduce, it leaves to yaml.v3.
func TestAppendItemDeclines(t *testing.T) {
	for _, in := range []string{
		"# head\nkind: A\n",
		"kind: A\nm: # on m\n  k: v\n",
		"kind: A\nm:\n  k: v\n  # foot of k\nn: 1\n",
		"kind: A\nx: {a: b} # on a flow mapping\n",
		"kind: A\nx: v # ünï\n",
		"kind: A\nx: &a 1\ny: *a\n",
		"kind: A\nx: !!str 1\n",
		"kind: A\nx: |\n  block\n",
		"kind: A\nx: ünï\n",
		"kind: A\nx: [[1]]\n",
		"kind: A\nx:\n- - 1\n",
		"kind: A\nx: {a: {b: c}}\n",
		"kind: A\n" + strings.Repeat("k", 129) + ": v\n",
		"kind: A\nx: 2001-12-14\n",
		"kind: A\nx: 1e3\n",
		"kind: A\nx: \"a\\tb\"\n",
	} {
		if same(t, parse(t, in)) {
			t.Errorf("appendItem wrote %q; want it left to yaml.v3", in)
		}
	}
}

// scalars are values whose writing differs between plain, quoted and escaped, in every context.
var scalars = append([]string{
	"a", "web", "nginx:1.27", "127.0.0.1:5000/app", "1/2", "0", "7", "08", "123456789012345678", "1234567890123456789",
	"0.5", "1.", ".5", "-1", "+1", "1_000", "0x1F", "0o7", "0b1", "TRUE", "True", "False", "NULL", "Null", "~", "null",
	"-", "--", "---", "...", "-a", "- a", "?a", "? a", ":a", ": a", "a:", "a:b", "a: b", "a #b", "a#b", "#a", "a,b", "a[b",
	"a]b", "{a", "a}", "a?", "!a", "&a", "*a", "|a", ">a", "'a", "\"a", "%a", "@a", "`a", "a'b", "a\"b", "a\\b", " a", "a ",
	"a  b", "a\tb", "a\nb", "é", "\x7f", "<<", "<<<", "<", "a<<", "<< a", "!!merge <<", "=", ".inf", "-.inf", ".nan", "2001-12-14", "12:30", "1:20:30",
}, tricky...)

// TestAppendItemScalars puts each scalar, in each style and tag, in each place a scalar goes, and
// checks appendItem against yaml.v3 wherever it writes.
func TestAppendItemScalars(t *testing.T) {
	wrote := 0
	for _, v := range scalars {
		for _, style := range []yaml.Style{0, yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle} {
			for _, tag := range []string{"", "!!str", "!!int", "!!bool", "!!null", "!!float"} {
				for place := range places {
					if same(t, placed(place, &yaml.Node{Kind: yaml.ScalarNode, Style: style, Tag: tag, Value: v})) {
						wrote++
					}
				}
			}
		}
	}
	if wrote < 1000 {
		t.Errorf("appendItem wrote %d of the cases; it should write most plain and quoted ones", wrote)
	}
}

// places is how many places placed puts a scalar in.
const places = 7

// placed returns an item holding s as a key, a value, a sequence item, or in a flow collection.
func placed(place int, s *yaml.Node) *yaml.Node {
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	m := func(style yaml.Style, c ...*yaml.Node) *yaml.Node {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: style, Content: c}
	}
	seq := func(style yaml.Style, c ...*yaml.Node) *yaml.Node {
		return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: style, Content: c}
	}
	switch place {
	case 0:
		return m(0, s, str("v"))
	case 1:
		return m(0, str("k"), s)
	case 2:
		return m(0, str("k"), m(0, str("n"), s))
	case 3:
		return m(0, str("k"), seq(0, s, str("b")))
	case 4:
		return m(0, str("k"), m(yaml.FlowStyle, s, s))
	case 5:
		return m(0, str("k"), seq(yaml.FlowStyle, str("a"), s))
	default:
		return m(0, str("k"), seq(0, m(0, str("x"), s, s, str("y"))))
	}
}

// FuzzAppendItem: whatever the scalar, wherever it is, appendItem writes what yaml.v3 writes or
// leaves it to yaml.v3 (same fails when yaml.v3 refuses what appendItem wrote).
func FuzzAppendItem(f *testing.F) {
	comments := []string{"", "# c", "#", "# kpt-set: ${image}", "# a\n# b", "no hash", "# ü", "#\n", "# a\n\n# b"}
	for i, v := range scalars {
		f.Add(v, uint8(i), uint8(i/3), comments[i%len(comments)], comments[(i/2)%len(comments)])
	}
	f.Fuzz(func(t *testing.T, v string, how, place uint8, line, head string) {
		styles := []yaml.Style{0, yaml.SingleQuotedStyle, yaml.DoubleQuotedStyle, yaml.LiteralStyle, yaml.FlowStyle}
		tags := []string{"", "!!str", "!!int", "!!bool", "!!null", "!!float", "!!timestamp"}
		s := &yaml.Node{Kind: yaml.ScalarNode, Style: styles[int(how)%len(styles)], Tag: tags[int(how)/len(styles)%len(tags)], Value: v,
			LineComment: line, HeadComment: head}
		item := placed(int(place)%places, s)
		same(t, item)
	})
}
