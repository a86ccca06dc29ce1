package resolver_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/faultregistry"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// Tests of README claims that a hand-made mutation once broke without any test noticing
// (issue 15): the concurrency bounds, the retry defaults, plain HTTP and TLS per registry.

// inflight is the resolver's transport: it holds each manifest request until bound of them are in
// flight (or every expected request has arrived, or the test gives up), and records the most that
// were ever in flight at once. It counts in the client, before any dial: a lookup that starts is
// seen at once, whether or not a connection is free.
type inflight struct {
	mu                       sync.Mutex
	cond                     *sync.Cond
	now, most, arrived, want int
	bound                    int
	stopped                  bool
	inner                    http.RoundTripper
}

func newInflight(bound, want int) *inflight {
	f := &inflight{bound: bound, want: want, inner: http.DefaultTransport.(*http.Transport).Clone()}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *inflight) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.Contains(r.URL.Path, "/manifests/") || r.Method != http.MethodHead {
		return f.inner.RoundTrip(r)
	}
	f.mu.Lock()
	f.now++
	f.arrived++
	f.most = max(f.most, f.now)
	f.cond.Broadcast()
	for f.now < f.bound && f.arrived < f.want && !f.stopped {
		f.cond.Wait()
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.now--
		f.mu.Unlock()
	}()
	return f.inner.RoundTrip(r)
}

func (f *inflight) stop() {
	f.mu.Lock()
	f.stopped = true
	f.cond.Broadcast()
	f.mu.Unlock()
}

// TestConcurrencyBounds: lookups in flight never exceed the global bound nor the per-registry
// bound, and reach it: each request is held until the bound is reached, so a resolver that sent
// fewer would hang and one that sent more is seen.
func TestConcurrencyBounds(t *testing.T) {
	const refs = 24
	for _, tc := range []struct {
		name string
		opts []resolver.Option
		want int
	}{
		{"global", []resolver.Option{resolver.WithConcurrency(3), resolver.WithRegistryConcurrency(16)}, 3},
		{"per registry", []resolver.Option{resolver.WithConcurrency(32), resolver.WithRegistryConcurrency(4)}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newInflight(tc.want, refs)
			reg := registrytest.New()
			t.Cleanup(reg.Close)
			var all []string
			for i := range refs {
				if _, err := reg.PushImage(fmt.Sprintf("app%d", i), "v1", types.OCIManifestSchema1); err != nil {
					t.Fatal(err)
				}
				all = append(all, fmt.Sprintf("%s/app%d:v1", reg.Host, i))
			}
			done := make(chan map[string]resolver.Result, 1)
			go func() {
				done <- newResolver(append(tc.opts, resolver.WithTransport(f))...).Resolve(context.Background(), all)
			}()
			var results map[string]resolver.Result
			select {
			case results = <-done:
			case <-time.After(hangGuard):
				f.stop()
				<-done
				t.Fatalf("lookups hung: the resolver never had %d requests in flight", tc.want)
			}
			for ref, res := range results {
				if res.Err != nil {
					t.Errorf("%s: %v", ref, res.Err)
				}
			}
			if f.most != tc.want {
				t.Errorf("most manifest requests in flight = %d, want %d", f.most, tc.want)
			}
		})
	}
}

// TestDefaultRetries: by default a request gets 5 attempts, and a Retry-After longer than 30 s is
// reported at once (README, "Failures and retries").
func TestDefaultRetries(t *testing.T) {
	t.Run("5 attempts", func(t *testing.T) {
		reg, ref, _ := faulty(t, faultregistry.Always(faultregistry.Manifest(""),
			faultregistry.Status(http.StatusServiceUnavailable, "Retry-After: 0")))
		wantError(t, resolveOne(t, context.Background(), newResolver(), ref), "answered HTTP 503 Service Unavailable")
		if diff := cmp.Diff(map[string]int{"HEAD": 5, "GET": 0}, manifestRequests(reg)); diff != "" {
			t.Errorf("manifest requests (-want +got):\n%s", diff)
		}
	})
	t.Run("Retry-After above 30s", func(t *testing.T) {
		// A resolver that waited would hang past hangGuard.
		reg, ref, _ := faulty(t, faultregistry.Always(faultregistry.Manifest(""),
			faultregistry.Status(http.StatusTooManyRequests, "Retry-After: 31")))
		wantError(t, resolveOne(t, context.Background(), newResolver(), ref), "rate limited", "it asks to retry after 31")
		if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 0}, manifestRequests(reg)); diff != "" {
			t.Errorf("manifest requests (-want +got):\n%s", diff)
		}
	})
}

// TestPlainHTTPOnlyForLoopback: a registry that speaks only plain HTTP is reached that way when its
// host is loopback (localhost, *.localhost, 127.0.0.0/8, ::1), and refused otherwise: private
// addresses and names that merely end in "localhost" are not loopback.
func TestPlainHTTPOnlyForLoopback(t *testing.T) {
	reg, _, digest := faulty(t)
	for _, tc := range []struct {
		host    string
		allowed bool
	}{
		{"localhost:5000", true},
		{"registry.localhost:5000", true},
		{"127.0.0.2:5000", true},
		{"[::1]:5000", true},
		{"evillocalhost:5000", false},
		{"localhost.example.com:5000", false},
		{"10.1.2.3:5000", false},
		{"172.16.0.1:5000", false},
		{"192.168.1.1:5000", false},
		{"[fd00::1]:5000", false},
		{"169.254.169.254:5000", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			reg.Reset()
			routes := faultregistry.Transport(map[string]string{tc.host: reg.Host})
			res := resolveOne(t, context.Background(), fast(resolver.WithTransport(routes)), tc.host+"/app:v1")
			if tc.allowed {
				wantPinned(t, res, digest)
				return
			}
			wantError(t, res, "TLS: registry "+tc.host+" does not speak TLS (a plain-HTTP registry must be listed under insecure-registries)")
			if n := reg.Count("", ""); n != 0 {
				t.Errorf("the registry received %d plain-HTTP requests; want none", n)
			}
		})
	}
}

// TestInsecureIsPerRegistry: listing one registry as insecure turns TLS verification off for that
// registry only (host:port, or host for every port).
func TestInsecureIsPerRegistry(t *testing.T) {
	reg, _, digest := faultyTLS(t)
	_, port, _ := strings.Cut(reg.Host, ":")
	host := "registry.example.com:" + port // a name the test certificate is valid for
	routes := faultregistry.Transport(map[string]string{host: reg.Host})
	r := fast(resolver.WithTransport(routes), resolver.WithInsecureRegistries("other.example.com:"+port, "other.example.com"))
	wantError(t, resolveOne(t, context.Background(), r, host+"/app:v1"),
		"TLS: registry "+host+" presents a certificate signed by an unknown authority")

	// Listed by host name alone, the registry is insecure on every port.
	r = fast(resolver.WithTransport(routes), resolver.WithInsecureRegistries("registry.example.com"))
	wantPinned(t, resolveOne(t, context.Background(), r, host+"/app:v1"), digest)
}

// TestHeadRefused: a registry that refuses HEAD (405, 501) gets one GET, and the digest is computed
// from the manifest.
func TestHeadRefused(t *testing.T) {
	for _, code := range []int{http.StatusMethodNotAllowed, http.StatusNotImplemented} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			reg, ref, digest := faulty(t, faultregistry.Always(faultregistry.Manifest(http.MethodHead), faultregistry.Status(code)))
			wantPinned(t, resolveOne(t, context.Background(), fast(), ref), digest)
			if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 1}, manifestRequests(reg)); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHeadNotAManifest: a HEAD whose digest looks right but whose Content-Type is no manifest type
// (a proxy's page) is not trusted: a GET follows and checks the body.
func TestHeadNotAManifest(t *testing.T) {
	reg, ref, digest := faulty(t, faultregistry.Header(faultregistry.Manifest(http.MethodHead), "Content-Type", "text/html"))
	wantPinned(t, resolveOne(t, context.Background(), fast(), ref), digest)
	if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 1}, manifestRequests(reg)); diff != "" {
		t.Errorf("manifest requests (-want +got):\n%s", diff)
	}
}

// TestRedirectLoop: a registry that redirects a lookup to itself forever is followed 5 times,
// then reported.
func TestRedirectLoop(t *testing.T) {
	toItself := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+r.Host+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	})
	reg, ref, _ := faulty(t, faultregistry.Always(faultregistry.Manifest(""), toItself))
	wantError(t, resolveOne(t, context.Background(), fast(), ref), "stopped after 5 redirects")
	if diff := cmp.Diff(map[string]int{"HEAD": 5, "GET": 0}, manifestRequests(reg)); diff != "" {
		t.Errorf("manifest requests (-want +got):\n%s", diff)
	}
}

// TestManifestAtTheSizeBound: a manifest of exactly 4 MiB, the most a registry accepts, is read
// and pinned; one byte more is refused (TestNotAManifest).
func TestManifestAtTheSizeBound(t *testing.T) {
	const mt = "application/vnd.oci.image.manifest.v1+json"
	head := `{"schemaVersion":2,"mediaType":"` + mt + `","annotations":{"pad":"`
	body := head + strings.Repeat("x", 4<<20-len(head)-3) + `"}}`
	reg, ref, _ := faulty(t,
		faultregistry.Always(faultregistry.Manifest(http.MethodHead), faultregistry.Status(http.StatusMethodNotAllowed)),
		faultregistry.Always(faultregistry.Manifest(http.MethodGet), faultregistry.Body(http.StatusOK, mt, body)))
	res := resolveOne(t, context.Background(), fast(resolver.WithTimeout(10*time.Second)), ref)
	wantPinned(t, res, fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(body))))
	if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 1}, manifestRequests(reg)); diff != "" {
		t.Errorf("manifest requests (-want +got):\n%s", diff)
	}
}

// TestParseCapitals: capitals are allowed in a registry host, not in a repository.
func TestParseCapitals(t *testing.T) {
	for ref, want := range map[string]string{
		"Registry.EXAMPLE/app:v1": "",
		"LOCALHOST:5000/app:v1":   "",
		"Team/app:v1":             "repository names must be lowercase",
		"registry.example/App:v1": "repository names must be lowercase",
	} {
		_, err := resolver.Parse(ref)
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && !strings.Contains(got, want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", ref, err, want)
		}
	}
}

// TestShortPasswordEchoedBare: a registry that echoes the basic credentials without their
// "Basic" label (the base64 alone, and the decoded password) gets them redacted, even a password of
// 4 characters, the shortest digester redacts.
func TestShortPasswordEchoedBare(t *testing.T) {
	const user, pass = "robot", "pa55"
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b64 := strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":"token %s, password %s"}]}`, b64, pass)
	})
	reg, ref, _ := faulty(t, faultregistry.BasicAuth(user, pass),
		faultregistry.Always(faultregistry.Manifest(http.MethodHead), faultregistry.Status(http.StatusMethodNotAllowed)),
		faultregistry.Always(faultregistry.Manifest(http.MethodGet), echo))
	kc := staticKeychain{reg.Host: {Username: user, Password: pass}}
	res := resolveOne(t, context.Background(), fast(resolver.WithKeychain(kc)), ref)
	wantError(t, res, "forbidden", "token [redacted], password [redacted]")
}

// TestTokenServiceFails: a token service that keeps failing with an empty body is retried, then
// reported in plain words.
func TestTokenServiceFails(t *testing.T) {
	reg, ref, _ := faulty(t, faultregistry.TokenAuth(robotUser, robotPass, robotToken, faultregistry.Body(http.StatusInternalServerError, "text/plain", "")))
	kc := staticKeychain{reg.Host: {Username: robotUser, Password: robotPass}}
	res := resolveOne(t, context.Background(), fast(resolver.WithKeychain(kc)), ref)
	wantError(t, res, "registry "+reg.Host+" answered HTTP 500 Internal Server Error")
	if diff := cmp.Diff(map[string]int{"HEAD": 0, "GET": 0}, manifestRequests(reg)); diff != "" {
		t.Errorf("manifest requests (-want +got):\n%s", diff)
	}
}

// TestBodyStalls: a registry that sends the headers and part of a manifest, then nothing, is
// stopped by the per-request timeout and reported as a timeout.
func TestBodyStalls(t *testing.T) {
	stall := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"schemaVersion":2,`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	reg, ref, _ := faulty(t,
		faultregistry.Always(faultregistry.Manifest(http.MethodHead), faultregistry.Status(http.StatusMethodNotAllowed)),
		faultregistry.Always(faultregistry.Manifest(http.MethodGet), stall))
	res := resolveOne(t, context.Background(), fast(resolver.WithTimeout(300*time.Millisecond)), ref)
	wantError(t, res, "timed out after 300ms waiting for registry "+reg.Host)
}
