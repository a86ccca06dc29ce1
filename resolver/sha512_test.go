package resolver_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/faultregistry"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// TestSHA512Digests: a registry that names manifests by sha512 digests (one of the two algorithms
// the OCI image spec registers, and digester's one digest rule accepts) is read like one using
// sha256: a reference by sha512 digest is checked, an index named by one is read for its
// platforms, and a tag whose index the registry names by one is resolved for a platform, each
// manifest checked against its sha512 digest.
func TestSHA512Digests(t *testing.T) {
	// by512 maps a manifest's sha512 digest to its sha256 one, and tag512 a tag to its manifest's
	// sha512 digest; set once the manifests are pushed.
	type names struct{ by512, tag512 map[string]string }
	var n atomic.Pointer[names]
	n.Store(&names{})
	reg := registrytest.New(registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			prefix, ref, ok := strings.Cut(r.URL.Path, "/manifests/")
			nm := n.Load()
			switch d256, by512 := nm.by512[ref]; {
			case ok && by512:
				r = r.Clone(r.Context())
				r.URL.Path = prefix + "/manifests/" + d256
				faultregistry.Header(faultregistry.Any, "Docker-Content-Digest", ref)(next).ServeHTTP(w, r)
			case ok && nm.tag512[ref] != "":
				faultregistry.Header(faultregistry.Any, "Docker-Content-Digest", nm.tag512[ref])(next).ServeHTTP(w, r)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}))
	defer reg.Close()
	sums := func(body string) (string, string) {
		return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body))), fmt.Sprintf("sha512:%x", sha512.Sum512([]byte(body)))
	}
	nm := &names{by512: map[string]string{}, tag512: map[string]string{}}
	var children []string
	for _, arch := range []string{"amd64", "arm64"} {
		body := imageManifest(arch)
		putManifest(t, reg, "multi", arch, types.OCIManifestSchema1, body)
		d256, d512 := sums(body)
		nm.by512[d512] = d256
		children = append(children, d256)
	}
	index := indexManifest(entry{types.OCIManifestSchema1, children[0], "linux/amd64"}, entry{types.OCIManifestSchema1, children[1], "linux/arm64"})
	putManifest(t, reg, "multi", "v1", types.OCIImageIndex, index)
	index256, index512 := sums(index)
	nm.by512[index512], nm.tag512["v1"] = index256, index512
	n.Store(nm)
	reg.Reset()

	byDigest := reg.Host + "/multi@" + index512
	res := newResolver().Resolve(context.Background(), []string{byDigest})[byDigest]
	if diff := cmp.Diff(resolver.Result{Digest: index512}, res); diff != "" {
		t.Errorf("resolving %s (-want +got):\n%s", byDigest, diff)
	}

	got, err := newResolver().Platforms(context.Background(), byDigest)
	if diff := cmp.Diff(map[string]string{children[0]: "linux/amd64", children[1]: "linux/arm64"}, got); err != nil || diff != "" {
		t.Errorf("Platforms(%s): error %v, (-want +got):\n%s", byDigest, err, diff)
	}

	p, err := resolver.ParsePlatform("linux/arm64")
	if err != nil {
		t.Fatal(err)
	}
	tag := reg.Host + "/multi:v1"
	res = newResolver(resolver.WithPlatform(p)).Resolve(context.Background(), []string{tag})[tag]
	if diff := cmp.Diff(resolver.Result{Digest: children[1]}, res); diff != "" {
		t.Errorf("resolving %s for linux/arm64 (-want +got):\n%s", tag, diff)
	}
}
