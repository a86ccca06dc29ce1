package resolver

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/digester/digester/imageref"
)

// maxManifestBytes bounds a manifest body: registries refuse manifests over 4 MiB.
const maxManifestBytes = 4 << 20

// maxErrorBytes bounds what is read of an error response.
const maxErrorBytes = 64 << 10

// manifestTypes are the media types digester asks for, most specific last as registries expect.
var manifestTypes = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

var acceptHeader = strings.Join(manifestTypes, ",")

// registry is the state of one registry: the repositories asked of it, and its session.
type registry struct {
	name name.Registry
	sem  chan struct{}

	known map[string]bool // guarded by Resolver.mu: the repositories asked of the registry, in
	repos []string        // the order asked, for the token batches of each session

	cur  atomic.Pointer[session] // the last session made; nil before a handshake succeeds
	done atomic.Int64            // handshakes finished, written under mu

	mu       sync.Mutex // held during a handshake: lookups of the registry that need one wait for it
	err      error      // the last handshake's error, nil once one succeeds
	failedAt time.Time
}

// session is what one handshake with a registry set up: its authenticated transport, with the
// credentials read from the keychain and the tokens exchanged for them. Once made it changes only
// by being marked refused; a lookup keeps the session it started with, even when a newer one
// replaces it.
type session struct {
	name      name.Registry
	scheme    string // https, or http where the ping found a plain-HTTP (loopback or insecure) registry
	client    *http.Client
	anonymous bool
	secrets   []string
	tokens    *tokens   // for a registry that wants bearer tokens; else nil
	started   time.Time // when the handshake read the credentials
	renewed   bool      // made because the registry refused the session before it

	refused atomic.Bool // the registry refused its credentials: the session is old
}

// setup returns the registry's session, pinging it and exchanging credentials for a token when it
// has none yet or (WithCredentialRefresh) its session is old. Lookups that need a handshake while
// one is running wait for it and share its outcome. After a failed handshake, later lookups get its
// error until WithHandshakeRetry's interval has passed; with neither option, for the Resolver's
// life. A failed handshake never keeps an old session in use: its lookups get the error.
func (r *Resolver) setup(ctx context.Context, g *registry) (*session, error) {
	seen := g.done.Load() // read first: a handshake that ends after it changes it
	if s := g.cur.Load(); s != nil && !r.old(s) {
		return s, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done.Load() != seen { // a handshake ended while this lookup waited: its outcome is the lookup's
		if g.err != nil {
			return nil, g.err
		}
		return g.cur.Load(), nil
	}
	if g.err != nil && (r.handshakeRetry <= 0 && r.credentialRefresh <= 0 || r.now().Sub(g.failedAt) < r.handshakeRetry) {
		return nil, g.err
	}
	defer g.done.Add(1)
	prev := g.cur.Load()
	s, err := r.handshake(ctx, g)
	if err != nil {
		g.err, g.failedAt = err, r.now()
		return nil, err
	}
	s.renewed = prev != nil && prev.refused.Load()
	g.cur.Store(s)
	g.err = nil
	return s, nil
}

// old reports whether session s is older than WithCredentialRefresh allows, or was refused.
func (r *Resolver) old(s *session) bool {
	return s.refused.Load() || r.credentialRefresh > 0 && r.now().Sub(s.started) >= r.credentialRefresh
}

func (r *Resolver) handshake(ctx context.Context, g *registry) (*session, error) {
	host := g.name.RegistryStr()
	reg := g.name
	if r.allowPlainHTTP(host) {
		reg = name.Registry{}
		var err error
		if reg, err = name.NewRegistry(host, name.Insecure); err != nil {
			return nil, fail(Invalid, host, "%v", err)
		}
	}
	var rt http.RoundTripper = &guard{inner: r.base, insecure: r.allowPlainHTTP}
	rt = &counter{inner: rt, requests: &r.requests}
	rt = &retry{inner: rt, attempts: r.attempts, timeout: r.timeout, maxWait: r.maxWait, base: r.backoff}
	rt = transport.NewUserAgent(rt, r.userAgent)

	s := &session{name: g.name, started: r.now()}
	auth, err := r.keychain.Resolve(reg)
	if err != nil {
		return nil, credentialError(host, err)
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return nil, fail(Credentials, host, "read credentials for registry %s: %v", host, err)
	}
	s.anonymous = *cfg == authn.AuthConfig{}
	secrets := []string{cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken}
	if cfg.Username != "" && cfg.Password != "" { // what a basic Authorization header carries
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)))
	}
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s.secrets = append(s.secrets, sec)
		}
	}

	// One ping says whether the registry speaks https or (loopback and insecure registries only)
	// http, and how it authenticates.
	ch, err := transport.Ping(ctx, reg, rt)
	if err != nil {
		return nil, s.explain(err, "", "")
	}
	s.scheme = "https"
	if ch.Insecure {
		s.scheme = "http"
	}
	// FromToken gives go-containerregistry's transport for the challenge without a token: basic
	// credentials for a basic challenge, none where the ping needed none, and for a bearer
	// challenge a transport used only for other hosts (redirect targets).
	static := authn.FromConfig(*cfg)
	authed, err := transport.FromToken(reg, static, rt, ch, &transport.Token{})
	if err != nil {
		return nil, s.explain(err, "", "")
	}
	if strings.EqualFold(ch.Scheme, "bearer") {
		t := newTokens()
		t.reg, t.challenge, t.rt, t.auth, t.fixed, t.now = reg, ch, rt, static, cfg.RegistryToken, r.now
		r.mu.Lock()
		t.add(g.repos...)
		r.mu.Unlock()
		if err := t.warm(ctx, r.perRegistry); err != nil {
			return nil, s.explain(err, "", "")
		}
		s.tokens = t
		authed = &bearer{tokens: t, host: host, inner: rt, other: authed}
	}
	s.client = &http.Client{Transport: authed, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("stopped after 5 redirects")
		}
		return nil
	}}
	return s, nil
}

// lookup resolves a tag to its manifest digest, or checks that a digest is served.
// With WithCredentialRefresh, a lookup refused for its credentials (HTTP 401, from the registry or
// its token service) marks its session old and is tried once more on a new one: credentials may
// expire before the interval has passed, when the keychain gave them shortly before their expiry.
// A session made after such a refusal is not renewed on a refusal of its own, so that credentials
// the registry never accepts cost one more handshake per interval, not one per lookup.
func (r *Resolver) lookup(ctx context.Context, reg *registry, target name.Reference) (string, error) {
	g, err := r.setup(ctx, reg)
	if err != nil {
		return "", err
	}
	d, err := r.lookupWith(ctx, g, target)
	if r.credentialRefresh > 0 && !g.anonymous && !g.renewed && unauthorized(err) {
		g.refused.Store(true)
		if g, err = r.setup(ctx, reg); err != nil {
			return "", err
		}
		d, err = r.lookupWith(ctx, g, target)
	}
	return d, err
}

// unauthorized reports whether err is a registry's (or its token service's) HTTP 401.
func unauthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusUnauthorized
}

// lookupWith looks target up in session g.
func (r *Resolver) lookupWith(ctx context.Context, g *session, target name.Reference) (string, error) {
	d, err := r.fetch(ctx, g, target)
	pinned := HasDigest(target.String())
	if want := target.Identifier(); err == nil && pinned && d != want {
		repo := target.Context().RepositoryStr()
		e := fail(Mismatch, g.name.RegistryStr(), "registry %s sent digest %s for manifest %s of repository %s: refusing to pin", g.name.RegistryStr(), d, want, repo)
		e.Repository, e.Tag = repo, want
		return "", e
	}
	if err == nil && !pinned && r.platform != nil {
		return r.forPlatform(ctx, g, target, d)
	}
	return d, err
}

// fetch asks the registry for the digest of one manifest, by tag or by digest.
func (r *Resolver) fetch(ctx context.Context, g *session, target name.Reference) (string, error) {
	repo, ref := target.Context().RepositoryStr(), target.Identifier()
	url := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", g.scheme, g.name.RegistryStr(), repo, ref)

	resp, err := g.do(ctx, http.MethodHead, url)
	if err != nil {
		return "", g.explain(err, repo, ref)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if d := resp.Header.Get("Docker-Content-Digest"); imageref.ValidDigest(d) && isManifestType(resp.Header.Get("Content-Type")) {
			return d, nil
		}
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
	case http.StatusNotFound:
		// A HEAD has no body to say whether the tag or the whole repository is missing: ask.
		return "", g.explain(&statusError{code: resp.StatusCode, status: resp.Status, header: resp.Header, body: r.tagsBody(ctx, g, repo)}, repo, ref)
	default:
		return "", g.explain(&statusError{code: resp.StatusCode, status: resp.Status, header: resp.Header}, repo, ref)
	}

	// HEAD gave no usable digest: GET the manifest and hash it.
	resp, err = g.do(ctx, http.MethodGet, url)
	if err != nil {
		return "", g.explain(err, repo, ref)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return "", g.explain(&statusError{code: resp.StatusCode, status: resp.Status, header: resp.Header, body: body}, repo, ref)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return "", g.explain(err, repo, ref)
	}
	return verify(g.name.RegistryStr(), resp.Header, body)
}

// missingHelperRE finds the program in a credential helper error: docker's client reports a
// helper that is not installed as exec: "docker-credential-gcr": executable file not found.
var missingHelperRE = regexp.MustCompile(`exec: "(docker-credential-[^"]+)": executable file not found`)

// credentialError explains why the credentials for host could not be read.
func credentialError(host string, err error) error {
	if m := missingHelperRE.FindStringSubmatch(err.Error()); m != nil {
		return &Error{Cause: Credentials, Registry: host, msg: fmt.Sprintf("credential helper %s is not installed: the docker config names it for registry %s, but it is not on PATH (install it, or remove it from credHelpers or credsStore in the docker config)", m[1], host)}
	}
	return fail(Credentials, host, "read credentials for registry %s: %v", host, err)
}

// tagsBody returns the error body of a tag list request for repo when the registry answers it
// with 404 (whose OCI error code, NAME_UNKNOWN, says the repository does not exist), else nil.
// It is made only after a manifest HEAD found nothing, and a tag list is not a pull.
func (r *Resolver) tagsBody(ctx context.Context, g *session, repo string) []byte {
	resp, err := g.do(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/%s/tags/list?n=1", g.scheme, g.name.RegistryStr(), repo))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
	return body
}

// verify checks that body is a manifest and returns its digest, refusing a header that disagrees.
func verify(host string, h http.Header, body []byte) (string, error) {
	ct := h.Get("Content-Type")
	if len(body) > maxManifestBytes {
		return "", fail(BadResponse, host, "registry %s sent more than %d MiB for a manifest: not a manifest", host, maxManifestBytes>>20)
	}
	if mt, _, _ := mime.ParseMediaType(ct); mt == "text/html" || !json.Valid(body) {
		return "", fail(BadResponse, host, "registry %s answered with %s that is not a manifest (a proxy or login page in the way?)", host, orUnknown(ct))
	}
	var m struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.SchemaVersion != 2 {
		return "", fail(BadResponse, host, "registry %s answered with a document that is not an image manifest (schemaVersion %d, want 2)", host, m.SchemaVersion)
	}
	if !isManifestType(ct) && !isManifestType(m.MediaType) {
		return "", fail(BadResponse, host, "registry %s answered with unsupported manifest type %s", host, orUnknown(ct))
	}
	digest := digestOf("sha256", body)
	if hd := h.Get("Docker-Content-Digest"); imageref.ValidDigest(hd) {
		algo, _, _ := strings.Cut(hd, ":")
		if want := digestOf(algo, body); hd != want {
			return "", fail(Mismatch, host, "registry %s sent digest %s for a manifest that hashes to %s: refusing to pin", host, hd, want)
		}
	}
	return digest, nil
}

// digestOf is the digest of content under algo, sha256 or sha512: the algorithms
// imageref.ValidDigest accepts.
func digestOf(algo string, content []byte) string {
	if algo == "sha512" {
		sum := sha512.Sum512(content)
		return "sha512:" + hex.EncodeToString(sum[:])
	}
	sum := sha256.Sum256(content)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// isIndexType reports whether mt is the media type of an index (a multi-arch image).
func isIndexType(mt string) bool {
	return mt == manifestTypes[0] || mt == manifestTypes[1]
}

// isImageType reports whether mt is the media type of an image manifest.
func isImageType(mt string) bool {
	return mt == manifestTypes[2] || mt == manifestTypes[3]
}

func isManifestType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	for _, t := range manifestTypes {
		if mt == t {
			return true
		}
	}
	return false
}

func orUnknown(ct string) string {
	if ct == "" {
		return "a response without Content-Type"
	}
	return ct
}

func (g *session) do(ctx context.Context, method, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", acceptHeader)
	return g.client.Do(req)
}
