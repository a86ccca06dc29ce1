package walker

import (
	"fmt"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// HelmValues returns the split images of a Helm chart's values file (see HelmImage), which the
// caller knows to be one (a values*.yaml beside a Chart.yaml); nothing when presets are off.
func (w *Walker) HelmValues(obj *yaml.Node) ([]Field, []Problem) {
	var r results
	if obj = deref(obj); w.presets && obj != nil {
		helmValues(w, &r, obj, "")
	}
	return r.fields, r.problems
}

// Kustomization reads obj as a Kustomization, whatever its kind (a kustomization.yaml written
// without apiVersion and kind, which only its file name tells apart): its images: entries and,
// with presets on, the values of its helmCharts.
func (w *Walker) Kustomization(obj *yaml.Node) ([]Field, []Problem) {
	fields, problems := KustomizeImages(obj)
	var r results
	if obj = deref(obj); obj != nil && obj.Kind == yaml.MappingNode {
		w.helmCharts(&r, obj)
	}
	return append(fields, r.fields...), append(problems, r.problems...)
}

// helmCharts reads the valuesInline of each of a Kustomization's helmCharts.
func (w *Walker) helmCharts(r *results, obj *yaml.Node) {
	charts := lookup(obj, "helmCharts")
	if !w.presets || charts == nil || charts.Kind != yaml.SequenceNode {
		return
	}
	for i, c := range charts.Content {
		if v := lookup(c, "valuesInline"); v != nil {
			helmValues(w, r, v, "helmCharts["+strconv.Itoa(i)+"].valuesInline")
		}
	}
}

// helmValues reads every split image in a tree of Helm values. Aliases are not followed: what
// an alias names is read where it is written.
func helmValues(_ *Walker, r *results, n *yaml.Node, path string) {
	scanValues(r, n, path, 0)
}

func scanValues(r *results, n *yaml.Node, path string, depth int) {
	if depth > maxDepth {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		if splitImage(r, n, path) {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode {
				at := n.Content[i].Value
				if path != "" {
					at = path + "." + at
				}
				scanValues(r, v, at, depth+1)
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			scanValues(r, c, path+"["+strconv.Itoa(i)+"]", depth+1)
		}
	}
}

// splitImage reads m as an image split into registry, repository, tag and digest, the way most
// charts take one, and reports whether it is one: a string repository and a scalar tag (a
// number such as 1.27 is read as written). It is a field if it has a digest key; without one,
// or with an empty tag beside a digest key, it is reported and left alone. A tag that carries
// "@digest" itself is a pin already.
func splitImage(r *results, m *yaml.Node, path string) bool {
	repo, tag := lookup(m, "repository"), lookup(m, "tag")
	if repo == nil || tag == nil || repo.Kind != yaml.ScalarNode || repo.ShortTag() != "!!str" || tag.Kind != yaml.ScalarNode {
		return false
	}
	registry, digest := lookup(m, "registry"), lookup(m, "digest")
	if registry != nil && registry.Kind != yaml.ScalarNode {
		return false
	}
	ref := strings.TrimSpace(repo.Value)
	if ref == "" {
		return true // the chart's default repository: nothing to pin here
	}
	if reg := scalar(registry); reg != "" {
		ref = reg + "/" + ref
	}
	dpath := join(path, "digest")
	switch t := scalar(tag); {
	case t == "" && digest != nil:
		r.problemAt(tag, join(path, "tag"), fmt.Sprintf("is empty beside a digest key: the chart picks the tag (often its appVersion), so digester has no tag of %s to pin; set it", ref))
		return true
	case t == "":
		return true // the chart picks the tag; no digest key asks for a pin
	case strings.Contains(t, "@"):
		ref += ":" + t
	case digest == nil:
		ref += ":" + t
		r.problems = append(r.problems, Problem{Kind: NoDigestKey, Path: path, Image: ref, Node: m, Message: fmt.Sprintf(
			"left alone: the image %s has no digest key to pin it in; if the chart reads one, add `digest: \"\"` at %s", ref, dpath)})
		return true
	case digest.Kind != yaml.ScalarNode:
		r.problemAt(digest, dpath, fmt.Sprintf("is %s, want a string", describe(digest)))
		return true
	default:
		ref += ":" + t
		if d := scalar(digest); d != "" {
			ref += "@" + d
		}
	}
	r.fields = append(r.fields, Field{Path: path, Image: ref, Node: m, Kind: HelmImage})
	return true
}

// setHelmImage writes digest into a split image: into its tag, after "@", when the tag carries
// one, else into its digest key.
func setHelmImage(m *yaml.Node, digest string) {
	if tag := lookup(m, "tag"); tag != nil && strings.Contains(tag.Value, "@") {
		t, _, _ := strings.Cut(tag.Value, "@")
		tag.Value, tag.Tag = t+"@"+digest, "!!str"
		return
	}
	setKey(m, "digest", digest, "tag")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
