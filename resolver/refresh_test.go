package resolver_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// clock is a settable time for the resolver, the keychain and the registry of these tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// rotation is how long one password lasts, as a cloud access token does: the keychain gives, and
// the registry accepts, only the password of the current hour.
const rotation = time.Hour

func password(c *clock) string {
	return fmt.Sprintf("pw-%d", c.Now().Unix()/int64(rotation/time.Second))
}

// rotatingKeychain gives the current password, counting its reads. While fail is above 0, each
// read fails and takes one from it; each read takes delay (real time) first.
type rotatingKeychain struct {
	clock *clock
	reads atomic.Int64
	fail  atomic.Int64
	delay time.Duration
}

func (k *rotatingKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	k.reads.Add(1)
	time.Sleep(k.delay)
	if k.fail.Add(-1) >= 0 {
		return nil, errors.New("metadata server: connection refused")
	}
	k.fail.Store(0)
	return &authn.Basic{Username: "robot", Password: password(k.clock)}, nil
}

// rotatingAuth makes a registry accept only the current password: as basic credentials, or
// (bearer) at its token endpoint, whose tokens last tokenLife and are refused after it. With
// sayLife, the token answer names that life (expires_in). It counts the exchanges and the manifest
// requests refused. While failTokens is above 0, each token request fails and takes one from it.
type rotatingAuth struct {
	clock      *clock
	bearer     bool
	tokenLife  time.Duration
	sayLife    bool
	exchanges  atomic.Int64
	refused    atomic.Int64
	failTokens atomic.Int64
}

func (a *rotatingAuth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			next.ServeHTTP(w, r) // pushes by the test itself
			return
		}
		if r.URL.Path == "/token" {
			a.exchanges.Add(1)
			user, pass, _ := r.BasicAuth()
			if a.failTokens.Add(-1) >= 0 || user != "robot" || pass != password(a.clock) {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			a.failTokens.Store(0)
			answer := map[string]any{"token": "until-" + strconv.FormatInt(a.clock.Now().Add(a.tokenLife).Unix(), 10)}
			if a.sayLife {
				answer["expires_in"] = int(a.tokenLife / time.Second)
			}
			json.NewEncoder(w).Encode(answer)
			return
		}
		challenge := `Basic realm="test"`
		ok := false
		if a.bearer {
			challenge = fmt.Sprintf(`Bearer realm="http://%s/token",service="test"`, r.Host)
			until, err := strconv.ParseInt(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer until-"), 10, 64)
			ok = err == nil && a.clock.Now().Unix() < until
		} else {
			user, pass, _ := r.BasicAuth()
			ok = user == "robot" && pass == password(a.clock)
		}
		if !ok {
			if r.URL.Path != "/v2/" {
				a.refused.Add(1)
			}
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rotatingRegistry starts a registry behind a serving team/app0:v1 … team/app<repos-1>:v1.
func rotatingRegistry(t *testing.T, a *rotatingAuth, repos int) (*registrytest.Registry, []string, map[string]string) {
	t.Helper()
	reg := registrytest.New(registrytest.WithMiddleware(a.middleware))
	t.Cleanup(reg.Close)
	reg, refs, want := tokenRegistryOn(t, reg, &tokenServer{}, repos)
	a.exchanges.Store(0)
	return reg, refs, want
}

// counts is what a registry and its keychain saw.
type counts struct {
	KeychainReads, Pings, Exchanges, Refused int64
}

func (a *rotatingAuth) counts(reg *registrytest.Registry, k *rotatingKeychain) counts {
	return counts{KeychainReads: k.reads.Load(), Pings: int64(reg.Count(http.MethodGet, "ping")),
		Exchanges: a.exchanges.Load(), Refused: a.refused.Load()}
}

// errorsOf resolves refs together and returns the errors of those that failed, failing the test on
// a wrong digest.
func errorsOf(t *testing.T, r *resolver.Resolver, refs []string, want map[string]string) []string {
	t.Helper()
	var errs []string
	for ref, res := range r.Resolve(t.Context(), refs) {
		switch {
		case res.Err != nil:
			errs = append(errs, res.Err.Error())
		case res.Digest != want[ref]:
			t.Fatalf("%s: got digest %s, want %s", ref, res.Digest, want[ref])
		}
	}
	return errs
}

// TestCredentialRefresh: a Resolver kept past its credentials' life (the webhook's) reads the
// keychain again once WithCredentialRefresh's interval has passed, and pins with the new
// credentials; without it, it keeps the first credentials and every lookup on the registry fails
// once they expire. Lookups after the interval share one new handshake.
func TestCredentialRefresh(t *testing.T) {
	const repos = 20
	for _, scheme := range []string{"basic", "bearer"} {
		for _, refresh := range []time.Duration{0, 10 * time.Minute} {
			t.Run(fmt.Sprintf("%s/refresh=%s", scheme, refresh), func(t *testing.T) {
				clk := newClock()
				a := &rotatingAuth{clock: clk, bearer: scheme == "bearer", tokenLife: 5 * time.Minute, sayLife: true}
				reg, refs, want := rotatingRegistry(t, a, repos)
				k := &rotatingKeychain{clock: clk}
				r := resolver.New(resolver.WithKeychain(k), resolver.WithClock(clk.Now), resolver.WithCredentialRefresh(refresh))
				// One handshake per registry, ping and exchange, is what a session costs.
				perSession := counts{KeychainReads: 1, Pings: 1}
				if a.bearer {
					perSession.Exchanges = 1
				}
				type step struct {
					after time.Duration // since the last step
					fails bool
					total counts
					// handshakes only: the lookups refused (a basic registry's) or the
					// exchanges (a bearer one's) before the new handshake vary with timing
					handshakes bool
				}
				var steps []step
				if refresh == 0 {
					steps = []step{
						{after: 0, total: perSession},
						// The hour's password has changed: the registry refuses the old one.
						{after: 61 * time.Minute, fails: true},
					}
				} else {
					ex := perSession.Exchanges
					steps = []step{
						{after: 0, total: perSession},
						// A bearer token is exchanged anew when nine tenths of its life have passed.
						{after: refresh - time.Second, total: counts{1, 1, 2 * ex, 0}},
						{after: time.Second, total: counts{2, 2, 3 * ex, 0}},
						{after: 45 * time.Minute, total: counts{3, 3, 4 * ex, 0}},
						// Past the hour, by less than the interval since the last handshake:
						// the password it read is refused (a basic registry's at once, a
						// bearer one's when the token expired and is exchanged anew), and
						// the lookups that were refused take a new handshake.
						{after: 6 * time.Minute, total: counts{KeychainReads: 4, Pings: 4}, handshakes: true},
						{after: 4 * time.Minute, total: counts{4, 4, 0, 0}, handshakes: true},
					}
				}
				for i, s := range steps {
					clk.advance(s.after)
					errs := errorsOf(t, r, refs, want)
					if s.fails {
						if len(errs) != repos || !strings.Contains(errs[0], "unauthorized: registry "+reg.Host+" rejected the credentials") {
							t.Fatalf("step %d: got %d errors (%q), want %d unauthorized", i, len(errs), errs, repos)
						}
						continue
					}
					if len(errs) > 0 {
						t.Fatalf("step %d: %d of %d lookups failed: %s", i, len(errs), repos, errs[0])
					}
					got := a.counts(reg, k)
					if s.handshakes {
						got.Exchanges, got.Refused = 0, 0
					}
					if diff := cmp.Diff(s.total, got); diff != "" {
						t.Errorf("step %d: counts (-want +got):\n%s", i, diff)
					}
				}
			})
		}
	}
}

// TestCredentialRefreshSharesOneHandshake: lookups that find the registry's session old while a new
// handshake is under way wait for it, and take its outcome: a success, or a failure, which the next
// lookup after it tries again (it is not kept), and which never leaves them the old session.
func TestCredentialRefreshSharesOneHandshake(t *testing.T) {
	const repos = 16 // as many as are looked up at once: all wait for the one handshake
	clk := newClock()
	a := &rotatingAuth{clock: clk}
	reg, refs, want := rotatingRegistry(t, a, repos)
	// Each keychain read takes a while, so that every lookup of a Resolve call finds the handshake
	// under way.
	k := &rotatingKeychain{clock: clk, delay: 200 * time.Millisecond}
	r := resolver.New(resolver.WithKeychain(k), resolver.WithClock(clk.Now), resolver.WithCredentialRefresh(time.Minute),
		resolver.WithRegistryConcurrency(repos))
	if errs := errorsOf(t, r, refs, want); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	clk.advance(time.Minute)
	k.fail.Store(1)
	// The lookups that wait for the failed handshake fail with its error, none with the old
	// session; the next lookup after it makes a new one.
	errs := errorsOf(t, r, refs, want)
	if len(errs) != repos {
		t.Fatalf("got %d errors (%q), want %d: every lookup waited for the failed handshake", len(errs), errs, repos)
	}
	for _, err := range errs {
		if want := "read credentials for registry " + reg.Host + ": metadata server: connection refused"; err != want {
			t.Fatalf("got error %q, want %q", err, want)
		}
	}
	if errs := errorsOf(t, r, refs, want); len(errs) > 0 {
		t.Fatalf("the lookups after a failed handshake: %s", errs[0])
	}
	clk.advance(time.Minute)
	if errs := errorsOf(t, r, refs, want); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	want4 := counts{KeychainReads: 4, Pings: 3}
	if diff := cmp.Diff(want4, a.counts(reg, k)); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestHandshakeRetry: after a failed handshake, a Resolver gives the registry's lookups that error
// until WithHandshakeRetry's interval has passed, then tries again; without it (nor
// WithCredentialRefresh), it keeps the error for its life, as a run should.
func TestHandshakeRetry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []resolver.Option
		reads []int64 // the keychain's reads after each step
		fails []bool
	}{
		{name: "never", reads: []int64{1, 1, 1}, fails: []bool{true, true, true}},
		{name: "retry", opts: []resolver.Option{resolver.WithHandshakeRetry(time.Minute)}, reads: []int64{1, 1, 2}, fails: []bool{true, true, false}},
		{name: "refresh", opts: []resolver.Option{resolver.WithCredentialRefresh(time.Hour)}, reads: []int64{1, 2, 2}, fails: []bool{true, false, false}},
		{name: "refresh and retry", opts: []resolver.Option{resolver.WithCredentialRefresh(time.Hour), resolver.WithHandshakeRetry(time.Minute)}, reads: []int64{1, 1, 2}, fails: []bool{true, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			a := &rotatingAuth{clock: clk}
			_, refs, want := rotatingRegistry(t, a, 1)
			k := &rotatingKeychain{clock: clk}
			k.fail.Store(1)
			r := resolver.New(append([]resolver.Option{resolver.WithKeychain(k), resolver.WithClock(clk.Now)}, tc.opts...)...)
			var reads []int64
			var fails []bool
			for _, after := range []time.Duration{0, time.Minute - time.Second, time.Second} {
				clk.advance(after)
				fails = append(fails, len(errorsOf(t, r, refs, want)) > 0)
				reads = append(reads, k.reads.Load())
			}
			if diff := cmp.Diff(tc.reads, reads); diff != "" {
				t.Errorf("keychain reads (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.fails, fails); diff != "" {
				t.Errorf("failed (-want +got):\n%s", diff)
			}
		})
	}
}

// countingKeychain gives auth for every registry, counting its reads.
type countingKeychain struct {
	auth  authn.Authenticator
	reads atomic.Int64
}

func (k *countingKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	k.reads.Add(1)
	return k.auth, nil
}

// TestRefusedCredentialsAreReadAgain: with WithCredentialRefresh, a lookup that the registry refuses
// (401) takes one new handshake and tries again, for credentials that expired before the interval
// passed; credentials the registry never accepts cost one more handshake per interval, not one per
// lookup, and a lookup without credentials, or without the option, or failed otherwise (a missing
// tag) is not tried again.
func TestRefusedCredentialsAreReadAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		auth    authn.Authenticator
		refresh time.Duration
		reads   []int64 // the keychain's reads after each step
		want    string  // the error, HOST standing for the registry's
		tag     string  // looked up instead of v1
	}{
		{name: "never accepted", auth: &authn.Basic{Username: "robot", Password: "wrong"}, refresh: 10 * time.Minute,
			reads: []int64{2, 2, 4}, want: "unauthorized: registry HOST rejected the credentials digester found"},
		{name: "without refresh", auth: &authn.Basic{Username: "robot", Password: "wrong"},
			reads: []int64{1, 1, 1}, want: "unauthorized: registry HOST rejected the credentials digester found"},
		{name: "anonymous", auth: authn.Anonymous, refresh: 10 * time.Minute,
			reads: []int64{1, 1, 2}, want: "unauthorized: registry HOST wants credentials"},
		{name: "accepted, tag not found", refresh: 10 * time.Minute,
			reads: []int64{1, 1, 2}, want: `tag not found: "missing" in repository team/app0 on registry HOST`, tag: "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			a := &rotatingAuth{clock: clk}
			reg, refs, want := rotatingRegistry(t, a, 1)
			if tc.auth == nil { // the registry's password
				tc.auth = &authn.Basic{Username: "robot", Password: password(clk)}
			}
			k := &countingKeychain{auth: tc.auth}
			r := resolver.New(resolver.WithKeychain(k), resolver.WithClock(clk.Now), resolver.WithCredentialRefresh(tc.refresh))
			if tc.tag != "" {
				refs = []string{reg.Host + "/team/app0:" + tc.tag}
			}
			wantErr := strings.ReplaceAll(tc.want, "HOST", reg.Host)
			var reads []int64
			for _, after := range []time.Duration{0, time.Minute, 9 * time.Minute} {
				clk.advance(after)
				errs := errorsOf(t, r, refs, want)
				if len(errs) != 1 || !strings.HasPrefix(errs[0], wantErr) {
					t.Fatalf("got errors %q, want one starting %q", errs, wantErr)
				}
				reads = append(reads, k.reads.Load())
			}
			if diff := cmp.Diff(tc.reads, reads); diff != "" {
				t.Errorf("keychain reads (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBearerTokenExpiry: a bearer token whose answer names its life (expires_in) is exchanged anew
// when nine tenths of it have passed, before the registry would refuse it; one whose answer names
// none is used until the registry refuses it, then exchanged anew. Both pin throughout.
func TestBearerTokenExpiry(t *testing.T) {
	for _, sayLife := range []bool{true, false} {
		t.Run(fmt.Sprintf("expires_in=%v", sayLife), func(t *testing.T) {
			clk := newClock()
			a := &rotatingAuth{clock: clk, bearer: true, tokenLife: 300 * time.Second, sayLife: sayLife}
			reg, refs, want := rotatingRegistry(t, a, 1)
			r := resolver.New(resolver.WithKeychain(&rotatingKeychain{clock: clk}), resolver.WithClock(clk.Now))
			var got []counts
			for _, after := range []time.Duration{0, 269 * time.Second, time.Second, 31 * time.Second} {
				clk.advance(after)
				if errs := errorsOf(t, r, refs, want); len(errs) > 0 {
					t.Fatal(errs[0])
				}
				got = append(got, counts{Pings: int64(reg.Count(http.MethodGet, "ping")), Exchanges: a.exchanges.Load(), Refused: a.refused.Load()})
			}
			// At 0s, 269s, 270s and 301s.
			wantCounts := []counts{{Pings: 1, Exchanges: 1}, {Pings: 1, Exchanges: 1}, {Pings: 1, Exchanges: 2}, {Pings: 1, Exchanges: 2}}
			if !sayLife {
				wantCounts = []counts{{Pings: 1, Exchanges: 1}, {Pings: 1, Exchanges: 1}, {Pings: 1, Exchanges: 1}, {Pings: 1, Exchanges: 2, Refused: 1}}
			}
			if diff := cmp.Diff(wantCounts, got); diff != "" {
				t.Errorf("counts at each step (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFailedTokenExchangeIsTriedAgain: a token exchange that fails after the first fails the
// lookups that waited for it, and the next lookup exchanges again, rather than the batch keeping
// the error for the Resolver's life.
func TestFailedTokenExchangeIsTriedAgain(t *testing.T) {
	const repos = 16 // as many as are looked up at once: all wait for the one failed exchange
	clk := newClock()
	a := &rotatingAuth{clock: clk, bearer: true, tokenLife: 300 * time.Second, sayLife: true}
	reg := registrytest.New(registrytest.WithMiddleware(a.middleware))
	t.Cleanup(reg.Close)
	reg, refs, want := tokenRegistryOn(t, reg, &tokenServer{}, repos)
	a.exchanges.Store(0)
	r := resolver.New(resolver.WithKeychain(&rotatingKeychain{clock: clk}), resolver.WithClock(clk.Now),
		resolver.WithRegistryConcurrency(repos))
	if errs := errorsOf(t, r, refs, want); len(errs) > 0 {
		t.Fatal(errs[0])
	}
	clk.advance(300 * time.Second)
	a.failTokens.Store(1)
	reg.SetLatency(200 * time.Millisecond) // every lookup reaches the exchange before it fails
	errs := errorsOf(t, r, refs, want)
	reg.SetLatency(0)
	if len(errs) != repos || !strings.Contains(errs[0], "unauthorized: registry "+reg.Host+" rejected the credentials") {
		t.Fatalf("got %d errors (%q), want %d unauthorized", len(errs), errs, repos)
	}
	if errs := errorsOf(t, r, refs, want); len(errs) > 0 {
		t.Fatalf("after a failed exchange: %s", errs[0])
	}
	if diff := cmp.Diff(counts{Pings: 1, Exchanges: 3}, counts{Pings: int64(reg.Count(http.MethodGet, "ping")), Exchanges: a.exchanges.Load()}); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}
