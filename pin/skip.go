package pin

import (
	"strings"

	"github.com/digester/digester/resolver"
)

// hasPrefix reports whether image matches one of the skip prefixes. A prefix matches the
// reference as written and its normalised name, in both spellings of Docker Hub ("nginx:1.27" is
// also "docker.io/library/nginx:1.27" and "index.docker.io/library/nginx:1.27"), and only on a
// boundary: the prefix is the whole reference, ends in "/" or ":", or is followed by "/", ":" or
// "@". So "nginx" skips nginx:1.27 and nginx/exporter, not nginx-ingress; "docker.io/" skips
// every Docker Hub image however it is written.
func hasPrefix(image string, prefixes []string) bool {
	if len(prefixes) == 0 {
		return false
	}
	forms := []string{image}
	if ref, err := resolver.Parse(image); err == nil {
		full := ref.Name()
		forms = append(forms, full)
		if rest, ok := strings.CutPrefix(full, "index.docker.io/"); ok {
			forms = append(forms, "docker.io/"+rest)
		}
	}
	for _, p := range prefixes {
		for _, f := range forms {
			if matchesPrefix(f, p) {
				return true
			}
		}
	}
	return false
}

// matchesPrefix reports whether p is a prefix of ref that ends on a path boundary.
func matchesPrefix(ref, p string) bool {
	if p == "" || !strings.HasPrefix(ref, p) {
		return false
	}
	if len(ref) == len(p) || strings.HasSuffix(p, "/") || strings.HasSuffix(p, ":") {
		return true
	}
	return strings.ContainsRune("/:@", rune(ref[len(p)]))
}
