package resolver

import (
	"cmp"
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// maxScopes bounds the repositories one token exchange asks for, keeping its URL short
// (100 scopes of 50 bytes make a 5 KB URL; servers refuse from 8 KB).
const maxScopes = 100

// tokens holds the bearer tokens of one registry that scopes tokens per repository (Docker Hub,
// GHCR, GCR, Quay): one token per batch of at most maxScopes repositories, each from one token
// exchange naming every repository of its batch. A run over n repositories costs ceil(n/100)
// exchanges.
//
// Why not go-containerregistry's bearer transport: it keeps one token per registry and, on a
// 401 naming a scope it lacks, adds the scope to its list and exchanges again. Concurrent
// exchanges finish in any order and each stores its token over the last, and the request that
// asked then retries with whatever token is stored: one from an exchange that started before
// its scope was added loses it, the registry answers 401 again, and the whole run fails
// (issue 15; bearer.go in v0.22.1, lines 233-264 and 514-516). Here a batch's scopes only grow
// and its exchanges are serialised, so the token stored always covers every scope the batch held
// when the exchange started, and a request retried after a 401 uses a token exchanged after
// that 401 was seen.
type tokens struct {
	mu        sync.Mutex
	batchOf   map[string]*batch // repository -> its batch
	batches   []*batch
	reg       name.Registry
	challenge *transport.Challenge
	rt        http.RoundTripper   // carries the token requests
	auth      authn.Authenticator // an oauth refresh token replaces it once the token service gives one
	fixed     string              // a registry token from the keychain: used as is, never exchanged
	now       func() time.Time
}

// batch is the token for up to maxScopes repositories. Lock order: batch.mu, then tokens.mu.
type batch struct {
	repos []string // guarded by tokens.mu

	mu      sync.Mutex
	extra   []string // scopes the registry's challenges asked for beyond repos
	token   string
	expires time.Time // when the token is to be exchanged anew; zero when the registry named no lifetime
	err     error
	gen     atomic.Int64 // exchanges done, written under mu; a request remembers the gen of the token it sent
}

func newTokens() *tokens { return &tokens{batchOf: map[string]*batch{}} }

// add puts repositories not seen before into batches, filling the last one first.
func (t *tokens) add(repos ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, repo := range repos {
		t.batchLocked(repo)
	}
}

// batch returns the batch of repo, adding repo to one if it is new.
func (t *tokens) batch(repo string) *batch {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.batchLocked(repo)
}

func (t *tokens) batchLocked(repo string) *batch {
	if b, ok := t.batchOf[repo]; ok {
		return b
	}
	n := len(t.batches)
	if n == 0 || len(t.batches[n-1].repos) >= maxScopes {
		t.batches = append(t.batches, &batch{})
		n++
	}
	b := t.batches[n-1]
	b.repos = append(b.repos, repo)
	t.batchOf[repo] = b
	return b
}

// get returns the batch's token and its generation. It exchanges for a token when the batch has
// none, when its token has expired, or when its last exchange failed; requests that wait for an
// exchange take its outcome, failed or not, rather than exchanging again.
func (b *batch) get(ctx context.Context, t *tokens) (string, int64, error) {
	seen := b.gen.Load()
	b.mu.Lock()
	defer b.mu.Unlock()
	gen := b.gen.Load()
	if gen == 0 || gen == seen && (b.err != nil || !b.expires.IsZero() && !t.now().Before(b.expires)) {
		b.exchangeLocked(ctx, t, "")
	}
	return b.token, b.gen.Load(), b.err
}

// refresh returns a token exchanged after generation gen was refused, adding scope (from the
// registry's challenge) to the batch. When another request already refreshed the batch since,
// its token is returned without a new exchange.
func (b *batch) refresh(ctx context.Context, t *tokens, gen int64, scope string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen.Load() == gen {
		b.exchangeLocked(ctx, t, scope)
	}
	return b.token, b.err
}

func (b *batch) exchangeLocked(ctx context.Context, t *tokens, scope string) {
	t.mu.Lock()
	scopes := make([]string, 0, len(b.repos)+len(b.extra)+1)
	for _, repo := range b.repos {
		scopes = append(scopes, "repository:"+repo+":pull")
	}
	t.mu.Unlock()
	if scope != "" && !slices.Contains(scopes, scope) && !slices.Contains(b.extra, scope) {
		b.extra = append(b.extra, scope)
	}
	start := t.now()
	var life time.Duration
	b.token, life, b.err = t.exchange(ctx, append(scopes, b.extra...))
	b.expires = time.Time{}
	if life > 0 {
		// Exchanged anew when nine tenths of its life have passed, counted from before the request:
		// a request sent with it then still reaches the registry in time.
		b.expires = start.Add(life - life/10)
	}
	b.gen.Add(1)
}

// exchange trades the registry's credentials for a token covering scopes, and returns it with
// its lifetime (0 when the registry names none).
func (t *tokens) exchange(ctx context.Context, scopes []string) (string, time.Duration, error) {
	if t.fixed != "" {
		return t.fixed, 0, nil
	}
	t.mu.Lock()
	auth := t.auth
	t.mu.Unlock()
	tok, err := transport.Exchange(ctx, t.reg, auth, t.rt, scopes, t.challenge)
	if err != nil {
		return "", 0, err
	}
	if tok.RefreshToken != "" { // oauth: later exchanges present the refresh token
		t.mu.Lock()
		t.auth = authn.FromConfig(authn.AuthConfig{IdentityToken: tok.RefreshToken})
		t.mu.Unlock()
	}
	return cmp.Or(tok.Token, tok.AccessToken), time.Duration(tok.ExpiresIn) * time.Second, nil
}

// warm exchanges every batch's first token, at most limit at a time, and returns the first error.
func (t *tokens) warm(ctx context.Context, limit int) error {
	t.mu.Lock()
	batches := slices.Clone(t.batches)
	t.mu.Unlock()
	sem := make(chan struct{}, max(limit, 1))
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, _, errs[i] = b.get(ctx, t)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// bearer sends each request to the registry with the token of its repository's batch, and on a
// bearer challenge retries it once with a fresh token of that batch. Requests to other hosts (a
// redirect to a CDN) go through other, which never gives them the registry's token.
type bearer struct {
	tokens *tokens
	host   string
	inner  http.RoundTripper
	other  http.RoundTripper
}

func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != b.host {
		return b.other.RoundTrip(req)
	}
	bt := b.tokens.batch(repository(req.URL.Path))
	tok, gen, err := bt.get(req.Context(), b.tokens)
	if err != nil {
		return nil, err
	}
	resp, err := b.send(req, tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || req.Body != nil {
		return resp, err
	}
	scope, ok := bearerScope(resp.Header.Values("WWW-Authenticate"))
	if !ok {
		return resp, nil
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBytes))
	resp.Body.Close()
	if tok, err = bt.refresh(req.Context(), b.tokens, gen, scope); err != nil {
		return nil, err
	}
	return b.send(req, tok)
}

func (b *bearer) send(req *http.Request, token string) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	return b.inner.RoundTrip(req)
}

var scopeRE = regexp.MustCompile(`\bscope="([^"]*)"`)

// bearerScope reports whether a WWW-Authenticate header holds a bearer challenge, and the scope
// it names (empty if none).
func bearerScope(challenges []string) (string, bool) {
	for _, c := range challenges {
		if !strings.HasPrefix(strings.ToLower(c), "bearer ") {
			continue
		}
		if m := scopeRE.FindStringSubmatch(c); m != nil {
			return m[1], true
		}
		return "", true
	}
	return "", false
}

// repository returns the repository a manifest or tag list path names: "a/b" for
// /v2/a/b/manifests/x and /v2/a/b/tags/list, and "" for any other path (which then shares the
// batch of "").
func repository(path string) string {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return ""
	}
	if i := strings.LastIndex(rest, "/manifests/"); i >= 0 {
		return rest[:i]
	}
	repo, _ := strings.CutSuffix(rest, "/tags/list")
	if repo == rest {
		return ""
	}
	return repo
}
