package e2e_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
)

// TestPlatform pins multi-arch tags of the real registry to the image of one platform, and fails,
// naming both platforms, on a single-platform tag of another.
func TestPlatform(t *testing.T) {
	s := newSpace(t)
	digests := s.push(t, map[string]types.MediaType{
		"oci-index:1":   types.OCIImageIndex,
		"docker-list:1": types.DockerManifestList,
		"amd64-only:1":  types.OCIManifestSchema1,
	})
	// The arm64 image of each index, as pushed (realregistry seeds an index with repo:tag).
	arm64 := map[string]string{}
	for ref, mt := range map[string]types.MediaType{"oci-index:1": types.OCIImageIndex, "docker-list:1": types.DockerManifestList} {
		idx, err := registrytest.Index(mt, s.ns+"/"+ref)
		if err != nil {
			t.Fatal(err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range im.Manifests {
			if d.Platform.Architecture == "arm64" {
				arm64[ref] = d.Digest.String()
			}
		}
		if arm64[ref] == "" || arm64[ref] == digests[ref] {
			t.Fatalf("%s: no arm64 image distinct from the index", ref)
		}
	}
	input := func(refs ...string) []byte {
		in := "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" +
			"- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: app\n  spec:\n    containers:\n"
		for i, ref := range refs {
			in += "    - name: c" + string(rune('a'+i)) + "\n      image: " + s.image(ref) + "\n"
		}
		return []byte(in + "functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: digester}\n  data:\n    platform: linux/arm64\n")
	}

	out := run(t, env{}, input("oci-index:1", "docker-list:1"), t.TempDir(), digester)
	if out.code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", out.code, out.stderr)
	}
	want := []string{s.image("oci-index:1") + "@" + arm64["oci-index:1"], s.image("docker-list:1") + "@" + arm64["docker-list:1"]}
	if diff := cmp.Diff(want, outputImages(t, out.stdout)); diff != "" {
		t.Errorf("images pinned for linux/arm64 (-want +got):\n%s", diff)
	}
	// ping, then a HEAD and a GET of the index per reference
	if !strings.Contains(out.stdout, "(2 distinct references, 5 registry requests)") {
		t.Errorf("the summary does not count 5 requests for 2 multi-arch references:\n%s", out.stdout)
	}

	out = run(t, env{}, input("amd64-only:1", "oci-index:1"), t.TempDir(), digester)
	if out.code != 1 {
		t.Errorf("exit code %d, want 1", out.code)
	}
	wantErr := "cannot pin " + s.image("amd64-only:1") + `: tag "1" of repository ` + s.ns + "/amd64-only on registry " + reg.Host +
		" is a single-platform image for linux/amd64, not for platform linux/arm64"
	if !strings.Contains(out.stderr, wantErr) {
		t.Errorf("stderr does not say %q:\n%s", wantErr, out.stderr)
	}
	if diff := cmp.Diff([]string{s.image("amd64-only:1"), s.image("oci-index:1")}, outputImages(t, out.stdout)); diff != "" {
		t.Errorf("images after a failed run (-want +got):\n%s", diff)
	}
}
