// Package resolver resolves image references to the digests their registries serve.
//
// It looks up each distinct reference once, concurrently under a global and a per-registry bound,
// with one HTTP transport and one ping per registry per run, and one token exchange per batch of
// up to 100 repositories. A lookup is a manifest HEAD; it falls back to a GET only when the HEAD
// gives no usable digest (HTTP 405/501, or a missing or malformed Docker-Content-Digest), and then
// computes the digest from the body and checks it against the header. A multi-arch tag resolves to
// its index digest, which is what a node pulls by. Failures come back per reference as errors in
// plain words. A registry may be given mirrors (WithMirrors): its lookups then go to them in order,
// and to the registry itself only if allowed. With a platform (WithPlatform), a multi-arch tag
// resolves to the digest of that platform's image. A Resolver that outlives its credentials (the
// webhook's) reads them anew and exchanges new tokens every WithCredentialRefresh interval.
//
// It knows nothing of KRM: callers collect references, resolve them, and rewrite with Pin.
package resolver

import (
	"context"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Defaults, chosen for a CI runner talking to a few registries.
const (
	DefaultConcurrency         = 32
	DefaultRegistryConcurrency = 16
	DefaultTimeout             = 15 * time.Second
	DefaultAttempts            = 5
	DefaultMaxWait             = 30 * time.Second
)

// Resolver resolves references to digests. It is safe for concurrent use; create one per run so
// that transports and tokens are shared between lookups. One kept longer than its registries'
// credentials last wants WithCredentialRefresh.
type Resolver struct {
	keychain    authn.Keychain
	base        http.RoundTripper
	concurrency int
	perRegistry int
	timeout     time.Duration
	attempts    int
	maxWait     time.Duration
	backoff     time.Duration
	insecure    map[string]bool
	tls         map[string]TLS // by host, see WithRegistryTLS
	userAgent   string

	mirrors           Mirrors
	mirrorFallback    bool
	platform          *v1.Platform  // nil: a multi-arch tag resolves to its index
	handshakeRetry    time.Duration // after a failed handshake; 0: never
	credentialRefresh time.Duration // a registry's session is used for this long; 0: for ever
	now               func() time.Time

	requests atomic.Int64 // HTTP requests sent, retries included

	mu         sync.Mutex
	registries map[string]*registry
}

// Option configures a Resolver.
type Option func(*Resolver)

// WithKeychain sets where credentials come from (default: DefaultKeychain, the docker config, then
// GITHUB_TOKEN for ghcr.io).
func WithKeychain(k authn.Keychain) Option { return func(r *Resolver) { r.keychain = k } }

// WithTransport sets the base HTTP transport (default: a clone of http.DefaultTransport, which
// trusts the system roots and SSL_CERT_FILE).
func WithTransport(t http.RoundTripper) Option { return func(r *Resolver) { r.base = t } }

// WithConcurrency bounds the lookups in flight across all registries.
func WithConcurrency(n int) Option { return func(r *Resolver) { r.concurrency = max(n, 1) } }

// WithRegistryConcurrency bounds the lookups in flight against any one registry.
func WithRegistryConcurrency(n int) Option { return func(r *Resolver) { r.perRegistry = max(n, 1) } }

// WithTimeout bounds each HTTP request, body included; 0 means no bound.
func WithTimeout(d time.Duration) Option { return func(r *Resolver) { r.timeout = d } }

// WithRetries sets how many attempts a request gets in all (at least 1), the longest single wait
// between them (a Retry-After above it is reported rather than waited for), and the first backoff.
func WithRetries(attempts int, maxWait, firstBackoff time.Duration) Option {
	return func(r *Resolver) {
		r.attempts, r.maxWait, r.backoff = max(attempts, 1), maxWait, firstBackoff
	}
}

// WithInsecureRegistries lists registries (host or host:port) that may be reached over plain HTTP
// or with TLS verification off. Loopback registries may always use plain HTTP.
func WithInsecureRegistries(hosts ...string) Option {
	return func(r *Resolver) {
		for _, h := range hosts {
			r.insecure[h] = true
		}
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option { return func(r *Resolver) { r.userAgent = ua } }

// WithHandshakeRetry makes a registry whose handshake (ping, token exchange) failed be tried again
// by lookups after d, instead of failing every later lookup with the same error: for a Resolver
// that lives longer than one run, such as the webhook's. The default, 0, never tries again.
func WithHandshakeRetry(d time.Duration) Option { return func(r *Resolver) { r.handshakeRetry = d } }

// WithCredentialRefresh makes a registry's credentials and tokens be read and exchanged anew once
// d has passed since they were: the next lookup on the registry after that reads the keychain
// again, pings the registry and exchanges the new credentials for new tokens, and the lookups that
// come meanwhile wait for that one handshake and share it (lookups already under way finish with
// what they had). A failed handshake fails that registry's lookups, and a later lookup tries again
// (after WithHandshakeRetry's interval, if set). For a Resolver that outlives its credentials, such
// as the webhook's: cloud registry credentials (Google access tokens, ACR refresh tokens, ECR
// tokens) last from one to twelve hours, so d should be well below an hour. The default, 0, keeps
// a registry's first credentials for the Resolver's life, which suits one run.
func WithCredentialRefresh(d time.Duration) Option {
	return func(r *Resolver) { r.credentialRefresh = d }
}

// New returns a Resolver.
func New(opts ...Option) *Resolver {
	r := &Resolver{
		keychain:    DefaultKeychain,
		concurrency: DefaultConcurrency,
		perRegistry: DefaultRegistryConcurrency,
		timeout:     DefaultTimeout,
		attempts:    DefaultAttempts,
		maxWait:     DefaultMaxWait,
		backoff:     250 * time.Millisecond,
		insecure:    map[string]bool{},
		tls:         map[string]TLS{},
		userAgent:   "digester",
		now:         time.Now,
		registries:  map[string]*registry{},
	}
	for _, o := range opts {
		o(r)
	}
	if r.base == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = r.perRegistry
		r.base = t
	}
	if t, ok := r.base.(*http.Transport); ok && (len(r.insecure) > 0 || len(r.tls) > 0) {
		r.base = perHostTLS(t, r.insecure, r.tls)
	}
	return r
}

// Result is the outcome of resolving one reference.
type Result struct {
	// Digest is the manifest digest, "sha256:...", when Err is nil.
	Digest string
	// Mirror is the mirror that answered, as configured ("mirror.corp.example/dockerhub"); ""
	// when the reference's own registry did.
	Mirror string
	// Err says in plain words why the reference could not be resolved.
	Err error
}

// Requests returns how many HTTP requests the Resolver has sent to registries, retries included.
func (r *Resolver) Requests() int64 { return r.requests.Load() }

// Resolve looks up every distinct reference in refs once and returns a result for each. A tag
// resolves to the digest it points to now; a reference with a digest ("repo@sha256:…") resolves to
// that digest if the repository serves it, and to an error if not. References that do not parse
// get an error.
func (r *Resolver) Resolve(ctx context.Context, refs []string) map[string]Result {
	uniq := slices.Clone(refs)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)

	parsed := make(map[string]name.Reference, len(uniq))
	results := make(map[string]Result, len(uniq))
	for _, s := range uniq {
		ref, err := Parse(s)
		if err != nil {
			results[s] = Result{Err: err}
			continue
		}
		parsed[s] = ref
	}

	// Spellings of one reference ("nginx", "docker.io/library/nginx:latest") share one lookup.
	spellings := map[string][]string{}
	for s, ref := range parsed {
		spellings[ref.Name()] = append(spellings[ref.Name()], s)
	}
	// Where each is looked up (its registry, or its registry's mirrors), and the repositories
	// each registry is asked for, as that registry names them (a mirror's with its path prefix):
	// all of them are known before the first lookup, so each registry's token batches are too.
	names := slices.Sorted(maps.Keys(spellings))
	sources := make(map[string][]source, len(spellings))
	repos := map[string][]string{}
	for _, n := range names {
		sources[n] = r.sources(parsed[spellings[n][0]])
		for _, src := range sources[n] {
			if src.err != nil {
				continue
			}
			reg, repo := src.ref.Context().RegistryStr(), src.ref.Context().RepositoryStr()
			if !slices.Contains(repos[reg], repo) {
				repos[reg] = append(repos[reg], repo)
			}
		}
	}

	global := make(chan struct{}, r.concurrency)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for n, ss := range spellings {
		wg.Go(func() {
			d, mirror, err := r.resolveFrom(ctx, parsed[ss[0]], sources[n], global, repos)
			mu.Lock()
			for _, s := range ss {
				results[s] = Result{Digest: d, Mirror: mirror, Err: err}
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return results
}

// registry returns the state of one registry, creating it on first use, with repos added to those
// its tokens will cover: the current session's, and those of the sessions after it.
func (r *Resolver) registry(reg name.Registry, repos []string) *registry {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := reg.RegistryStr()
	g, ok := r.registries[key]
	if !ok {
		g = &registry{name: reg, known: map[string]bool{}, sem: make(chan struct{}, r.perRegistry)}
		r.registries[key] = g
	}
	var added []string
	for _, repo := range repos {
		if !g.known[repo] {
			g.known[repo] = true
			added = append(added, repo)
		}
	}
	g.repos = append(g.repos, added...)
	if s := g.cur.Load(); s != nil && s.tokens != nil {
		s.tokens.add(added...)
	}
	return g
}

// allowPlainHTTP reports whether host may be reached without TLS.
func (r *Resolver) allowPlainHTTP(host string) bool {
	if r.insecure[host] {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if r.insecure[h] {
		return true
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}
