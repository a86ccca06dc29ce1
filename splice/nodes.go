package splice

import (
	"slices"

	"go.yaml.in/yaml/v3"
)

// Nodes makes the edits in root, a tree parsed from the document the edits were made for,
// instead of in its text: for a caller that writes the document anew because Apply could not
// make an edit in place. It fails if an edit's node is not in root as the edit describes it.
func Nodes(root *yaml.Node, edits []Edit) error {
	targets := make([]*yaml.Node, len(edits)) // found first: an edit changes what the next would look for
	for i, e := range edits {
		switch e.op {
		case opInsertKey, opValue:
			targets[i] = find(root, func(n *yaml.Node) bool {
				// A mapping that is the first key of another starts where it does: the one with
				// the key before the insertion is meant.
				return n.Kind == yaml.MappingNode && n.Line == e.mapLine && n.Column == e.mapColumn &&
					(e.op == opValue || hasKey(n, e.keyLine, e.keyColumn))
			})
		case opAfterKey:
			targets[i] = find(root, func(n *yaml.Node) bool {
				return n.Kind == yaml.ScalarNode && n.Line == e.Line && n.Column == e.Column && n.Value == e.Old
			})
		case opComment:
			targets[i] = last(root, e.Line, e.Old)
		default:
			targets[i] = find(root, func(n *yaml.Node) bool {
				return n.Kind == yaml.ScalarNode && n.Line == e.Line && n.Column == e.Column && n.Value == e.Old
			})
		}
		if targets[i] == nil || (e.op == opInsertKey || e.op == opValue) && e.Line == 0 {
			return &Error{Index: i, Line: e.Line, Column: e.Column, Value: e.Old, How: "is not in the tree", Fix: "edit the tree it was parsed into"}
		}
	}
	for i, e := range edits {
		if err := apply(root, targets[i], e); err != nil {
			err.(*Error).Index = i
			return err
		}
	}
	return nil
}

// apply makes edit e in n, the node it is about.
func apply(root, n *yaml.Node, e Edit) error {
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
	switch e.op {
	case opReplace:
		n.Value = e.New
		if n.Style&yaml.TaggedStyle == 0 {
			n.Tag = "!!str" // as the text reads: a value that would not read back as this string is quoted
		}
	case opComment:
		n.LineComment = e.New
	case opAfterKey:
		m := parentOf(root, n)
		if m == nil {
			return &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: "is a key not in the tree", Fix: "edit the tree it was parsed into"}
		}
		i := slices.Index(m.Content, n)
		m.Content[i+1] = str(e.New)
	case opInsertKey:
		at := -1
		for i := range n.Content {
			// The position is the value's, or the key's when the value is empty (e.null); an
			// empty value itself takes the position of what follows it, so it is passed over.
			if c := n.Content[i]; c.Line == e.Line && c.Column == e.Column && (i%2 == 0) == e.null {
				at = i
				break
			}
		}
		if e.null {
			at++ // the key's position: its empty value follows it
		}
		if at <= 0 || at%2 == 0 {
			return &Error{Line: e.Line, Column: e.Column, Value: e.key, How: "is not in the tree", Fix: "edit the tree it was parsed into"}
		}
		n.Content = slices.Insert(n.Content, at+1, str(e.key), str(e.New))
	case opValue:
		var v yaml.Node
		if err := yaml.Unmarshal([]byte(e.block), &v); err != nil || len(v.Content) != 1 || len(v.Content[0].Content) != 2 {
			return &Error{Line: e.Line, Column: e.Column, Value: e.key, How: "cannot be written", Fix: "edit the tree it was parsed into"}
		}
		kv := v.Content[0].Content
		if i := slices.IndexFunc(n.Content, func(k *yaml.Node) bool { return k.Line > 0 && k.Value == e.key }); i >= 0 && i%2 == 0 {
			n.Content[i+1] = kv[1]
		} else {
			n.Content = append(n.Content, kv...)
		}
	}
	return nil
}

// hasKey reports whether mapping m has a key at line:column.
func hasKey(m *yaml.Node, line, column int) bool {
	for i := 0; i < len(m.Content); i += 2 {
		if m.Content[i].Line == line && m.Content[i].Column == column {
			return true
		}
	}
	return false
}

// find returns the first node under n, n included, for which match is true; aliases are not followed.
func find(n *yaml.Node, match func(*yaml.Node) bool) *yaml.Node {
	if match(n) {
		return n
	}
	for _, c := range n.Content {
		if f := find(c, match); f != nil {
			return f
		}
	}
	return nil
}

// parentOf returns the mapping under root that holds n as a key.
func parentOf(root, n *yaml.Node) *yaml.Node {
	return find(root, func(m *yaml.Node) bool {
		i := slices.Index(m.Content, n)
		return m.Kind == yaml.MappingNode && i >= 0 && i%2 == 0
	})
}

// last returns the node that holds the line comment old at the end of line (the last node on the
// line when old is ""), in document order.
func last(root *yaml.Node, line int, old string) *yaml.Node {
	var out *yaml.Node
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Line == line && (old == "" || n.LineComment == old) {
			out = n
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(root)
	return out
}
