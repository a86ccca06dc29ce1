package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testcerts"
)

// passwordRegistry is a registry that accepts basic credentials with the password it holds now,
// and any request while it holds none.
type passwordRegistry struct {
	mu       sync.Mutex
	password string
}

func (p *passwordRegistry) set(pw string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.password = pw
}

func (p *passwordRegistry) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		want := p.password
		p.mu.Unlock()
		if user, pw, _ := r.BasicAuth(); want != "" && (user != "robot" || pw != want) {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeDockerConfig writes dir/config.json giving host the user robot with password pw.
func writeDockerConfig(t *testing.T, dir, host, pw string) {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte("robot:" + pw))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRotatedCredentials: when the webhook's registry credentials change (a rotated docker config
// Secret, as for an expired cloud token), the webhook pins with the new ones: the registry refuses
// the old ones, and the webhook reads its keychain again. With --credential-refresh=0 it keeps the
// first credentials, and denies every Pod of that registry from then on.
func TestRotatedCredentials(t *testing.T) {
	for _, tc := range []struct {
		refresh string
		allowed []bool // the admissions before and after the rotation
	}{
		{refresh: "10m", allowed: []bool{true, true}},
		{refresh: "0s", allowed: []bool{true, false}},
	} {
		t.Run("refresh="+tc.refresh, func(t *testing.T) {
			pr := &passwordRegistry{}
			reg := registrytest.New(registrytest.WithMiddleware(pr.middleware))
			t.Cleanup(reg.Close)
			digest, err := reg.PushImage("app", "v1", types.OCIManifestSchema1)
			if err != nil {
				t.Fatal(err)
			}
			pr.set("first")
			dockerDir := t.TempDir()
			writeDockerConfig(t, dockerDir, reg.Host, "first")
			t.Setenv("DOCKER_CONFIG", dockerDir)

			url, client := startRun(t, "--cache-ttl=0s", "--credential-refresh="+tc.refresh)
			var allowed []bool
			for i := range tc.allowed {
				if i == 1 {
					pr.set("second")
					writeDockerConfig(t, dockerDir, reg.Host, "second")
				}
				ok, patch, msg := admit(t, client, url, reg.Host+"/app:v1")
				if ok && !strings.Contains(patch, reg.Host+"/app:v1@"+digest.String()) {
					t.Fatalf("admission %d: patch %s does not pin to %s", i, patch, digest)
				}
				if want := "unauthorized: registry " + reg.Host + " rejected the credentials"; !ok && !strings.Contains(msg, want) {
					t.Fatalf("admission %d denied with %q, want %q", i, msg, want)
				}
				allowed = append(allowed, ok)
			}
			if fmt.Sprint(allowed) != fmt.Sprint(tc.allowed) {
				t.Errorf("allowed: got %v, want %v", allowed, tc.allowed)
			}
		})
	}
}

// startRun runs the webhook (run) with args on a free loopback port until the test ends, and
// returns its mutate URL and a client that trusts it.
func startRun(t *testing.T, args ...string) (string, *http.Client) {
	t.Helper()
	ca, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, err := ca.WriteServing(dir, "webhook", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"--bind-address=127.0.0.1", "--port=" + strconv.Itoa(port),
			"--tls-cert-file=" + cert, "--tls-private-key-file=" + key, "--shutdown-delay=0s", "--pull-secrets=false"}, args...), io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("webhook: %v", err)
		}
	})
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	for i := 0; ; i++ {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 400 {
			t.Fatalf("webhook did not answer /healthz: %v", err)
		}
		select {
		case err := <-done:
			done <- nil // for the cleanup, which waits for the exit
			t.Fatalf("webhook exited: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return base + "/v1/mutate", client
}

// admit sends the AdmissionReview of a Pod creation with image, and returns whether it was
// allowed, its JSONPatch and its message.
func admit(t *testing.T, client *http.Client, url, image string) (allowed bool, patch, message string) {
	t.Helper()
	review := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1",`+
		`"kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"ns","name":"web","operation":"CREATE",`+
		`"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"ns"},"spec":{"containers":[{"name":"web","image":%q}]}}}}`, image)
	resp, err := client.Post(url, "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Response struct {
			Allowed bool   `json:"allowed"`
			Patch   []byte `json:"patch"`
			Status  struct {
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("admission answer: %v", err)
	}
	return out.Response.Allowed, string(out.Response.Patch), out.Response.Status.Message
}
