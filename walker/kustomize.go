package walker

import (
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// kustomizeImages reads the images: entries of a Kustomization or Component. An entry stands
// for newName (or name) with newTag, or with the tag written in newName; an entry with a digest
// is returned with it, so that the caller counts it as pinned.
func kustomizeImages(r *results, obj *yaml.Node) {
	list := lookup(obj, "images")
	if list == nil || list.Kind != yaml.SequenceNode {
		return
	}
	for i, e := range list.Content {
		path := "images[" + strconv.Itoa(i) + "]"
		e = deref(e)
		if e.Kind != yaml.MappingNode {
			r.problem(path, "is "+describe(e)+", want an image entry")
			continue
		}
		name, newName, newTag := scalar(lookup(e, "name")), scalar(lookup(e, "newName")), scalar(lookup(e, "newTag"))
		digest := scalar(lookup(e, "digest"))
		repo := newName
		if repo == "" {
			repo = name
		}
		ref := repo
		switch {
		case repo == "":
			r.problem(path, "has neither name nor newName")
			continue
		case lookup(e, "tagSuffix") != nil && digest == "":
			r.problem(path, "has a tagSuffix: the tag depends on each resource, so there is no one tag to pin")
			continue
		case newTag != "":
			ref += ":" + newTag
		case !hasTag(repo) && digest == "":
			r.problem(path, "has no newTag: the tag comes from each resource, so there is no one tag to pin here; the resources are pinned where they are")
			continue
		}
		if digest != "" {
			ref += "@" + digest
		}
		r.fields = append(r.fields, Field{Path: path, Image: ref, Node: e, Kind: KustomizeImage})
	}
}

// hasTag reports whether a repository reference ends in ":tag".
func hasTag(repo string) bool {
	return strings.LastIndex(repo, ":") > strings.LastIndex(repo, "/")
}

// setKey sets key to a string value in mapping m: in place if it exists, else after the key
// named after (at the end if there is none).
func setKey(m *yaml.Node, key, value, after string) {
	at := len(m.Content)
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch m.Content[i].Value {
		case key:
			m.Content[i+1].Value, m.Content[i+1].Tag, m.Content[i+1].Style = value, "!!str", 0
			return
		case after:
			at = i + 2
		}
	}
	kv := []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: value},
	}
	m.Content = append(m.Content[:at], append(kv, m.Content[at:]...)...)
}
