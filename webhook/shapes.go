package webhook

import (
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// The fields of most kinds are strings the core replaces. Two shapes are mappings whose keys the
// core sets (walker.HelmImage, walker.OCIRepositoryRef): a split image's digest, a Flux ref's
// digest, which the object may not have had. Their patch says "replace" for a key the object had,
// "add" for one the core added, and is worked out against the object as it came in, parsed
// again, only when such a field was pinned.

// patch returns the JSONPatch operations that write what the core set in n, a field's node at p:
// a string's new value, or, for a mapping, each of its strings that the object had otherwise, or
// had not at all. original parses the object as it came in.
func (o *object) patch(n *yaml.Node, p place, original func() (*object, error)) ([]patchOp, error) {
	if n.Kind != yaml.MappingNode {
		return []patchOp{{Op: "replace", Path: p.ptr, Value: n.Value}}, nil
	}
	orig, err := original()
	if err != nil {
		return nil, err
	}
	was := orig.at(p.ptr)
	var ops []patchOp
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
			continue
		}
		switch w := last(was, k); {
		case w == nil:
			ops = append(ops, patchOp{Op: "add", Path: p.ptr + "/" + escape(k), Value: v.Value})
		case w.Tag != "!!str" || w.Value != v.Value:
			ops = append(ops, patchOp{Op: "replace", Path: p.ptr + "/" + escape(k), Value: v.Value})
		}
	}
	return ops, nil
}

// sameMapping reports whether mapping n, a field of o, is in old as it is in o: at the same
// JSON pointer, with the same keys and the same scalar values.
func (o *object) sameMapping(old *object, n *yaml.Node) bool {
	p, ok := o.locate(map[*yaml.Node]bool{n: true})[n]
	was := old.at(p.ptr)
	if !ok || was == nil || was.Kind != yaml.MappingNode || len(was.Content) != len(n.Content) {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		v, w := n.Content[i+1], last(was, n.Content[i].Value)
		if w == nil || v.Kind != w.Kind || v.Kind == yaml.ScalarNode && (v.Tag != w.Tag || v.Value != w.Value) {
			return false
		}
	}
	return true
}

// at returns the node at JSON pointer ptr, or nil.
func (o *object) at(ptr string) *yaml.Node {
	n := o.node
	for _, seg := range strings.Split(ptr, "/")[1:] {
		seg = strings.ReplaceAll(strings.ReplaceAll(seg, "~1", "/"), "~0", "~")
		switch {
		case n == nil:
			return nil
		case n.Kind == yaml.MappingNode:
			n = last(n, seg)
		case n.Kind == yaml.SequenceNode:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
		default:
			return nil
		}
	}
	return n
}
