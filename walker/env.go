package walker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// relatedImagePrefix starts the names of the environment variables that hold the images an
// operator deploys (the Operator SDK and OLM convention).
const relatedImagePrefix = "RELATED_IMAGE_"

// relatedImages reads the RELATED_IMAGE_* variables of a container, or of each container in a
// list, at path.
func relatedImages(_ *Walker, r *results, n *yaml.Node, path string) {
	n = deref(n)
	switch {
	case n == nil:
	case n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if env := lookup(c, "env"); env != nil {
				containerEnv(r, env, path, "", i)
			}
		}
	case n.Kind == yaml.MappingNode:
		if env := lookup(n, "env"); env != nil {
			containerEnv(r, env, path, "", -1)
		}
	}
}

// containerEnv reads the RELATED_IMAGE_* variables of env, a container's, whose path is base,
// then "."+list if list is set, then "[i]" if i >= 0.
func containerEnv(r *results, env *yaml.Node, base, list string, i int) {
	if env.Kind != yaml.SequenceNode {
		return
	}
	for j, e := range env.Content {
		if !strings.HasPrefix(scalar(lookup(e, "name")), relatedImagePrefix) {
			continue
		}
		vpath := base
		if list != "" {
			vpath += "." + list
		}
		if i >= 0 {
			vpath += "[" + strconv.Itoa(i) + "]"
		}
		vpath += ".env[" + strconv.Itoa(j) + "].value"
		switch v := lookup(e, "value"); {
		case v == nil || isNull(v): // valueFrom: nothing written here to pin
		case v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str":
			r.problemAt(v, vpath, fmt.Sprintf("is %s, want an image reference", describe(v)))
		case strings.TrimSpace(v.Value) == "":
			r.problemAt(v, vpath, "is empty, want an image reference")
		case !slices.ContainsFunc(r.fields, func(f Field) bool { return f.Node == v }):
			r.fields = append(r.fields, Field{Path: vpath, Image: v.Value, Node: v, Kind: RelatedImage})
		}
	}
}
