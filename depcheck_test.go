package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportBoundaries guards the layout the design gives, in the style of go-containerregistry's
// depcheck_test.go: the core (pin) knows no front end and no configuration parser; walker knows
// nothing of registries, resolver nothing of YAML, imageref (reference syntax) nothing at all; the
// webhook's handler links no cluster client.
// Each package's whole dependency graph (go list -deps) is checked, not only its imports.
func TestImportBoundaries(t *testing.T) {
	const mod = "github.com/digester/digester"
	frontEnds := []string{mod, mod + "/cli", mod + "/config", mod + "/webhook", mod + "/podcreds", mod + "/digestcache", mod + "/cmd/", mod + "/internal/krmio"}
	for _, tc := range []struct {
		pkg       string
		forbidden []string // import paths, or prefixes ending in "/"
	}{
		{"./imageref", append(frontEnds, mod+"/pin", mod+"/walker", mod+"/resolver", "github.com/google/go-containerregistry/", "sigs.k8s.io/")},
		{"./pin", append(frontEnds, "k8s.io/client-go/", "github.com/prometheus/")},
		{"./walker", append(frontEnds, mod+"/pin", mod+"/resolver", "github.com/google/go-containerregistry/")},
		{"./splice", append(frontEnds, mod+"/pin", mod+"/walker", mod+"/resolver", "github.com/google/go-containerregistry/", "sigs.k8s.io/kustomize/")},
		{"./resolver", append(frontEnds, mod+"/pin", mod+"/walker", "sigs.k8s.io/kustomize/kyaml/", "go.yaml.in/yaml/v3")},
		{"./config", []string{mod, mod + "/cli", mod + "/webhook", mod + "/podcreds", mod + "/cmd/", "k8s.io/client-go/"}},
		{"./webhook", []string{mod + "/config", mod + "/cli", mod + "/podcreds", "k8s.io/client-go/", "k8s.io/apimachinery/"}},
		{".", []string{mod + "/webhook", mod + "/podcreds", "k8s.io/client-go/", "github.com/prometheus/"}},
	} {
		out, err := exec.Command("go", "list", "-deps", tc.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tc.pkg, err)
		}
		deps := strings.Fields(string(out))
		for _, f := range tc.forbidden {
			bad := slices.IndexFunc(deps, func(d string) bool {
				return d == f || strings.HasSuffix(f, "/") && strings.HasPrefix(d, f)
			})
			if bad >= 0 {
				t.Errorf("%s depends on %s, which it must not", tc.pkg, deps[bad])
			}
		}
	}
}
