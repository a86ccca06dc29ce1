package walker

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// ociSource reads the artifact a Flux OCIRepository pulls: spec.url (oci://host/repo) and
// spec.ref. Flux pulls ref.digest if set, else the newest tag in ref.semver's range, else
// ref.tag, else latest; digester pins ref.tag with ref.digest and leaves a semver range alone.
func ociSource(_ *Walker, r *results, spec *yaml.Node, path string) {
	if spec.Kind != yaml.MappingNode {
		return
	}
	u := lookup(spec, "url")
	if u == nil || isNull(u) {
		return
	}
	repo, ok := strings.CutPrefix(scalar(u), "oci://")
	if !ok || u.ShortTag() != "!!str" {
		r.problemAt(u, join(path, "url"), "is not an oci:// URL, as Flux wants one")
		return
	}
	rpath := join(path, "ref")
	ref := lookup(spec, "ref")
	switch {
	case ref == nil || isNull(ref):
		r.problemAt(spec, rpath, fmt.Sprintf("is not set, so Flux pulls %s:latest, whichever it is; set %s.tag for digester to pin it", repo, rpath))
		return
	case ref.Kind != yaml.MappingNode:
		r.problemAt(ref, rpath, fmt.Sprintf("is %s, want a mapping", describe(ref)))
		return
	}
	digest, semver, tag := scalar(lookup(ref, "digest")), scalar(lookup(ref, "semver")), scalar(lookup(ref, "tag"))
	image := repo
	switch {
	case digest != "":
		if tag != "" && semver == "" {
			image += ":" + tag
		}
		image += "@" + digest
	case semver != "":
		r.problems = append(r.problems, Problem{Kind: Floating, Path: join(rpath, "semver"), Image: repo, Node: ref, Message: fmt.Sprintf(
			"left alone: %s follows the semver range %q, so Flux picks its tag and there is no one tag to pin", repo, semver)})
		return
	case tag == "":
		r.problemAt(ref, join(rpath, "tag"), fmt.Sprintf("is not set, so Flux pulls %s:latest, whichever it is; set it for digester to pin it", repo))
		return
	default:
		image += ":" + tag
	}
	r.fields = append(r.fields, Field{Path: rpath, Image: image, Node: ref, Kind: OCIRepositoryRef})
}
