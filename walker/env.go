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
			relatedImages(nil, r, c, path+"["+strconv.Itoa(i)+"]")
		}
	case n.Kind == yaml.MappingNode:
		env := lookup(n, "env")
		if env == nil || env.Kind != yaml.SequenceNode {
			return
		}
		for i, e := range env.Content {
			if !strings.HasPrefix(scalar(lookup(e, "name")), relatedImagePrefix) {
				continue
			}
			v, vpath := lookup(e, "value"), path+".env["+strconv.Itoa(i)+"].value"
			switch {
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
}
