package walker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// notImages are keys whose values hold image: keys that name no container image: annotations,
// and the Ceph RBD volume sources of pod specs and PersistentVolumes, whose image is a RADOS
// block device. They are neither pinned nor reported.
var notImages = map[string]bool{"annotations": true, "rbd": true}

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
	if len(s.dups) == 0 && len(s.unlisted) == 0 {
		return fields, problems
	}
	// Every mapping named below found in one more pass, and every test of one path against many
	// a set look-up: the check stays linear in the resource, however many keys repeat.
	where := map[*yaml.Node][]frame{}
	for _, d := range s.dups {
		where[d.in] = nil
	}
	for _, u := range s.unlisted {
		where[u.in] = nil
	}
	locateAll(obj, where)
	found, ambiguous := paths{}, paths{}
	for _, f := range fields {
		found.addWithPrefixes(f.Path)
	}
	for _, d := range s.dups {
		at := path(where[d.in], d.first.Value)
		if found[at] && !ambiguous.covers(at) && !slices.EqualFunc(images(d.firstValue, nil), images(d.lastValue, nil), sameRef) {
			problems = append(problems, Problem{Kind: Ambiguous, Path: at, Node: d.last, Message: fmt.Sprintf(
				"key %q appears twice, %s, with different images: kubectl would keep the last, digester does not guess; remove one",
				d.first.Value, twice(d))})
			ambiguous[at] = true
			continue
		}
		problems = append(problems, Problem{Kind: Duplicate, Path: at, Node: d.last, Message: fmt.Sprintf(
			"key %q appears twice, %s; the last value counts, as with kubectl, and the duplicate is left as it is", d.first.Value, twice(d))})
	}
	fields = slices.DeleteFunc(fields, func(f Field) bool { return ambiguous.covers(f.Path) })
	reported := paths{}
	for _, p := range problems {
		reported[p.Path] = true
	}
	for _, u := range s.unlisted {
		frames := where[u.in]
		at := path(frames, u.key.Value)
		if reported.covers(at) {
			continue // already reported as a field that cannot be read
		}
		problems = append(problems, Problem{Kind: Unlisted, Path: at, Image: u.node.Value,
			Message: unlistedMessage(grp, kind, pattern(frames, u.key.Value))})
	}
	return fields, problems
}

// twice says where the two copies of a duplicate key are, from the later one (the problem's
// Node, where front ends that know the file put their file:line:col).
func twice(d dup) string {
	if n := d.last.Line - d.first.Line; n != 0 {
		if n == 1 {
			return "here and 1 line above"
		}
		return fmt.Sprintf("here and %d lines above", n)
	}
	return fmt.Sprintf("on one line, at columns %d and %d", d.first.Column, d.last.Column)
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

// paths is a set of field paths.
type paths map[string]bool

// addWithPrefixes adds p and every path above it: spec.containers[0].image adds spec,
// spec.containers, spec.containers[0] and itself.
func (ps paths) addWithPrefixes(p string) {
	for i := 1; i < len(p); i++ {
		if p[i] == '.' || p[i] == '[' {
			ps[p[:i]] = true
		}
	}
	ps[p] = true
}

// covers reports whether p or a path above it is in the set.
func (ps paths) covers(p string) bool {
	if len(ps) == 0 {
		return false
	}
	for i := 1; i < len(p); i++ {
		if (p[i] == '.' || p[i] == '[') && ps[p[:i]] {
			return true
		}
	}
	return ps[p]
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
	nodes    map[*yaml.Node]bool // the fields' nodes, when there are many
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
				s.walk(v, depth+1, quiet || shadowed || notImages[k.Value] || slices.Contains(s.data, k.Value))
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
	if len(s.fields) <= 16 {
		return containsNode(s.fields, n)
	}
	if s.nodes == nil { // many fields: one set, rather than a search for each image key
		s.nodes = make(map[*yaml.Node]bool, len(s.fields))
		for _, f := range s.fields {
			s.nodes[f.Node] = true
		}
	}
	return s.nodes[n]
}

// locateAll sets want[n] to the path from root to each node n in want (a key's path is its
// value's), in one search: paths are needed only for what is reported, so the scan itself carries
// none. A node not found is left nil.
func locateAll(root *yaml.Node, want map[*yaml.Node][]frame) {
	var at []frame
	found := func(n *yaml.Node) {
		if frames, ok := want[n]; ok && frames == nil {
			want[n] = append([]frame{}, at...)
		}
	}
	var search func(n *yaml.Node)
	search = func(n *yaml.Node) {
		found(n)
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				at = append(at, frame{key: n.Content[i].Value})
				found(n.Content[i])
				search(n.Content[i+1])
				at = at[:len(at)-1]
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				at = append(at, frame{idx: i})
				search(c)
				at = at[:len(at)-1]
			}
		}
	}
	search(root)
}

// path is the dotted path of key under frames: "spec.containers[0].image".
func path(frames []frame, key string) string {
	return joinPath(append(frames[:len(frames):len(frames)], frame{key: key}))
}

// joinPath is the dotted path frames lead to: "spec.containers[0]".
func joinPath(frames []frame) string {
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
