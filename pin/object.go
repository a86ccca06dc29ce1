package pin

import (
	"path"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/walker"
)

// mapping returns the object's mapping node, looking through a document node; nil if there is none.
func mapping(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// identify reads apiVersion, kind, metadata.namespace and metadata.name (or, for a resource
// that has none, as Argo Workflows often are, metadata.generateName).
func identify(m *yaml.Node) ID {
	meta := walker.Lookup(m, "metadata")
	id := ID{
		APIVersion: walker.Scalar(walker.Lookup(m, "apiVersion")),
		Kind:       walker.Scalar(walker.Lookup(m, "kind")),
		Namespace:  walker.Scalar(walker.Lookup(meta, "namespace")),
		Name:       walker.Scalar(walker.Lookup(meta, "name")),
	}
	if id.Name == "" {
		id.Name = walker.Scalar(walker.Lookup(meta, "generateName"))
	}
	return id
}

// kustomizationFile reports whether a file is named as kustomize names a kustomization.
func kustomizationFile(file string) bool {
	switch path.Base(file) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return true
	}
	return false
}

// kptfile reports whether the object is a Kptfile, whose pipeline names the functions kpt runs.
func kptfile(id ID) bool {
	return id.Kind == "Kptfile" && strings.HasPrefix(id.APIVersion, "kpt.dev/")
}

// kptFunctions keeps, of what a local-config Kptfile holds, its function images and what was
// found wrong with them: the rest of a local-config object is left alone.
func kptFunctions(fields []walker.Field, problems []walker.Problem) ([]walker.Field, []walker.Problem) {
	fields = slices.DeleteFunc(fields, func(f walker.Field) bool { return f.Kind != walker.KptFunction })
	problems = slices.DeleteFunc(problems, func(p walker.Problem) bool { return !strings.HasPrefix(p.Path, "pipeline.") })
	return fields, problems
}

// itemID names the resource a field is in: the List item, if it is in one.
func itemID(id *ID, it *walker.Item) *ID {
	if it == nil {
		return id
	}
	return &ID{APIVersion: it.APIVersion, Kind: it.Kind, Namespace: it.Namespace, Name: it.Name}
}

// idOf is identify, for a use.
func idOf(m *yaml.Node) *ID {
	id := identify(m)
	return &id
}

// localConfig reports whether the object carries the config.kubernetes.io/local-config
// annotation with any value but "false", as kpt reads it: configuration for tools, not the cluster.
func localConfig(m *yaml.Node) bool {
	v := walker.Scalar(walker.Lookup(walker.Lookup(walker.Lookup(m, "metadata"), "annotations"), "config.kubernetes.io/local-config"))
	return v != "" && v != "false"
}

// placeOf is where n is in its file.
func placeOf(n *yaml.Node) place { return place{int32(line(n)), int32(column(n))} }

func line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

func column(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Column
}
