package walker

import (
	"fmt"
	"slices"
	"strconv"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// What aliases cost, and what they share. A resource is first counted as written (aliases not
// followed) and as kubectl reads it (aliases expanded): one pass, each anchored value counted
// once. A resource whose aliases expand it past yaml.v3's own limit is not walked, so that the
// walk's work is bounded by the input's size; in one that is walked, a value reached more than
// once is one field, and an image whose anchor is also used where no image belongs is left alone.

// saturated stands for "more than anyone will read": sizes stop growing there.
const saturated = 1 << 40

// inProgress marks an anchored value whose size is being counted: meeting it again is a cycle.
const inProgress = -1

// expansion is what one pass over a resource found about its aliases.
type expansion struct {
	written, total int // nodes written in the resource; nodes once its aliases are expanded
	aliases        bool
	// sizes holds the expanded size of anchored values and alias targets (inProgress while counted).
	sizes   map[*yaml.Node]int
	targets map[*yaml.Node]bool // the values aliases name
	// biggest is the written alias that expands furthest: where an error about expansion points.
	biggest     *yaml.Node
	biggestSize int
	// cycle is an alias met inside the value it names.
	cycle *yaml.Node
	// visits counts the nodes the pass stepped on, for the test that it is linear.
	visits int
}

// expand counts root's nodes as written and as expanded.
func expand(root *yaml.Node) expansion {
	x := expansion{written: 1} // and the document node, which yaml.v3 counts too
	x.total = add(x.size(root, true), 1)
	return x
}

// size returns the number of nodes n stands for once its aliases are expanded (merge keys are
// aliases too); written says n is written in the resource, not reached through an alias. An
// anchored value is counted once, however many aliases name it and however deep anchors nest.
func (x *expansion) size(n *yaml.Node, written bool) int {
	x.visits++
	if written {
		x.written++
	}
	switch {
	case n.Kind == yaml.AliasNode:
		x.aliases = true
		s := 1
		if n.Alias != nil {
			s = add(s, x.target(n.Alias, n))
		}
		if written && s > x.biggestSize {
			x.biggest, x.biggestSize = n, s
		}
		return s
	case n.Anchor != "":
		if s, ok := x.sizes[n]; ok && s != inProgress && !written {
			return s
		}
		return x.remember(n, written)
	}
	return x.content(n, written)
}

// content is the size of n: itself and its content, expanded.
func (x *expansion) content(n *yaml.Node, written bool) int {
	s := 1
	for _, c := range n.Content {
		if c.Kind == yaml.ScalarNode { // most nodes: counted without a call
			s++
			if written {
				x.written++
			}
			continue
		}
		s = add(s, x.size(c, written))
	}
	return s
}

// remember counts n's size once and keeps it; while it is counted, n is in progress, and an alias
// of n met then is a cycle.
func (x *expansion) remember(n *yaml.Node, written bool) int {
	if x.sizes == nil {
		x.sizes = map[*yaml.Node]int{}
	}
	x.sizes[n] = inProgress
	var s int
	if n.Kind == yaml.AliasNode { // an alias of an alias: built by hand, never parsed
		s = x.size(n, written)
	} else {
		s = x.content(n, written)
	}
	x.sizes[n] = s
	return s
}

// target returns the expanded size of t, the value an alias (via) names, counting it once.
func (x *expansion) target(t, via *yaml.Node) int {
	if x.targets == nil {
		x.targets = map[*yaml.Node]bool{}
	}
	x.targets[t] = true
	switch s, ok := x.sizes[t]; {
	case !ok:
		return x.remember(t, false)
	case s == inProgress:
		if x.cycle == nil {
			x.cycle = via
		}
		return saturated
	default:
		return s
	}
}

func add(a, b int) int { return min(a+b, saturated) }

// ok reports whether the resource can be walked: no alias inside the value it names, and no more
// expansion than yaml.v3 allows when it decodes a document into values (decode.go, unmarshal:
// past 1,000 nodes, at most 99 % of them may come from aliases, down to 10 % for documents of
// 4,000,000 nodes; yaml.v3 also asks for more than 100 aliased nodes, which those two imply).
// kubectl's decoder (sigs.k8s.io/yaml, yaml.v2) has the same rule, so what is refused here
// kubectl refuses too ("document contains excessive aliasing", "anchor 'a' value contains
// itself"). What passes expands to at most 100 times its written size, which bounds the walk.
func (x expansion) ok() bool {
	return x.cycle == nil && (x.total <= 1000 || float64(x.total-x.written)/float64(x.total) <= allowedAliasRatio(x.total))
}

// allowedAliasRatio is yaml.v3's (go.yaml.in/yaml/v3 decode.go): the share of decoded nodes that
// may come from aliases, for a document of n decoded nodes.
func allowedAliasRatio(n int) float64 {
	const low, high = 400_000, 4_000_000
	switch {
	case n <= low:
		return 0.99
	case n >= high:
		return 0.10
	default:
		return 0.99 - 0.89*(float64(n-low)/float64(high-low))
	}
}

// problem is the Expansion problem of a resource that is not ok, at the alias that expands
// furthest.
func (x *expansion) problem(root *yaml.Node) Problem {
	at := x.biggest
	where := "the resource"
	if at != nil {
		found := map[*yaml.Node][]frame{at: nil}
		if locateAll(root, found); found[at] != nil {
			where = joinPath(found[at])
		}
	}
	var msg string
	if x.cycle != nil {
		msg = fmt.Sprintf("%s is inside the value it names, so that value has no end "+
			"(kubectl refuses it too: \"value contains itself\"); nothing in this resource is pinned", aliasName(x.cycle))
	} else {
		total := strconv.Itoa(x.total)
		if x.total >= saturated {
			total = "more than " + strconv.Itoa(saturated)
		}
		msg = fmt.Sprintf("alias expansion exceeds the limit: the aliases expand this resource from %d nodes to %s "+
			"(%s alone to %s); yaml.v3 and kubectl refuse a document this alias-heavy "+
			"(\"document contains excessive aliasing\"), so nothing in it is pinned",
			x.written, total, aliasName(at), sizeText(x.biggestSize))
	}
	if at == nil {
		return Problem{Kind: Expansion, Path: where, Message: msg}
	}
	return Problem{Kind: Expansion, Path: where, Message: msg, Node: at}
}

func sizeText(n int) string {
	if n >= saturated {
		return "more than " + strconv.Itoa(saturated)
	}
	return strconv.Itoa(n)
}

// aliasName is "alias *name", or "an alias" for one built without a name.
func aliasName(n *yaml.Node) string {
	if n == nil || n.Value == "" {
		return "an alias"
	}
	return "alias *" + n.Value
}

// finish completes a walk of root: it takes out of fields those whose value an anchor shares with
// a place that is no image field (a Shared problem each), and returns each Node once, at the
// first path the walk met it.
func (x *expansion) finish(root *yaml.Node, fields []Field, problems []Problem) ([]Field, []Problem) {
	if x.aliases {
		fields, problems = shared(root, x.targets, fields, problems)
	}
	return unique(fields), problems
}

// unique returns fields with each Node once, the first met kept.
func unique(fields []Field) []Field {
	if len(fields) <= 16 { // the usual handful: compare pairwise, copy only if one repeats
		for i := 1; i < len(fields); i++ {
			if containsNode(fields[:i], fields[i].Node) {
				out := slices.Clone(fields[:i])
				for _, f := range fields[i+1:] {
					if !containsNode(out, f.Node) {
						out = append(out, f)
					}
				}
				return out
			}
		}
		return fields
	}
	out := fields[:0:0]
	seen := make(map[*yaml.Node]bool, len(fields))
	for _, f := range fields {
		if !seen[f.Node] {
			seen[f.Node] = true
			out = append(out, f)
		}
	}
	return out
}

func containsNode(fields []Field, n *yaml.Node) bool {
	for _, f := range fields {
		if f.Node == n {
			return true
		}
	}
	return false
}

// sharing walks a resource as kubectl reads it (aliases followed, merge keys applied, a merged
// key hidden by one written beside it not read) and notes, for each field's node, the first
// place it is read that is not one of its fields' paths.
type sharing struct {
	at      map[string]*yaml.Node // a field's path -> its node
	nodes   map[*yaml.Node]bool   // the fields' nodes
	targets map[*yaml.Node]bool   // the values aliases name
	frames  []frame
	anchors []*yaml.Node // the alias targets on the current path, innermost last
	other   map[*yaml.Node]otherUse
}

// otherUse is a place a field's node is read that is no image field, and the anchor that brings
// it there.
type otherUse struct {
	path   string
	anchor *yaml.Node
}

// shared takes out of fields those whose node is also read where no image field is, with a
// Shared problem for each such node.
func shared(root *yaml.Node, targets map[*yaml.Node]bool, fields []Field, problems []Problem) ([]Field, []Problem) {
	s := &sharing{at: map[string]*yaml.Node{}, nodes: map[*yaml.Node]bool{}, targets: targets, other: map[*yaml.Node]otherUse{}}
	for _, f := range fields {
		s.at[f.Path], s.nodes[f.Node] = f.Node, true
	}
	s.visit(root, false)
	if len(s.other) == 0 {
		return fields, problems
	}
	defined := map[*yaml.Node][]frame{}
	for _, u := range s.other {
		if u.anchor != nil {
			defined[u.anchor] = nil
		}
	}
	locateAll(root, defined)
	reported := map[*yaml.Node]bool{}
	for _, f := range fields {
		u, ok := s.other[f.Node]
		if !ok || reported[f.Node] {
			continue
		}
		reported[f.Node] = true
		problems = append(problems, Problem{Kind: Shared, Path: f.Path, Item: f.Item, Node: f.Node, Message: sharedMessage(u, defined)})
	}
	out := fields[:0:0]
	for _, f := range fields {
		if !reported[f.Node] {
			out = append(out, f)
		}
	}
	return out, problems
}

func sharedMessage(u otherUse, defined map[*yaml.Node][]frame) string {
	anchor := "an anchor"
	if u.anchor != nil && u.anchor.Anchor != "" {
		anchor = "anchor &" + u.anchor.Anchor
	}
	where := " outside this resource"
	if frames, ok := defined[u.anchor]; ok && frames != nil {
		where = " at " + joinPath(frames)
	}
	if where != " at "+u.path {
		where += ", also used at " + u.path
	}
	return fmt.Sprintf("the image comes from %s%s, which is no image field: pinning the anchor would change that value too, "+
		"so digester leaves it; to pin the image, write it out instead of sharing it through the anchor", anchor, where)
}

// visit reads n at the current path; key says n is a mapping key (never an image field).
func (s *sharing) visit(n *yaml.Node, key bool) {
	n = deref(n)
	if s.targets[n] {
		s.anchors = append(s.anchors, n)
		defer func() { s.anchors = s.anchors[:len(s.anchors)-1] }()
	}
	if s.nodes[n] {
		if _, noted := s.other[n]; !noted {
			if p := joinPath(s.frames); key || s.at[p] != n {
				u := otherUse{path: p}
				if len(s.anchors) > 0 {
					u.anchor = s.anchors[len(s.anchors)-1]
				}
				s.other[n] = u
			}
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		s.mapping(n)
	case yaml.SequenceNode:
		for i, c := range n.Content {
			s.frames = append(s.frames, frame{idx: i})
			s.visit(c, false)
			s.frames = s.frames[:len(s.frames)-1]
		}
	}
}

// mapping reads a mapping's keys and values, then the keys its merge keys bring that it does
// not write itself, as lookup finds them.
func (s *sharing) mapping(m *yaml.Node) {
	var merges []*yaml.Node
	c := m.Content
	for i := 0; i+1 < len(c); i += 2 {
		if isMerge(c[i]) {
			merges = append(merges, c[i+1])
			continue
		}
		s.pair(c[i], c[i+1])
	}
	if len(merges) == 0 {
		return
	}
	defined := map[string]bool{}
	for i := 0; i+1 < len(c); i += 2 {
		defined[c[i].Value] = true
	}
	seen := map[*yaml.Node]bool{m: true}
	for _, mg := range merges {
		s.merged(mg, defined, seen)
	}
}

// merged reads the pairs a merge key's value brings: a mapping's own keys first, then what its
// own merge keys bring; a key met before is hidden.
func (s *sharing) merged(v *yaml.Node, defined map[string]bool, seen map[*yaml.Node]bool) {
	v = deref(v)
	switch {
	case v == nil || seen[v]:
	case v.Kind == yaml.SequenceNode:
		for _, e := range v.Content {
			s.merged(e, defined, seen)
		}
	case v.Kind == yaml.MappingNode:
		seen[v] = true
		if s.targets[v] {
			s.anchors = append(s.anchors, v)
			defer func() { s.anchors = s.anchors[:len(s.anchors)-1] }()
		}
		var merges []*yaml.Node
		for i := 0; i+1 < len(v.Content); i += 2 {
			k := v.Content[i]
			switch {
			case isMerge(k):
				merges = append(merges, v.Content[i+1])
			case !defined[k.Value]:
				defined[k.Value] = true
				s.pair(k, v.Content[i+1])
			}
		}
		for _, mg := range merges {
			s.merged(mg, defined, seen)
		}
	}
}

func (s *sharing) pair(k, v *yaml.Node) {
	name := k.Value
	if d := deref(k); d != nil {
		name = d.Value
	}
	s.frames = append(s.frames, frame{key: name})
	s.visit(k, true)
	s.visit(v, false)
	s.frames = s.frames[:len(s.frames)-1]
}

// isMerge reports whether k is a merge key (<<), as lookup reads one.
func isMerge(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge"
}
