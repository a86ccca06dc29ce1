package resolver

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/digester/digester/imageref"
)

// Parse checks that s is an image reference digester can resolve. The returned reference is
// normalised (docker.io/library/...) and is for talking to registries only: output is always built
// from the user's own text (see Pin). Every spelling of Docker Hub's host (Docker.io,
// docker.io., registry-1.docker.io; see imageref.CanonicalRegistry) is Docker Hub, with its
// implicit library/ namespace. An error is an *Error of Cause Invalid.
func Parse(s string) (name.Reference, error) {
	if why := invalidReason(s); why != "" {
		return nil, invalid(s, why)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, invalid(s, err.Error())
	}
	if host, rest := imageref.SplitHost(s); host != "" && imageref.CanonicalRegistry(host) == imageref.DockerHub {
		if hub, err := name.ParseReference(imageref.DockerHub + "/" + rest); err == nil {
			ref = hub // it parsed with another host name, so it parses with this one
		}
	}
	return ref, nil
}

func invalid(s, why string) *Error {
	return &Error{Cause: Invalid, msg: fmt.Sprintf("%q is not a valid image reference: %s", s, why)}
}

// templateRE matches the placeholders of template tools: envsubst ${IMAGE} and $IMAGE, Tekton
// $(params.image), Helm, Argo and Go templates {{.Values.image}}.
var templateRE = regexp.MustCompile(`\$\{[^}]*\}|\$\([^)]*\)|\{\{.*?\}\}|\$[A-Za-z_][A-Za-z0-9_]*`)

// Template returns the first template variable in s ("${IMAGE}", "$(params.image)",
// "{{inputs.parameters.image}}"), or "" if s has none. No image reference can hold one: the value
// is a template to be filled in, not an image digester can look up.
func Template(s string) string {
	return templateRE.FindString(s)
}

// invalidReason names the commonest mistakes in plain words; "" if none is found.
func invalidReason(s string) string {
	if strings.TrimSpace(s) == "" {
		return "it is empty"
	}
	if t := Template(s); t != "" {
		return "it holds an unexpanded template variable, " + t
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "it contains white space"
	}
	if imageref.HasDigest(s) {
		if _, _, d := imageref.Split(s); !imageref.ValidDigest(d) {
			if strings.HasPrefix(d, "sha512:") {
				return "a sha512 digest is sha512: followed by 128 lowercase hex digits"
			}
			return "a digest is sha256: followed by 64 lowercase hex digits"
		}
	}
	rest, _, _ := strings.Cut(s, "@")
	if strings.HasSuffix(rest, ":") {
		return "the tag after ':' is empty"
	}
	_, path := imageref.SplitHost(imageref.Repository(s)) // the registry host may have capitals
	if path != strings.ToLower(path) {
		return "repository names must be lowercase"
	}
	return ""
}

// HasDigest reports whether s already names a digest ("repo@sha256:..." or "repo:tag@sha256:...").
// Such references are left exactly as written and cost no request. See imageref.HasDigest.
func HasDigest(s string) bool {
	return imageref.HasDigest(s)
}

// Pin returns the user's reference text with the digest appended: "nginx:1.27" and
// "sha256:abc..." give "nginx:1.27@sha256:abc...". The tag is kept and nothing is normalised.
// See imageref.WithDigest.
func Pin(s, digest string) string {
	return imageref.WithDigest(s, digest)
}
