package resolver_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/resolver"
)

// TestGoogleCredentials: the default keychain gets a token from the metadata server (a fake on
// loopback, named by GCE_METADATA_HOST, as on GKE or Cloud Build) for Google's registries only. A
// run against other registries makes no metadata call; a run against Artifact Registry sends the
// token there and nowhere else. (google.Keychain resolves once per process: one test only.)
func TestGoogleCredentials(t *testing.T) {
	const token = "ya29.fake-metadata-token-0123456789"
	var mu sync.Mutex
	var metadataCalls []string
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		metadataCalls = append(metadataCalls, r.URL.Path)
		mu.Unlock()
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
			return
		}
		w.Header().Set("Metadata-Flavor", "Google")
		switch r.URL.Path {
		case "/computeMetadata/v1/instance/service-accounts/default/token":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"` + token + `","expires_in":3600,"token_type":"Bearer"}`))
		case "/computeMetadata/v1/project/project-id":
			w.Write([]byte("digester-test"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer md.Close()
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(md.URL, "http://"))
	home := t.TempDir() // no gcloud configuration, no ADC file
	t.Setenv("HOME", home)
	t.Setenv("CLOUDSDK_CONFIG", home)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("GITHUB_TOKEN", "")

	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("_token:"+token))
	reg, digests, sent := demanding(t, "us-docker.pkg.dev", want, "us-docker.pkg.dev/proj/repo/app:1", "quay.io/other/app:1")

	resolve := func(ref string) {
		t.Helper()
		res := resolver.New(resolver.WithTransport(reg.Transport())).Resolve(context.Background(), []string{ref})
		if res[ref].Err != nil || res[ref].Digest != digests[ref] {
			t.Fatalf("%s: got %+v, want %s", ref, res[ref], digests[ref])
		}
	}
	resolve("quay.io/other/app:1")
	mu.Lock()
	if len(metadataCalls) != 0 {
		t.Errorf("a run against quay.io called the metadata server: %v", metadataCalls)
	}
	mu.Unlock()

	resolve("us-docker.pkg.dev/proj/repo/app:1")
	mu.Lock()
	defer mu.Unlock()
	if len(metadataCalls) == 0 {
		t.Errorf("no metadata call for Artifact Registry")
	}
	wantAuth := map[string][]string{"quay.io": {"", ""}, "us-docker.pkg.dev": {"", want}}
	if diff := cmp.Diff(wantAuth, sent()); diff != "" {
		t.Errorf("Authorization sent, by host (-want +got):\n%s", diff)
	}
}
