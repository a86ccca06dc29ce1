package resolver_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// tokenServer makes a registry demand bearer tokens that name each repository, as Docker Hub and
// most cloud registries do: the token endpoint (/token) grants the scopes asked for, and a manifest
// request whose token lacks its repository gets a 401 challenge naming the scope it needs. It
// counts the exchanges and the most scopes one exchange asked for. With jitter, each token answer
// is held back a random while, so that concurrent exchanges finish in any order.
type tokenServer struct {
	exchanges atomic.Int64
	maxScopes atomic.Int64
	jitter    time.Duration
}

func (ts *tokenServer) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		realm := fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host)
		switch {
		case r.URL.Path == "/token":
			ts.exchanges.Add(1)
			scopes := r.URL.Query()["scope"]
			for n := int64(len(scopes)); ; {
				m := ts.maxScopes.Load()
				if n <= m || ts.maxScopes.CompareAndSwap(m, n) {
					break
				}
			}
			if ts.jitter > 0 {
				time.Sleep(rand.N(ts.jitter))
			}
			json.NewEncoder(w).Encode(map[string]string{"token": "scopes=" + strings.Join(scopes, ",")})
			return
		case r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodPatch ||
			strings.Contains(r.URL.Path, "/blobs/") && r.Method != http.MethodGet:
			next.ServeHTTP(w, r) // pushes by the test itself
			return
		case r.URL.Path == "/v2/":
			if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				w.Header().Set("WWW-Authenticate", realm)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		case strings.Contains(r.URL.Path, "/manifests/"):
			repo := strings.TrimPrefix(r.URL.Path[:strings.Index(r.URL.Path, "/manifests/")], "/v2/")
			scope := "repository:" + repo + ":pull"
			granted := strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer scopes="), ",")
			if !slices.Contains(granted, scope) {
				w.Header().Set("WWW-Authenticate", realm+`,scope="`+scope+`"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// tokenRegistry starts a registry behind ts serving team/app0:v1 … team/app<repos-1>:v1, and
// returns the references with their digests, request counts and exchanges reset. The manifests
// differ by an annotation naming their repository, so each has a digest of its own; they are put
// directly, without blobs, which the registry does not check and a HEAD never reads.
func tokenRegistry(t testing.TB, ts *tokenServer, repos int) (*registrytest.Registry, []string, map[string]string) {
	t.Helper()
	reg := registrytest.New(registrytest.WithMiddleware(ts.middleware))
	t.Cleanup(reg.Close)
	return tokenRegistryOn(t, reg, ts, repos)
}

// tokenRegistryOn is tokenRegistry on a registry already started behind ts.
func tokenRegistryOn(t testing.TB, reg *registrytest.Registry, ts *tokenServer, repos int) (*registrytest.Registry, []string, map[string]string) {
	t.Helper()
	want := map[string]string{}
	var refs []string
	for i := range repos {
		repo := fmt.Sprintf("team/app%d", i)
		manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":2},"layers":[],"annotations":{"repository":%q}}`,
			types.OCIManifestSchema1, 0, repo)
		req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/%s/manifests/v1", reg.Host, repo), strings.NewReader(manifest))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", string(types.OCIManifestSchema1))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("put %s: %s", repo, resp.Status)
		}
		ref := fmt.Sprintf("%s/%s:v1", reg.Host, repo)
		refs = append(refs, ref)
		want[ref] = fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(manifest)))
	}
	reg.Reset()
	ts.exchanges.Store(0)
	ts.maxScopes.Store(0)
	return reg, refs, want
}

// resolveAll resolves refs with r and returns the digests, failing on any error.
func resolveAll(t testing.TB, r *resolver.Resolver, refs []string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for ref, res := range r.Resolve(context.Background(), refs) {
		if res.Err != nil {
			t.Fatalf("%s: %v", ref, res.Err)
		}
		got[ref] = res.Digest
	}
	return got
}

// TestTokenExchangesInBulk: a run asks for tokens in batches of at most 100 repositories, so that
// n repositories on one registry cost ceil(n/100) token exchanges and one ping.
func TestTokenExchangesInBulk(t *testing.T) {
	for _, repos := range []int{1, 100, 101, 1000} {
		t.Run(fmt.Sprint(repos), func(t *testing.T) {
			var ts tokenServer
			reg, refs, want := tokenRegistry(t, &ts, repos)
			if diff := cmp.Diff(want, resolveAll(t, newResolver(), refs)); diff != "" {
				t.Errorf("digests (-want +got):\n%s", diff)
			}
			got := map[string]int64{"token exchanges": ts.exchanges.Load(), "pings": int64(reg.Count("", "ping")), "manifest HEADs": int64(reg.Count(http.MethodHead, "manifest"))}
			wantCounts := map[string]int64{"token exchanges": int64((repos + 99) / 100), "pings": 1, "manifest HEADs": int64(repos)}
			if diff := cmp.Diff(wantCounts, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			if n := ts.maxScopes.Load(); n > 100 {
				t.Errorf("one token exchange asked for %d scopes; want at most 100", n)
			}
			t.Logf("%d repositories: %v", repos, got)
		})
	}
}

// stressRuns is how many times TestTokenStress repeats; make stress raises it.
var stressRuns = flag.Int("stress", 10, "runs of TestTokenStress")

// TestTokenStress: many repositories behind a token server whose answers come back in any order,
// looked up concurrently, never fail for want of a scope: neither the first lookups, covered by
// tokens exchanged in batches, nor lookups of repositories added by a second Resolve on the same
// Resolver, which the registry's challenges add to a batch already holding a token. Run it under
// -cpu 1,2,4; make stress runs it 1,000 times.
func TestTokenStress(t *testing.T) {
	ts := tokenServer{jitter: 2 * time.Millisecond}
	_, refs, want := tokenRegistry(t, &ts, 250)
	first := refs[:150]
	for run := range *stressRuns {
		ts.exchanges.Store(0)
		r := newResolver()
		got := resolveAll(t, r, first)
		maps.Copy(got, resolveAll(t, r, refs))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("run %d: digests (-want +got):\n%s", run, diff)
		}
		// 2 batches for the first 150; then the second batch, which gained 50 repositories, once
		// more, and a third batch for the last 50.
		if n := ts.exchanges.Load(); n != 4 {
			t.Fatalf("run %d: token exchanges = %d, want 4", run, n)
		}
	}
}

// TestRegistryTokenFromKeychain: a registry token from the keychain is sent as it is, without any
// token exchange.
func TestRegistryTokenFromKeychain(t *testing.T) {
	var ts tokenServer
	reg, refs, want := tokenRegistry(t, &ts, 2)
	kc := staticKeychain{reg.Host: {RegistryToken: "scopes=repository:team/app0:pull,repository:team/app1:pull"}}
	if diff := cmp.Diff(want, resolveAll(t, newResolver(resolver.WithKeychain(kc)), refs)); diff != "" {
		t.Errorf("digests (-want +got):\n%s", diff)
	}
	if n := ts.exchanges.Load(); n != 0 {
		t.Errorf("token exchanges = %d, want 0", n)
	}
}

// TestOAuthRefreshToken: with an identity token (docker login to an OAuth registry such as ACR),
// the token exchange is an OAuth POST, retried with its body after a 503; when the answer carries
// a new refresh token, later exchanges present that one.
func TestOAuthRefreshToken(t *testing.T) {
	var ts tokenServer
	var mu sync.Mutex
	var presented []string
	oauth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/token" || r.Method != http.MethodPost {
				next.ServeHTTP(w, r)
				return
			}
			r.ParseForm()
			mu.Lock()
			presented = append(presented, r.PostForm.Get("refresh_token"))
			first := len(presented) == 1
			mu.Unlock()
			if first { // a hiccup: the POST is retried with its body
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			ts.exchanges.Add(1)
			json.NewEncoder(w).Encode(map[string]string{
				"access_token":  "scopes=" + strings.ReplaceAll(r.PostForm.Get("scope"), " ", ","),
				"refresh_token": "refresh-2",
			})
		})
	}
	reg := registrytest.New(registrytest.WithMiddleware(ts.middleware), registrytest.WithMiddleware(oauth))
	t.Cleanup(reg.Close)
	_, refs, want := tokenRegistryOn(t, reg, &ts, 2)
	kc := staticKeychain{reg.Host: {IdentityToken: "refresh-1"}}
	r := newResolver(resolver.WithKeychain(kc))
	// The second Resolve adds a repository to the exchanged batch: a 401, and a second exchange.
	got := resolveAll(t, r, refs[:1])
	maps.Copy(got, resolveAll(t, r, refs))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("digests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"refresh-1", "refresh-1", "refresh-2"}, presented); diff != "" {
		t.Errorf("refresh tokens presented (-want +got):\n%s", diff)
	}
}

// TestExpiredToken: a registry that refuses a token with a bare challenge (no scope: the token
// expired) gets one new exchange for the batch, and the lookup succeeds.
func TestExpiredToken(t *testing.T) {
	var ts tokenServer
	var refused atomic.Bool
	expired := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodHead && refused.CompareAndSwap(false, true) {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="test",error="invalid_token"`, r.Host))
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	reg := registrytest.New(registrytest.WithMiddleware(ts.middleware), registrytest.WithMiddleware(expired))
	t.Cleanup(reg.Close)
	_, refs, want := tokenRegistryOn(t, reg, &ts, 1)
	if diff := cmp.Diff(want, resolveAll(t, newResolver(), refs)); diff != "" {
		t.Errorf("digests (-want +got):\n%s", diff)
	}
	if n := ts.exchanges.Load(); n != 2 {
		t.Errorf("token exchanges = %d, want 2 (the first token refused once)", n)
	}
}

// TestMirrorTokenBatches: lookups sent to a mirror with a path prefix ask for tokens naming the
// mirror's repositories (team/app0, not app0), in batches, so 150 repositories cost two token
// exchanges and no lookup is refused for want of a scope.
func TestMirrorTokenBatches(t *testing.T) {
	var ts tokenServer
	reg, refs, want := tokenRegistry(t, &ts, 150)
	ms := resolver.Mirrors{}
	if err := ms.Add("upstream.example", reg.Host+"/team"); err != nil {
		t.Fatal(err)
	}
	var upstream []string
	wantUpstream := map[string]string{}
	for _, ref := range refs {
		u := strings.Replace(ref, reg.Host+"/team/", "upstream.example/", 1)
		upstream = append(upstream, u)
		wantUpstream[u] = want[ref]
	}
	if diff := cmp.Diff(wantUpstream, resolveAll(t, newResolver(resolver.WithMirrors(ms, false)), upstream)); diff != "" {
		t.Errorf("digests (-want +got):\n%s", diff)
	}
	if n := ts.exchanges.Load(); n != 2 {
		t.Errorf("token exchanges = %d, want 2 (150 repositories in batches of 100)", n)
	}
	if n := reg.Count(http.MethodHead, "manifest"); n != 150 {
		t.Errorf("manifest HEADs = %d, want 150: none refused and retried", n)
	}
}

// TestPlatformsTokenScope: reading an index's platforms (pinned: verify with platform set) asks the
// token service for the index's repository by name, so one exchange serves it and no request is
// refused for want of a scope.
func TestPlatformsTokenScope(t *testing.T) {
	ts := &tokenServer{}
	reg, _, _ := tokenRegistry(t, ts, 0)
	put := func(ref string, mt types.MediaType, body string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/v2/team/multi/manifests/%s", reg.Host, ref), strings.NewReader(body))
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
			t.Fatalf("put %s: %s", ref, resp.Status)
		}
		return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body)))
	}
	var children []string
	for _, arch := range []string{"amd64", "arm64"} {
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":2},"layers":[],"annotations":{"arch":%q}}`,
			types.OCIManifestSchema1, 0, arch)
		children = append(children, put(arch, types.OCIManifestSchema1, m))
	}
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[`+
		`{"mediaType":%q,"digest":%q,"size":2,"platform":{"os":"linux","architecture":"amd64"}},`+
		`{"mediaType":%q,"digest":%q,"size":2,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}`,
		types.OCIImageIndex, types.OCIManifestSchema1, children[0], types.OCIManifestSchema1, children[1])
	digest := put("v1", types.OCIImageIndex, index)
	reg.Reset()
	ts.exchanges.Store(0)

	got, err := resolver.New().Platforms(context.Background(), reg.Host+"/team/multi@"+digest)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{children[0]: "linux/amd64", children[1]: "linux/arm64/v8"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("platforms (-want +got):\n%s", diff)
	}
	if n := ts.exchanges.Load(); n != 1 {
		t.Errorf("%d token exchanges, want 1", n)
	}
	if n := reg.Count(http.MethodGet, "manifest"); n != 1 {
		t.Errorf("%d manifest GETs, want 1 (none refused for want of a scope)", n)
	}
}
