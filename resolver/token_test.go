package resolver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
)

// scopedTokens makes a registry demand bearer tokens that name each repository, as Docker Hub and
// most cloud registries do: the token endpoint (/token) grants the scopes asked for, and a manifest
// request whose token lacks its repository gets a 401 challenge naming the scope it needs.
func scopedTokens(exchanges *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			realm := fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host)
			switch {
			case r.URL.Path == "/token":
				exchanges.Add(1)
				json.NewEncoder(w).Encode(map[string]string{"token": "scopes=" + strings.Join(r.URL.Query()["scope"], ",")})
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
				if !contains(granted, scope) && r.Method != http.MethodPut {
					w.Header().Set("WWW-Authenticate", realm+`,scope="`+scope+`"`)
					w.WriteHeader(http.StatusUnauthorized)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestOneTokenExchangePerRegistry: a run asks for one token covering its repositories (up to 100
// of them), not one per lookup, and beyond that one more per repository the token lacks.
func TestOneTokenExchangePerRegistry(t *testing.T) {
	for _, repos := range []int{1, 20, 100, 130} {
		t.Run(fmt.Sprint(repos), func(t *testing.T) {
			var exchanges atomic.Int64
			reg := registrytest.New(registrytest.WithMiddleware(scopedTokens(&exchanges)))
			defer reg.Close()
			want := map[string]string{}
			for i := 0; i < repos; i++ {
				d, err := reg.PushImage(fmt.Sprintf("team/app%d", i), "v1", types.OCIManifestSchema1)
				if err != nil {
					t.Fatal(err)
				}
				want[fmt.Sprintf("%s/team/app%d:v1", reg.Host, i)] = d.String()
			}
			reg.Reset()
			exchanges.Store(0)

			var refs []string
			for ref := range want {
				refs = append(refs, ref)
			}
			got := map[string]string{}
			for ref, res := range newResolver().Resolve(context.Background(), refs) {
				if res.Err != nil {
					t.Fatalf("%s: %v", ref, res.Err)
				}
				got[ref] = res.Digest
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("digests (-want +got):\n%s", diff)
			}
			maxExchanges := int64(1 + max(0, repos-100))
			if n := exchanges.Load(); n > maxExchanges {
				t.Errorf("token exchanges = %d, want at most %d", n, maxExchanges)
			}
			if n := reg.Count("", "ping"); n != 1 {
				t.Errorf("pings = %d, want 1", n)
			}
			t.Logf("%d repositories: %d token exchanges, %d manifest HEADs", repos, exchanges.Load(), reg.Count(http.MethodHead, "manifest"))
		})
	}
}
