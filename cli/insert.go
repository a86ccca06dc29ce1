package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/pin"
)

// This file writes, byte for byte, what the core's walker.Field.Set did to a field that is not a
// plain reference (walker.Kind.Verbatim is false): a Kptfile function's value and its line
// comment, a Helm split image's digest key, a Flux OCIRepository ref's new digest key. It
// compares the field's node as the core left it with the same node parsed again from the file's
// bytes, and turns each difference into an edit of the bytes: a scalar value replaced in its own
// quotes, a key inserted at the right indentation (block) or after a comma (flow), a line comment
// added or replaced in place. The functions below take bytes and nodes only, so that other front
// ends that splice text can use them.

// shapeEdits returns the edits that write a pinned field of a non-verbatim kind into the file.
func (f *file) shapeEdits(starts []int, fd pin.Finding) ([]edit, error) {
	if f.pristine == nil {
		docs, err := parseDocs(f.data)
		if err != nil { // the file parsed once already: this cannot happen
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		f.pristine = docs
	}
	es, err := nodeEdits(f.data, starts, f.pristine, f.docs, fd.Node, fd.Line, fd.Column)
	if err != nil {
		return nil, &fieldError{fd, err.Error()}
	}
	for i := range es {
		es[i].fd = fd
	}
	return es, nil
}

// parseDocs parses every YAML document of data.
func parseDocs(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &doc)
	}
}

// nodeEdits returns the edits of data that make the node at line:column, as parsed from data
// (found among old, the documents parsed afresh), say what now, the same node after the core set
// it, says; and that make the line comment of line say what the node on it says in cur (the
// documents the core changed).
func nodeEdits(data []byte, starts []int, old, cur []*yaml.Node, now *yaml.Node, line, column int) ([]edit, error) {
	was := findNode(old, line, column, now.Kind)
	if was == nil {
		return nil, errors.New("the field is not where the YAML parser put it, so digester cannot pin it in place")
	}
	var out []edit
	switch now.Kind {
	case yaml.ScalarNode:
		if was.Value != now.Value {
			e, err := replaceScalar(data, starts, nil, was, now.Value, false)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	case yaml.MappingNode:
		es, err := mappingEdits(data, starts, was, now)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	c, err := commentEdit(data, starts, line, lineComment(old, line), lineComment(cur, line))
	if err != nil {
		return nil, err
	}
	return append(out, c...), nil
}

// mappingEdits writes the keys now has that was lacks, each after the key before it, and the
// scalar values now changed.
func mappingEdits(data []byte, starts []int, was, now *yaml.Node) ([]edit, error) {
	var out []edit
	flow := was.Style&yaml.FlowStyle != 0
	for i := 0; i+1 < len(now.Content); i += 2 {
		k, v := now.Content[i], now.Content[i+1]
		oldK, oldV := pair(was, k.Value)
		switch {
		case oldK != nil && oldV.Kind == yaml.ScalarNode && v.Kind == yaml.ScalarNode && oldV.Value != v.Value:
			e, err := replaceScalar(data, starts, oldK, oldV, v.Value, flow)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		case oldK == nil && i == 0:
			return nil, fmt.Errorf("digester would add the key %s first in its mapping, which it does not do; add it by hand", k.Value)
		case oldK == nil:
			prevK, prevV := pair(was, now.Content[i-2].Value)
			if prevK == nil || v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("digester cannot add the key %s in place; add it by hand", k.Value)
			}
			e, err := insertAfter(data, starts, prevK, prevV, k.Value, v.Value, flow)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
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

// findNode returns the node of kind that starts at line:column in docs.
func findNode(docs []*yaml.Node, line, column int, kind yaml.Kind) *yaml.Node {
	var find func(n *yaml.Node) *yaml.Node
	find = func(n *yaml.Node) *yaml.Node {
		if n.Kind == kind && n.Line == line && n.Column == column {
			return n
		}
		for _, c := range n.Content {
			if m := find(c); m != nil {
				return m
			}
		}
		return nil
	}
	for _, d := range docs {
		if n := find(d); n != nil {
			return n
		}
	}
	return nil
}

// lineComment returns the line comment the parser gave a node on line, "" if none has one.
func lineComment(docs []*yaml.Node, line int) string {
	var find func(n *yaml.Node) string
	find = func(n *yaml.Node) string {
		if n.Line == line && n.LineComment != "" {
			return n.LineComment
		}
		for _, c := range n.Content {
			if c.Line > line { // and so are the rest, and all under them
				break
			}
			if s := find(c); s != "" {
				return s
			}
		}
		return ""
	}
	for _, d := range docs {
		if s := find(d); s != "" {
			return s
		}
	}
	return ""
}

// commentEdit makes the line comment at the end of line was say now: replaced where it is, or,
// if there was none, added after the line's last character.
func commentEdit(data []byte, starts []int, line int, was, now string) ([]edit, error) {
	if was == now {
		return nil, nil
	}
	if line < 1 || line > len(starts) {
		return nil, errors.New("its line is not in the file")
	}
	start, end := starts[line-1], len(data)
	if i := bytes.IndexByte(data[start:], '\n'); i >= 0 {
		end = start + i
	}
	text := bytes.TrimRight(data[start:end], " \t\r")
	stop := start + len(text)
	if was == "" {
		return []edit{{start: stop, end: stop, text: " " + now}}, nil
	}
	if !bytes.HasSuffix(text, []byte(strings.TrimRight(was, " \t"))) {
		return nil, fmt.Errorf("its line comment %q is not at the end of line %d", was, line)
	}
	at := stop - len(strings.TrimRight(was, " \t"))
	return []edit{{start: at, end: stop, text: strings.TrimRight(now, " \t")}}, nil
}

// replaceScalar replaces the text of scalar n with value, in n's quotes if it has any. An empty
// null (key: with nothing after it) gets the value after its key's colon; key is n's key, nil
// for a value that is no mapping's.
func replaceScalar(data []byte, starts []int, key, n *yaml.Node, value string, flow bool) (edit, error) {
	if n.Tag == "!!null" && n.Value == "" && key != nil {
		start, end, err := scalarSpan(data, starts, key)
		if err != nil {
			return edit{}, err
		}
		colon := end
		for colon < len(data) && (data[colon] == ' ' || data[colon] == '\t') {
			colon++
		}
		if colon >= len(data) || data[colon] != ':' {
			return edit{}, fmt.Errorf("the key %s at offset %d is not followed by a colon", key.Value, start)
		}
		return edit{start: colon + 1, end: colon + 1, text: " " + render(value, flow)}, nil
	}
	start, end, err := scalarSpan(data, starts, n)
	if err != nil {
		return edit{}, err
	}
	switch n.Style & (yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle) {
	case yaml.SingleQuotedStyle:
		if strings.Contains(value, "'") {
			return edit{}, fmt.Errorf("%q cannot go in single quotes as written", value)
		}
		return edit{start: start + 1, end: end - 1, text: value}, nil
	case yaml.DoubleQuotedStyle:
		if strings.ContainsAny(value, `"\`) {
			return edit{}, fmt.Errorf("%q cannot go in double quotes as written", value)
		}
		return edit{start: start + 1, end: end - 1, text: value}, nil
	}
	if n.Tag == "!!str" && plainSafe.MatchString(value) { // a plain string stays plain, as Set keeps it
		return edit{start: start, end: end, text: value}, nil
	}
	return edit{start: start, end: end, text: render(value, flow)}, nil
}

// insertAfter adds key: value after the pair prevKey: prevValue of a mapping: on a line of its
// own at prevKey's indentation in a block mapping, after a comma in a flow one.
func insertAfter(data []byte, starts []int, prevKey, prevValue *yaml.Node, key, value string, flow bool) (edit, error) {
	if prevValue.Kind != yaml.ScalarNode {
		return edit{}, fmt.Errorf("the key %s would follow %s, whose value is not a scalar, where digester does not add a key; add it by hand", key, prevKey.Value)
	}
	var end int
	var err error
	if prevValue.Tag == "!!null" && prevValue.Value == "" { // "key:" with nothing after it
		_, end, err = scalarSpan(data, starts, prevKey)
		for end < len(data) && data[end] != ':' {
			end++
		}
		end++
	} else {
		_, end, err = scalarSpan(data, starts, prevValue)
	}
	if err != nil {
		return edit{}, err
	}
	if flow {
		return edit{start: end, end: end, text: ", " + key + ": " + render(value, true)}, nil
	}
	eol, nl := len(data), "\n"
	if i := bytes.IndexByte(data[end:], '\n'); i >= 0 {
		eol = end + i
		if eol > 0 && data[eol-1] == '\r' {
			eol, nl = eol-1, "\r\n"
		}
	}
	return edit{start: eol, end: eol, text: nl + strings.Repeat(" ", prevKey.Column-1) + key + ": " + render(value, false)}, nil
}

// plainSafe is what digester writes without quotes: references and digests.
var plainSafe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_./@:+-]*$`)

// render writes a string value: plain when it is safe so, else in single quotes; in a flow
// collection always in single quotes, as kustomize images: entries are.
func render(value string, flow bool) string {
	if !flow && plainSafe.MatchString(value) && !strings.HasSuffix(value, ":") {
		return value
	}
	return "'" + strings.ReplaceAll(value, "'", "''") + "'"
}

// scalarSpan returns the bytes of scalar n, its quotes included: plain, or in quotes, on one line
// as the parser read it, with no tag, anchor or alias in front. A key's text ends at its colon.
func scalarSpan(data []byte, starts []int, n *yaml.Node) (int, int, error) {
	const fix = ", so digester cannot pin it in place; write it as a plain or quoted string on one line"
	fail := func(how string) (int, int, error) {
		return 0, 0, fmt.Errorf("the value %q at line %d %s", n.Value, n.Line, how)
	}
	off, ok := offset(data, starts, n.Line, n.Column)
	if !ok {
		return fail("is not where the YAML parser put it" + fix)
	}
	rest := data[off:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	switch {
	case len(rest) > 0 && (rest[0] == '|' || rest[0] == '>'):
		return fail("is a block scalar (" + string(rest[:1]) + ")" + fix)
	case len(rest) > 0 && (rest[0] == '!' || rest[0] == '&' || rest[0] == '*'):
		return fail("is written with a tag, an anchor or an alias" + fix)
	case len(rest) > 0 && (rest[0] == '"' || rest[0] == '\''):
		q := rest[0]
		for i := 1; i < len(rest); i++ {
			switch {
			case q == '"' && rest[i] == '\\', q == '\'' && rest[i] == '\'' && i+1 < len(rest) && rest[i+1] == '\'':
				return fail("holds an escape sequence" + fix)
			case rest[i] == q:
				if string(rest[1:i]) != n.Value {
					return fail("is not written as the YAML parser read it" + fix)
				}
				return off, off + i + 1, nil
			}
		}
		return fail("spans several lines" + fix)
	case bytes.HasPrefix(rest, []byte(n.Value)) && (len(rest) == len(n.Value) || strings.IndexByte(" \t\r#,]}:", rest[len(n.Value)]) >= 0):
		return off, off + len(n.Value), nil
	}
	return fail("is not written on one line as the YAML parser read it" + fix)
}
