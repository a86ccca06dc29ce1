package resolver_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// childDigests returns the digest of each image of registrytest's index for seed, by os/arch.
func childDigests(t *testing.T, mt types.MediaType, seed string) map[string]string {
	t.Helper()
	idx, err := registrytest.Index(mt, seed)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range im.Manifests {
		out[d.Platform.OS+"/"+d.Platform.Architecture] = d.Digest.String()
	}
	return out
}

// TestPlatform resolves multi-arch and single-platform tags for one platform and checks the
// digests, the errors and what each lookup cost.
func TestPlatform(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	single, err := reg.PushImage("app", "v1", types.DockerManifestSchema2) // linux/amd64
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ repo string }{{"multi/oci"}, {"multi/docker"}} {
		mt := types.OCIImageIndex
		if p.repo == "multi/docker" {
			mt = types.DockerManifestList
		}
		if _, err := reg.PushIndex(p.repo, "v1", mt); err != nil {
			t.Fatal(err)
		}
	}
	oci := childDigests(t, types.OCIImageIndex, "multi/oci:v1")
	docker := childDigests(t, types.DockerManifestList, "multi/docker:v1")

	// A Windows index with two OS versions of one architecture.
	var adds []mutate.IndexAddendum
	winDigests := map[string]string{}
	for _, osv := range []string{"10.0.17763", "10.0.20348"} {
		img, err := registrytest.Image(types.OCIManifestSchema1, "win:"+osv)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		winDigests[osv] = d.String()
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: osv},
		}})
	}
	win, err := name.NewTag(reg.Host + "/win:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(win, mutate.AppendManifests(empty.Index, adds...), remote.WithTransport(reg.Transport())); err != nil {
		t.Fatal(err)
	}

	// A 32-bit ARM index listing v6 before v7: linux/arm means v7, whatever the order.
	adds = nil
	armDigests := map[string]string{}
	for _, variant := range []string{"v6", "v7"} {
		img, err := registrytest.Image(types.OCIManifestSchema1, "arm:"+variant)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		armDigests[variant] = d.String()
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: "arm", Variant: variant},
		}})
	}
	arm, err := name.NewTag(reg.Host + "/arm:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(arm, mutate.AppendManifests(empty.Index, adds...), remote.WithTransport(reg.Transport())); err != nil {
		t.Fatal(err)
	}

	ref := func(repo string) string { return reg.Host + "/" + repo + ":v1" }
	type got struct{ Digest, Err string }
	type cost struct{ ManifestHEAD, ManifestGET, BlobGET int }
	for _, tc := range []struct {
		platform string
		refs     []string
		want     map[string]got
		wantCost cost
	}{
		{
			platform: "linux/arm64",
			refs:     []string{ref("multi/oci"), ref("multi/docker")},
			want:     map[string]got{ref("multi/oci"): {Digest: oci["linux/arm64"]}, ref("multi/docker"): {Digest: docker["linux/arm64"]}},
			wantCost: cost{ManifestHEAD: 2, ManifestGET: 2}, // one GET more per multi-arch reference
		},
		{
			platform: "linux/arm64/v8", // the index says no variant, which for arm64 means v8
			refs:     []string{ref("multi/oci")},
			want:     map[string]got{ref("multi/oci"): {Digest: oci["linux/arm64"]}},
			wantCost: cost{ManifestHEAD: 1, ManifestGET: 1},
		},
		{
			platform: "linux/amd64",
			refs:     []string{ref("multi/docker"), ref("app")},
			want:     map[string]got{ref("multi/docker"): {Digest: docker["linux/amd64"]}, ref("app"): {Digest: single.String()}},
			wantCost: cost{ManifestHEAD: 2, ManifestGET: 2, BlobGET: 1}, // a single-platform image: its config says its platform
		},
		{
			platform: "linux/arm64",
			refs:     []string{ref("app")},
			want: map[string]got{ref("app"): {Err: `tag "v1" of repository app on registry ` + reg.Host +
				" is a single-platform image for linux/amd64, not for platform linux/arm64"}},
			wantCost: cost{ManifestHEAD: 1, ManifestGET: 1, BlobGET: 1},
		},
		{
			platform: "linux/s390x",
			refs:     []string{ref("multi/oci")},
			want: map[string]got{ref("multi/oci"): {Err: `tag "v1" of repository multi/oci on registry ` + reg.Host +
				" is a multi-arch index with no image for platform linux/s390x (it has linux/amd64, linux/arm64)"}},
			wantCost: cost{ManifestHEAD: 1, ManifestGET: 1},
		},
		{
			platform: "linux/arm", // no variant asked: v7, the default, though v6 is listed first
			refs:     []string{ref("arm")},
			want:     map[string]got{ref("arm"): {Digest: armDigests["v7"]}},
			wantCost: cost{ManifestHEAD: 1, ManifestGET: 1},
		},
		{
			platform: "linux/arm/v6",
			refs:     []string{ref("arm")},
			want:     map[string]got{ref("arm"): {Digest: armDigests["v6"]}},
			wantCost: cost{ManifestHEAD: 1, ManifestGET: 1},
		},
		{
			platform: "windows/amd64:10.0.20348",
			refs:     []string{ref("win")},
			want:     map[string]got{ref("win"): {Digest: winDigests["10.0.20348"]}},
			wantCost: cost{ManifestHEAD: 1, ManifestGET: 1},
		},
		{
			platform: "windows/amd64", // any OS version: the first listed
			refs:     []string{ref("win")},
			want:     map[string]got{ref("win"): {Digest: winDigests["10.0.17763"]}},
			wantCost: cost{ManifestHEAD: 1, ManifestGET: 1},
		},
	} {
		t.Run(tc.platform, func(t *testing.T) {
			p, err := resolver.ParsePlatform(tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			reg.Reset()
			res := newResolver(resolver.WithPlatform(p)).Resolve(context.Background(), tc.refs)
			gotRes := map[string]got{}
			for ref, rr := range res {
				g := got{Digest: rr.Digest}
				if rr.Err != nil {
					g.Err = rr.Err.Error()
				}
				gotRes[ref] = g
			}
			if diff := cmp.Diff(tc.want, gotRes); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			gotCost := cost{
				ManifestHEAD: reg.Count(http.MethodHead, "manifest"),
				ManifestGET:  reg.Count(http.MethodGet, "manifest"),
				BlobGET:      reg.Count(http.MethodGet, "blob"),
			}
			if diff := cmp.Diff(tc.wantCost, gotCost); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want v1.Platform
		err  string
	}{
		{in: "linux/amd64", want: v1.Platform{OS: "linux", Architecture: "amd64"}},
		{in: "linux/arm64/v8", want: v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{in: "windows/amd64:10.0.20348", want: v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}},
		{in: "linux/x86_64", err: `platform "linux/x86_64": unknown architecture "x86_64" (known: 386, amd64, arm, arm64, loong64, mips, mips64, mips64le, mipsle, ppc64, ppc64le, riscv64, s390x, wasm)`},
		{in: "amd64", err: `platform "amd64": unknown operating system "amd64" (known: aix, android, darwin, dragonfly, freebsd, illumos, ios, js, linux, netbsd, openbsd, plan9, solaris, wasip1, windows)`},
		{in: "linux/arm/v7/x", err: `platform "linux/arm/v7/x": too many slashes in platform spec: linux/arm/v7/x`},
	} {
		got, err := resolver.ParsePlatform(tc.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if diff := cmp.Diff([]any{tc.want, tc.err}, []any{got, gotErr}); diff != "" {
			t.Errorf("ParsePlatform(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}
