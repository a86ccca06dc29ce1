package resolver_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/faultregistry"
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
			platform: "linux/arm/v5", // a variant asked for is a variant required
			refs:     []string{ref("arm")},
			want: map[string]got{ref("arm"): {Err: `tag "v1" of repository arm on registry ` + reg.Host +
				" is a multi-arch index with no image for platform linux/arm/v5 (it has linux/arm/v6, linux/arm/v7)"}},
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

// nestedFixture is a registry holding indexes that list indexes, in repository "nested" (see
// TestNestedIndex), and the digests of its manifests by name.
func nestedFixture(t *testing.T) (*registrytest.Registry, map[string]string) {
	t.Helper()
	var hide atomic.Value // a digest the registry pretends not to have
	hide.Store("")
	reg := registrytest.New(registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if d := hide.Load().(string); d != "" && strings.HasSuffix(r.URL.Path, "/manifests/"+d) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	t.Cleanup(reg.Close)
	const repo = "nested"
	d := map[string]string{}
	put := func(name, ref string, mt types.MediaType, body string) string {
		d[name] = putManifest(t, reg, repo, ref, mt, body)
		return d[name]
	}
	img, idx := types.OCIManifestSchema1, types.OCIImageIndex
	amd64 := put("amd64", "amd64", img, imageManifest("amd64"))
	arm64 := put("arm64", "arm64", img, imageManifest("arm64"))
	attestation := put("attestation", "attestation", img, imageManifest("attestation of arm64"))
	// arm64's index: the image and its attestation (unknown/unknown), as docker buildx pushes them.
	armIndex := put("arm64 index", "arm64-index", idx, indexManifest(entry{img, arm64, "linux/arm64"}, entry{img, attestation, "unknown/unknown"}))

	put("v1", "v1", idx, indexManifest(entry{img, amd64, "linux/amd64"}, entry{idx, armIndex, "linux/arm64"}))
	put("no platform", "no-platform", idx, indexManifest(entry{img, amd64, "linux/amd64"}, entry{idx, armIndex, ""}))
	// Two levels of nesting are followed, three are not.
	twice := put("twice inner", "twice-inner", idx, indexManifest(entry{idx, armIndex, "linux/arm64"}))
	put("twice", "twice", idx, indexManifest(entry{idx, twice, "linux/arm64"}))
	put("thrice", "thrice", idx, indexManifest(entry{idx, put("thrice inner", "thrice-inner", idx, indexManifest(entry{idx, twice, "linux/arm64"})), "linux/arm64"}))
	// An entry listed as an index that is an image.
	put("liar", "liar", idx, indexManifest(entry{img, amd64, "linux/amd64"}, entry{idx, arm64, "linux/arm64"}))
	// A nested index the registry does not serve (hidden once pushed).
	gone := put("gone inner", "gone-inner", idx, indexManifest(entry{img, arm64, "linux/arm64"}))
	put("gone", "gone", idx, indexManifest(entry{idx, gone, "linux/arm64"}))
	// Only an attestation for arm64, and an entry of a media type that is no image's.
	put("attested", "attested", idx, indexManifest(entry{img, amd64, "linux/amd64"}, entry{img, attestation, "unknown/unknown"},
		entry{"application/vnd.example.artifact.v1+json", arm64, "linux/arm64"}))
	// More nested indexes than digester reads for one lookup, none naming a platform.
	many := make([]entry, 9)
	for i := range many {
		many[i] = entry{idx, put(fmt.Sprint("many ", i), fmt.Sprint("many-", i), idx, indexManifest(entry{img, arm64, fmt.Sprintf("linux/arm/v%d", i)})), ""}
	}
	put("many", "many", idx, indexManifest(many...))
	hide.Store(gone)
	reg.Reset()
	return reg, d
}

// TestNestedIndex: with a platform, an index entry for that platform that is itself an index is
// read (hash-checked like every manifest) and its image for the platform pinned, up to two levels
// of nesting and eight nested indexes; deeper nesting, more nested indexes, an entry that is not
// the index it is listed as, and a nested index the registry does not serve are errors, never a
// pin to the entry's digest.
func TestNestedIndex(t *testing.T) {
	reg, d := nestedFixture(t)
	where := func(tag string) string { return `tag "` + tag + `" of repository nested on registry ` + reg.Host }
	type got struct {
		Digest string
		Cause  resolver.Cause
		Err    string
	}
	for _, tc := range []struct {
		tag, platform string
		want          got
		gets          int // manifest GETs
	}{
		{"v1", "linux/arm64", got{Digest: d["arm64"]}, 2},
		{"v1", "linux/arm64/v8", got{Digest: d["arm64"]}, 2},
		{"v1", "linux/amd64", got{Digest: d["amd64"]}, 1}, // the arm64 index is not read
		{"no-platform", "linux/arm64", got{Digest: d["arm64"]}, 2},
		{"no-platform", "linux/amd64", got{Digest: d["amd64"]}, 2}, // an index naming no platform may hold any
		{"v1", "linux/s390x", got{Cause: resolver.Platform, Err: where("v1") + " is a multi-arch index with no image for platform linux/s390x (it has linux/amd64, linux/arm64)"}, 1},
		{"twice", "linux/arm64", got{Digest: d["arm64"]}, 3},
		{"thrice", "linux/arm64", got{Cause: resolver.Platform, Err: where("thrice") + " nests indexes in indexes more than 2 deep: digester follows no deeper, so it pins none of them"}, 3},
		{"liar", "linux/arm64", got{Cause: resolver.BadResponse, Err: "registry " + reg.Host + " sent manifest " + d["arm64"] + ", listed by " + where("liar") + " as an index, that is not an index"}, 2},
		{"gone", "linux/arm64", got{Cause: resolver.NotFound, Err: "digest not served: " + d["gone inner"] + " is not in repository nested on registry " + reg.Host}, 2},
		{"many", "linux/arm/v7", got{Cause: resolver.Platform, Err: where("many") + " lists more than 8 nested indexes: digester reads no more of them, so it pins none of them"}, 9},
		{"attested", "linux/arm64", got{Cause: resolver.Platform, Err: where("attested") + " is a multi-arch index with no image for platform linux/arm64 (it has linux/amd64)"}, 1},
	} {
		t.Run(tc.tag+" "+tc.platform, func(t *testing.T) {
			p, err := resolver.ParsePlatform(tc.platform)
			if err != nil {
				t.Fatal(err)
			}
			reg.Reset()
			ref := reg.Host + "/nested:" + tc.tag
			res := newResolver(resolver.WithPlatform(p)).Resolve(context.Background(), []string{ref})[ref]
			g := got{Digest: res.Digest}
			if res.Err != nil {
				g.Cause, g.Err = resolver.CauseOf(res.Err), res.Err.Error()
			}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if n := reg.Count(http.MethodGet, "manifest"); n != tc.gets {
				t.Errorf("manifest GETs = %d, want %d", n, tc.gets)
			}
		})
	}
}

// TestPlatformsByTheSelectionRule: Platforms lists what platform selection may pin and nothing
// else: no unknown/unknown attestation, no entry of another media type, and the images of a
// nested index rather than the index.
func TestPlatformsByTheSelectionRule(t *testing.T) {
	reg, d := nestedFixture(t)
	for _, tc := range []struct {
		tag  string
		want map[string]string
	}{
		{"attested", map[string]string{d["amd64"]: "linux/amd64"}},
		{"arm64 index", map[string]string{d["arm64"]: "linux/arm64"}},
		{"v1", map[string]string{d["amd64"]: "linux/amd64", d["arm64"]: "linux/arm64"}},
		{"twice", map[string]string{d["arm64"]: "linux/arm64"}},
		{"amd64", map[string]string{}}, // an image
	} {
		got, err := newResolver().Platforms(context.Background(), reg.Host+"/nested@"+d[tc.tag])
		if err != nil {
			t.Errorf("%s: %v", tc.tag, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Platforms of %s (-want +got):\n%s", tc.tag, diff)
		}
	}
	_, err := newResolver().Platforms(context.Background(), reg.Host+"/nested@"+d["thrice"])
	if want := "manifest " + d["thrice"] + " of repository nested on registry " + reg.Host +
		" nests indexes in indexes more than 2 deep: digester follows no deeper, so it pins none of them"; fmt.Sprint(err) != want {
		t.Errorf("Platforms of thrice: got %v, want %s", err, want)
	}
	_, err = newResolver().Platforms(context.Background(), reg.Host+"/nested:v1")
	if want := reg.Host + "/nested:v1 does not name a digest"; fmt.Sprint(err) != want || resolver.CauseOf(err) != resolver.Invalid {
		t.Errorf("Platforms of a tag: got %v (%v), want %s (invalid)", err, resolver.CauseOf(err), want)
	}
}

// TestImageWithoutPlatform: a single-platform image whose config names no os and architecture is
// refused for a platform in words that say so.
func TestImageWithoutPlatform(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(reg.Host + "/bare:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithTransport(reg.Transport())); err != nil {
		t.Fatal(err)
	}
	p, err := resolver.ParsePlatform("linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	res := newResolver(resolver.WithPlatform(p)).Resolve(context.Background(), []string{tag.String()})[tag.String()]
	want := `tag "v1" of repository bare on registry ` + reg.Host +
		" is a single-platform image whose config names no platform (no os and architecture): digester cannot tell whether it is for platform linux/amd64"
	if res.Err == nil || res.Err.Error() != want || resolver.CauseOf(res.Err) != resolver.Platform {
		t.Errorf("got digest %q, error %v (%v)\nwant error %s (platform)", res.Digest, res.Err, resolver.CauseOf(res.Err), want)
	}
}

// TestPlatformIndexTooLarge: an index (or config) larger than any manifest may be is not read past
// the bound, and is reported as what it is, not as content that fails its digest.
func TestPlatformIndexTooLarge(t *testing.T) {
	var sent atomic.Int64
	reg, ref, digest := faulty(t, faultregistry.Always(faultregistry.Manifest(http.MethodGet),
		faultregistry.Endless("application/vnd.oci.image.index.v1+json", &sent)))
	p, err := resolver.ParsePlatform("linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	res := resolveOne(t, context.Background(), fast(resolver.WithPlatform(p), resolver.WithTimeout(5*time.Second)), ref)
	wantError(t, res, "registry "+reg.Host+" sent more than 4 MiB for manifests "+digest+" of repository app: refusing to read it")
	if c := resolver.CauseOf(res.Err); c != resolver.BadResponse {
		t.Errorf("cause %v, want bad_response", c)
	}
}
