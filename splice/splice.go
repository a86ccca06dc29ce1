// Package splice edits a YAML document in its own text: it replaces a scalar's value, sets a key
// of a mapping (in place, or inserted after another key, in block or flow style), sets the line
// comment at the end of a line, or writes a key's whole value anew, and leaves every other byte
// as it was: comments, quoting, indentation, line endings, and the values of every other node.
// Diff turns a node a caller changed in a parsed tree into the edits that make the text say the
// same.
//
// An edit names its node by the position the YAML parser gave it (go.yaml.in/yaml/v3's Line and
// Column, in a tree parsed from the same bytes) and by its value as parsed, which Apply checks
// against the text. An edit that cannot be made in place (a value in a block scalar, with an
// escape sequence, over several lines, an alias, a tag other than !!str) is an *Error that says
// where the value is and how it is written; the caller decides what then: the command line refuses
// to write the file, the KRM function writes the resource anew. Nodes makes the same edits in a
// parsed tree, for the caller that writes anew.
//
// It knows YAML text, nothing of Kubernetes, images or registries.
package splice

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// op is what an Edit does.
type op int

const (
	opReplace   op = iota // a scalar's value, in its quotes
	opInsertKey           // a key and a string value, after a pair of a mapping
	opAfterKey            // a value where a key has none (key: with nothing after it)
	opComment             // the comment at the end of a line
	opValue               // a key and its whole value, written anew
)

// Edit is one change to a document: see Replace, SetKey, SetComment, SetValue and Diff.
type Edit struct {
	op op
	// Line and Column are the position of the node the edit is about: the scalar (Replace), the
	// value after which a key is inserted (its key's, for a value that is empty), the key whose
	// empty value is set, the key written anew (SetValue), the line of a comment (SetComment).
	Line, Column int
	// Old is the scalar's value as parsed (the comment the parser read, for SetComment); New, what
	// replaces it, the comment, or the value of the key inserted.
	Old, New string
	// key, indent and flow describe an insertion: the key, the column at which it is written (the
	// key before it's, or that of the "?" making that key explicit: Apply looks), and whether the
	// mapping is a flow mapping; mapLine and mapColumn locate the mapping, keyLine and keyColumn
	// the key before; null says that the value after which the key goes is empty.
	key                string
	indent             int
	keyLine, keyColumn int
	flow, null         bool
	mapLine, mapColumn int
	// block is SetValue's "key: value" as yaml.v3 writes it, and replace whether the key is in
	// the text (at Line:Column) rather than added after the key there.
	block   string
	replace bool
}

// Replace replaces the value of the scalar at line:column, old as parsed, with new, keeping its
// quotes; a plain scalar whose new value would not read back as the same string when written
// plain is written in single quotes.
func Replace(line, column int, old, new string) Edit {
	return Edit{op: opReplace, Line: line, Column: column, Old: old, New: new}
}

// SetComment sets the comment at the end of line to comment (with or without its leading "#"):
// it replaces old, the comment the parser read at the end of that line, or, when old is "", adds
// the comment after the line's last character.
func SetComment(line int, old, comment string) Edit {
	if !strings.HasPrefix(comment, "#") {
		comment = "# " + comment
	}
	return Edit{op: opComment, Line: line, Old: old, New: comment}
}

// SetKey sets key to the string value in the mapping m, parsed from the document: it replaces the
// key's value if m has the key, and otherwise inserts the key after the key named after (or after
// m's last key, if it has no such key), as a line of its own at the indentation of that key in a
// block mapping, or as ", key: 'value'" in a flow mapping. Keys of m that are not in the text
// (Line 0: added to the tree after parsing) are ignored. A value is written plain when it reads
// back as the same string, else in single quotes; in a flow mapping always in single quotes.
func SetKey(m *yaml.Node, key, value, after string) Edit {
	if m == nil || m.Kind != yaml.MappingNode {
		return Edit{op: opInsertKey, key: key, New: value} // Apply says why it cannot be done
	}
	var atKey, at *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case k.Line == 0:
		case k.Value == key:
			return setPair(k, v, value, m.Style&yaml.FlowStyle != 0)
		case atKey == nil || atKey.Value != after:
			atKey, at = k, v
		}
	}
	return insertAfter(m, atKey, at, key, value)
}

// setPair sets the value of the pair k: v, parsed from the document, to value.
func setPair(k, v *yaml.Node, value string, flow bool) Edit {
	if empty(k, v) {
		return Edit{op: opAfterKey, Line: k.Line, Column: k.Column, Old: k.Value, New: value, flow: flow}
	}
	return Replace(v.Line, v.Column, v.Value, value)
}

// insertAfter is the edit that adds key: value to m after the pair k: v (both nil if m has none
// in the text).
func insertAfter(m, k, v *yaml.Node, key, value string) Edit {
	e := Edit{op: opInsertKey, key: key, New: value, flow: m.Style&yaml.FlowStyle != 0, mapLine: m.Line, mapColumn: m.Column}
	switch {
	case k == nil:
	case empty(k, v):
		e.Line, e.Column, e.Old, e.indent, e.null = k.Line, k.Column, k.Value, k.Column, true
		e.keyLine, e.keyColumn = k.Line, k.Column
	default:
		e.Line, e.Column, e.Old, e.indent = v.Line, v.Column, v.Value, k.Column
		e.keyLine, e.keyColumn = k.Line, k.Column
		if v.Kind != yaml.ScalarNode {
			e.Old = "\x00" // not a scalar: Apply refuses to insert after it
		}
	}
	return e
}

// empty reports whether v is k's missing value (k: with nothing after it on its line). The parser
// gives a lone "!" the same node, but where it is written: on a later line, it is a value.
func empty(k, v *yaml.Node) bool {
	return v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value == "" && v.Style == 0 && v.Line == k.Line
}

// SetValue sets key in the block mapping m, parsed from the document, to value, any tree, written
// as yaml.v3 writes it (two-space indentation, sequences not indented under their key) at the
// indentation of m's keys: it replaces the key and its whole value when the key is in the text,
// and otherwise adds them after m's last key and its value. Keys of m that are not in the text
// (Line 0) are ignored. Line endings are the document's (CRLF if it has any).
func SetValue(m *yaml.Node, key string, value *yaml.Node) Edit {
	e := Edit{op: opValue, key: key, Old: key}
	if m == nil || m.Kind != yaml.MappingNode {
		return e // Apply says why it cannot be done
	}
	e.flow, e.mapLine, e.mapColumn = m.Style&yaml.FlowStyle != 0, m.Line, m.Column
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch k := m.Content[i]; {
		case k.Line == 0:
		case k.Value == key:
			e.Line, e.Column, e.replace = k.Line, k.Column, true
		case !e.replace:
			e.Line, e.Column = k.Line, k.Column
		}
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.CompactSeqIndent()
	kv := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, value}}
	if err := enc.Encode(kv); err == nil && enc.Close() == nil {
		e.block = strings.TrimSuffix(b.String(), "\n")
	}
	return e
}

// Error is an edit that cannot be made in place.
type Error struct {
	// Index is the edit's place among the edits given to Apply or Check.
	Index        int
	Line, Column int
	// Value is the value as parsed (or, for an insertion, the key).
	Value string
	// How says how the value is written, as the end of a sentence about it ("is a block scalar (|)").
	How string
	// Fix says what would make the edit possible ("write it as a plain or quoted string on one line").
	Fix string
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: the value %q %s, so it cannot be edited in place; %s", e.Line, e.Column, e.Value, e.How, e.Fix)
}

// span replaces data[start:end] with text, for edit, the index-th edit.
type span struct {
	start, end int
	text       string
	edit       Edit
	index      int
}

// Apply returns doc with the edits made, or an *Error for the first edit that cannot be made in
// place (no edit is made then). Edits may come in any order; the same edit twice is made once,
// and two edits of the same bytes are an error.
func Apply(doc []byte, edits []Edit) ([]byte, error) {
	if len(edits) == 0 {
		return doc, nil
	}
	return Append(nil, doc, edits)
}

// Append appends doc with the edits made to dst, as Apply makes them; on error it returns dst
// as it was.
func Append(dst, doc []byte, edits []Edit) ([]byte, error) {
	spans, size, err := plan(doc, edits)
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, size)
	last := 0
	for _, s := range spans {
		dst = append(append(dst, doc[last:s.start]...), s.text...)
		last = s.end
	}
	return append(dst, doc[last:]...), nil
}

// Check returns the size of the document Apply would return, or its error, without making the
// edits.
func Check(doc []byte, edits []Edit) (int, error) {
	_, size, err := plan(doc, edits)
	return size, err
}

// plan finds the bytes each edit replaces, in order, and the size of the edited document.
func plan(doc []byte, edits []Edit) ([]span, int, error) {
	if len(edits) == 0 {
		return nil, len(doc), nil
	}
	last := 0
	for _, e := range edits {
		last = max(last, e.Line, e.mapLine)
	}
	starts := lineStarts(doc, last)
	spans := make([]span, 0, len(edits))
	for i, e := range edits {
		s, err := locate(doc, starts, e)
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				se.Index = i
			}
			return nil, 0, err
		}
		s.edit, s.index = e, i
		spans = append(spans, s)
	}
	slices.SortStableFunc(spans, func(a, b span) int { return cmp.Or(a.start-b.start, a.end-b.end) })
	spans = slices.CompactFunc(spans, func(a, b span) bool { return a.start == b.start && a.end == b.end && a.text == b.text })
	size := len(doc)
	for i, s := range spans {
		if i > 0 && (s.start < spans[i-1].end || s.start == spans[i-1].start && s.end == spans[i-1].end) {
			a := spans[i-1].edit
			return nil, 0, &Error{Index: s.index, Line: s.edit.Line, Column: s.edit.Column, Value: s.edit.Old,
				How: fmt.Sprintf("is edited twice (to %q, and at line %d, column %d to %q)", s.text, a.Line, a.Column, spans[i-1].text),
				Fix: "make one edit of it"}
		}
		size += len(s.text) - (s.end - s.start)
	}
	return spans, size, nil
}
