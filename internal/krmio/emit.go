package krmio

import (
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// appendItem appends item as kyaml's encoder (yaml.v3, indent 2, compact sequences) writes it as
// the only item of a block sequence, and reports whether it could. It covers what manifests are
// mostly made of: block and flow collections, plain, single- and double-quoted ASCII scalars, a
// comment at the end of a scalar's line (kpt's "# kpt-set: ${image}") and comment lines above a key.
// For anything else (other comments, anchors, explicit tags, block scalars, multi-line or non-ASCII text, a
// scalar yaml.v3 would quote differently, a sequence in a sequence, a long key) it returns false
// and the caller encodes the item with yaml.v3. It writes in one pass what yaml.v3 builds an event
// list, an emitter state machine and a buffer for, which is most of the cost of writing a package.
func appendItem(b []byte, item *yaml.Node) ([]byte, bool) {
	if item.Kind != yaml.MappingNode || item.Style != 0 || len(item.Content) == 0 || !bare(item) {
		return b, false
	}
	return appendBlockMapping(append(b, "- "...), item, 2, true)
}

// bare reports whether n has nothing appendItem does not write: comments, anchors, tags written out.
func bare(n *yaml.Node) bool { return bareBut(n, false, false) }

// bareBut is bare, allowing head comment lines above n, a comment at the end of its line, or both.
func bareBut(n *yaml.Node, head, line bool) bool {
	return n.FootComment == "" && n.Anchor == "" && n.Style&yaml.TaggedStyle == 0 &&
		(n.HeadComment == "" || head && comment(n.HeadComment)) &&
		(n.LineComment == "" || line && !strings.Contains(n.LineComment, "\n") && comment(n.LineComment))
}

// comment reports whether c is "#" lines of printable ASCII, which yaml.v3 writes as they are.
func comment(c string) bool {
	for _, l := range strings.Split(c, "\n") {
		if l == "" || l[0] != '#' || !printableASCII(l) {
			return false
		}
	}
	return true
}

// appendComment writes the line comment of a scalar just written, if it has one.
func appendComment(b []byte, n *yaml.Node) []byte {
	if n.LineComment == "" {
		return b
	}
	return append(append(b, ' '), n.LineComment...)
}

// appendBlockMapping writes m's pairs at indent; onLine means the first key goes on the current line.
func appendBlockMapping(b []byte, m *yaml.Node, indent int, onLine bool) ([]byte, bool) {
	if len(m.Content)%2 != 0 {
		return b, false
	}
	ok := true
	for i := 0; ok && i < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		ownLine := i > 0 || !onLine
		if k.Kind != yaml.ScalarNode || len(k.Value) > 128 || !bareBut(k, ownLine, false) { // yaml.v3 writes longer keys as "? key"
			return b, false
		}
		if ownLine {
			if k.HeadComment != "" {
				for _, l := range strings.Split(k.HeadComment, "\n") {
					b = append(append(appendIndent(b, indent), l...), '\n')
				}
			}
			b = appendIndent(b, indent)
		}
		if b, ok = appendScalar(b, k, false); !ok {
			return b, false
		}
		b = append(b, ':')
		b, ok = appendValue(b, v, indent)
	}
	return b, ok
}

// appendValue writes v after "key:", and the line break that ends it.
func appendValue(b []byte, v *yaml.Node, indent int) ([]byte, bool) {
	if !bareBut(v, false, v.Kind == yaml.ScalarNode) {
		return b, false
	}
	ok := true
	switch {
	case v.Kind == yaml.ScalarNode:
		b, ok = appendScalar(append(b, ' '), v, false)
		b = appendComment(b, v)
	case v.Kind == yaml.MappingNode && v.Style == 0 && len(v.Content) > 0:
		return appendBlockMapping(append(b, '\n'), v, indent+2, false)
	case v.Kind == yaml.SequenceNode && v.Style == 0 && len(v.Content) > 0:
		return appendBlockSequence(append(b, '\n'), v, indent) // compact: "- " at the key's indent
	default:
		b, ok = appendFlow(append(b, ' '), v)
	}
	return append(b, '\n'), ok
}

// appendBlockSequence writes s's items at indent, each after "- ".
func appendBlockSequence(b []byte, s *yaml.Node, indent int) ([]byte, bool) {
	ok := true
	for _, it := range s.Content {
		if !bareBut(it, false, it.Kind == yaml.ScalarNode) {
			return b, false
		}
		b = append(appendIndent(b, indent), "- "...)
		switch {
		case it.Kind == yaml.ScalarNode:
			b, ok = appendScalar(b, it, false)
			b = append(appendComment(b, it), '\n')
		case it.Kind == yaml.MappingNode && it.Style == 0 && len(it.Content) > 0:
			b, ok = appendBlockMapping(b, it, indent+2, true)
		case it.Kind == yaml.SequenceNode && it.Style == 0 && len(it.Content) > 0:
			return b, false // a sequence in a sequence is not indented compactly
		default:
			b, ok = appendFlow(b, it)
			b = append(b, '\n')
		}
		if !ok {
			return b, false
		}
	}
	return b, true
}

// appendFlow writes an empty or flow-style collection of scalars on one line: {}, [], {a: b}, [a, b].
func appendFlow(b []byte, n *yaml.Node) ([]byte, bool) {
	open, end := byte('['), byte(']')
	switch {
	case n.Kind == yaml.MappingNode && len(n.Content)%2 == 0:
		open, end = '{', '}'
	case n.Kind != yaml.SequenceNode:
		return b, false
	}
	if n.Style&^yaml.FlowStyle != 0 {
		return b, false
	}
	b = append(b, open)
	ok := true
	for i, c := range n.Content {
		if c.Kind != yaml.ScalarNode || !bare(c) {
			return b, false
		}
		if n.Kind == yaml.MappingNode && i%2 == 0 && len(c.Value) > 128 {
			return b, false
		}
		switch {
		case n.Kind == yaml.MappingNode && i%2 == 1:
			b = append(b, ": "...)
		case i > 0:
			b = append(b, ", "...)
		}
		if b, ok = appendScalar(b, c, true); !ok {
			return b, false
		}
	}
	return append(b, end), true
}

// appendScalar writes s as yaml.v3 does in block or flow context, when its text is printable ASCII
// and its style stays what the node asks for. Its comments, anchor and tag are the caller's to check
// (bare, bareBut) and its comments the caller's to write.
func appendScalar(b []byte, s *yaml.Node, flow bool) ([]byte, bool) {
	if s.Kind != yaml.ScalarNode || !printableASCII(s.Value) {
		return b, false
	}
	str := s.Tag == "" || s.Tag == "!!str"
	switch s.Style {
	case 0:
		if !plainAllowed(s.Value, flow) {
			return b, false
		}
		switch s.Tag {
		case "": // untagged: written plain whatever it reads as
		case "!!str":
			if !readsAsString(s.Value) {
				return b, false // yaml.v3 quotes it
			}
		case "!!int":
			if !decimal(s.Value) {
				return b, false
			}
		case "!!bool":
			if s.Value != "true" && s.Value != "false" {
				return b, false
			}
		case "!!null":
			if s.Value != "null" && s.Value != "~" {
				return b, false
			}
		case "!!float":
			if !fraction(s.Value) {
				return b, false
			}
		default:
			return b, false
		}
		return append(b, s.Value...), true
	case yaml.SingleQuotedStyle:
		if !str {
			return b, false
		}
		b = append(b, '\'')
		for i := 0; i < len(s.Value); i++ {
			if s.Value[i] == '\'' {
				b = append(b, '\'')
			}
			b = append(b, s.Value[i])
		}
		return append(b, '\''), true
	case yaml.DoubleQuotedStyle:
		if !str || strings.ContainsAny(s.Value, `"\`) {
			return b, false
		}
		b = append(b, '"')
		b = append(b, s.Value...)
		return append(b, '"'), true
	}
	return b, false
}

// plainAllowed is yaml.v3's yaml_emitter_analyze_scalar for printable ASCII: whether v can be
// written as a plain scalar in block or flow context.
func plainAllowed(v string, flow bool) bool {
	if v == "" || v[0] == ' ' || v[len(v)-1] == ' ' || strings.HasPrefix(v, "---") || strings.HasPrefix(v, "...") {
		return false
	}
	for i := 0; i < len(v); i++ {
		followedBySpace := i+1 == len(v) || v[i+1] == ' '
		switch c := v[i]; {
		case i == 0 && strings.IndexByte("#,[]{}&*!|>'\"%@`", c) >= 0:
			return false
		case (i == 0 && c == '-' || c == ':') && followedBySpace:
			return false
		case c == '#' && i > 0 && v[i-1] == ' ':
			return false
		case flow && strings.IndexByte(",?[]{}:", c) >= 0:
			return false
		case i == 0 && c == '?' && followedBySpace:
			return false
		}
	}
	return true
}

// printableASCII reports whether v holds only ASCII from space to tilde.
func printableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < ' ' || v[i] > '~' {
			return false
		}
	}
	return true
}

// readsAsString reports whether yaml.v3 reads plain v as a string, and so writes a !!str v plain.
// It follows yaml.v3's resolve, erring towards "no" (which only sends the item to yaml.v3): words
// such as true and null, the merge key <<, numbers in any base, floats and timestamps are not strings; 128Mi, -c,
// 127.0.0.1:5000/app and .config are.
func readsAsString(v string) bool {
	switch c := v[0]; {
	case c == '.':
		_, err := strconv.ParseFloat(v, 64)
		return err != nil && !strings.EqualFold(v, ".inf") && !strings.EqualFold(v, ".nan")
	case c == '+' || c == '-' || '0' <= c && c <= '9':
		if len(v) > 4 && digits(v[:4]) && v[4] == '-' { // perhaps a timestamp
			return false
		}
		p := strings.ReplaceAll(v, "_", "")
		if _, err := strconv.ParseInt(p, 0, 64); err == nil {
			return false
		}
		if _, err := strconv.ParseUint(p, 0, 64); err == nil {
			return false
		}
		p = strings.TrimLeft(p, "+-")
		return strings.Trim(p, "0123456789.eE+-") != "" && !strings.HasPrefix(p, "0b") && !strings.HasPrefix(p, "0o") &&
			!strings.EqualFold(p, ".inf")
	}
	switch strings.ToLower(v) {
	case "true", "false", "null", "~", "<<": // "<<" reads as a merge key: yaml.v3 writes it !!merge <<
		return false
	}
	return true
}

// decimal reports whether v is a decimal integer yaml.v3 reads back as one: no sign, no leading
// zero, at most 18 digits.
func decimal(v string) bool {
	return v != "" && len(v) <= 18 && (v[0] != '0' || len(v) == 1) && digits(v)
}

// fraction reports whether v is digits, a dot and digits, which yaml.v3 reads back as a float.
func fraction(v string) bool {
	i := strings.IndexByte(v, '.')
	return i > 0 && i < 19 && len(v)-i-1 > 0 && len(v)-i-1 < 19 && digits(v[:i]) && digits(v[i+1:])
}

func digits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

func appendIndent(b []byte, n int) []byte {
	for range n {
		b = append(b, ' ')
	}
	return b
}
