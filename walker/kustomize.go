package walker

import (
	"strconv"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/imageref"
)

// KustomizeImages reads the images: entries of obj as those of a Kustomization, whatever its kind:
// for a kustomization.yaml written without apiVersion and kind, which only its file name tells
// apart (the caller knows it; Walk does this by itself for kind Kustomization and Component).
// Entries are returned as Walk returns fields: once each, and not when an anchor shares them with
// a place that is no image entry. An object whose aliases expand too far gives nothing here: Walk
// reports it.
func KustomizeImages(obj *yaml.Node) ([]Field, []Problem) {
	if obj = deref(obj); obj == nil || obj.Kind != yaml.MappingNode {
		return nil, nil
	}
	x := expand(obj)
	if !x.ok() {
		return nil, nil
	}
	var r results
	kustomizeImages(&r, obj)
	return x.finish(obj, r.fields, r.problems)
}

// kustomizeImages reads the images: entries of a Kustomization or Component. An entry stands
// for newName (or name) with newTag, or with the tag written in newName, and with @digest when it
// has a digest: such an entry is pinned, and kept, verified or refreshed as any pin is. An entry
// whose digest is not one digester can check (kustomize's own examples hold an abbreviated one)
// is left alone.
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
		digest := ""
		if d := lookup(e, "digest"); d != nil {
			if digest = scalar(d); !imageref.ValidDigest(digest) {
				continue
			}
		}
		repo := newName
		if repo == "" {
			repo = name
		}
		ref := repo
		switch {
		case repo == "":
			r.problem(path, "has neither name nor newName")
			continue
		case lookup(e, "tagSuffix") != nil:
			r.problem(path, "has a tagSuffix: the tag depends on each resource, so there is no one tag to pin")
			continue
		case newTag != "":
			ref += ":" + newTag
		case !imageref.HasTag(repo) && !imageref.HasDigest(repo) && digest == "":
			r.problem(path, "has no newTag: the tag comes from each resource, so there is no one tag to pin here; the resources are pinned where they are")
			continue
		}
		if digest != "" {
			ref = imageref.WithDigest(ref, digest)
		}
		r.fields = append(r.fields, Field{Path: path, Image: ref, Node: e, Kind: KustomizeImage})
	}
}

// setKey sets key to a string value in mapping m: in place if it exists, else after the key
// named after (at the end if there is none). The value is written as a text editor would write
// it: in its quotes if it has any, plain if it was a plain string, and, where it was null or is
// new, plain in a block mapping and in single quotes in a flow mapping.
func setKey(m *yaml.Node, key, value, after string) {
	style := yaml.Style(0)
	if m.Style&yaml.FlowStyle != 0 {
		style = yaml.SingleQuotedStyle
	}
	at := len(m.Content)
	for i := 0; i+1 < len(m.Content); i += 2 {
		switch m.Content[i].Value {
		case key:
			v := m.Content[i+1]
			switch {
			case v.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0:
				style = v.Style & (yaml.SingleQuotedStyle | yaml.DoubleQuotedStyle)
			case v.ShortTag() == "!!str":
				style = 0
			}
			v.Value, v.Tag, v.Style = value, "!!str", style
			return
		case after:
			at = i + 2
		}
	}
	kv := []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, Style: style},
	}
	m.Content = append(m.Content[:at], append(kv, m.Content[at:]...)...)
}
