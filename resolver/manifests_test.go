package resolver_test

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
)

// Manifests written by hand, for registries whose content a test controls to the byte.

// putManifest PUTs body as repo:ref (a tag or a digest) on the plain-HTTP registry reg, with media
// type mt, and returns its digest.
func putManifest(t *testing.T, reg *registrytest.Registry, repo, ref string, mt types.MediaType, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/%s", reg.Host, repo, ref), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", string(mt))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put %s/%s:%s: %s", reg.Host, repo, ref, resp.Status)
	}
	return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body)))
}

// imageManifest is an OCI image manifest whose digest depends on seed (its config blob is not
// pushed: an index lookup never reads it).
func imageManifest(seed string) string {
	return fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":2},"layers":[],"annotations":{"seed":%q}}`,
		types.OCIManifestSchema1, 0, seed)
}

// entry is one entry of an index: media type, digest and platform ("" for none).
type entry struct {
	mt       types.MediaType
	digest   string
	platform string
}

// indexManifest is an OCI index of entries.
func indexManifest(entries ...entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"schemaVersion":2,"mediaType":%q,"manifests":[`, types.OCIImageIndex)
	for i, e := range entries {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"mediaType":%q,"digest":%q,"size":2`, e.mt, e.digest)
		if e.platform != "" {
			p, err := v1.ParsePlatform(e.platform)
			if err != nil {
				panic(err)
			}
			fmt.Fprintf(&b, `,"platform":{"os":%q,"architecture":%q,"variant":%q}`, p.OS, p.Architecture, p.Variant)
		}
		b.WriteString("}")
	}
	b.WriteString("]}")
	return b.String()
}
