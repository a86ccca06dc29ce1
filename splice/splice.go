// Package splice edits a YAML document in its own text: it replaces a scalar's value, sets a key
// of a mapping, or sets a value's line comment, and leaves every other byte as it was: comments,
// quoting, indentation, line endings, and the values of every other node.
//
// An edit names its node by the position the YAML parser gave it (go.yaml.in/yaml/v3's Line and
// Column, in a tree parsed from the same bytes) and by its value as parsed, which Apply checks
// against the text. An edit that cannot be made in place (a value in a block scalar, with an
// escape sequence, over several lines, an alias, a tag other than !!str) is an *Error that says
// where the value is and how it is written; the caller decides what then: the command line refuses
// to write the file, the KRM function re-encodes the resource. Nodes makes the same edits in a
// parsed tree, for the caller that re-encodes.
//
// It knows YAML text, nothing of Kubernetes, images or registries.
package splice

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// op is what an Edit does.
type op int

const (
	opReplace op = iota
	opInsertKey
	opComment
	opValue
)

// Edit is one change to a document: see Replace, SetKey and SetComment.
type Edit struct {
	op op
	// Line and Column are the position of the node the edit is about: the scalar (Replace,
	// SetComment), or the value after which a key is inserted.
	Line, Column int
	// Old is the scalar's value as parsed; New, what replaces it (Replace), the comment
	// (SetComment), or the inserted key's value (SetKey).
	Old, New string
	// key, indent and flow describe an insertion: the key, the column of the mapping's keys, and
	// whether the mapping is a flow mapping; mapLine and mapColumn locate the mapping.
	key                string
	indent             int
	flow               bool
	mapLine, mapColumn int
	// block is SetValue's "key: value" as yaml.v3 writes it, and replace whether the key is in
	// the text (at Line:Column) rather than added after the key there.
	block   string
	replace bool
}

// Replace replaces the value of the scalar at line:column, old as parsed, with new, keeping its
// quotes: plain, or in single or double quotes, on one line.
func Replace(line, column int, old, new string) Edit {
	return Edit{op: opReplace, Line: line, Column: column, Old: old, New: new}
}

// SetComment sets the line comment of the scalar at line:column (value as parsed): it replaces
// the comment that follows the value on its line, or adds one. comment is the comment's text,
// with or without its leading "#".
func SetComment(line, column int, value, comment string) Edit {
	if !strings.HasPrefix(comment, "#") {
		comment = "# " + comment
	}
	return Edit{op: opComment, Line: line, Column: column, Old: value, New: comment}
}

// SetKey sets key to the string value in the mapping m, parsed from the document: it replaces the
// key's value if m has the key, and otherwise inserts the key after the key named after (or after
// m's last key, if it has no such key), as a line of its own at the indentation of m's keys in a
// block mapping, or as ", key: value" in a flow mapping. Keys of m that are not in the text
// (Line 0: added to the tree after parsing) are ignored. The value is written plain when it reads
// back as the same string, else in single quotes.
func SetKey(m *yaml.Node, key, value, after string) Edit {
	if m == nil || m.Kind != yaml.MappingNode {
		return Edit{op: opInsertKey, key: key, New: value} // Apply says why it cannot be done
	}
	var at, atKey *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		switch {
		case k.Line == 0:
		case k.Value == key:
			return Replace(v.Line, v.Column, v.Value, value)
		case atKey == nil || atKey.Value != after:
			at, atKey = v, k
		}
	}
	e := Edit{op: opInsertKey, key: key, New: value, flow: m.Style&yaml.FlowStyle != 0, mapLine: m.Line, mapColumn: m.Column}
	if at != nil {
		e.Line, e.Column, e.Old, e.indent = at.Line, at.Column, at.Value, m.Column
		if at.Kind != yaml.ScalarNode {
			e.Old = "\x00" // not a scalar: Apply refuses to insert after it
		}
	}
	return e
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

const oneLine = "write it as a plain or quoted string on one line"

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
	if len(edits) == 0 {
		return len(doc), nil
	}
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
		s.index = i
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

// locate finds the bytes an edit replaces.
func locate(doc []byte, starts []int, e Edit) (span, error) {
	fail := func(how, fix string) (span, error) {
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: how, Fix: fix}
	}
	if e.op == opInsertKey && e.Line == 0 {
		return span{}, &Error{Line: e.mapLine, Column: e.mapColumn, Value: e.key, How: "cannot be added: there is no mapping with a key to add it after", Fix: "add it by hand"}
	}
	if e.op == opInsertKey && e.Old == "\x00" {
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.key, How: "cannot be added after a value that is not a scalar", Fix: "add it by hand"}
	}
	if e.op == opValue {
		return setValue(doc, starts, e)
	}
	off, ok := offset(doc, starts, e.Line, e.Column)
	if !ok {
		return fail("is not where the YAML parser put it", oneLine)
	}
	start, end, quote, err := scalarAt(doc, off, e)
	if err != nil {
		return span{}, err
	}
	switch e.op {
	case opReplace:
		if e.New != e.Old {
			if how := fits(e.New, quote); how != "" {
				return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: "cannot hold " + fmt.Sprintf("%q", e.New) + ": " + how, Fix: "quote it"}
			}
		}
		if quote == '\'' {
			return span{start: start, end: end, text: strings.ReplaceAll(e.New, "'", "''"), edit: e}, nil
		}
		return span{start: start, end: end, text: e.New, edit: e}, nil
	case opComment:
		return comment(doc, end+quoteLen(quote), e)
	}
	return insertKey(doc, end+quoteLen(quote), e)
}

func quoteLen(q byte) int {
	if q == 0 {
		return 0
	}
	return 1
}

// scalarAt finds the text of the scalar e is about, whose node starts at off (its tag and anchor
// first, if it has them): start and end of the value, quotes excluded, and the quote.
func scalarAt(doc []byte, off int, e Edit) (start, end int, quote byte, err error) {
	fail := func(how, fix string) (int, int, byte, error) {
		return 0, 0, 0, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: how, Fix: fix}
	}
	for props := 0; props < 2; props++ { // a tag and an anchor, in either order
		rest := doc[off:]
		if len(rest) == 0 || rest[0] != '!' && rest[0] != '&' {
			break
		}
		token := rest[:tokenEnd(rest)]
		if token[0] == '!' && string(token) != "!!str" && string(token) != "!<tag:yaml.org,2002:str>" {
			return fail("is written with the explicit tag "+string(token), "write it without the tag")
		}
		off += len(token)
		for off < len(doc) && (doc[off] == ' ' || doc[off] == '\t') {
			off++
		}
	}
	rest := doc[off:]
	line := rest
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		line = rest[:i]
	}
	switch {
	case len(rest) == 0:
		return fail("is not where the YAML parser put it", oneLine)
	case rest[0] == '*':
		return fail("is an alias, "+string(rest[:tokenEnd(rest)]), "write the value itself")
	case rest[0] == '|' || rest[0] == '>':
		return fail("is a block scalar ("+string(rest[:1])+")", oneLine)
	case rest[0] == '"' || rest[0] == '\'':
		q := rest[0]
		for i := 1; i < len(line); i++ {
			switch {
			case q == '"' && line[i] == '\\', q == '\'' && line[i] == '\'' && i+1 < len(line) && line[i+1] == '\'':
				return fail("holds an escape sequence", oneLine)
			case line[i] == q:
				if string(line[1:i]) != e.Old {
					return fail("is not written as the YAML parser read it", oneLine)
				}
				return off + 1, off + i, q, nil
			}
		}
		return fail("spans several lines", oneLine)
	}
	end = off + len(e.Old)
	if e.Old != "" && bytes.HasPrefix(rest, []byte(e.Old)) && (end == len(doc) || strings.IndexByte(" \t\r\n,]}", doc[end]) >= 0) {
		return off, end, 0, nil
	}
	if len(line) < len(e.Old) {
		return fail("spans several lines", oneLine)
	}
	return fail("is not written as the YAML parser read it", oneLine)
}

// fits says why s cannot be written in the quoting q ("" if it can): a plain scalar must read
// back as the same string, on one line, in block and flow context alike; a quoted one must need
// no escape.
func fits(s string, q byte) string {
	switch {
	case strings.ContainsAny(s, "\n\r") || !utf8.ValidString(s):
		return "it is not one line of text"
	case q == '"' && strings.ContainsAny(s, `"\`):
		return "it would need escapes in double quotes"
	case q == '"' || q == '\'':
		for _, r := range s {
			if r < ' ' && r != '\t' || r == 0x7f {
				return "it holds a control character"
			}
		}
		return ""
	}
	if !plain(s) {
		return "it does not read back as the same string when written plain"
	}
	return ""
}

// plain reports whether s, written as a plain scalar in block or flow context, reads back as the
// string s.
func plain(s string) bool {
	if s == "" || strings.ContainsAny(s, ",[]{}#\t\n\r") || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") ||
		strings.Contains(s, ": ") || strings.HasSuffix(s, ":") || strings.IndexByte("-?:&*!|>'\"%@`", s[0]) >= 0 {
		return false
	}
	if reference(s) {
		return true
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("["+s+"]"), &n); err != nil || len(n.Content) != 1 {
		return false
	}
	seq := n.Content[0]
	return len(seq.Content) == 1 && seq.Content[0].Kind == yaml.ScalarNode && seq.Content[0].ShortTag() == "!!str" && seq.Content[0].Value == s
}

// setValue replaces a key and its value, or adds them after the key at e's position and its
// value, in a block mapping.
func setValue(doc []byte, starts []int, e Edit) (span, error) {
	fail := func(how string) (span, error) {
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.key, How: how, Fix: "write the mapping in block style, with its keys on lines of their own"}
	}
	switch {
	case e.flow:
		return fail("is in a flow mapping")
	case e.Line == 0 || e.block == "":
		return fail("cannot be set: the mapping has no key in the text, or the value cannot be written")
	}
	off, ok := offset(doc, starts, e.Line, e.Column)
	if !ok || e.replace && !bytes.HasPrefix(doc[off:], []byte(e.key)) {
		return fail("is not where the YAML parser put it")
	}
	nl := "\n"
	if bytes.Contains(doc, []byte("\r\n")) {
		nl = "\r\n"
	}
	pad := strings.Repeat(" ", e.Column-1)
	text := strings.ReplaceAll(e.block, "\n", nl+pad)
	end := valueEnd(doc, off, e.Column)
	if e.replace {
		return span{start: off, end: end, text: text, edit: e}, nil
	}
	return span{start: end, end: end, text: nl + pad + text, edit: e}, nil
}

// valueEnd returns the offset where the value of the block mapping key at off (its column given)
// ends: the end, before its line break, of the last line that is more indented than the key, or
// a "- " entry at its indentation. Comment and blank lines after the value are not part of it.
func valueEnd(data []byte, off, column int) int {
	end := lineEnd(data, off)
	for start := end; start < len(data); {
		if start = bytes.IndexByte(data[start:], '\n') + start + 1; start == 0 || start >= len(data) {
			break
		}
		e := lineEnd(data, start)
		line := data[start:e]
		trimmed := bytes.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		switch {
		case len(bytes.TrimSpace(trimmed)) == 0 || trimmed[0] == '#':
			// part of the value only if more of it follows
		case indent > column-1,
			indent == column-1 && trimmed[0] == '-' && (len(trimmed) == 1 || trimmed[1] == ' ' || trimmed[1] == '\t'):
			end = e
		default:
			return end
		}
		start = e
	}
	return end
}

// reference reports whether s, which starts with no indicator and does not end in a colon, is
// made of what an image reference with a digest is made of (letters, digits, ._/:+- and an @):
// then it is plain, and a string (no YAML null, boolean, number or timestamp holds an @), with
// no need to parse it.
func reference(s string) bool {
	at := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '@':
			at = true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("._/:+-", c) >= 0:
		default:
			return false
		}
	}
	return at
}

// comment sets the line comment after a value that ends at end.
func comment(doc []byte, end int, e Edit) (span, error) {
	eol := lineEnd(doc, end)
	rest := doc[end:eol]
	trimmed := bytes.TrimLeft(rest, " \t")
	switch {
	case strings.ContainsAny(e.New, "\r\n"):
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: "cannot take a comment of several lines", Fix: "give a comment of one line"}
	case len(trimmed) == 0:
		return span{start: end, end: end, text: " " + e.New, edit: e}, nil
	case trimmed[0] == '#' && len(trimmed) < len(rest): // a comment, after white space
		start := end + len(rest) - len(trimmed)
		return span{start: start, end: eol, text: e.New, edit: e}, nil
	}
	return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.Old,
		How: fmt.Sprintf("is followed on its line by %q, which a comment would hide", trimmed), Fix: "write the value on a line of its own"}
}

// insertKey inserts e's key after the value that ends at end.
func insertKey(doc []byte, end int, e Edit) (span, error) {
	kv := e.key + ": " + quoted(e.New)
	if e.flow {
		return span{start: end, end: end, text: ", " + e.key + ": " + flowQuoted(e.New), edit: e}, nil
	}
	eol := lineEnd(doc, end)
	rest := bytes.TrimLeft(doc[end:eol], " \t")
	if len(rest) > 0 && rest[0] != '#' {
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.key,
			How: fmt.Sprintf("cannot be added after %q: the line goes on with %q", e.Old, rest), Fix: "add it by hand"}
	}
	nl := "\n"
	if eol < len(doc) && doc[eol] == '\r' {
		nl = "\r\n"
	}
	return span{start: eol, end: eol, text: nl + strings.Repeat(" ", e.indent-1) + kv, edit: e}, nil
}

// quoted is s as a block mapping value: plain if it reads back as s, else single-quoted.
func quoted(s string) string {
	if plain(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// flowQuoted is s as a flow mapping value: single-quoted unless it is letters, digits and dots.
func flowQuoted(s string) string {
	if plain(s) && !strings.Contains(s, ":") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// tokenEnd returns the length of the tag, anchor or alias at the start of b.
func tokenEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("!<")) { // a verbatim tag: !<tag:yaml.org,2002:str>
		if i := bytes.IndexByte(b, '>'); i > 0 {
			return i + 1
		}
	}
	for i, c := range b {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ']' || c == '}' {
			return i
		}
	}
	return len(b)
}

// lineStarts returns the offset at which each line starts (index 0 is line 1), up to line n.
func lineStarts(data []byte, n int) []int {
	starts := make([]int, 1, n+1)
	for off := 0; len(starts) < n; {
		i := bytes.IndexByte(data[off:], '\n')
		if i < 0 {
			break
		}
		off += i + 1
		starts = append(starts, off)
	}
	return starts
}

// lineEnd returns the offset of the line break (\n or \r\n) of the line holding off, or the end of data.
func lineEnd(data []byte, off int) int {
	i := bytes.IndexByte(data[off:], '\n')
	if i < 0 {
		return len(data)
	}
	if i > 0 && data[off+i-1] == '\r' {
		i--
	}
	return off + i
}

// offset returns the offset of line:column (1-based; the column counts characters, as the YAML
// parser does, and a byte order mark at the start of the document is no character).
func offset(data []byte, starts []int, line, column int) (int, bool) {
	if line < 1 || line > len(starts) || column < 1 {
		return 0, false
	}
	off := starts[line-1]
	if line == 1 && bytes.HasPrefix(data, []byte("\ufeff")) {
		off += 3
	}
	for range column - 1 {
		if off >= len(data) || data[off] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	return off, true
}

// Nodes makes the edits in root, a tree parsed from the document the edits were made for,
// instead of in its text: for a caller that re-encodes the document because Apply could not
// make an edit in place. It fails if an edit's node is not in root as the edit describes it.
func Nodes(root *yaml.Node, edits []Edit) error {
	targets := make([]*yaml.Node, len(edits)) // found first: an edit changes what the next would look for
	for i, e := range edits {
		if e.op == opInsertKey || e.op == opValue {
			targets[i] = find(root, func(n *yaml.Node) bool {
				return n.Kind == yaml.MappingNode && n.Line == e.mapLine && n.Column == e.mapColumn
			})
		} else {
			targets[i] = find(root, func(n *yaml.Node) bool {
				return n.Kind == yaml.ScalarNode && n.Line == e.Line && n.Column == e.Column && n.Value == e.Old
			})
		}
		if targets[i] == nil || (e.op == opInsertKey || e.op == opValue) && e.Line == 0 {
			return &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: "is not in the tree", Fix: "edit the tree it was parsed into"}
		}
	}
	for i, e := range edits {
		n := targets[i]
		switch e.op {
		case opReplace:
			n.Value = e.New
		case opComment:
			n.LineComment = e.New
		case opInsertKey:
			at := slices.IndexFunc(n.Content, func(v *yaml.Node) bool { return v.Line == e.Line && v.Column == e.Column })
			if at < 0 || at%2 == 0 {
				return &Error{Line: e.Line, Column: e.Column, Value: e.key, How: "is not in the tree", Fix: "edit the tree it was parsed into"}
			}
			kv := []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: e.key}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: e.New}}
			n.Content = slices.Insert(n.Content, at+1, kv...)
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
	}
	return nil
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
