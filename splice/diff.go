package splice

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Diff returns the edits that make a document's text say what now says: now is a node of cur,
// the document's tree as a caller changed it, and old is the same document parsed afresh from
// its text (old and cur may hold several documents each). The node of old at now's position
// and of now's kind is compared with now: a scalar's new value is replaced in its quotes; in a
// mapping, a scalar value that changed is replaced (a key's empty value gets one), and a key now
// has and the text lacks is inserted after the key before it. The comment at the end of now's
// line is set to what cur says there, if that differs from the text's. Anything else now changed
// is not written, and what cannot be written is an error saying so.
func Diff(old, cur []*yaml.Node, now *yaml.Node) ([]Edit, error) {
	was := findIn(old, func(n *yaml.Node) bool { return n.Kind == now.Kind && n.Line == now.Line && n.Column == now.Column })
	if was == nil {
		return nil, fmt.Errorf("the field is not where the YAML parser put it, so it cannot be edited in place")
	}
	var out []Edit
	switch now.Kind {
	case yaml.ScalarNode:
		if was.Value != now.Value {
			out = append(out, Replace(was.Line, was.Column, was.Value, now.Value))
		}
	case yaml.MappingNode:
		es, err := mappingDiff(was, now)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	if before, after := lineComment(old, now.Line), lineComment(cur, now.Line); before != after {
		out = append(out, SetComment(now.Line, before, after))
	}
	return out, nil
}

// mappingDiff returns the edits for the scalar values now changed and the keys it added.
func mappingDiff(was, now *yaml.Node) ([]Edit, error) {
	var out []Edit
	for i := 0; i+1 < len(now.Content); i += 2 {
		k, v := now.Content[i], now.Content[i+1]
		oldK, oldV := pair(was, k.Value)
		switch {
		case oldK != nil && oldV.Kind == yaml.ScalarNode && v.Kind == yaml.ScalarNode && oldV.Value != v.Value:
			out = append(out, setPair(oldK, oldV, v.Value, was.Style&yaml.FlowStyle != 0))
		case oldK == nil && i == 0:
			return nil, fmt.Errorf("the key %s would go first in its mapping, where no key is added; add it by hand", k.Value)
		case oldK == nil:
			prevK, prevV := pair(was, now.Content[i-2].Value)
			if prevK == nil || v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("the key %s cannot be added in place; add it by hand", k.Value)
			}
			out = append(out, insertAfter(was, prevK, prevV, k.Value, v.Value))
		}
	}
	return out, nil
}

// pair returns the key and value nodes of key in mapping m, as written (no merge keys).
func pair(m *yaml.Node, key string) (k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			k, v = m.Content[i], m.Content[i+1]
		}
	}
	return k, v
}

// findIn returns the first node of docs for which match is true.
func findIn(docs []*yaml.Node, match func(*yaml.Node) bool) *yaml.Node {
	for _, d := range docs {
		if n := find(d, match); n != nil {
			return n
		}
	}
	return nil
}

// lineComment returns the line comment the parser gave a node on line, "" if none has one.
func lineComment(docs []*yaml.Node, line int) string {
	var look func(n *yaml.Node) string
	look = func(n *yaml.Node) string {
		if n.Line == line && n.LineComment != "" {
			return n.LineComment
		}
		for _, c := range n.Content {
			if c.Line > line { // and so are the rest, and all under them
				break
			}
			if s := look(c); s != "" {
				return s
			}
		}
		return ""
	}
	for _, d := range docs {
		if s := look(d); s != "" {
			return s
		}
	}
	return ""
}
