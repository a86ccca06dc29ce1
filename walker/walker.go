// Package walker finds the container image fields of a Kubernetes object, whatever its kind.
//
// It works on the parsed YAML tree (go.yaml.in/yaml/v3 nodes, as kyaml exposes them) so that the
// fields it returns can be rewritten in place, keeping comments, key order and quoting. It knows
// nothing of KRM functions or registries: a second front end (an admission webhook) can reuse it.
package walker

import (
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// Field is one image reference found in an object.
type Field struct {
	// Path is the field's path from the object root, e.g. "spec.template.spec.containers[0].image".
	Path string
	// Image is the field's current value.
	Image string
	// Node is the scalar node holding the value; set Node.Value to rewrite the field in place.
	// Fields that share a YAML anchor share a Node.
	Node *yaml.Node
}

// Problem is a field that looks like it should hold images but cannot be read as such.
type Problem struct {
	// Path is the field's path from the object root.
	Path string
	// Message says what is wrong, in plain words.
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// DefaultPodSpecPaths are the places a pod spec sits in the built-in workload kinds and in custom
// kinds shaped like them: Pod; Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and most CRDs;
// CronJob; PodTemplate.
var DefaultPodSpecPaths = [][]string{
	{"spec"},
	{"spec", "template", "spec"},
	{"spec", "jobTemplate", "spec", "template", "spec"},
	{"template", "spec"},
}

// DefaultContainerLists are the container lists of a pod spec.
var DefaultContainerLists = []string{"containers", "initContainers", "ephemeralContainers"}

// Walker finds image fields. The zero value is not useful: use New.
type Walker struct {
	podSpecPaths   [][]string
	containerLists []string
}

// Option configures a Walker.
type Option func(*Walker)

// WithPodSpecPaths replaces the paths at which pod specs are looked for.
func WithPodSpecPaths(paths ...[]string) Option {
	return func(w *Walker) { w.podSpecPaths = paths }
}

// New returns a Walker that looks in DefaultPodSpecPaths and DefaultContainerLists unless told otherwise.
func New(opts ...Option) *Walker {
	w := &Walker{podSpecPaths: DefaultPodSpecPaths, containerLists: DefaultContainerLists}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Walk returns the image fields of obj, a mapping node, in document order of the paths searched,
// and the problems met on the way. It never modifies obj.
func (w *Walker) Walk(obj *yaml.Node) ([]Field, []Problem) {
	var fields []Field
	var problems []Problem
	obj = deref(obj)
	if obj == nil || obj.Kind != yaml.MappingNode {
		return nil, nil
	}
	for _, p := range w.podSpecPaths {
		spec := lookupPath(obj, p)
		if spec == nil || spec.Kind != yaml.MappingNode {
			continue
		}
		base := strings.Join(p, ".")
		for _, list := range w.containerLists {
			f, pr := containers(spec, base+"."+list, list)
			fields = append(fields, f...)
			problems = append(problems, pr...)
		}
	}
	return fields, problems
}

// containers reads the image of every container in spec[list].
func containers(spec *yaml.Node, path, list string) ([]Field, []Problem) {
	seq := lookup(spec, list)
	if seq == nil || isNull(seq) {
		return nil, nil
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, []Problem{{Path: path, Message: fmt.Sprintf("is %s, want a list of containers", describe(seq))}}
	}
	var fields []Field
	var problems []Problem
	for i, c := range seq.Content {
		cpath := path + "[" + strconv.Itoa(i) + "]"
		c = deref(c)
		if c.Kind != yaml.MappingNode {
			problems = append(problems, Problem{Path: cpath, Message: fmt.Sprintf("is %s, want a container object", describe(c))})
			continue
		}
		img := lookup(c, "image")
		ipath := cpath + ".image"
		switch {
		case img == nil || isNull(img):
			problems = append(problems, Problem{Path: ipath, Message: fmt.Sprintf("container %s has no image", containerName(c))})
		case img.Kind != yaml.ScalarNode || img.ShortTag() != "!!str":
			problems = append(problems, Problem{Path: ipath, Message: fmt.Sprintf("is %s, want a string", describe(img))})
		case strings.TrimSpace(img.Value) == "":
			problems = append(problems, Problem{Path: ipath, Message: fmt.Sprintf("container %s has an empty image", containerName(c))})
		default:
			fields = append(fields, Field{Path: ipath, Image: img.Value, Node: img})
		}
	}
	return fields, problems
}

func containerName(c *yaml.Node) string {
	if n := lookup(c, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
		return strconv.Quote(n.Value)
	}
	return "without a name"
}

// lookupPath follows keys from a mapping node; nil if any step is missing or not a mapping.
func lookupPath(n *yaml.Node, keys []string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		n = lookup(n, k)
	}
	return n
}

// lookup returns the value of key in mapping m, following aliases and merge keys ("<<").
// The last occurrence of a duplicated key wins, as in most YAML decoders.
func lookup(m *yaml.Node, key string) *yaml.Node {
	return lookupOnce(m, key, nil)
}

// lookupOnce is lookup visiting each mapping at most once: merge keys can name a mapping that
// merges itself (endless recursion) or name one mapping many times over, level after level
// (exponential time from a few lines of YAML).
func lookupOnce(m *yaml.Node, key string, seen map[*yaml.Node]bool) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode || seen[m] {
		return nil
	}
	var found *yaml.Node
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		k := m.Content[i]
		switch {
		case k.Value == key && k.Kind == yaml.ScalarNode:
			found = m.Content[i+1]
		case k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Tag == "!!merge":
			merges = append(merges, deref(m.Content[i+1]))
		}
	}
	if found != nil || len(merges) == 0 {
		return deref(found)
	}
	if seen == nil { // merge keys are rare: allocate only when one is met
		seen = map[*yaml.Node]bool{}
	}
	seen[m] = true
	for _, mg := range merges {
		targets := []*yaml.Node{mg}
		if mg != nil && mg.Kind == yaml.SequenceNode {
			targets = mg.Content
		}
		for _, t := range targets {
			if v := lookupOnce(t, key, seen); v != nil {
				return v
			}
		}
	}
	return nil
}

// deref follows alias nodes to the node they name (bounded, in case of a malformed cycle).
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 64; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		return deref(n.Content[0])
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number (" + n.Value + ")"
		case "!!bool":
			return "a boolean (" + n.Value + ")"
		case "!!null":
			return "null"
		case "!!str":
			return "a string"
		}
		return "a scalar tagged " + n.ShortTag()
	}
	return "an unexpected node"
}
