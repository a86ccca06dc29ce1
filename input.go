package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// checkInput finds what would make the SDK reject a ResourceList with a message that names no
// item (bytes that are not UTF-8, items that are not objects) and says where it is. Other
// problems are left to the SDK, whose YAML errors give a line.
func checkInput(in []byte) error {
	if !utf8.Valid(in) {
		i := 0
		for i < len(in) {
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			i += size
		}
		return fmt.Errorf("input is not UTF-8: byte 0x%02x on line %d", in[i], bytes.Count(in[:i], []byte("\n"))+1)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(in, &doc); err != nil || len(doc.Content) == 0 {
		return nil // empty input is an empty ResourceList; a syntax error is reported by the SDK
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "items" || root.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, item := range root.Content[i+1].Content {
			if item.Kind != yaml.MappingNode {
				return fmt.Errorf("ResourceList items[%d] (line %d) is %s, not a resource object", j, item.Line, kindOf(item))
			}
		}
	}
	return nil
}

func kindOf(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the scalar %q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "not a mapping"
}

// duplicateKey returns the path of the first key that appears twice in one mapping of n, or "".
// Kubernetes' strict decoding rejects such manifests, and which value a tool would use is anyone's
// guess, so digester does not pin them.
func duplicateKey(n *yaml.Node) string {
	return dupKey(n, "", 0)
}

func dupKey(n *yaml.Node, path string, depth int) string {
	if n == nil || depth > 10000 {
		return ""
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := dupKey(c, path, depth+1); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		if k := repeatedKey(n.Content); k != "" {
			return strings.TrimPrefix(path+"."+k, ".")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode {
				if q := dupKey(v, strings.TrimPrefix(path+"."+n.Content[i].Value, "."), depth+1); q != "" {
					return q
				}
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode {
				if p := dupKey(c, fmt.Sprintf("%s[%d]", path, i), depth+1); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

// repeatedKey returns a key that appears twice among the keys of a mapping's content, or "".
func repeatedKey(content []*yaml.Node) string {
	if len(content) <= 64 { // most mappings are small: pairwise comparison allocates nothing
		for i := 0; i+1 < len(content); i += 2 {
			for j := 0; j < i; j += 2 {
				if k := content[i].Value; k == content[j].Value && k != "<<" {
					return k
				}
			}
		}
		return ""
	}
	seen := make(map[string]bool, len(content)/2)
	for i := 0; i+1 < len(content); i += 2 {
		if k := content[i].Value; seen[k] && k != "<<" {
			return k
		} else {
			seen[k] = true
		}
	}
	return ""
}
