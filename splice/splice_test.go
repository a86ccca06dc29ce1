package splice_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/splice"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// parse parses doc and returns the node at path: keys and sequence indexes ("spec", "0", "image").
func parse(t *testing.T, doc string) func(path ...string) *yaml.Node {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	return func(path ...string) *yaml.Node {
		t.Helper()
		n := root.Content[0]
	walk:
		for _, p := range path {
			for n.Kind == yaml.AliasNode {
				n = n.Alias
			}
			switch n.Kind {
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						n = n.Content[i+1]
						continue walk
					}
				}
			case yaml.SequenceNode:
				for i, c := range n.Content {
					if p == string(rune('0'+i)) {
						n = c
						continue walk
					}
				}
			}
			t.Fatalf("no %q in %v", p, path)
		}
		return n
	}
}

// pin is the edit that appends "@digest" to the scalar n.
func pin(n *yaml.Node) splice.Edit {
	return splice.Replace(n.Line, n.Column, n.Value, n.Value+"@"+digest)
}

// TestApply: each kind of edit on the ways YAML writes a value, the bytes around it unchanged.
func TestApply(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		edits     func(at func(...string) *yaml.Node) []splice.Edit
		want      string
	}{
		{
			name:  "plain, with a comment after it",
			doc:   "spec:\n  image: nginx:1.27   # the web server\n  other: x\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit { return []splice.Edit{pin(at("spec", "image"))} },
			want:  "spec:\n  image: nginx:1.27@" + digest + "   # the web server\n  other: x\n",
		},
		{
			name:  "single and double quotes kept",
			doc:   "a: 'nginx:1.27'\nb: \"redis:7\"\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit { return []splice.Edit{pin(at("a")), pin(at("b"))} },
			want:  "a: 'nginx:1.27@" + digest + "'\nb: \"redis:7@" + digest + "\"\n",
		},
		{
			name: "flow collections",
			doc:  "c: [{name: a, image: nginx}, {image: 'redis', name: b}]\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{pin(at("c", "0", "image")), pin(at("c", "1", "image"))}
			},
			want: "c: [{name: a, image: nginx@" + digest + "}, {image: 'redis@" + digest + "', name: b}]\n",
		},
		{
			name:  "CRLF, a byte order mark and a character of two bytes before the value",
			doc:   "\ufeffé: nginx\r\nx: y\r\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit { return []splice.Edit{pin(at("é"))} },
			want:  "\ufeffé: nginx@" + digest + "\r\nx: y\r\n",
		},
		{
			name:  "a tag and an anchor before the value",
			doc:   "a: !!str &x nginx\nb: &y !!str redis # r\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit { return []splice.Edit{pin(at("a")), pin(at("b"))} },
			want:  "a: !!str &x nginx@" + digest + "\nb: &y !!str redis@" + digest + " # r\n",
		},
		{
			name: "the same edit twice is made once",
			doc:  "a: nginx\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{pin(at("a")), pin(at("a"))}
			},
			want: "a: nginx@" + digest + "\n",
		},
		{
			name: "a key added after newTag, in block style, CRLF kept",
			doc:  "images:\r\n- name: nginx # n\r\n  newTag: \"1.27\" # t\r\n  newName: x\r\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{splice.SetKey(at("images", "0"), "digest", digest, "newTag")}
			},
			want: "images:\r\n- name: nginx # n\r\n  newTag: \"1.27\" # t\r\n  digest: " + digest + "\r\n  newName: x\r\n",
		},
		{
			name: "a key added after the last key when there is no newTag; in flow style, quoted",
			doc:  "images:\n- {name: nginx, newName: 'x' }\n- name: redis:7\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{splice.SetKey(at("images", "0"), "digest", digest, "newTag"), splice.SetKey(at("images", "1"), "digest", digest, "newTag")}
			},
			want: "images:\n- {name: nginx, newName: 'x', digest: '" + digest + "' }\n- name: redis:7\n  digest: " + digest + "\n",
		},
		{
			name: "a key that is there is set in place",
			doc:  "m: {digest: old, name: a}\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{splice.SetKey(at("m"), "digest", digest, "name")}
			},
			want: "m: {digest: " + digest + ", name: a}\n",
		},
		{
			name: "a value that does not read back plain is quoted",
			doc:  "m:\n  a: b\nn:\n  a: b\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{splice.SetKey(at("m"), "n", "true", "a"), splice.SetKey(at("n"), "o", "it's: x", "a")}
			},
			want: "m:\n  a: b\n  n: 'true'\nn:\n  a: b\n  o: 'it''s: x'\n",
		},
		{
			name: "a comment added, and one replaced, with the value",
			doc:  "- image: gcr.io/kpt-fn/set-labels:v0.2\n- image: gcr.io/kpt-fn/apply-setters:v0.1 #old\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				a, b := at("0", "image"), at("1", "image")
				return []splice.Edit{
					splice.Replace(a.Line, a.Column, a.Value, "gcr.io/kpt-fn/set-labels@"+digest), splice.SetComment(a.Line, "", "v0.2"),
					splice.Replace(b.Line, b.Column, b.Value, "gcr.io/kpt-fn/apply-setters@"+digest), splice.SetComment(b.Line, "#old", "# v0.1"),
				}
			},
			want: "- image: gcr.io/kpt-fn/set-labels@" + digest + " # v0.2\n- image: gcr.io/kpt-fn/apply-setters@" + digest + " # v0.1\n",
		},
		{
			name: "a plain value that would not read back plain is quoted",
			doc:  "a: x # c\nb: [y]\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{splice.Replace(1, 4, "x", "true"), splice.Replace(2, 5, "y", "y #z")}
			},
			want: "a: 'true' # c\nb: ['y #z']\n",
		},
		{
			name: "an empty value set after its key's colon; a key added after an empty value",
			doc:  "m:\n  digest:\n  tag:\nf: {digest: , tag: 1}\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{splice.SetKey(at("m"), "digest", digest, "tag"), splice.SetKey(at("m"), "x", "y", "tag"),
					splice.SetKey(at("f"), "digest", digest, "tag")}
			},
			want: "m:\n  digest: " + digest + "\n  tag:\n  x: y\nf: {digest: '" + digest + "' , tag: 1}\n",
		},
		{
			name: "a comment set at the end of a flow mapping's line",
			doc:  "- {image: a, configPath: b} # v1\n- {image: c}\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{splice.SetComment(1, "# v1", "# v2"), splice.SetComment(2, "", "v3")}
			},
			want: "- {image: a, configPath: b} # v2\n- {image: c} # v3\n",
		},
		{
			name: "a single quote in the new value is doubled",
			doc:  "a: 'x'\n",
			edits: func(at func(...string) *yaml.Node) []splice.Edit {
				return []splice.Edit{splice.Replace(1, 4, "x", "it's")}
			},
			want: "a: 'it''s'\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splice.Apply([]byte(tt.doc), tt.edits(parse(t, tt.doc)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestSetValue: a key's whole block value is written anew, or the key added after the mapping's
// last key; nothing else changes, comments after the value and CRLF included.
func TestSetValue(t *testing.T) {
	images := func(refs ...string) *yaml.Node {
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, r := range refs {
			seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
				{Kind: yaml.ScalarNode, Tag: "!!str", Value: "image"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: r}}})
		}
		return seq
	}
	for _, tt := range []struct {
		name, doc, want string
		path            []string
	}{
		{
			name: "replaced, at depth, a comment after it kept",
			doc:  "- kind: DigestLock # lock\n  images:\n  - image: old:1\n    digest: x\n  # end of images\n  other: 1\n- kind: B\n",
			path: []string{"0"},
			want: "- kind: DigestLock # lock\n  images:\n  - image: a:1\n  - image: b:2\n  # end of images\n  other: 1\n- kind: B\n",
		},
		{
			name: "added after the last key and its value, CRLF",
			doc:  "kind: DigestLock\r\nmetadata:\r\n  name: d\r\n# trailing\r\n",
			want: "kind: DigestLock\r\nmetadata:\r\n  name: d\r\nimages:\r\n- image: a:1\r\n- image: b:2\r\n# trailing\r\n",
		},
		{
			name: "an empty value",
			doc:  "images:\n- image: x\nz: 1\n",
			want: "images: []\nz: 1\n",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			refs := []string{"a:1", "b:2"}
			if strings.HasPrefix(tt.name, "an empty") {
				refs = nil
			}
			got, err := splice.Apply([]byte(tt.doc), []splice.Edit{splice.SetValue(parse(t, tt.doc)(tt.path...), "images", images(refs...))})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	_, err := splice.Apply([]byte("{kind: L, images: []}\n"), []splice.Edit{splice.SetValue(parse(t, "{kind: L, images: []}\n")(), "images", images("a"))})
	var se *splice.Error
	if !errors.As(err, &se) || se.How != "is in a flow mapping" {
		t.Errorf("flow mapping: %v, want an error saying so", err)
	}
}

// TestApplyRefuses: values that cannot be edited in place are errors that say how the value is
// written, and nothing is edited.
func TestApplyRefuses(t *testing.T) {
	for _, tt := range []struct {
		name, doc string
		edit      func(at func(...string) *yaml.Node) splice.Edit
		wantHow   string
	}{
		{"literal block scalar", "a: |\n  nginx\n", func(at func(...string) *yaml.Node) splice.Edit { return pin(at("a")) }, "is a block scalar (|)"},
		{"folded block scalar", "a: >-\n  nginx\n", func(at func(...string) *yaml.Node) splice.Edit { return pin(at("a")) }, "is a block scalar (>)"},
		{"escape in double quotes", `a: "ngin\x78"` + "\n", func(at func(...string) *yaml.Node) splice.Edit { return pin(at("a")) }, "holds an escape sequence"},
		{"escaped single quote", "a: 'it''s'\n", func(at func(...string) *yaml.Node) splice.Edit { return pin(at("a")) }, "holds an escape sequence"},
		{"quoted over two lines", "a: \"ngi\n  nx\"\n", func(at func(...string) *yaml.Node) splice.Edit { return pin(at("a")) }, "spans several lines"},
		{"plain over two lines", "a: ngi\n  nx\n", func(at func(...string) *yaml.Node) splice.Edit { return pin(at("a")) }, "spans several lines"},
		{"alias", "x: &i nginx\na: *i\n", func(at func(...string) *yaml.Node) splice.Edit { return splice.Replace(2, 4, "nginx", "n@"+digest) }, "is an alias, *i"},
		{"other tag", "a: !custom nginx\n", func(at func(...string) *yaml.Node) splice.Edit { return pin(at("a")) }, "is written with the explicit tag !custom"},
		{"not the parsed value", "a: nginx\n", func(at func(...string) *yaml.Node) splice.Edit { return splice.Replace(1, 4, "redis", "x") }, "is not written as the YAML parser read it"},
		{"position past the end", "a: nginx\n", func(at func(...string) *yaml.Node) splice.Edit { return splice.Replace(9, 1, "nginx", "x") }, "is not where the YAML parser put it"},
		{"double quote in double quotes", `a: "x"` + "\n", func(at func(...string) *yaml.Node) splice.Edit { return splice.Replace(1, 4, "x", `x"`) },
			`cannot hold "x\"": it would need escapes in double quotes`},
		{"a comment that is not there", "a: {image: x, b: c} # c\n", func(at func(...string) *yaml.Node) splice.Edit { return splice.SetComment(1, "# d", "t") },
			`is not at the end of line 1`},
		{"key after a block value", "m:\n  a:\n    b: c\n", func(at func(...string) *yaml.Node) splice.Edit { return splice.SetKey(at("m"), "digest", digest, "a") },
			"cannot be added after a value that is not a scalar"},
		{"key in an empty mapping", "m: {}\n", func(at func(...string) *yaml.Node) splice.Edit { return splice.SetKey(at("m"), "digest", digest, "a") },
			"cannot be added: there is no mapping with a key to add it after"},
		{"key added in a flow mapping over two lines", "m: {a: b,\n  c: d}\n", func(at func(...string) *yaml.Node) splice.Edit {
			e := splice.SetKey(at("m"), "digest", digest, "a")
			return e
		}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := []byte(tt.doc)
			got, err := splice.Apply(doc, []splice.Edit{tt.edit(parse(t, tt.doc))})
			if tt.wantHow == "" {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				return
			}
			var se *splice.Error
			if !errors.As(err, &se) {
				t.Fatalf("Apply = %q, %v; want a *splice.Error", got, err)
			}
			if diff := cmp.Diff(tt.wantHow, se.How); diff != "" {
				t.Errorf("How (-want +got):\n%s", diff)
			}
			if !strings.Contains(se.Error(), "cannot be edited in place") || se.Fix == "" {
				t.Errorf("error %q says no fix", se.Error())
			}
		})
	}
}

// TestApplyTwiceDifferently: two different edits of one value are an error.
func TestApplyTwiceDifferently(t *testing.T) {
	_, err := splice.Apply([]byte("a: x\n"), []splice.Edit{splice.Replace(1, 4, "x", "y"), splice.Replace(1, 4, "x", "z")})
	var se *splice.Error
	if !errors.As(err, &se) || !strings.HasPrefix(se.How, "is edited twice") || se.Index != 1 {
		t.Fatalf("err = %v, want one saying the value is edited twice, about the second edit", err)
	}
}

// TestNodes: Nodes makes in a tree the edits Apply makes in the text: both parse to the same values.
func TestNodes(t *testing.T) {
	doc := "images:\n- name: nginx\n  newTag: '1.27'\n- {name: redis, newTag: 7}\nc:\n  image: busybox # b\n"
	at := parse(t, doc)
	edits := []splice.Edit{
		splice.SetKey(at("images", "0"), "digest", digest, "newTag"),
		splice.SetKey(at("images", "1"), "digest", digest, "newTag"),
		pin(at("c", "image")),
		splice.SetComment(at("c", "image").Line, "# b", "# pinned"),
	}
	text, err := splice.Apply([]byte(doc), edits)
	if err != nil {
		t.Fatal(err)
	}
	var fromText, tree yaml.Node
	if err := yaml.Unmarshal(text, &fromText); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(doc), &tree); err != nil {
		t.Fatal(err)
	}
	if err := splice.Nodes(&tree, edits); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(values(&fromText), values(&tree)); diff != "" {
		t.Errorf("values (-text +tree):\n%s", diff)
	}
	if c := parse(t, string(text))("c", "image").LineComment; c != "# pinned" {
		t.Errorf("comment %q, want # pinned", c)
	}
	if err := splice.Nodes(&tree, []splice.Edit{splice.Replace(1, 1, "gone", "x")}); err == nil {
		t.Error("Nodes found a node that is not there")
	}
}

// values is a tree as what it holds: kind, tag and value of every node, comments and positions
// left out. An alias is its anchor's name (the anchored node is listed where it stands): an alias
// may stand inside its own anchor.
func values(n *yaml.Node) []string {
	out := []string{fmt.Sprint(n.Kind) + " " + n.ShortTag() + " " + n.Value}
	if n.Kind == yaml.AliasNode {
		return out
	}
	for _, c := range n.Content {
		out = append(out, values(c)...)
	}
	return out
}

// FuzzApply: on any YAML document, pinning every string scalar (or adding digest: to every
// mapping) never panics; an edit that cannot be made is a *splice.Error; otherwise the new text
// parses to the values Nodes gives, and removing what was added gives back the old text.
func FuzzApply(f *testing.F) {
	for _, s := range []string{
		"kind: Pod\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27 # c\n  - {name: b, image: 'redis:7'}\n",
		"a: &x !!str v\nb: *x\nc: [x, \"y\", 'z']\n",
		"images:\r\n- name: nginx\r\n  newTag: \"1.27\" # t\r\n- {name: a, newTag: b}\r\n",
		"\ufeff{kind: Pod, spec: {containers: [{image: nginx}, {image: a.b/c:d}]}}\n",
		"a: |\n  x\nb: >-\n  y\n    z\nc: \"a\\x41\"\nd: 'it''s'\ne: x\n  y\n",
		"- [a, b]\n- {a: b}\n- ? complex\n  : key\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	added := regexp.MustCompile(`@` + digest + `|\r?\n *digest: ` + digest + `|, digest: '` + digest + `'`)
	f.Fuzz(func(t *testing.T, data []byte, keys bool) {
		if bytes.Contains(data, []byte(digest)) {
			return
		}
		var root yaml.Node
		if yaml.Unmarshal(data, &root) != nil {
			return
		}
		var edits []splice.Edit
		replaced := false // a mapping has a digest key already: SetKey sets its value, not a new line
		walk(&root, func(n *yaml.Node) {
			switch {
			case keys && n.Kind == yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					replaced = replaced || n.Content[i].Value == "digest"
				}
				edits = append(edits, splice.SetKey(n, "digest", digest, "newTag"))
			case !keys && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && (n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 || readsPlain(n.Value+"@"+digest)):
				edits = append(edits, pin(n)) // as digester pins: a value that stays plain, or is quoted
			}
		})
		out, err := splice.Apply(data, edits)
		var se *splice.Error
		if err != nil {
			if !errors.As(err, &se) {
				t.Fatalf("Apply: %T %v, not a *splice.Error", err, err)
			}
			return
		}
		// What the edits added is taken out again, unless a value was set in place (the values
		// are compared below).
		if got := added.ReplaceAll(out, nil); !replaced && !bytes.Equal(got, data) {
			t.Fatalf("bytes other than the edits changed:\n%q\n%q", data, out)
		}
		var fromText yaml.Node
		if err := yaml.Unmarshal(out, &fromText); err != nil {
			t.Fatalf("the new text does not parse: %v\n%q", err, out)
		}
		if err := splice.Nodes(&root, edits); err != nil {
			t.Fatalf("Nodes: %v", err)
		}
		if diff := cmp.Diff(values(&root), values(&fromText)); diff != "" {
			t.Fatalf("the new text holds other values than the edited tree (-tree +text):\n%s\n%q", diff, out)
		}
	})
}

// readsPlain reports whether s, written plain in a flow sequence, reads back as the string s.
func readsPlain(s string) bool {
	var n yaml.Node
	if yaml.Unmarshal([]byte("["+s+"]"), &n) != nil || len(n.Content) != 1 || len(n.Content[0].Content) != 1 {
		return false
	}
	v := n.Content[0].Content[0]
	return v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value == s
}

// walk calls fn on every node under n, keys included, each once; aliases are not followed.
func walk(n *yaml.Node, fn func(*yaml.Node)) {
	fn(n)
	for _, c := range n.Content {
		walk(c, fn)
	}
}
