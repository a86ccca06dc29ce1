package resolver_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/digester/digester/resolver"
)

// FuzzReference: Parse, HasDigest and Pin never panic; a reference Parse accepts without a digest
// is a tag (Resolve relies on it), and Pin(s, d) keeps s as written, parses as a digest reference
// whose digest is d, and is itself recognised as pinned. More seeds are checked in under
// testdata/fuzz/FuzzReference.
func FuzzReference(f *testing.F) {
	for _, s := range []string{
		"nginx", "nginx:1.27", "library/nginx:latest", "docker.io/library/nginx:1.27",
		"localhost:5000/app:v1", "127.0.0.1:5000/team/app:v1", "[::1]:5000/app:v1",
		"gcr.io/distroless/static:nonroot", "Registry.Example.com/app:v1", "registry.example.com:443/a/b/c:1.0-rc.1_x",
		"nginx:1.27@sha256:" + strings.Repeat("a", 64), "nginx@sha256:" + strings.Repeat("0", 64),
		"nginx@sha512:abc", "nginx:", "NGINX:1", "nginx:1 ", "", "@", ":", "/", "a//b", "a:b:c", "-a", "a_b",
		"ghcr.io/ACME/app:v1", "localhost/app", "a:" + strings.Repeat("t", 129),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pinned := resolver.HasDigest(s)
		ref, err := resolver.Parse(s)
		if err != nil {
			if ref != nil {
				t.Fatalf("Parse(%q) gave both a reference and error %v", s, err)
			}
			return
		}
		if pinned {
			return
		}
		if _, ok := ref.(name.Tag); !ok {
			t.Fatalf("Parse(%q) = %T, want a name.Tag for a reference without a digest", s, ref)
		}
		sum := sha256.Sum256([]byte(s))
		d := "sha256:" + hex.EncodeToString(sum[:])
		out := resolver.Pin(s, d)
		if !strings.HasPrefix(out, s) {
			t.Fatalf("Pin(%q) = %q, which does not start with the reference as written", s, out)
		}
		if !resolver.HasDigest(out) {
			t.Fatalf("HasDigest(Pin(%q)) = false", s)
		}
		pr, err := name.ParseReference(out)
		if err != nil {
			t.Fatalf("Pin(%q) = %q, which does not parse: %v", s, out, err)
		}
		dr, ok := pr.(name.Digest)
		if !ok {
			t.Fatalf("Pin(%q) = %q parses as %T, want name.Digest", s, out, pr)
		}
		if dr.DigestStr() != d {
			t.Fatalf("Pin(%q) = %q has digest %q, want %q", s, out, dr.DigestStr(), d)
		}
		back, err := resolver.Parse(out)
		if err != nil {
			t.Fatalf("Parse(Pin(%q)) = %v; a pinned reference must stay valid", s, err)
		}
		// The repository as digester reads it: a host name in any case that is Docker Hub's is
		// Docker Hub (DNS names ignore case), which go-containerregistry's parser alone does not
		// know ("doCker.io/00" is its own registry to it).
		if back.Context().Name() != ref.Context().Name() {
			t.Fatalf("Pin(%q) names repository %q, the reference %q", s, back.Context().Name(), ref.Context().Name())
		}
	})
}
