package resolver_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func newResolver(opts ...resolver.Option) *resolver.Resolver {
	return resolver.New(append([]resolver.Option{resolver.WithKeychain(authn.NewMultiKeychain())}, opts...)...)
}

func TestResolve(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	want := map[string]string{}
	push := func(repo, tag string, d string, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		want[reg.Host+"/"+repo+":"+tag] = d
	}
	d, err := reg.PushImage("app/docker", "v1", types.DockerManifestSchema2)
	push("app/docker", "v1", d.String(), err)
	d, err = reg.PushImage("app/oci", "v1", types.OCIManifestSchema1)
	push("app/oci", "v1", d.String(), err)
	d, err = reg.PushIndex("multi/oci", "v1", types.OCIImageIndex)
	push("multi/oci", "v1", d.String(), err)
	d, err = reg.PushIndex("multi/docker", "v1", types.DockerManifestList)
	push("multi/docker", "v1", d.String(), err)
	reg.Reset()

	var refs []string
	for ref := range want {
		refs = append(refs, ref, ref, ref) // duplicates are looked up once
	}
	r := newResolver()
	res := r.Resolve(context.Background(), refs)
	got := map[string]string{}
	for ref, rr := range res {
		if rr.Err != nil {
			t.Fatalf("%s: %v", ref, rr.Err)
		}
		got[ref] = rr.Digest
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("digests (-want +got):\n%s", diff)
	}
	if n := reg.Count(http.MethodHead, "manifest"); n != len(want) {
		t.Errorf("manifest HEADs = %d, want %d (one per distinct reference)", n, len(want))
	}
	if n := reg.Count(http.MethodGet, "manifest"); n != 0 {
		t.Errorf("manifest GETs = %d, want 0 when HEAD works", n)
	}
	if n := reg.Count("", "ping"); n != 1 {
		t.Errorf("pings = %d, want 1 per registry", n)
	}
}

func TestResolveErrors(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	if _, err := reg.PushImage("app", "v1", types.DockerManifestSchema2); err != nil {
		t.Fatal(err)
	}
	r := newResolver()
	missing := reg.Host + "/app:nope"
	res := r.Resolve(context.Background(), []string{missing})
	err := res[missing].Err
	if err == nil || !strings.Contains(err.Error(), `tag not found: "nope" in repository app on registry `+reg.Host) {
		t.Errorf("missing tag: got %v", err)
	}
}

// TestResolveDigest: a reference with a digest resolves to that digest when the repository serves
// it (one HEAD by digest), and to a plain-words error when it does not, with or without a tag.
func TestResolveDigest(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	d, err := reg.PushImage("app", "v1", types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	reg.Reset()
	fake := "sha256:" + strings.Repeat("0", 64)
	served, tagged := reg.Host+"/app@"+d.String(), reg.Host+"/app:v1@"+d.String()
	unserved, unservedTagged := reg.Host+"/app@"+fake, reg.Host+"/app:v1@"+fake
	res := newResolver().Resolve(context.Background(), []string{served, tagged, unserved, unservedTagged})
	got := map[string]string{}
	for ref, rr := range res {
		got[ref] = rr.Digest
		if rr.Err != nil {
			got[ref] = rr.Err.Error()
		}
	}
	notServed := "digest not served: " + fake + " is not in repository app on registry " + reg.Host
	want := map[string]string{served: d.String(), tagged: d.String(), unserved: notServed, unservedTagged: notServed}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	// repo@d and repo:v1@d name one manifest: one HEAD each for the served and the fake digest.
	if n := reg.Count(http.MethodHead, "manifest"); n != 2 {
		t.Errorf("manifest HEADs = %d, want 2", n)
	}
}

// TestUnreachableOffline: when a registry cannot be reached and the process has no network but
// loopback (a kpt container function run without network), the error says how to give it one.
func TestUnreachableOffline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close() // nothing listens there now
	refused := "cannot connect to registry " + host + ": connection refused"
	for _, tc := range []struct {
		offline bool
		want    string
	}{
		{false, refused},
		{true, refused + " (digester sees no network but loopback: a container function needs `kpt fn eval --network` or `kpt fn render --allow-network`)"},
	} {
		restore := resolver.SetOffline(func() bool { return tc.offline })
		ref := host + "/app:v1"
		err := newResolver().Resolve(context.Background(), []string{ref})[ref].Err
		restore()
		if err == nil {
			t.Fatalf("offline=%v: no error", tc.offline)
		}
		if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
			t.Errorf("offline=%v: error (-want +got):\n%s", tc.offline, diff)
		}
	}
}

// TestMissingRepositoryOrTag: a missing tag and a missing repository are told apart (a HEAD has no
// body, so a tag list request asks), and the manifest is never fetched with a GET.
func TestMissingRepositoryOrTag(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	if _, err := reg.PushImage("team/app", "v1", types.DockerManifestSchema2); err != nil {
		t.Fatal(err)
	}
	reg.Reset()
	missingTag, missingRepo := reg.Host+"/team/app:v2", reg.Host+"/team/nope:v1"
	res := newResolver().Resolve(context.Background(), []string{missingTag, missingRepo})
	got := map[string]string{}
	for ref, rr := range res {
		got[ref] = rr.Err.Error()
	}
	want := map[string]string{
		missingTag:  `tag not found: "v2" in repository team/app on registry ` + reg.Host,
		missingRepo: "repository not found: registry " + reg.Host + " has no repository team/nope (or it is private: digester asked without credentials)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if n := reg.Count(http.MethodGet, "manifest"); n != 0 {
		t.Errorf("manifest GETs = %d, want 0", n)
	}
}

// TestMissingCredentialHelper: a docker config naming a credential helper that is not installed is
// said in those words, not in the docker client's.
func TestMissingCredentialHelper(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	cfg := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"credHelpers": {"`+reg.Host+`": "digester-missing"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfg)
	t.Setenv("PATH", t.TempDir())
	ref := reg.Host + "/team/app:v1"
	err := resolver.New().Resolve(context.Background(), []string{ref})[ref].Err
	want := "credential helper docker-credential-digester-missing is not installed: the docker config names it for registry " + reg.Host +
		", but it is not on PATH (install it, or remove it from credHelpers or credsStore in the docker config)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}
