package krmio

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// appendResults appends "results:" and the results, as the SDK writes them, to buf. A result
// whose strings all stay plain scalars is written directly; one with only strings, as a one-item
// sequence by yaml.v3, which writes it as the same lines as an item of "results:"; any other
// (tags, other values, invalid UTF-8) by the SDK itself.
func appendResults(buf *bytes.Buffer, results fn.Results) error {
	if len(results) == 0 {
		return nil
	}
	buf.WriteString("results:\n")
	for _, r := range results {
		if !plain(r) {
			text, err := sdkResult(r)
			if err != nil {
				return fmt.Errorf("write results: %w", err)
			}
			buf.Write(text)
			continue
		}
		n := resultNode(r)
		if simple(n) {
			writeMapping(buf, n, 2, "- ")
			continue
		}
		text, err := encodeResult(n)
		if err != nil {
			return fmt.Errorf("write results: %w", err)
		}
		buf.Write(text)
	}
	return nil
}

// encodeResult writes n as a one-item sequence with yaml.v3, which writes it as the same lines as
// an item of "results:". yaml.v3 writes a few strings (a line that is only a tab, in a block
// scalar) as YAML it cannot read back, which the SDK then fails on; those are written again with
// every string double-quoted, which reads back.
func encodeResult(n *yaml.Node) ([]byte, error) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{n}}
	var b bytes.Buffer
	if err := yaml.NewEncoder(&b).Encode(seq); err != nil {
		return nil, err
	}
	var back yaml.Node
	if yaml.Unmarshal(b.Bytes(), &back) == nil {
		return b.Bytes(), nil
	}
	quoteStrings(n)
	b.Reset()
	err := yaml.NewEncoder(&b).Encode(seq)
	return b.Bytes(), err
}

// quoteStrings sets every string scalar under n to double-quoted style.
func quoteStrings(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteStrings(c)
	}
}

// sdkResult is r as the SDK writes it, an item of a ResourceList's results.
func sdkResult(r *fn.Result) ([]byte, error) {
	out, err := (&fn.ResourceList{Results: fn.Results{r}}).ToYAML()
	if err != nil {
		return nil, err
	}
	_, item, ok := bytes.Cut(out, []byte("\nresults:\n"))
	if !ok {
		return nil, fmt.Errorf("the SDK wrote no results for %q", r.Message)
	}
	return item, nil
}

// writeMapping writes m in block style, its first key after first and the others at indent.
func writeMapping(buf *bytes.Buffer, m *yaml.Node, indent int, first string) {
	pad := strings.Repeat(" ", indent)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if i == 0 {
			buf.WriteString(first)
		} else {
			buf.WriteString(pad)
		}
		buf.WriteString(m.Content[i].Value)
		buf.WriteByte(':')
		if v := m.Content[i+1]; v.Kind == yaml.MappingNode {
			buf.WriteByte('\n')
			writeMapping(buf, v, indent+2, pad+"  ")
		} else {
			buf.WriteByte(' ')
			buf.WriteString(v.Value)
			buf.WriteByte('\n')
		}
	}
}

// simple reports whether every scalar in m is one yaml.v3 writes plain, exactly as it is: an
// integer, or a printable ASCII string that reads back as a string and needs no quotes (see
// appendScalar). Anything else (quoting, escaping, other scripts) is left to yaml.v3.
func simple(m *yaml.Node) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		v := m.Content[i+1]
		switch {
		case v.Kind == yaml.MappingNode:
			if len(v.Content) == 0 || !simple(v) {
				return false
			}
		case v.Kind != yaml.ScalarNode || v.Style != 0:
			return false
		case v.Tag == "!!int":
		case v.Tag != "!!str" || !plainString(v.Value):
			return false
		}
	}
	return true
}

func plainString(s string) bool {
	return printableASCII(s) && plainAllowed(s, false) && readsAsString(s)
}

// plain reports whether resultNode reproduces what the SDK writes for r: no tags, string
// values only, valid UTF-8 (JSON would replace invalid bytes), no empty mappings.
func plain(r *fn.Result) bool {
	if r == nil || len(r.Tags) > 0 || r.Message == "" && r.Severity == "" && r.ResourceRef == nil && r.Field == nil && r.File == nil {
		return false
	}
	strs := []string{r.Message, string(r.Severity)}
	if ref := r.ResourceRef; ref != nil {
		if *ref == (fn.ResourceRef{}) {
			return false
		}
		strs = append(strs, ref.APIVersion, ref.Kind, ref.Name, ref.Namespace)
	}
	if f := r.Field; f != nil {
		strs = append(strs, f.Path)
		for _, v := range []any{f.CurrentValue, f.ProposedValue} {
			switch s := v.(type) {
			case nil:
			case string:
				strs = append(strs, s)
			default:
				return false
			}
		}
		if f.Path == "" && f.CurrentValue == nil && f.ProposedValue == nil {
			return false
		}
	}
	if f := r.File; f != nil {
		if *f == (fn.File{}) {
			return false
		}
		strs = append(strs, f.Path)
	}
	for _, s := range strs {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

type pair struct {
	key   string
	value *yaml.Node
}

// resultNode builds r as the SDK does: JSON field names, empty fields left out.
func resultNode(r *fn.Result) *yaml.Node {
	ps := addStr(nil, "message", r.Message)
	ps = addStr(ps, "severity", string(r.Severity))
	if ref := r.ResourceRef; ref != nil {
		rp := addStr(nil, "apiVersion", ref.APIVersion)
		rp = addStr(rp, "kind", ref.Kind)
		rp = addStr(rp, "name", ref.Name)
		rp = addStr(rp, "namespace", ref.Namespace)
		ps = append(ps, pair{"resourceRef", mapping(rp)})
	}
	if f := r.Field; f != nil {
		fp := addStr(nil, "path", f.Path)
		if s, ok := f.CurrentValue.(string); ok {
			fp = append(fp, pair{"currentValue", str(s)})
		}
		if s, ok := f.ProposedValue.(string); ok {
			fp = append(fp, pair{"proposedValue", str(s)})
		}
		ps = append(ps, pair{"field", mapping(fp)})
	}
	if f := r.File; f != nil {
		fp := addStr(nil, "path", f.Path)
		if f.Index != 0 {
			fp = append(fp, pair{"index", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(f.Index)}})
		}
		ps = append(ps, pair{"file", mapping(fp)})
	}
	return mapping(ps)
}

// mapping builds a mapping with its keys in the SDK's order: kyaml's yaml.FieldOrder first, then by name.
func mapping(ps []pair) *yaml.Node {
	sort.SliceStable(ps, func(i, j int) bool {
		io, iok := yaml.FieldOrder[ps[i].key]
		jo, jok := yaml.FieldOrder[ps[j].key]
		switch {
		case iok && jok:
			return io < jo
		case iok || jok:
			return iok
		}
		return ps[i].key < ps[j].key
	})
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: make([]*yaml.Node, 0, 2*len(ps))}
	for _, p := range ps {
		m.Content = append(m.Content, str(p.key), p.value)
	}
	return m
}

func addStr(ps []pair, k, v string) []pair {
	if v != "" {
		ps = append(ps, pair{k, str(v)})
	}
	return ps
}

// str is a string node. The SDK encodes Go strings, which yaml.v3 double-quotes when they read as
// YAML 1.1 booleans or base-60 numbers; a node it quotes only when they read as YAML 1.2
// non-strings. The string "<<" the SDK writes as !!merge <<.
func str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF":
		n.Style = yaml.DoubleQuotedStyle
	case "<<":
		// The SDK's result reads back as a merge key, and yaml.v3 writes it tagged: !!merge <<.
		n.Tag = "!!merge"
	default:
		if strings.Trim(s, "0123456789_:.+-") == "" && base60.MatchString(s) { // the regexp only on what it can match
			n.Style = yaml.DoubleQuotedStyle
		}
	}
	return n
}

// base60 is yaml.v3's pattern for YAML 1.1 base-60 floats ("1:20").
var base60 = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`)

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

func digits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}
