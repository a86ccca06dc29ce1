package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/faultregistry"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// failingKeychain fails to give credentials, as a broken credential helper does.
type failingKeychain struct{ err error }

func (k failingKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return nil, k.err }

// TestCauses: every failure Resolve reports, for each fault of the fault tests and each other way
// a lookup fails, is a *resolver.Error whose Cause says what kind of failure it is, so that callers
// switch on it rather than on the words; the words are checked by the tests of each fault.
func TestCauses(t *testing.T) {
	head := faultregistry.Manifest(http.MethodHead)
	get := faultregistry.Manifest(http.MethodGet)
	always := func(code int, headers ...string) middleware {
		return faultregistry.Always(faultregistry.Manifest(""), faultregistry.Status(code, headers...))
	}
	// run resolves the reference of a registry made faulty by mws with the resolver options.
	run := func(mws []middleware, opts ...resolver.Option) func(t *testing.T) resolver.Result {
		return func(t *testing.T) resolver.Result {
			_, ref, _ := faulty(t, mws...)
			return resolveOne(t, context.Background(), fast(opts...), ref)
		}
	}
	mw := func(mws ...middleware) []middleware { return mws }
	var sent atomic.Int64
	platform := func(p string) resolver.Option {
		pl, err := resolver.ParsePlatform(p)
		if err != nil {
			panic(err)
		}
		return resolver.WithPlatform(pl)
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) resolver.Result
		want resolver.Cause
	}{
		{"not a reference", resolveRef("Nginx:1.27"), resolver.Invalid},
		{"a template", resolveRef("nginx:${TAG}"), resolver.Invalid},
		{"a malformed digest", resolveRef("nginx@sha512:abc"), resolver.Invalid},

		{"401 without credentials", run(mw(always(http.StatusUnauthorized))), resolver.Unauthorized},
		{"credentials refused", func(t *testing.T) resolver.Result {
			reg, ref, _ := faulty(t, faultregistry.BasicAuth(robotUser, robotPass))
			kc := staticKeychain{reg.Host: {Username: robotUser, Password: "wrong"}}
			return resolveOne(t, context.Background(), fast(resolver.WithKeychain(kc)), ref)
		}, resolver.Unauthorized},
		{"403", run(mw(always(http.StatusForbidden))), resolver.Unauthorized},

		{"tag not found", run(mw(always(http.StatusNotFound))), resolver.NotFound},
		{"repository not found", func(t *testing.T) resolver.Result {
			reg, _, _ := faulty(t)
			return resolveOne(t, context.Background(), fast(), reg.Host+"/nowhere:v1")
		}, resolver.NotFound},
		{"digest not served", func(t *testing.T) resolver.Result {
			reg, _, _ := faulty(t)
			return resolveOne(t, context.Background(), fast(), reg.Host+"/app@sha256:"+strings.Repeat("0", 64))
		}, resolver.NotFound},
		{"no mirror has it", func(t *testing.T) resolver.Result {
			reg, _, _ := faulty(t)
			mirror, _, _ := faulty(t)
			ms := resolver.Mirrors{}
			if err := ms.Add(reg.Host, mirror.Host); err != nil {
				t.Fatal(err)
			}
			return resolveOne(t, context.Background(), fast(resolver.WithMirrors(ms, false)), reg.Host+"/nowhere:v1")
		}, resolver.NotFound},

		{"429", run(mw(always(http.StatusTooManyRequests))), resolver.RateLimited},
		{"429 asking too long a wait", run(mw(always(http.StatusTooManyRequests, "Retry-After: 3600"))), resolver.RateLimited},
		{"503 asking too long a wait", run(mw(always(http.StatusServiceUnavailable, "Retry-After: 3600"))), resolver.RateLimited},

		{"500", run(mw(always(http.StatusInternalServerError))), resolver.Server},
		{"502", run(mw(always(http.StatusBadGateway))), resolver.Server},
		{"503", run(mw(always(http.StatusServiceUnavailable))), resolver.Server},
		{"504", run(mw(always(http.StatusGatewayTimeout))), resolver.Server},
		{"token service 500", func(t *testing.T) resolver.Result {
			reg, ref, _ := faulty(t, faultregistry.TokenAuth(robotUser, robotPass, robotToken, faultregistry.Body(http.StatusInternalServerError, "text/plain", "")))
			kc := staticKeychain{reg.Host: {Username: robotUser, Password: robotPass}}
			return resolveOne(t, context.Background(), fast(resolver.WithKeychain(kc)), ref)
		}, resolver.Server},
		{"a status without words of its own", run(mw(always(http.StatusTeapot))), resolver.Other},
		{"endless token response", func(t *testing.T) resolver.Result {
			reg, ref, _ := faulty(t, faultregistry.TokenAuth(robotUser, robotPass, robotToken, faultregistry.Endless("application/json", &sent)))
			kc := staticKeychain{reg.Host: {Username: robotUser, Password: robotPass}}
			return resolveOne(t, context.Background(), fast(resolver.WithKeychain(kc)), ref)
		}, resolver.Other},

		{"408", run(mw(always(http.StatusRequestTimeout))), resolver.Timeout},
		{"per-request timeout", run(mw(faultregistry.Always(faultregistry.Manifest(""), faultregistry.Hang(nil, nil))), resolver.WithTimeout(200*time.Millisecond)), resolver.Timeout},
		{"body stalls", run(mw(faultregistry.Always(head, faultregistry.Status(http.StatusMethodNotAllowed)),
			faultregistry.Always(get, faultregistry.Hang(nil, nil))), resolver.WithTimeout(200*time.Millisecond)), resolver.Timeout},
		{"deadline", func(t *testing.T) resolver.Result {
			_, ref, _ := faulty(t, faultregistry.Always(faultregistry.Manifest(""), faultregistry.Hang(nil, nil)))
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			return resolveOne(t, ctx, fast(resolver.WithTimeout(0)), ref)
		}, resolver.Timeout},
		{"canceled", func(t *testing.T) resolver.Result {
			_, ref, _ := faulty(t, faultregistry.Always(faultregistry.Manifest(""), faultregistry.Hang(nil, nil)))
			ctx, cancel := cancelAfter(200 * time.Millisecond)()
			defer cancel()
			return resolveOne(t, ctx, fast(resolver.WithTimeout(0)), ref)
		}, resolver.Canceled},

		{"connection reset", run(mw(faultregistry.Always(faultregistry.Manifest(""), faultregistry.Reset()))), resolver.Unreachable},
		{"connection refused", func(t *testing.T) resolver.Result {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			return resolveOne(t, context.Background(), fast(), addr+"/app:v1")
		}, resolver.Unreachable},
		{"host name does not resolve", func(t *testing.T) resolver.Result {
			rt := http.DefaultTransport.(*http.Transport).Clone()
			rt.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				return nil, &net.DNSError{Err: "no such host", Name: "registry.invalid", IsNotFound: true}
			}
			return resolveOne(t, context.Background(), fast(resolver.WithTransport(rt)), "registry.invalid/app:v1")
		}, resolver.Unreachable},

		{"certificate of an unknown authority", func(t *testing.T) resolver.Result {
			reg, _, _ := faultyTLS(t)
			_, port, _ := strings.Cut(reg.Host, ":")
			host := "registry.example.com:" + port
			return resolveOne(t, context.Background(), fast(resolver.WithTransport(faultregistry.Transport(map[string]string{host: reg.Host}))), host+"/app:v1")
		}, resolver.TLSFailure},
		{"plain HTTP where TLS is wanted", func(t *testing.T) resolver.Result {
			reg, _, _ := faulty(t)
			routes := faultregistry.Transport(map[string]string{"registry.example:5000": reg.Host})
			return resolveOne(t, context.Background(), fast(resolver.WithTransport(routes)), "registry.example:5000/app:v1")
		}, resolver.TLSFailure},
		{"redirect to plain HTTP", func(t *testing.T) resolver.Result {
			reg, ref, _ := faultyTLS(t, faultregistry.Always(faultregistry.Manifest(""), faultregistry.Redirect("http://cdn.example")))
			return resolveOne(t, context.Background(), fast(resolver.WithTransport(reg.Transport())), ref)
		}, resolver.TLSFailure},

		{"login page", run(mw(faultregistry.Always(faultregistry.Any, faultregistry.Body(http.StatusOK, "text/html", "<html>log in</html>")))), resolver.BadResponse},
		{"JSON that is no manifest", run(mw(faultregistry.Always(faultregistry.Manifest(""), faultregistry.Body(http.StatusOK, "application/json", `{"hello":"world"}`)))), resolver.BadResponse},
		{"unknown manifest type", run(mw(faultregistry.Always(faultregistry.Manifest(""), faultregistry.Body(http.StatusOK, "application/json", `{"schemaVersion":2,"mediaType":"application/x-other"}`)))), resolver.BadResponse},
		{"endless manifest", run(mw(faultregistry.Always(faultregistry.Manifest(""), faultregistry.Endless("application/vnd.oci.image.manifest.v1+json", &sent)))), resolver.BadResponse},

		{"sha256 digest header disagrees with the body", run(mw(faultregistry.Header(head, "Docker-Content-Digest", ""),
			faultregistry.Header(get, "Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64)))), resolver.Mismatch},
		{"sha512 digest header disagrees with the body", run(mw(faultregistry.Header(head, "Docker-Content-Digest", ""),
			faultregistry.Header(get, "Docker-Content-Digest", "sha512:"+strings.Repeat("0", 128)))), resolver.Mismatch},
		{"another digest than the one asked for", func(t *testing.T) resolver.Result {
			reg, _, digest := faulty(t, faultregistry.Header(head, "Docker-Content-Digest", "sha256:"+strings.Repeat("1", 64)))
			return resolveOne(t, context.Background(), fast(), reg.Host+"/app@"+digest)
		}, resolver.Mismatch},

		{"keychain fails", run(nil, resolver.WithKeychain(failingKeychain{errors.New("credential helper crashed")})), resolver.Credentials},
		{"credential helper not installed", run(nil, resolver.WithKeychain(failingKeychain{
			fmt.Errorf(`error getting credentials - err: exec: "docker-credential-gone": executable file not found in $PATH, out: ""`)})), resolver.Credentials},

		{"single-platform image of another platform", run(nil, platform("linux/arm64")), resolver.Platform},
		{"index without the platform", func(t *testing.T) resolver.Result {
			reg := registrytest.New()
			t.Cleanup(reg.Close)
			if _, err := reg.PushIndex("multi", "v1", types.OCIImageIndex); err != nil {
				t.Fatal(err)
			}
			return resolveOne(t, context.Background(), fast(platform("linux/s390x")), reg.Host+"/multi:v1")
		}, resolver.Platform},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tc.run(t)
			e, ok := res.Err.(*resolver.Error)
			if !ok {
				t.Fatalf("got digest %q, error %#v; want a *resolver.Error", res.Digest, res.Err)
			}
			if e.Cause != tc.want || resolver.CauseOf(res.Err) != tc.want {
				t.Errorf("%q: cause %v, want %v", e, e.Cause, tc.want)
			}
		})
	}
}

// resolveRef resolves ref, which needs no registry.
func resolveRef(ref string) func(t *testing.T) resolver.Result {
	return func(t *testing.T) resolver.Result {
		return resolveOne(t, context.Background(), fast(), ref)
	}
}

// TestParseCause: Parse's errors are *resolver.Error of Cause Invalid, in the words of
// TestParseMessages.
func TestParseCause(t *testing.T) {
	for _, ref := range []string{"", "Nginx:1", "nginx:", "a b", "${IMAGE}", "nginx@sha256:abc", "host:5000/app:tag:x"} {
		_, err := resolver.Parse(ref)
		var e *resolver.Error
		if !errors.As(err, &e) || e.Cause != resolver.Invalid {
			t.Errorf("Parse(%q) = %#v, want a *resolver.Error of cause invalid", ref, err)
		}
	}
}

// TestCauseNames: each cause has its own name, fit for a metric label, and an error that is not a
// resolver.Error has cause Other.
func TestCauseNames(t *testing.T) {
	seen := map[string]resolver.Cause{}
	for c := resolver.Other; c <= resolver.Platform; c++ {
		s := c.String()
		if prev, ok := seen[s]; ok || s == "" || strings.ToLower(s) != s || strings.ContainsAny(s, " -(") {
			t.Errorf("cause %d is named %q (cause %d has the name too: %v)", int(c), s, int(prev), ok)
		}
		seen[s] = c
	}
	for _, c := range []resolver.Cause{resolver.Platform + 1, -1, 99} {
		if got, want := c.String(), fmt.Sprintf("Cause(%d)", int(c)); got != want {
			t.Errorf("an unknown cause is named %q, want %s", got, want)
		}
	}
	if got := resolver.CauseOf(errors.New("x")); got != resolver.Other {
		t.Errorf("CauseOf(a plain error) = %v, want other", got)
	}
	if got := resolver.CauseOf(fmt.Errorf("wrapped: %w", &resolver.Error{Cause: resolver.NotFound})); got != resolver.NotFound {
		t.Errorf("CauseOf(a wrapped Error) = %v, want not_found", got)
	}
}
