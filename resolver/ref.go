package resolver

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Parse checks that s is an image reference digester can resolve. The returned reference is
// normalised (docker.io/library/...) and is for talking to registries only: output is always built
// from the user's own text (see Pin).
func Parse(s string) (name.Reference, error) {
	if why := invalidReason(s); why != "" {
		return nil, fmt.Errorf("%q is not a valid image reference: %s", s, why)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid image reference: %w", s, err)
	}
	return ref, nil
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
	rest, digest, pinned := strings.Cut(s, "@")
	if pinned && !digestRE.MatchString(digest) {
		return "a digest is sha256: followed by 64 lowercase hex digits"
	}
	if strings.HasSuffix(rest, ":") {
		return "the tag after ':' is empty"
	}
	repo := rest
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i] // drop the tag
	}
	if i := strings.Index(repo, "/"); i > 0 && strings.ContainsAny(repo[:i], ".:") || repo[:max(i, 0)] == "localhost" {
		repo = repo[i+1:] // drop the registry host, which may have capitals
	}
	if repo != strings.ToLower(repo) {
		return "repository names must be lowercase"
	}
	return ""
}

// HasDigest reports whether s already names a digest ("repo@sha256:..." or "repo:tag@sha256:...").
// Such references are left exactly as written and cost no request.
func HasDigest(s string) bool {
	return strings.Contains(s, "@")
}

// Pin returns the user's reference text with the digest appended: "nginx:1.27" and
// "sha256:abc..." give "nginx:1.27@sha256:abc...". The tag is kept and nothing is normalised.
func Pin(s, digest string) string {
	return s + "@" + digest
}
