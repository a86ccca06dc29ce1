package resolver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/faultregistry"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// Fault tests run the resolver against an in-process registry that misbehaves, and check two
// things a user relies on: the outcome (the correct digest, or an error in plain words and never a
// wrong digest) and what was sent (counted by the registry, retries included).

type middleware = func(http.Handler) http.Handler

// hangGuard bounds how long any one resolution may take before the test calls it a hang. It is a
// guard against hanging the test binary, not a timing assertion.
const hangGuard = 10 * time.Second

// faulty starts a plain-HTTP loopback registry serving app:v1 and arms mws once it is pushed.
// It returns the reference and its true digest, with the request counts reset.
func faulty(t *testing.T, mws ...middleware) (reg *registrytest.Registry, ref, digest string) {
	t.Helper()
	var gate faultregistry.Gate
	reg = registrytest.New(registrytest.WithMiddleware(gate.Wrap(mws...)))
	t.Cleanup(reg.Close)
	d, err := reg.PushImage("app", "v1", types.DockerManifestSchema2)
	if err != nil {
		t.Fatal(err)
	}
	gate.Arm()
	reg.Reset()
	return reg, reg.Host + "/app:v1", d.String()
}

// fast is a resolver with short waits, so that fault tests stay quick: 3 attempts per request.
func fast(opts ...resolver.Option) *resolver.Resolver {
	return newResolver(append([]resolver.Option{
		resolver.WithRetries(3, 200*time.Millisecond, time.Millisecond),
		resolver.WithTimeout(2 * time.Second),
	}, opts...)...)
}

// resolveOne resolves ref, failing the test if that hangs.
func resolveOne(t *testing.T, ctx context.Context, r *resolver.Resolver, ref string) resolver.Result {
	t.Helper()
	done := make(chan resolver.Result, 1)
	go func() { done <- r.Resolve(ctx, []string{ref})[ref] }()
	select {
	case res := <-done:
		return res
	case <-time.After(hangGuard):
		t.Fatalf("resolving %s hung", ref)
		return resolver.Result{}
	}
}

// manifestRequests counts the manifest requests reg received, by method.
func manifestRequests(reg *registrytest.Registry) map[string]int {
	return map[string]int{
		"HEAD": reg.Count(http.MethodHead, "manifest"),
		"GET":  reg.Count(http.MethodGet, "manifest"),
	}
}

// wantPinned checks that res is the true digest.
func wantPinned(t *testing.T, res resolver.Result, digest string) {
	t.Helper()
	if res.Err != nil || res.Digest != digest {
		t.Errorf("got digest %q, error %v; want %s", res.Digest, res.Err, digest)
	}
}

// wantError checks that res is an error containing every one of parts, and no digest.
func wantError(t *testing.T, res resolver.Result, parts ...string) {
	t.Helper()
	if res.Err == nil {
		t.Fatalf("got digest %q, want an error", res.Digest)
	}
	if res.Digest != "" {
		t.Errorf("got digest %q alongside error %v; want none", res.Digest, res.Err)
	}
	for _, p := range parts {
		if !strings.Contains(res.Err.Error(), p) {
			t.Errorf("error %q lacks %q", res.Err, p)
		}
	}
}

// TestTransientFaultsAreRetried: rate limits, server errors and dropped connections that pass end in
// the correct pin, and a retried HEAD stays a HEAD.
func TestTransientFaultsAreRetried(t *testing.T) {
	head := faultregistry.Manifest(http.MethodHead)
	for _, tc := range []struct {
		name  string
		fault http.Handler
	}{
		{"429 with Retry-After 0", faultregistry.Status(http.StatusTooManyRequests, "Retry-After: 0")},
		{"429 without Retry-After", faultregistry.Status(http.StatusTooManyRequests)},
		{"500", faultregistry.Status(http.StatusInternalServerError)},
		{"502", faultregistry.Status(http.StatusBadGateway)},
		{"503", faultregistry.Status(http.StatusServiceUnavailable)},
		{"503 with Retry-After 0", faultregistry.Status(http.StatusServiceUnavailable, "Retry-After: 0")},
		{"504", faultregistry.Status(http.StatusGatewayTimeout)},
		{"408", faultregistry.Status(http.StatusRequestTimeout)},
		{"connection reset", faultregistry.Reset()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, ref, digest := faulty(t, faultregistry.First(2, head, tc.fault))
			wantPinned(t, resolveOne(t, context.Background(), fast(), ref), digest)
			want := map[string]int{"HEAD": 3, "GET": 0}
			if diff := cmp.Diff(want, manifestRequests(reg)); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRetryAfterIsWaitedFor: a rate limiter that refuses every request for a second after the
// first, saying Retry-After: 1, is waited for: the second HEAD gets through and pins. A retry that
// came early would be refused again and use up the attempts.
func TestRetryAfterIsWaitedFor(t *testing.T) {
	reg, ref, digest := faulty(t, faultregistry.RateLimit(faultregistry.Manifest(""), 1))
	r := fast(resolver.WithRetries(3, time.Second, time.Millisecond)) // a wait of exactly the longest is waited for
	wantPinned(t, resolveOne(t, context.Background(), r, ref), digest)
	if diff := cmp.Diff(map[string]int{"HEAD": 2, "GET": 0}, manifestRequests(reg)); diff != "" {
		t.Errorf("manifest requests (-want +got):\n%s", diff)
	}
}

// TestPersistentFaultsAreBounded: a registry that keeps failing gets a bounded number of attempts,
// then a plain-words error naming what failed.
func TestPersistentFaultsAreBounded(t *testing.T) {
	const what = `for repository app, tag "v1"`
	for _, tc := range []struct {
		name  string
		fault http.Handler
		want  string
		// Go's http.Transport itself resends an idempotent request once when a reused keep-alive
		// connection dies before any answer: a reset costs up to one request more.
		extra int
	}{
		{"429", faultregistry.Status(http.StatusTooManyRequests), "rate limited: registry %s answered HTTP 429 Too Many Requests " + what, 0},
		{"500", faultregistry.Status(http.StatusInternalServerError), "registry %s answered HTTP 500 Internal Server Error " + what, 0},
		{"502", faultregistry.Status(http.StatusBadGateway), "registry %s answered HTTP 502 Bad Gateway " + what, 0},
		{"503", faultregistry.Status(http.StatusServiceUnavailable), "registry %s answered HTTP 503 Service Unavailable " + what, 0},
		{"504", faultregistry.Status(http.StatusGatewayTimeout), "registry %s answered HTTP 504 Gateway Timeout " + what, 0},
		{"connection reset", faultregistry.Reset(), "repository app on registry %s: ", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, ref, _ := faulty(t, faultregistry.Always(faultregistry.Manifest(""), tc.fault))
			wantError(t, resolveOne(t, context.Background(), fast(), ref), fmt.Sprintf(tc.want, reg.Host))
			got := manifestRequests(reg)
			if got["HEAD"] >= 3 && got["HEAD"] <= 3+tc.extra {
				got["HEAD"] = 3
			}
			if diff := cmp.Diff(map[string]int{"HEAD": 3, "GET": 0}, got); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRetryAfterTooLong: a registry asking for a longer wait than digester allows, or than is left
// before the deadline, gets an immediate error saying so, not a wait and not a retry.
func TestRetryAfterTooLong(t *testing.T) {
	for _, tc := range []struct {
		name       string
		code       int
		retryAfter string
		deadline   time.Duration
	}{
		{"beyond the longest wait", http.StatusTooManyRequests, "3600", time.Minute},
		{"beyond what a duration holds", http.StatusTooManyRequests, "10000000000", time.Minute},
		{"beyond the deadline", http.StatusTooManyRequests, "20", time.Second},
		{"as a date beyond the longest wait", http.StatusTooManyRequests, time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat), time.Minute},
		{"503 beyond the longest wait", http.StatusServiceUnavailable, "3600", time.Minute},
		{"503 beyond the deadline", http.StatusServiceUnavailable, "20", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, ref, _ := faulty(t, faultregistry.Always(faultregistry.Manifest(""),
				faultregistry.Status(tc.code, "Retry-After: "+tc.retryAfter)))
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			r := fast(resolver.WithRetries(3, 30*time.Second, time.Millisecond))
			wantError(t, resolveOne(t, ctx, r, ref),
				fmt.Sprintf("rate limited: registry %s answered HTTP %d %s for repository app, tag \"v1\": it asks to retry after %s, longer than digester may wait",
					reg.Host, tc.code, http.StatusText(tc.code), tc.retryAfter))
			if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 0}, manifestRequests(reg)); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHungRegistry: a registry that accepts requests and never answers is stopped by the
// per-request timeout, by the caller's deadline and by cancellation, wherever it hangs.
func TestHungRegistry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		match   faultregistry.Match
		timeout time.Duration // per request
		ctx     func() (context.Context, context.CancelFunc)
		want    string
		heads   int
	}{
		{"manifest, per-request timeout", faultregistry.Manifest(""), 300 * time.Millisecond, background, "timed out after 300ms waiting for registry", 1},
		{"ping, per-request timeout", faultregistry.Ping, 300 * time.Millisecond, background, "timed out after 300ms waiting for registry", 0},
		{"manifest, deadline", faultregistry.Manifest(""), 0, deadline(300 * time.Millisecond), "deadline reached while waiting for registry", 1},
		{"ping, deadline", faultregistry.Ping, 0, deadline(300 * time.Millisecond), "deadline reached while waiting for registry", 0},
		{"manifest, canceled", faultregistry.Manifest(""), 0, cancelAfter(300 * time.Millisecond), "canceled while waiting for registry", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, ref, _ := faulty(t, faultregistry.Always(tc.match, faultregistry.Hang(nil, nil)))
			ctx, cancel := tc.ctx()
			defer cancel()
			wantError(t, resolveOne(t, ctx, fast(resolver.WithTimeout(tc.timeout)), ref), tc.want, reg.Host)
			if diff := cmp.Diff(map[string]int{"HEAD": tc.heads, "GET": 0}, manifestRequests(reg)); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
		})
	}
}

func background() (context.Context, context.CancelFunc) {
	return context.WithCancel(context.Background())
}

func deadline(d time.Duration) func() (context.Context, context.CancelFunc) {
	return func() (context.Context, context.CancelFunc) { return context.WithTimeout(context.Background(), d) }
}

func cancelAfter(d time.Duration) func() (context.Context, context.CancelFunc) {
	return func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(d, cancel)
		return ctx, cancel
	}
}

// TestHeadWithoutUsableDigest: when HEAD gives no usable Docker-Content-Digest, one GET follows and
// the digest is computed from the manifest it returns.
func TestHeadWithoutUsableDigest(t *testing.T) {
	for _, tc := range []struct{ name, header string }{
		{"missing", ""},
		{"truncated", "sha256:abc"},
		{"upper case", "sha256:" + strings.Repeat("AB", 32)},
		{"unknown algorithm", "md5:" + strings.Repeat("ab", 16)},
		{"garbage", "<html>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, ref, digest := faulty(t, faultregistry.Header(faultregistry.Manifest(http.MethodHead), "Docker-Content-Digest", tc.header))
			wantPinned(t, resolveOne(t, context.Background(), fast(), ref), digest)
			if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 1}, manifestRequests(reg)); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDigestHeaderDisagreesWithBody: a GET whose Docker-Content-Digest is not the hash of the body
// it came with is an error; neither digest is pinned.
func TestDigestHeaderDisagreesWithBody(t *testing.T) {
	for _, lie := range []string{
		"sha256:" + strings.Repeat("0", 64),
		"sha512:" + strings.Repeat("0", 128),
	} {
		t.Run(lie[:6], func(t *testing.T) {
			reg, ref, _ := faulty(t,
				faultregistry.Header(faultregistry.Manifest(http.MethodHead), "Docker-Content-Digest", ""),
				faultregistry.Header(faultregistry.Manifest(http.MethodGet), "Docker-Content-Digest", lie))
			wantError(t, resolveOne(t, context.Background(), fast(), ref), "sent digest "+lie, "refusing to pin", reg.Host)
			if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 1}, manifestRequests(reg)); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNotAManifest: a captive portal or proxy answering 200 with a page, or a body far larger than
// any manifest, is an error; the body is read only up to the manifest size bound.
func TestNotAManifest(t *testing.T) {
	const html = "<!DOCTYPE html><html><body>Please log in to the guest network</body></html>"
	var sent atomic.Int64
	for _, tc := range []struct {
		name  string
		mw    middleware
		want  string
		count map[string]int
	}{
		{"login page everywhere", faultregistry.Always(faultregistry.Any, faultregistry.Body(http.StatusOK, "text/html; charset=utf-8", html)),
			"answered with text/html; charset=utf-8 that is not a manifest (a proxy or login page in the way?)", map[string]int{"HEAD": 1, "GET": 1}},
		{"JSON that is no manifest", faultregistry.Always(faultregistry.Manifest(""), faultregistry.Body(http.StatusOK, "application/json", `{"hello":"world"}`)),
			"not an image manifest", map[string]int{"HEAD": 1, "GET": 1}},
		{"endless body", faultregistry.Always(faultregistry.Manifest(""), faultregistry.Endless("application/vnd.oci.image.manifest.v1+json", &sent)),
			"sent more than 4 MiB for a manifest", map[string]int{"HEAD": 1, "GET": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent.Store(0)
			reg, ref, _ := faulty(t, tc.mw)
			wantError(t, resolveOne(t, context.Background(), fast(resolver.WithTimeout(5*time.Second)), ref), tc.want, reg.Host)
			if diff := cmp.Diff(tc.count, manifestRequests(reg)); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
			// What the server got out is what was read plus what sat in socket buffers.
			if n := sent.Load(); n > 32<<20 {
				t.Errorf("the resolver accepted %d MiB of one response; want it to stop after 4 MiB", n>>20)
			}
		})
	}
}

// TestEndlessPing: a version check (GET /v2/) whose body never ends is not read to the end; the
// lookup then goes on and pins.
func TestEndlessPing(t *testing.T) {
	var sent atomic.Int64
	reg, ref, digest := faulty(t, faultregistry.Always(faultregistry.Ping, faultregistry.Endless("application/json", &sent)))
	wantPinned(t, resolveOne(t, context.Background(), fast(resolver.WithTimeout(5*time.Second)), ref), digest)
	if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 0}, manifestRequests(reg)); diff != "" {
		t.Errorf("manifest requests (-want +got):\n%s", diff)
	}
	if n := sent.Load(); n > 32<<20 {
		t.Errorf("the resolver accepted %d MiB of a ping response; want it bounded", n>>20)
	}
}

// TestClientErrorsAreNotRetried: 401, 403 and 404 are answers, not accidents: one request, and an
// error naming registry, repository and tag.
func TestClientErrorsAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		code int
		want string
	}{
		{http.StatusUnauthorized, `unauthorized: registry %s wants credentials for repository app, tag "v1" and digester has none for it`},
		{http.StatusForbidden, `forbidden: registry %s denies these credentials access for repository app, tag "v1"`},
		{http.StatusNotFound, `tag not found: "v1" in repository app on registry %s`},
	} {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			reg, ref, _ := faulty(t, faultregistry.Always(faultregistry.Manifest(""), faultregistry.Status(tc.code)))
			res := resolveOne(t, context.Background(), fast(), ref)
			wantError(t, res, fmt.Sprintf(tc.want, reg.Host))
			if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 0}, manifestRequests(reg)); diff != "" {
				t.Errorf("manifest requests (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRedirectToAnotherHost: a registry that sends manifests from another host (a CDN) is
// followed, and the credentials meant for the registry never reach the other host.
func TestRedirectToAnotherHost(t *testing.T) {
	const user, pass = "robot", "s3cret-Pa55word"
	var rec faultregistry.Recorder
	cdn := registrytest.New(registrytest.WithMiddleware(rec.Middleware))
	t.Cleanup(cdn.Close)
	d, err := cdn.PushImage("app", "v1", types.DockerManifestSchema2)
	if err != nil {
		t.Fatal(err)
	}
	_, cdnPort, _ := strings.Cut(cdn.Host, ":")
	cdnBase := "http://localhost:" + cdnPort // another host name than the registry's 127.0.0.1

	reg, ref, digest := faulty(t, faultregistry.BasicAuth(user, pass),
		faultregistry.Always(faultregistry.Manifest(""), faultregistry.Redirect(cdnBase)))
	if digest != d.String() {
		t.Fatalf("the CDN serves %s, the registry %s: want the same image", d, digest)
	}
	cdn.Reset()
	kc := staticKeychain{reg.Host: {Username: user, Password: pass}}
	wantPinned(t, resolveOne(t, context.Background(), fast(resolver.WithKeychain(kc)), ref), digest)

	want := map[string]int{"HEAD": 1, "GET": 0}
	if diff := cmp.Diff(want, manifestRequests(reg)); diff != "" {
		t.Errorf("manifest requests to the registry (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, manifestRequests(cdn)); diff != "" {
		t.Errorf("manifest requests to the other host (-want +got):\n%s", diff)
	}
	for _, a := range rec.Authorizations() {
		if a != "" {
			t.Errorf("the other host received Authorization %q; want none", a)
		}
	}
}

// TestPlainHTTP: plain HTTP is refused for a registry that is neither loopback nor listed as
// insecure, whether it is asked for directly or through a redirect.
func TestPlainHTTP(t *testing.T) {
	reg, _, digest := faulty(t)
	ref := "registry.example:5000/app:v1"
	routes := faultregistry.Transport(map[string]string{"registry.example:5000": reg.Host, "registry.example:443": reg.Host})

	t.Run("refused", func(t *testing.T) {
		reg.Reset()
		res := resolveOne(t, context.Background(), fast(resolver.WithTransport(routes)), ref)
		wantError(t, res, "TLS: registry registry.example:5000 does not speak TLS (a plain-HTTP registry must be listed under insecure-registries)")
		if n := reg.Count("", ""); n != 0 {
			t.Errorf("the registry received %d plain-HTTP requests; want none", n)
		}
	})
	t.Run("allowed when listed as insecure", func(t *testing.T) {
		r := fast(resolver.WithTransport(routes), resolver.WithInsecureRegistries("registry.example:5000"))
		wantPinned(t, resolveOne(t, context.Background(), r, ref), digest)
	})

	t.Run("redirect to plain HTTP", func(t *testing.T) {
		tlsReg, tlsRef, _ := faultyTLS(t, faultregistry.Always(faultregistry.Manifest(""), faultregistry.Redirect("http://cdn.example")))
		res := resolveOne(t, context.Background(), fast(resolver.WithTransport(tlsReg.Transport())), tlsRef)
		wantError(t, res, "refusing plain HTTP to cdn.example", "insecure-registries")
		if diff := cmp.Diff(map[string]int{"HEAD": 1, "GET": 0}, manifestRequests(tlsReg)); diff != "" {
			t.Errorf("manifest requests (-want +got):\n%s", diff)
		}
	})
}

// faultyTLS is faulty over HTTPS, with app:v1 pushed under the name secure.example/app:v1.
func faultyTLS(t *testing.T, mws ...middleware) (reg *registrytest.Registry, ref, digest string) {
	t.Helper()
	var gate faultregistry.Gate
	reg = registrytest.New(registrytest.WithTLS(), registrytest.WithMiddleware(gate.Wrap(mws...)))
	t.Cleanup(reg.Close)
	d, err := reg.PushImage("secure.example/app", "v1", types.DockerManifestSchema2)
	if err != nil {
		t.Fatal(err)
	}
	gate.Arm()
	reg.Reset()
	return reg, "secure.example/app:v1", d.String()
}

// TestTLSVerification: a registry whose certificate nobody vouches for is refused, unless listed
// under insecure registries.
func TestTLSVerification(t *testing.T) {
	reg, ref, digest := faultyTLS(t)
	_, port, _ := strings.Cut(reg.Host, ":")
	host := "registry.example.com:" + port // a name the test certificate is valid for
	ref = host + "/app:v1"
	untrusted := faultregistry.Transport(map[string]string{host: reg.Host})

	res := resolveOne(t, context.Background(), fast(resolver.WithTransport(untrusted)), ref)
	wantError(t, res, "TLS: registry "+host+" presents a certificate signed by an unknown authority")

	r := fast(resolver.WithTransport(faultregistry.Transport(map[string]string{host: reg.Host})), resolver.WithInsecureRegistries(host))
	wantPinned(t, resolveOne(t, context.Background(), r, ref), digest)
}

// staticKeychain hands out fixed credentials per registry host.
type staticKeychain map[string]authn.AuthConfig

func (k staticKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if c, ok := k[res.RegistryStr()]; ok {
		return authn.FromConfig(c), nil
	}
	return authn.Anonymous, nil
}

// TestSilentServer: a server that accepts connections and never says a word (not even a TLS
// handshake) is stopped by the per-request timeout and by the deadline, with no retries. A
// loopback registry may speak either scheme: when the HTTPS probe times out, a plain-HTTP probe
// follows at once (2 connections). Under the deadline alone, whether the plain-HTTP probe starts
// before the deadline depends on go-containerregistry's fallback delay (300 ms in v0.22.1), so
// that case allows one or two connections, and no more.
func TestSilentServer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		timeout  time.Duration
		ctx      func() (context.Context, context.CancelFunc)
		want     string
		minConns int64
		maxConns int64
	}{
		{"per-request timeout", 300 * time.Millisecond, background, "timed out after 300ms waiting for registry", 2, 2},
		{"deadline", 0, deadline(500 * time.Millisecond), "deadline reached while waiting for registry", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			var conns atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				var open []net.Conn
				defer func() {
					for _, c := range open {
						c.Close()
					}
				}()
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					conns.Add(1)
					open = append(open, c)
					go io.Copy(io.Discard, c) // read until closed, answer nothing
				}
			}()
			t.Cleanup(func() { ln.Close(); <-done })
			ctx, cancel := tc.ctx()
			defer cancel()
			ref := ln.Addr().String() + "/app:v1"
			wantError(t, resolveOne(t, ctx, fast(resolver.WithTimeout(tc.timeout)), ref), tc.want+" "+ln.Addr().String())
			if n := conns.Load(); n < tc.minConns || n > tc.maxConns {
				t.Errorf("connections = %d, want %d to %d (an HTTPS and a plain-HTTP probe, no retries)", n, tc.minConns, tc.maxConns)
			}
		})
	}
}

// TestEndlessTokenResponse: a token service whose answer never ends is read only up to a bound
// (go-containerregistry stops at 64 KiB) and the lookup fails in words, without hanging.
func TestEndlessTokenResponse(t *testing.T) {
	var sent atomic.Int64
	reg, ref, _ := faulty(t, faultregistry.TokenAuth(robotUser, robotPass, robotToken, faultregistry.Endless("application/json", &sent)))
	kc := staticKeychain{reg.Host: {Username: robotUser, Password: robotPass}}
	res := resolveOne(t, context.Background(), fast(resolver.WithKeychain(kc), resolver.WithTimeout(5*time.Second)), ref)
	wantError(t, res, "registry "+reg.Host+": body exceeds 65536 byte limit")
	if diff := cmp.Diff(map[string]int{"HEAD": 0, "GET": 0}, manifestRequests(reg)); diff != "" {
		t.Errorf("manifest requests (-want +got):\n%s", diff)
	}
	if n := sent.Load(); n > 32<<20 {
		t.Errorf("the resolver accepted %d MiB of a token response; want it bounded", n>>20)
	}
}
