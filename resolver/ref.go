package resolver

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Parse checks that s is an image reference digester can resolve. The returned reference is
// normalised (docker.io/library/...) and is for talking to registries only: output is always built
// from the user's own text (see Pin).
func Parse(s string) (name.Reference, error) {
	if s != strings.TrimSpace(s) {
		return nil, fmt.Errorf("%q is not a valid image reference: it has leading or trailing spaces", s)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a valid image reference: %w", s, err)
	}
	if t, ok := ref.(name.Tag); ok && strings.HasSuffix(s, ":") || ok && t.TagStr() == "" {
		return nil, fmt.Errorf("%q is not a valid image reference: empty tag", s)
	}
	return ref, nil
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
