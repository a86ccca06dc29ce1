package main

import (
	"bytes"
	"fmt"
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
		if kind := root.Content[i+1].Value; root.Content[i].Value == "kind" && kind != "ResourceList" && kind != "List" {
			return fmt.Errorf("stdin holds a %s, not a ResourceList: with no arguments digester is a KRM function and reads what kpt sends; to pin plain YAML, run digester pin - < FILE, or digester pin FILE", kind)
		}
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
