package resolver

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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

var digestRE = regexp.MustCompile(`^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)

// registry is the per-run state of one registry: its authenticated transport, set up once.
type registry struct {
	name   name.Registry
	tokens *tokens // the run's repositories, batched for token exchanges
	sem    chan struct{}

	mu        sync.Mutex // held during the handshake: lookups of the registry wait for it
	scheme    string     // https, or http where the ping found a plain-HTTP (loopback or insecure) registry
	client    *http.Client
	anonymous bool
	secrets   []string
	err       error
	failedAt  time.Time
}

// setup pings the registry and exchanges credentials for a token, once per run; after a failed
// handshake, again once WithHandshakeRetry's interval has passed (never, by default).
func (r *Resolver) setup(ctx context.Context, g *registry) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.client != nil {
		return nil
	}
	if g.err != nil && (r.handshakeRetry <= 0 || time.Since(g.failedAt) < r.handshakeRetry) {
		return g.err
	}
	g.secrets = nil
	if g.err = r.handshake(ctx, g); g.err != nil {
		g.client, g.failedAt = nil, time.Now()
	}
	return g.err
}

func (r *Resolver) handshake(ctx context.Context, g *registry) error {
	host := g.name.RegistryStr()
	reg := g.name
	if r.allowPlainHTTP(host) {
		reg = name.Registry{}
		var err error
		if reg, err = name.NewRegistry(host, name.Insecure); err != nil {
			return err
		}
	}
	var rt http.RoundTripper = &guard{inner: r.base, insecure: r.allowPlainHTTP}
	rt = &counter{inner: rt, requests: &r.requests}
	rt = &retry{inner: rt, attempts: r.attempts, timeout: r.timeout, maxWait: r.maxWait, base: r.backoff}
	rt = transport.NewUserAgent(rt, r.userAgent)

	auth, err := r.keychain.Resolve(reg)
	if err != nil {
		return credentialError(host, err)
	}
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil {
		return fmt.Errorf("read credentials for registry %s: %w", host, err)
	}
	g.anonymous = *cfg == authn.AuthConfig{}
	secrets := []string{cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken}
	if cfg.Username != "" && cfg.Password != "" { // what a basic Authorization header carries
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)))
	}
	for _, s := range secrets {
		if len(s) >= 4 {
			g.secrets = append(g.secrets, s)
		}
	}

	// One ping says whether the registry speaks https or (loopback and insecure registries only)
	// http, and how it authenticates.
	ch, err := transport.Ping(ctx, reg, rt)
	if err != nil {
		return g.explain(err, "", "")
	}
	g.scheme = "https"
	if ch.Insecure {
		g.scheme = "http"
	}
	// FromToken gives go-containerregistry's transport for the challenge without a token: basic
	// credentials for a basic challenge, none where the ping needed none, and for a bearer
	// challenge a transport used only for other hosts (redirect targets).
	static := authn.FromConfig(*cfg)
	authed, err := transport.FromToken(reg, static, rt, ch, &transport.Token{})
	if err != nil {
		return g.explain(err, "", "")
	}
	if strings.EqualFold(ch.Scheme, "bearer") {
		t := g.tokens
		t.reg, t.challenge, t.rt, t.auth, t.fixed = reg, ch, rt, static, cfg.RegistryToken
		if err := t.warm(ctx, r.perRegistry); err != nil {
			return g.explain(err, "", "")
		}
		authed = &bearer{tokens: t, host: host, inner: rt, other: authed}
	}
	g.client = &http.Client{Transport: authed, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return fmt.Errorf("stopped after 5 redirects")
		}
		return nil
	}}
	return nil
}

// lookup resolves a tag to its manifest digest, or checks that a digest is served.
func (r *Resolver) lookup(ctx context.Context, g *registry, target name.Reference) (string, error) {
	if err := r.setup(ctx, g); err != nil {
		return "", err
	}
	d, err := r.fetch(ctx, g, target)
	pinned := HasDigest(target.String())
	if want := target.Identifier(); err == nil && pinned && d != want {
		repo := target.Context().RepositoryStr()
		return "", fmt.Errorf("registry %s sent digest %s for manifest %s of repository %s: refusing to pin", g.name.RegistryStr(), d, want, repo)
	}
	if err == nil && !pinned && r.platform != nil {
		return r.forPlatform(ctx, g, target, d)
	}
	return d, err
}

// fetch asks the registry for the digest of one manifest, by tag or by digest.
func (r *Resolver) fetch(ctx context.Context, g *registry, target name.Reference) (string, error) {
	repo, ref := target.Context().RepositoryStr(), target.Identifier()
	url := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", g.scheme, g.name.RegistryStr(), repo, ref)

	resp, err := g.do(ctx, http.MethodHead, url)
	if err != nil {
		return "", g.explain(err, repo, ref)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		if d := resp.Header.Get("Docker-Content-Digest"); digestRE.MatchString(d) && isManifestType(resp.Header.Get("Content-Type")) {
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
		return &Error{Registry: host, msg: fmt.Sprintf("credential helper %s is not installed: the docker config names it for registry %s, but it is not on PATH (install it, or remove it from credHelpers or credsStore in the docker config)", m[1], host)}
	}
	return fmt.Errorf("read credentials for registry %s: %w", host, err)
}

// tagsBody returns the error body of a tag list request for repo when the registry answers it
// with 404 (whose OCI error code, NAME_UNKNOWN, says the repository does not exist), else nil.
// It is made only after a manifest HEAD found nothing, and a tag list is not a pull.
func (r *Resolver) tagsBody(ctx context.Context, g *registry, repo string) []byte {
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
		return "", fmt.Errorf("registry %s sent more than %d MiB for a manifest: not a manifest", host, maxManifestBytes>>20)
	}
	if mt, _, _ := mime.ParseMediaType(ct); mt == "text/html" || !json.Valid(body) {
		return "", fmt.Errorf("registry %s answered with %s that is not a manifest (a proxy or login page in the way?)", host, orUnknown(ct))
	}
	var m struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.SchemaVersion != 2 {
		return "", fmt.Errorf("registry %s answered with a document that is not an image manifest (schemaVersion %d, want 2)", host, m.SchemaVersion)
	}
	if !isManifestType(ct) && !isManifestType(m.MediaType) {
		return "", fmt.Errorf("registry %s answered with unsupported manifest type %s", host, orUnknown(ct))
	}
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if hd := h.Get("Docker-Content-Digest"); digestRE.MatchString(hd) {
		want := digest
		if strings.HasPrefix(hd, "sha512:") {
			s := sha512.Sum512(body)
			want = "sha512:" + hex.EncodeToString(s[:])
		}
		if hd != want {
			return "", fmt.Errorf("registry %s sent digest %s for a manifest that hashes to %s: refusing to pin", host, hd, want)
		}
	}
	return digest, nil
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

func (g *registry) do(ctx context.Context, method, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", acceptHeader)
	return g.client.Do(req)
}
