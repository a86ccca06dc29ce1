// Package faultregistry makes an in-process registry (internal/registrytest) misbehave the way real
// registries and the networks in front of them do: rate limits, server errors, dropped connections,
// hangs, missing or lying digest headers, captive portals, endless bodies, redirects and
// authentication. Each fault is an HTTP middleware for registrytest.WithMiddleware; registrytest
// counts every request before any middleware runs, so tests can assert what was sent.
package faultregistry

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Match selects the requests a fault applies to.
type Match func(*http.Request) bool

// Any matches every request.
func Any(*http.Request) bool { return true }

// Manifest matches manifest requests of the given method ("" for any).
func Manifest(method string) Match {
	return func(r *http.Request) bool {
		return strings.Contains(r.URL.Path, "/manifests/") && (method == "" || r.Method == method)
	}
}

// Ping matches the registry's version check, GET /v2/.
func Ping(r *http.Request) bool { return r.URL.Path == "/v2/" || r.URL.Path == "/v2" }

// First sends the first n requests that match to fault and everything else to the registry; a
// negative n sends every matching request to fault.
func First(n int, match Match, fault http.Handler) func(http.Handler) http.Handler {
	var seen atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) && (n < 0 || seen.Add(1) <= int64(n)) {
				fault.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Always sends every request that matches to fault.
func Always(match Match, fault http.Handler) func(http.Handler) http.Handler {
	return First(-1, match, fault)
}

// Gate arms faults once a test's images are pushed: until Arm, requests bypass them.
type Gate struct{ on atomic.Bool }

// Arm turns the faults on.
func (g *Gate) Arm() { g.on.Store(true) }

// Wrap returns a middleware that applies mws, the first outermost, once the gate is armed.
func (g *Gate) Wrap(mws ...func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		faulty := next
		for i := len(mws) - 1; i >= 0; i-- {
			faulty = mws[i](faulty)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if g.on.Load() {
				faulty.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Status answers with code, the given headers ("Name: value") and an OCI error body.
func Status(code int, headers ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range headers {
			k, v, _ := strings.Cut(h, ":")
			w.Header().Set(k, strings.TrimSpace(v))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[{"code":"FAULT","message":"injected %d"}]}`, code)
	})
}

// RateLimit answers 429 with a Retry-After of a whole number of seconds to every matching
// request for that long after the first one, as a registry's rate limiter does: a client that
// retries early is refused again.
func RateLimit(match Match, seconds int) func(http.Handler) http.Handler {
	var mu sync.Mutex
	var until time.Time
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if match(r) {
				mu.Lock()
				now := time.Now()
				if until.IsZero() {
					until = now.Add(time.Duration(seconds) * time.Second)
				}
				limited := now.Before(until)
				mu.Unlock()
				if limited {
					Status(http.StatusTooManyRequests, fmt.Sprintf("Retry-After: %d", seconds)).ServeHTTP(w, r)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Body answers with code, Content-Type ct and body, as a captive portal or a misconfigured proxy would.
func Body(code int, ct, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			w.Write([]byte(body)) //nolint:errcheck // the client may hang up
		}
	})
}

// Reset drops the connection without an answer: the client reads a TCP reset.
func Reset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err) // httptest HTTP/1 servers always support hijacking
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) //nolint:errcheck // best effort: close with RST rather than FIN
		}
		conn.Close()
	})
}

// Hang never answers: it holds the request until the client gives up or release is closed (nil
// for never). Each request that arrives is sent on arrived, if it is not nil, without blocking.
func Hang(release <-chan struct{}, arrived chan<- *http.Request) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived != nil {
			select {
			case arrived <- r:
			default:
			}
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

// Endless answers 200 with Content-Type ct and a body that never ends, counting into sent the
// bytes the client accepted.
func Endless(ct string, sent *atomic.Int64) http.Handler {
	chunk := []byte(strings.Repeat(" ", 32<<10))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		for {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
}

// Redirect answers 307 to the same path on base ("https://other.example:5000").
func Redirect(base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, base+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	})
}

// Header rewrites response headers of matching requests before the registry's answer goes out:
// an empty value deletes the header.
func Header(match Match, name, value string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !match(r) {
				next.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(&headerWriter{ResponseWriter: w, name: name, value: value}, r)
		})
	}
}

type headerWriter struct {
	http.ResponseWriter
	name, value string
	done        bool
}

func (h *headerWriter) WriteHeader(code int) {
	if !h.done {
		h.done = true
		if h.value == "" {
			h.Header().Del(h.name)
		} else {
			h.Header().Set(h.name, h.value)
		}
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerWriter) Write(b []byte) (int, error) {
	if !h.done {
		h.WriteHeader(http.StatusOK)
	}
	return h.ResponseWriter.Write(b)
}

// Recorder remembers the Authorization header of every request it sees ("" when there was none).
type Recorder struct {
	mu   sync.Mutex
	auth []string
}

// Middleware records, then passes the request on.
func (rec *Recorder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.auth = append(rec.auth, r.Header.Get("Authorization"))
		rec.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// Authorizations returns the Authorization headers seen so far, one per request.
func (rec *Recorder) Authorizations() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.auth...)
}

// BasicAuth makes the registry demand HTTP basic authentication as user/pass on every request.
func BasicAuth(user, pass string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="registrytest"`)
				Status(http.StatusUnauthorized).ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// TokenAuth makes the registry demand a bearer token, issued by a token endpoint at /token on the
// registry's own host in exchange for user/pass sent with basic authentication. tokenFault, if
// not nil, answers token requests instead (a failing token service).
func TokenAuth(user, pass, token string, tokenFault http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/token" {
				if tokenFault != nil {
					tokenFault.ServeHTTP(w, r)
					return
				}
				if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
					Status(http.StatusUnauthorized).ServeHTTP(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"token":%q}`, token)
				return
			}
			if r.Header.Get("Authorization") != "Bearer "+token {
				scheme := "http"
				if r.TLS != nil {
					scheme = "https"
				}
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s://%s/token",service="registrytest"`, scheme, r.Host))
				Status(http.StatusUnauthorized).ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Echo answers with code and an OCI error whose message, after prefix, repeats the credentials
// of the request's basic Authorization header, decoded, and then the header itself, as a careless
// registry or proxy might.
func Echo(code int, prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		msg := prefix
		if _, b64, ok := strings.Cut(a, "Basic "); ok {
			if dec, err := base64.StdEncoding.DecodeString(b64); err == nil {
				msg += string(dec) + " from "
			}
		}
		msg += a
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":%q}]}`, msg)
	})
}

// Transport returns an HTTP transport that connects to routes[host] ("127.0.0.1:41234") for each
// host name in routes, and refuses any other host: made-up registry names served from loopback.
func Transport(routes map[string]string) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := routes[addr]
		if !ok {
			return nil, fmt.Errorf("faultregistry: no route to %s", addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, to)
	}
	return t
}
