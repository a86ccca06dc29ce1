package cli

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/pin"
)

// lockEdit returns the edit that writes a changed DigestLock's images: over the old one in the
// file's text (or after its last key, if it had none), so that no other byte of the file changes:
// not the lock's other keys and comments, not the other documents of a file it shares.
func (f *file) lockEdit(o *pin.Object) (edit, error) {
	m := o.Node
	if m.Kind == yaml.DocumentNode && len(m.Content) == 1 {
		m = m.Content[0]
	}
	fail := func(why string) (edit, error) {
		return edit{}, &fileError{f.name, fmt.Sprintf("the DigestLock at line %d %s, so digester cannot update its images: in place; write it in block style, or delete it and run pin --lock update to write a new one", m.Line, why)}
	}
	if m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 || len(m.Content) < 4 {
		return fail("is written in flow style ({...})")
	}
	var key, val *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "images" {
			key, val = m.Content[i], m.Content[i+1]
		}
	}
	text := encode(&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "images"}, val}})
	starts := lineStarts(f.data)
	nl := "\n"
	if bytes.Contains(f.data, []byte("\r\n")) {
		nl = "\r\n"
	}
	if key == nil {
		return fail("has no images:")
	}
	if key.Line > 0 { // images: was there: replace it with its value
		start, ok := offset(f.data, starts, key.Line, key.Column)
		if !ok || !bytes.HasPrefix(f.data[start:], []byte("images")) {
			return fail("has its images: key where digester cannot find it")
		}
		return edit{start: start, end: valueEnd(f.data, starts, key.Line, key.Column), text: indentLines(text, key.Column-1, nl)}, nil
	}
	last := m.Content[len(m.Content)-4] // images: was added after the last key
	if last.Line == 0 {
		return fail("has no key digester can place images: after")
	}
	end := valueEnd(f.data, starts, last.Line, last.Column)
	return edit{start: end, end: end, text: nl + strings.Repeat(" ", last.Column-1) + indentLines(text, last.Column-1, nl)}, nil
}

// valueEnd returns the offset where the value of the block mapping key at line:column ends: the
// end (before the line break) of the last line that is more indented than the key, or a "- "
// entry at its indentation. Comment and blank lines after the value are not part of it.
func valueEnd(data []byte, starts []int, line, column int) int {
	end := lineEnd(data, starts[line-1])
	for l := line; l < len(starts); l++ {
		e := lineEnd(data, starts[l])
		text := data[starts[l]:e]
		trimmed := bytes.TrimLeft(text, " ")
		indent := len(text) - len(trimmed)
		switch {
		case len(bytes.TrimSpace(trimmed)) == 0 || trimmed[0] == '#':
			// part of the value only if more of it follows
		case indent > column-1,
			indent == column-1 && trimmed[0] == '-' && (len(trimmed) == 1 || trimmed[1] == ' ' || trimmed[1] == '\r'):
			end = e
		default:
			return end
		}
	}
	return end
}

// lineEnd returns the offset of the line break (\n or \r\n) of the line starting at start, or the
// end of data.
func lineEnd(data []byte, start int) int {
	i := bytes.IndexByte(data[start:], '\n')
	if i < 0 {
		return len(data)
	}
	if i > 0 && data[start+i-1] == '\r' {
		i--
	}
	return start + i
}

// indentLines indents every line of text but the first by n spaces and ends lines with nl; the
// last line break of text is dropped.
func indentLines(text string, n int, nl string) string {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	return strings.Join(lines, nl+strings.Repeat(" ", n))
}

// checkLocks parses the new bytes of a file with a changed lock and checks that they hold what the
// run's nodes hold: each document as pinned, each changed lock with its new images. (Comments
// are not compared: the parser may attach a comment next to the new images: to another node.) A lock edit that did not do exactly
// that is a bug, and fails the run rather than write a broken file.
func checkLocks(fl *input) error {
	after := &file{name: fl.name, data: fl.pinned}
	err := after.parse()
	if err == nil && len(after.objs) != len(fl.objs) {
		err = fmt.Errorf("%d resources, not %d", len(after.objs), len(fl.objs))
	}
	for i := 0; err == nil && i < len(fl.objs); i++ {
		if !sameNodes(after.objs[i].Node, fl.objs[i].Node) {
			err = fmt.Errorf("resource %d differs", i+1)
		}
	}
	if err != nil {
		return &fileError{fl.name, fmt.Sprintf("updating the DigestLock in place would not give the lock the run made (%v); this is a bug in digester, please report it", err)}
	}
	return nil
}

// sameNodes reports whether two YAML trees hold the same values, written alike (style, tags,
// anchors), whatever node their comments are attached to. An alias is compared by its name; an
// empty collection is alike in any style (a new one, written "[]", reads back in flow style).
func sameNodes(a, b *yaml.Node) bool {
	as, bs := a.Style, b.Style
	if len(a.Content) == 0 && (a.Kind == yaml.SequenceNode || a.Kind == yaml.MappingNode) {
		as, bs = as&^yaml.FlowStyle, bs&^yaml.FlowStyle
	}
	if a.Kind != b.Kind || as != bs || a.ShortTag() != b.ShortTag() || a.Value != b.Value ||
		a.Anchor != b.Anchor || len(a.Content) != len(b.Content) {
		return false
	}
	if a.Kind == yaml.AliasNode {
		return true
	}
	for i := range a.Content {
		if !sameNodes(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}
