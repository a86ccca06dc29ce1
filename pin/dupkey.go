package pin

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

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
