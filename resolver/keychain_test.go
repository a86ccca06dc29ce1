package resolver_test

import (
	"context"
	"encoding/base64"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// TestGitHubToken: with GITHUB_TOKEN set, the default keychain sends it to ghcr.io, which here
// demands it, and sends no credentials to any other registry.
func TestGitHubToken(t *testing.T) {
	const token = "ghs_0123456789abcdefghijklmnopqrstuvwxyz"
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no docker config: the token is the only credential
	t.Setenv("GITHUB_TOKEN", token)
	t.Setenv("GITHUB_ACTOR", "octocat")
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("octocat:"+token))

	reg, digests, sent := demanding(t, "ghcr.io", want, "ghcr.io/acme/app:1", "quay.io/other/app:1")

	res := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), []string{"ghcr.io/acme/app:1", "quay.io/other/app:1"})
	got := map[string]string{}
	for ref, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v", ref, r.Err)
		}
		got[ref] = r.Digest
	}
	if diff := cmp.Diff(digests, got); diff != "" {
		t.Errorf("digests (-want +got):\n%s", diff)
	}
	// ghcr.io: the ping is asked without credentials, then the manifest with the token.
	wantAuth := map[string][]string{"ghcr.io": {"", want}, "quay.io": {"", ""}}
	if diff := cmp.Diff(wantAuth, sent()); diff != "" {
		t.Errorf("Authorization sent, by host (-want +got):\n%s", diff)
	}
}

// demanding starts an in-process registry that serves every host name (registrytest.Transport;
// one namespace for all, so repositories must differ between hosts) and pushes refs to it. From
// then on it answers 401 on host unless a request carries the Authorization want; sent returns the
// Authorization headers each host received since the pushes.
func demanding(t *testing.T, host, want string, refs ...string) (reg *registrytest.Registry, digests map[string]string, sent func() map[string][]string) {
	t.Helper()
	return demandingBeside(t, nil, host, want, refs...)
}

// demandingBeside is demanding with other services beside the registry: other, when not nil, is
// offered every request first, and answers those it returns true for; they are not recorded.
func demandingBeside(t *testing.T, other func(w http.ResponseWriter, r *http.Request) bool, host, want string, refs ...string) (reg *registrytest.Registry, digests map[string]string, sent func() map[string][]string) {
	t.Helper()
	var mu sync.Mutex
	armed := false // off while the test pushes
	auth := map[string][]string{}
	reg = registrytest.New(registrytest.WithTLS(), registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if other != nil && other(w, r) {
				return
			}
			mu.Lock()
			on := armed
			if on {
				auth[r.Host] = append(auth[r.Host], r.Header.Get("Authorization"))
			}
			mu.Unlock()
			if on && r.Host == host && r.Header.Get("Authorization") != want {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	t.Cleanup(reg.Close)
	digests = map[string]string{}
	for _, ref := range refs {
		repo, tag, _ := strings.Cut(ref, ":")
		d, err := reg.PushImage(repo, tag, types.OCIManifestSchema1)
		if err != nil {
			t.Fatal(err)
		}
		digests[ref] = d.String()
	}
	mu.Lock()
	armed = true
	mu.Unlock()
	return reg, digests, func() map[string][]string {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(auth)
	}
}

// TestGitHubKeychainOnlyGHCR: the token is for ghcr.io alone, and only when it is set.
func TestGitHubKeychainOnlyGHCR(t *testing.T) {
	for _, tc := range []struct {
		host, token string
		want        authn.AuthConfig
	}{
		{host: "ghcr.io", token: "tok", want: authn.AuthConfig{Username: "digester", Password: "tok"}},
		{host: "ghcr.io"},
		{host: "docker.pkg.github.com", token: "tok"},
		{host: "docker.io", token: "tok"},
		{host: "ghcr.io.evil.example", token: "tok"},
		{host: "ghcr.io:5000", token: "tok"},
	} {
		env := map[string]string{"GITHUB_TOKEN": tc.token}
		reg, err := name.NewRegistry(tc.host)
		if err != nil {
			t.Fatal(err)
		}
		a, err := resolver.GitHubKeychain(func(k string) string { return env[k] }).Resolve(reg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := authn.Authorization(context.Background(), a)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, *got); diff != "" {
			t.Errorf("%s with GITHUB_TOKEN %q (-want +got):\n%s", tc.host, tc.token, diff)
		}
	}
}
