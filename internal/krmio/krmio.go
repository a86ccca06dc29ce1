// Package krmio runs a KRM function processor on a ResourceList as fn.Run does, with a cheaper
// way of writing the output that gives the same bytes.
//
// fn.Run (krm-functions-sdk v1.1.1) converts every result through JSON and YAML text, then writes
// the whole ResourceList as one YAML document, and the YAML encoder keeps every event of a
// document in memory until it ends. A function that reports one result per changed field, as
// digester does, doubles its output with results, and so its time and peak memory. Run writes
// each item on its own: directly (appendItem) when it is made of what manifests are usually made
// of, and through yaml.v3 otherwise; then the results, built as YAML nodes in the SDK's key order
// and written directly, or as small YAML documents when quoting is involved. Results it cannot
// reproduce exactly (tags, non-string values, invalid UTF-8) make it fall back to the SDK's own path.
package krmio

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Run parses input, runs p and returns the output ResourceList and an error, as fn.Run does.
func Run(p fn.ResourceListProcessor, input []byte) ([]byte, error) {
	if p == nil {
		return nil, errors.New("nil ResourceListProcessor")
	}
	rl, err := fn.ParseResourceList(input)
	if err != nil {
		return nil, err
	}
	success, fnErr := p.Process(rl)
	out, err := toYAML(rl)
	switch {
	case err != nil:
		return out, err
	case fnErr != nil:
		return out, fnErr
	case !success:
		return out, errors.New("error: function failure")
	}
	return out, nil
}

// toYAML is rl.ToYAML, writing each item as a YAML document of its own rather than the whole
// ResourceList as one: yaml.v3's encoder holds every event of a document until it ends, so one
// document the size of the package costs time and memory that per-item documents do not. The
// text is the same: an item encoded as a one-item sequence is the same lines as an item of
// "items:". Anchors and aliases may cross items, so a ResourceList with any goes the SDK's way.
// Results are written by appendResults when it can reproduce them.
func toYAML(rl *fn.ResourceList) ([]byte, error) {
	for _, r := range rl.Results {
		if !plain(r) {
			return rl.ToYAML()
		}
	}
	sortItems(rl.Items)
	nodes := make([]*yaml.Node, len(rl.Items))
	for i, it := range rl.Items {
		nodes[i] = node(&rl.Items[i], it)
	}
	var fc *yaml.Node
	if rl.FunctionConfig != nil && !rl.FunctionConfig.IsEmpty() {
		fc = node(&rl.FunctionConfig, rl.FunctionConfig)
	}
	if hasAnchors(append(nodes, fc)...) {
		return rl.ToYAML()
	}

	var buf bytes.Buffer
	buf.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n")
	if len(nodes) > 0 {
		buf.WriteString("items:\n")
	}
	var scratch []byte
	for _, n := range nodes {
		var ok bool
		if scratch, ok = appendItem(scratch[:0], n); ok {
			buf.Write(scratch)
			continue
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{n}}
		if err := yaml.NewEncoder(&buf).Encode(seq); err != nil {
			return nil, fmt.Errorf("write items: %w", err)
		}
	}
	if fc != nil {
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{str("functionConfig"), fc}}
		if err := yaml.NewEncoder(&buf).Encode(m); err != nil {
			return nil, fmt.Errorf("write functionConfig: %w", err)
		}
	}
	return appendResults(buf.Bytes(), rl.Results)
}

// sortItems is rl.Sort with each item's key built once rather than twice per comparison (the SDK
// formats four fields with fmt.Sprintf in every Less). sort.Sort makes the same comparisons in the
// same order on the same keys, so the items end in the same order.
func sortItems(items fn.KubeObjects) {
	k := keyed{items: items, keys: make([]string, len(items))}
	for i, o := range items {
		k.keys[i] = o.GetAPIVersion() + " " + o.GetKind() + " " + o.GetNamespace() + " " + o.GetName()
	}
	sort.Sort(k)
}

type keyed struct {
	items fn.KubeObjects
	keys  []string
}

func (k keyed) Len() int           { return len(k.items) }
func (k keyed) Less(i, j int) bool { return k.keys[i] < k.keys[j] }
func (k keyed) Swap(i, j int) {
	k.items[i], k.items[j] = k.items[j], k.items[i]
	k.keys[i], k.keys[j] = k.keys[j], k.keys[i]
}

// node returns the YAML node behind o, which stays in *slot.
func node(slot **fn.KubeObject, o *fn.KubeObject) *yaml.Node {
	rn := o.MoveToResourceNode()
	n := rn.YNode()
	*slot = fn.MoveToKubeObject(rn)
	return n
}

// hasAnchors reports whether any of the trees holds an anchor or an alias.
func hasAnchors(nodes ...*yaml.Node) bool {
	for _, n := range nodes {
		if n == nil {
			continue
		}
		if n.Anchor != "" || n.Kind == yaml.AliasNode || hasAnchors(n.Content...) {
			return true
		}
	}
	return false
}

// appendResults appends "results:" and the results, as the SDK writes them, to out. A result
// whose strings all stay plain scalars is written directly; any other is encoded on its own as a
// one-item sequence, which yaml.v3 writes as the same lines as an item of "results:".
func appendResults(out []byte, results fn.Results) ([]byte, error) {
	if len(results) == 0 {
		return out, nil
	}
	buf := bytes.NewBuffer(out)
	buf.WriteString("results:\n")
	for _, r := range results {
		n := resultNode(r)
		if simple(n) {
			writeMapping(buf, n, 2, "- ")
			continue
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{n}}
		if err := yaml.NewEncoder(buf).Encode(seq); err != nil {
			return nil, fmt.Errorf("write results: %w", err)
		}
	}
	return buf.Bytes(), nil
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
