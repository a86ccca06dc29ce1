package walker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// maxDepth bounds the scan of a resource; kubectl's own decoder stops far earlier.
const maxDepth = 10000

// check scans the whole resource once, after its fields are found, for what would otherwise go
// unsaid: duplicate keys (ambiguous ones take their fields out of the result) and image keys
// holding a string at a place no rule looks at.
func (w *Walker) check(obj *yaml.Node, grp, kind string, data []string, fields []Field, problems []Problem) ([]Field, []Problem) {
	s := scanner{fields: fields, data: data}
	// A document without apiVersion and kind (a Helm values file, a tool's config) is no resource:
	// its image keys are nobody's image fields, and no declaration could name its kind.
	s.walk(obj, 0, grp == "" && kind == "" && lookup(obj, "apiVersion") == nil)
	for _, d := range s.dups {
		frames, _ := locate(obj, d.in, nil, 0)
		at := path(frames, d.first.Value)
		lines := fmt.Sprintf("lines %d and %d of the resource", d.first.Line-obj.Line+1, d.last.Line-obj.Line+1)
		if decides(fields, at) && !slices.EqualFunc(images(d.firstValue, nil), images(d.lastValue, nil), sameRef) {
			problems = append(problems, Problem{Kind: Ambiguous, Path: at, Message: fmt.Sprintf(
				"key %q appears twice (%s) with different images: kubectl would keep the last, digester does not guess; remove one",
				d.first.Value, lines)})
			fields = slices.DeleteFunc(fields, func(f Field) bool { return under(f.Path, at) })
			continue
		}
		problems = append(problems, Problem{Kind: Duplicate, Path: at, Message: fmt.Sprintf(
			"key %q appears twice (%s); the last value counts, as with kubectl, and the duplicate is left as it is", d.first.Value, lines)})
	}
	reported := len(problems)
	for _, u := range s.unlisted {
		frames, _ := locate(obj, u.in, nil, 0)
		at := path(frames, u.key.Value)
		if slices.ContainsFunc(problems[:reported], func(p Problem) bool { return under(at, p.Path) }) {
			continue // already reported as a field that cannot be read
		}
		problems = append(problems, Problem{Kind: Unlisted, Path: at, Image: u.node.Value,
			Message: unlistedMessage(grp, kind, pattern(frames, u.key.Value))})
	}
	return fields, problems
}

// unlistedMessage is the same for every resource of a kind with an image key at one place.
func unlistedMessage(grp, kind, pattern string) string {
	decl := "kind: " + kind + ", path: " + pattern
	if grp != "" {
		decl = "group: " + grp + ", " + decl
	}
	what := "kind " + kind
	if kind == "" {
		what = "resources without a kind"
	}
	if grp != "" {
		what += " (" + grp + ")"
	}
	return fmt.Sprintf("left alone: digester does not pin %s in %s; to pin it, add {%s} to additionalImageFields", pattern, what, decl)
}

// decides reports whether the value at path holds one of the fields found.
func decides(fields []Field, path string) bool {
	return slices.ContainsFunc(fields, func(f Field) bool { return under(f.Path, path) })
}

// under reports whether path is at or below prefix.
func under(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix) && (path[len(prefix)] == '.' || path[len(prefix)] == '[')
}

// images collects the strings that decide images below n: a scalar itself, or the values of
// the keys that hold references or their parts, in document order.
func images(n *yaml.Node, out []string) []string {
	n = deref(n)
	switch {
	case n == nil:
	case n.Kind == yaml.ScalarNode:
		out = append(out, n.Value)
	case n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch v := n.Content[i+1]; n.Content[i].Value {
			case "image", "reference", "newName", "newTag", "digest":
				if v.Kind == yaml.ScalarNode {
					out = append(out, n.Content[i].Value+"="+v.Value)
					continue
				}
				out = images(v, out)
			default:
				if v.Kind != yaml.ScalarNode {
					out = images(v, out)
				}
			}
		}
	case n.Kind == yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				out = images(c, out)
			}
		}
	}
	return out
}

// sameRef reports whether a and b name the same image: equal, or one is the other pinned (so that a
// second run over a resource whose last duplicate was pinned finds nothing new to complain of).
func sameRef(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"@") || strings.HasPrefix(b, a+"@")
}

// frame is one step of a path: a key, or an index when key is "".
type frame struct {
	key string
	idx int
}

type dup struct {
	in                    *yaml.Node // the mapping
	first, last           *yaml.Node // the key nodes
	firstValue, lastValue *yaml.Node
}

type unlisted struct {
	in, key, node *yaml.Node // the mapping, the key and its value
}

// scanner walks every node of a resource once; aliases are not followed (what they name is
// scanned where it is defined).
type scanner struct {
	fields   []Field
	data     []string
	dups     []dup
	unlisted []unlisted
}

func (s *scanner) walk(n *yaml.Node, depth int, quiet bool) {
	if depth > maxDepth {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		c := n.Content
		repeats := repeatedKey(c)
		for i := 0; i+1 < len(c); i += 2 {
			k, v := c[i], c[i+1]
			shadowed := false
			if repeats && k.Value != "<<" {
				first, last := sameKeys(c, i)
				shadowed = last != i
				if first == i && last != i {
					s.dups = append(s.dups, dup{in: n, first: k, last: c[last], firstValue: v, lastValue: c[last+1]})
				}
			}
			switch {
			case v.Kind == yaml.ScalarNode:
				if k.Value == "image" && !quiet && !shadowed && v.ShortTag() == "!!str" && strings.TrimSpace(v.Value) != "" && !s.isField(v) {
					s.unlisted = append(s.unlisted, unlisted{in: n, key: k, node: v})
				}
			case v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode:
				s.walk(v, depth+1, quiet || shadowed || k.Value == "annotations" || slices.Contains(s.data, k.Value))
			}
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode {
				s.walk(c, depth+1, quiet)
			}
		}
	case yaml.DocumentNode:
		for _, c := range n.Content {
			s.walk(c, depth+1, quiet)
		}
	}
}

func (s *scanner) isField(n *yaml.Node) bool {
	return slices.ContainsFunc(s.fields, func(f Field) bool { return f.Node == n })
}

// locate returns the path from root to the mapping m, found again by a search: paths are needed
// only for what is reported, so the scan itself carries none.
func locate(root, m *yaml.Node, at []frame, depth int) ([]frame, bool) {
	if root == m {
		return at, true
	}
	if depth > maxDepth {
		return nil, false
	}
	switch root.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(root.Content); i += 2 {
			if p, ok := locate(root.Content[i+1], m, append(at, frame{key: root.Content[i].Value}), depth+1); ok {
				return p, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range root.Content {
			if p, ok := locate(c, m, append(at, frame{idx: i}), depth+1); ok {
				return p, true
			}
		}
	}
	return nil, false
}

// path is the dotted path of key under frames: "spec.containers[0].image".
func path(frames []frame, key string) string {
	var b strings.Builder
	for _, f := range frames {
		if f.key == "" {
			b.WriteString("[" + strconv.Itoa(f.idx) + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(f.key)
	}
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	b.WriteString(key)
	return b.String()
}

// pattern is the ImageField path of key under frames: "spec/containers/image".
func pattern(frames []frame, key string) string {
	var parts []string
	for _, f := range frames {
		if f.key != "" {
			parts = append(parts, strings.ReplaceAll(f.key, "/", `\/`))
		}
	}
	return strings.Join(append(parts, strings.ReplaceAll(key, "/", `\/`)), "/")
}

// sameKeys returns the indexes of the first and last key in c equal to the key at i.
func sameKeys(c []*yaml.Node, i int) (first, last int) {
	first, last = i, i
	for j := 0; j+1 < len(c); j += 2 {
		if c[j].Value == c[i].Value && c[j].Kind == c[i].Kind {
			first, last = min(first, j), max(last, j)
		}
	}
	return first, last
}

// repeatedKey reports whether a key other than "<<" appears twice among a mapping's keys.
func repeatedKey(content []*yaml.Node) bool {
	if len(content) <= 64 { // most mappings are small: pairwise comparison allocates nothing
		for i := 0; i+1 < len(content); i += 2 {
			for j := 0; j < i; j += 2 {
				if k := content[i].Value; k == content[j].Value && k != "<<" {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[string]bool, len(content)/2)
	for i := 0; i+1 < len(content); i += 2 {
		k := content[i].Value
		if seen[k] && k != "<<" {
			return true
		}
		seen[k] = true
	}
	return false
}
