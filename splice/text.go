package splice

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

const oneLine = "write it as a plain or quoted string on one line"

// locate finds the bytes an edit replaces, and what replaces them.
func locate(doc []byte, starts []int, e Edit) (span, error) {
	switch {
	case e.op == opInsertKey && e.Line == 0:
		return span{}, &Error{Line: e.mapLine, Column: e.mapColumn, Value: e.key, How: "cannot be added: there is no mapping with a key to add it after", Fix: "add it by hand"}
	case e.op == opInsertKey && e.Old == "\x00":
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.key, How: "cannot be added after a value that is not a scalar", Fix: "add it by hand"}
	case e.op == opValue:
		return setValue(doc, starts, e)
	case e.op == opComment:
		return comment(doc, starts, e)
	}
	off, ok := offset(doc, starts, e.Line, e.Column)
	if !ok {
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: "is not where the YAML parser put it", Fix: oneLine}
	}
	if e.op == opAfterKey || e.op == opInsertKey && e.null {
		colon, err := afterColon(doc, off, e)
		if err != nil {
			return span{}, err
		}
		if e.op == opAfterKey {
			if rest := bytes.TrimLeft(doc[colon:lineEnd(doc, colon)], " \t"); len(rest) > 0 && !bytes.ContainsRune([]byte("#,}]"), rune(rest[0])) {
				// The parser reads an empty value here, but the text holds one ("key: !").
				return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.Old,
					How: fmt.Sprintf("cannot take a value: the line goes on with %q", rest), Fix: "write its value by hand"}
			}
			return span{start: colon, end: colon, text: " " + render(e.New, e.flow)}, nil
		}
		e.indent = keyIndent(doc, starts, e)
		return insertKey(doc, colon, e)
	}
	start, end, quote, err := scalarAt(doc, off, e)
	if err != nil {
		return span{}, err
	}
	if e.op == opInsertKey {
		e.indent = keyIndent(doc, starts, e)
		return insertKey(doc, end+quoteLen(quote), e)
	}
	switch {
	case e.New == e.Old:
		return span{start: start, end: end, text: e.New}, nil
	case quote == 0 && !plain(e.New):
		if how := fits(e.New, '\''); how != "" {
			return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: fmt.Sprintf("cannot hold %q: %s", e.New, how), Fix: "write it by hand"}
		}
		return span{start: start, end: end, text: render(e.New, true)}, nil
	}
	if how := fits(e.New, quote); how != "" {
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: fmt.Sprintf("cannot hold %q: %s", e.New, how), Fix: "write it by hand"}
	}
	if quote == '\'' {
		return span{start: start, end: end, text: strings.ReplaceAll(e.New, "'", "''")}, nil
	}
	return span{start: start, end: end, text: e.New}, nil
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

// afterColon returns the offset just after the colon of the key at off (e.Old, plain), whose
// value is empty.
func afterColon(doc []byte, off int, e Edit) (int, error) {
	end := off + len(e.Old)
	if !bytes.HasPrefix(doc[off:], []byte(e.Old)) {
		return 0, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: "is a key not written as the YAML parser read it", Fix: oneLine}
	}
	for end < len(doc) && (doc[end] == ' ' || doc[end] == '\t') {
		end++
	}
	if end >= len(doc) || doc[end] != ':' {
		return 0, &Error{Line: e.Line, Column: e.Column, Value: e.Old, How: "is a key not followed by its colon", Fix: "write the key and its colon on one line"}
	}
	return end + 1, nil
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
	if s == "" || strings.HasSuffix(s, ":") {
		return false
	}
	return reference(s) || readsAs(s, "[", "]") && readsAs(s, "k: ", "\n")
}

// readsAs reports whether s, written plain between before and after, reads back as the string s.
func readsAs(s, before, after string) bool {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(before+s+after), &n); err != nil || len(n.Content) != 1 {
		return false
	}
	c := n.Content[0].Content
	if len(c) == 0 {
		return false
	}
	v := c[len(c)-1]
	return len(c) <= 2 && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value == s
}

// reference reports whether s, which does not end in a colon, is made of what an image reference
// with a digest is made of (a letter or digit, then letters, digits, ._/:+- and an @):
// then it is plain, and a string (no YAML null, boolean, number or timestamp holds an @), with
// no need to parse it.
func reference(s string) bool {
	if c := s[0]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
		return false
	}
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

// render writes a string value: plain when it reads back as the same string, else in single
// quotes; in a flow collection always in single quotes, as kustomize images: entries are.
func render(s string, flow bool) string {
	if !flow && plain(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// comment sets the comment at the end of e's line.
func comment(doc []byte, starts []int, e Edit) (span, error) {
	fail := func(how string) (span, error) {
		return span{}, &Error{Line: e.Line, Value: e.Old, How: how, Fix: "set the comment by hand"}
	}
	switch {
	case strings.ContainsAny(e.New, "\r\n"):
		return fail("cannot be replaced by a comment of several lines")
	case e.Line < 1 || e.Line > len(starts):
		return fail("is on a line that is not in the document")
	}
	start := starts[e.Line-1]
	text := bytes.TrimRight(doc[start:lineEnd(doc, start)], " \t")
	stop := start + len(text)
	if e.Old == "" {
		return span{start: stop, end: stop, text: " " + e.New}, nil
	}
	old := strings.TrimRight(e.Old, " \t")
	if !bytes.HasSuffix(text, []byte(old)) {
		return fail(fmt.Sprintf("is not at the end of line %d", e.Line))
	}
	return span{start: stop - len(old), end: stop, text: strings.TrimRight(e.New, " \t")}, nil
}

// keyIndent is the column at which a key inserted after e's key is written: that key's, or, when
// it is explicit ("? key"), its "?"'s. (The mapping's own column is no guide: a tag or an anchor
// before its first key moves it.)
func keyIndent(doc []byte, starts []int, e Edit) int {
	off, ok := offset(doc, starts, e.keyLine, e.keyColumn)
	if !ok {
		return e.indent
	}
	before := bytes.TrimRight(doc[starts[e.keyLine-1]:off], " \t")
	// A "?" before the mapping's first key, where the mapping itself starts, is its parent's.
	if !bytes.HasSuffix(before, []byte("?")) || e.keyLine == e.mapLine && e.keyColumn == e.mapColumn {
		return e.keyColumn
	}
	return e.keyColumn - (off - (starts[e.keyLine-1] + len(before) - 1)) // the gap is spaces and tabs: a column each
}

// insertKey inserts e's key after the value that ends at end: on a line of its own in a block
// mapping, after a comma in a flow one.
func insertKey(doc []byte, end int, e Edit) (span, error) {
	if e.flow {
		if e.null { // after "key:" the comma must follow a blank, or it reads as part of the key
			if end >= len(doc) || doc[end] != ' ' && doc[end] != '\t' {
				return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.key,
					How: fmt.Sprintf("cannot be added after %q, whose colon no blank follows", e.Old), Fix: "add it by hand"}
			}
			end++
		}
		return span{start: end, end: end, text: ", " + e.key + ": " + render(e.New, true)}, nil
	}
	eol := lineEnd(doc, end)
	if rest := bytes.TrimLeft(doc[end:eol], " \t"); len(rest) > 0 && rest[0] != '#' {
		return span{}, &Error{Line: e.Line, Column: e.Column, Value: e.key,
			How: fmt.Sprintf("cannot be added after %q: the line goes on with %q", e.Old, rest), Fix: "add it by hand"}
	}
	nl := "\n"
	if eol < len(doc) && doc[eol] == '\r' {
		nl = "\r\n"
	}
	return span{start: eol, end: eol, text: nl + strings.Repeat(" ", e.indent-1) + e.key + ": " + render(e.New, false)}, nil
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
		return span{start: off, end: end, text: text}, nil
	}
	return span{start: end, end: end, text: nl + pad + text}, nil
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
	i := bytes.IndexAny(data[off:], "\r\n") // a lone CR ends a line too, as YAML reads it
	if i < 0 {
		return len(data)
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
