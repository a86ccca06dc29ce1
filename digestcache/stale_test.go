package digestcache_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/resolver"
)

// errText compares errors by their text.
var errText = cmp.Comparer(func(a, b error) bool {
	return a == nil && b == nil || a != nil && b != nil && a.Error() == b.Error()
})

// status is a lookup the registry answered with an HTTP status.
func status(code int) error {
	return &resolver.Error{Registry: "registry.example", StatusCode: code}
}

// staleStep is one call to Resolve: at offset from the start, with the registry failing with err
// (if not nil); what it answers, which answers were stale (with the offset of their resolution),
// and what it sent on.
type staleStep struct {
	at    time.Duration
	err   error
	refs  []string
	want  map[string]resolver.Result
	stale []stale
	calls [][]string
}

type stale struct {
	Ref, Digest string
	Resolved    time.Duration // since the start
	Err         error
}

func TestStaleIfError(t *testing.T) {
	down := errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
	digest := func(d string) resolver.Result { return resolver.Result{Digest: d} }
	failed := func(err error) resolver.Result { return resolver.Result{Err: err} }
	for _, tc := range []struct {
		name       string
		ttl, stale time.Duration
		steps      []staleStep
	}{{
		name: "a digest resolved less than d ago is served while the registry is down, then refused",
		ttl:  time.Minute, stale: 10 * time.Minute,
		steps: []staleStep{
			{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")}, calls: [][]string{{"app:1"}}},
			{at: 2 * time.Minute, err: down, refs: []string{"app:1", "docker.io/library/app:1"},
				want:  map[string]resolver.Result{"app:1": digest("sha256:1"), "docker.io/library/app:1": digest("sha256:1")},
				stale: []stale{{"app:1", "sha256:1", 0, down}, {"docker.io/library/app:1", "sha256:1", 0, down}},
				calls: [][]string{{"app:1"}}}, // one lookup for both spellings
			// A stale answer is never fresh: each caller asks the registry again.
			{at: 10*time.Minute - time.Nanosecond, err: down, refs: []string{"app:1"},
				want:  map[string]resolver.Result{"app:1": digest("sha256:1")},
				stale: []stale{{"app:1", "sha256:1", 0, down}}, calls: [][]string{{"app:1"}}},
			{at: 10 * time.Minute, err: down, refs: []string{"app:1"},
				want: map[string]resolver.Result{"app:1": failed(down)}, calls: [][]string{{"app:1"}}},
		},
	}, {
		name: "the registry back: a fresh digest, and the window counts from it",
		ttl:  time.Minute, stale: 10 * time.Minute,
		steps: []staleStep{
			{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")}, calls: [][]string{{"app:1"}}},
			{at: 5 * time.Minute, err: down, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")},
				stale: []stale{{"app:1", "sha256:1", 0, down}}, calls: [][]string{{"app:1"}}},
			{at: 6 * time.Minute, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:3")}, calls: [][]string{{"app:1"}}},
			{at: 6*time.Minute + 30*time.Second, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:3")}}, // fresh: a hit
			{at: 15 * time.Minute, err: down, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:3")},
				stale: []stale{{"app:1", "sha256:3", 6 * time.Minute, down}}, calls: [][]string{{"app:1"}}},
			{at: 16 * time.Minute, err: down, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": failed(down)}, calls: [][]string{{"app:1"}}},
		},
	}, {
		name: "a reference never resolved still fails",
		ttl:  time.Minute, stale: 10 * time.Minute,
		steps: []staleStep{
			{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")}, calls: [][]string{{"app:1"}}},
			{at: 2 * time.Minute, err: down, refs: []string{"app:1", "app:2"},
				want:  map[string]resolver.Result{"app:1": digest("sha256:1"), "app:2": failed(down)},
				stale: []stale{{"app:1", "sha256:1", 0, down}}, calls: [][]string{{"app:1", "app:2"}}},
		},
	}, {
		name: "d counts from the resolution, not from the end of the TTL",
		ttl:  5 * time.Minute, stale: 6 * time.Minute,
		steps: []staleStep{
			{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")}, calls: [][]string{{"app:1"}}},
			{at: 5*time.Minute + 30*time.Second, err: down, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")},
				stale: []stale{{"app:1", "sha256:1", 0, down}}, calls: [][]string{{"app:1"}}},
			// RFC 5861 would serve it until 11 minutes (TTL + d).
			{at: 6 * time.Minute, err: down, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": failed(down)}, calls: [][]string{{"app:1"}}},
		},
	}, {
		name: "d not longer than the TTL never applies",
		ttl:  time.Minute, stale: time.Minute,
		steps: []staleStep{
			{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")}, calls: [][]string{{"app:1"}}},
			{at: time.Minute, err: down, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": failed(down)}, calls: [][]string{{"app:1"}}},
		},
	}, {
		name: "without WithStaleIfError a failure is an error",
		ttl:  time.Minute,
		steps: []staleStep{
			{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")}, calls: [][]string{{"app:1"}}},
			{at: 2 * time.Minute, err: down, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": failed(down)}, calls: [][]string{{"app:1"}}},
		},
	}, {
		name: "with the cache disabled, every call looks up and a failure is answered stale",
		ttl:  0, stale: 10 * time.Minute,
		steps: []staleStep{
			{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:1")}, calls: [][]string{{"app:1"}}},
			{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:2")}, calls: [][]string{{"app:1"}}},
			{at: time.Minute, err: down, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": digest("sha256:2")},
				stale: []stale{{"app:1", "sha256:2", 0, down}}, calls: [][]string{{"app:1"}}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f, clk := &fake{}, &clock{t: time.Unix(1000, 0)}
			c := digestcache.New(f, digestcache.WithTTL(tc.ttl), digestcache.WithStaleIfError(tc.stale), digestcache.WithClock(clk.now))
			runStaleSteps(t, c, f, clk, tc.steps)
		})
	}
}

// runStaleSteps runs steps against c, built around f and clk.
func runStaleSteps(t *testing.T, c *digestcache.Cache, f *fake, clk *clock, steps []staleStep) {
	t.Helper()
	start := clk.t
	var staleHits int64
	for i, s := range steps {
		clk.t = start.Add(s.at)
		f.failing, f.err, f.calls = s.err != nil, s.err, nil
		ctx, recorded := digestcache.Record(context.Background())
		got := c.Resolve(ctx, s.refs)
		if diff := cmp.Diff(s.want, got, errText); diff != "" {
			t.Errorf("step %d: results (-want +got):\n%s", i, diff)
		}
		var gotStale []stale
		for _, r := range recorded() {
			if r.Source != digestcache.SourceStale {
				continue
			}
			gotStale = append(gotStale, stale{r.Ref, r.Digest, r.Resolved.Sub(start), r.Err})
		}
		if diff := cmp.Diff(s.stale, gotStale, errText, cmpopts.SortSlices(func(a, b stale) bool { return a.Ref < b.Ref })); diff != "" {
			t.Errorf("step %d: stale answers (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(s.calls, f.calls); diff != "" {
			t.Errorf("step %d: lookups (-want +got):\n%s", i, diff)
		}
		staleHits += int64(len(s.stale))
		if c.StaleHits() != staleHits {
			t.Errorf("step %d: StaleHits() = %d, want %d", i, c.StaleHits(), staleHits)
		}
	}
}

// Only a failure in which the registry said nothing about the reference is answered stale: an
// answer that the tag is gone or the credentials are refused is returned as it is.
func TestStaleIfErrorOnlyWhenTheRegistryGaveNoAnswer(t *testing.T) {
	for _, tc := range []struct {
		err   error
		stale bool
	}{
		{errors.New("dial tcp: lookup registry.example: no such host"), true},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), true},
		{status(0), true}, // a *resolver.Error without a status: timeout, TLS, refused connection
		{status(http.StatusInternalServerError), true},
		{status(http.StatusBadGateway), true},
		{status(http.StatusServiceUnavailable), true},
		{status(http.StatusGatewayTimeout), true},
		{status(http.StatusTooManyRequests), true},
		{status(http.StatusRequestTimeout), true},
		{fmt.Errorf("wrapped: %w", status(http.StatusServiceUnavailable)), true},
		{status(http.StatusNotFound), false},
		{status(http.StatusUnauthorized), false},
		{status(http.StatusForbidden), false},
		{status(http.StatusBadRequest), false},
		{fmt.Errorf("wrapped: %w", status(http.StatusNotFound)), false},
	} {
		name := tc.err.Error()
		var re *resolver.Error
		if errors.As(tc.err, &re) {
			name = fmt.Sprintf("HTTP %d", re.StatusCode)
		}
		t.Run(name, func(t *testing.T) {
			f, clk := &fake{}, &clock{t: time.Unix(1000, 0)}
			c := digestcache.New(f, digestcache.WithTTL(time.Minute), digestcache.WithStaleIfError(time.Hour), digestcache.WithClock(clk.now))
			step := staleStep{at: 2 * time.Minute, err: tc.err, refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": {Err: tc.err}}, calls: [][]string{{"app:1"}}}
			if tc.stale {
				step.want = map[string]resolver.Result{"app:1": {Digest: "sha256:1"}}
				step.stale = []stale{{"app:1", "sha256:1", 0, tc.err}}
			}
			runStaleSteps(t, c, f, clk, []staleStep{
				{refs: []string{"app:1"}, want: map[string]resolver.Result{"app:1": {Digest: "sha256:1"}}, calls: [][]string{{"app:1"}}},
				step,
			})
		})
	}
}

// Callers waiting on one failed lookup each get the stale digest, each recorded in its own
// context and counted.
func TestStaleIfErrorSharedLookup(t *testing.T) {
	f, clk := &fake{}, &clock{t: time.Unix(1000, 0)}
	c := digestcache.New(f, digestcache.WithTTL(time.Minute), digestcache.WithStaleIfError(time.Hour), digestcache.WithClock(clk.now))
	c.Resolve(context.Background(), []string{"app:1"})
	clk.t = clk.t.Add(2 * time.Minute)
	f.failing, f.gate = true, make(chan struct{})
	const n = 20
	recorded := make([]func() []digestcache.Answer, n)
	results := make([]map[string]resolver.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		ctx, rec := digestcache.Record(context.Background())
		recorded[i] = rec
		wg.Go(func() { results[i] = c.Resolve(ctx, []string{"app:1"}) })
	}
	for c.Hits()+c.Lookups() < n+1 { // the first lookup, then every caller has joined the second
		runtime.Gosched()
	}
	close(f.gate)
	wg.Wait()
	for i := range n {
		if diff := cmp.Diff(map[string]resolver.Result{"app:1": {Digest: "sha256:1"}}, results[i]); diff != "" {
			t.Errorf("caller %d (-want +got):\n%s", i, diff)
		}
		if got := recorded[i](); len(got) != 1 || got[0].Ref != "app:1" || got[0].Digest != "sha256:1" || got[0].Source != digestcache.SourceStale {
			t.Errorf("caller %d recorded %+v, want app:1 served stale", i, got)
		}
	}
	if c.Lookups() != 2 || c.StaleHits() != n {
		t.Errorf("Lookups() %d, StaleHits() %d, want 2 and %d", c.Lookups(), c.StaleHits(), n)
	}
}

// Entries are kept for max(TTL, d) after their resolution and then swept, so memory holds only
// the references resolved recently.
func TestStaleIfErrorBoundedMemory(t *testing.T) {
	f, clk := &fake{}, &clock{t: time.Unix(1000, 0)}
	c := digestcache.New(f, digestcache.WithTTL(time.Minute), digestcache.WithStaleIfError(10*time.Minute), digestcache.WithClock(clk.now))
	for i := range 100 {
		c.Resolve(context.Background(), []string{fmt.Sprintf("app:%d", i)})
	}
	type point struct {
		at   time.Duration
		want int
	}
	var got, want []point
	for _, p := range []point{{2 * time.Minute, 101}, {9 * time.Minute, 102}, {10 * time.Minute, 3}, {30 * time.Minute, 1}} {
		clk.t = time.Unix(1000, 0).Add(p.at)
		c.Resolve(context.Background(), []string{fmt.Sprintf("new:%d", p.at)}) // sweeps, adds one
		got, want = append(got, point{p.at, c.Len()}), append(want, p)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(point{})); diff != "" {
		t.Errorf("entries held (-want +got):\n%s", diff)
	}
}

// What the cache holds after each call, by TTL and stale-if-error window: a failure and, with
// neither, a digest are not kept; the sweep runs once per TTL (per window with no TTL), dropping
// what is older than the longer of the two.
func TestEntriesHeld(t *testing.T) {
	type call struct {
		at      time.Duration
		failing bool
		want    int // entries held after the call
	}
	for _, tc := range []struct {
		name       string
		ttl, stale time.Duration
		calls      []call
	}{
		{name: "no cache, no window: nothing kept", calls: []call{{want: 0}, {at: time.Second, want: 0}}},
		{name: "a failure is not kept", ttl: time.Minute, calls: []call{{failing: true, want: 0}}},
		{name: "no cache, a window: swept once per window", stale: 10 * time.Minute,
			calls: []call{{want: 1}, {at: 5 * time.Minute, want: 2}, {at: 11 * time.Minute, want: 2}, {at: 21 * time.Minute, want: 1}}},
		{name: "swept once per TTL, not per window", ttl: time.Minute, stale: 10 * time.Minute,
			calls: []call{{want: 1}, {at: time.Minute, want: 2}, {at: 10*time.Minute + 30*time.Second, want: 2}, {at: 12 * time.Minute, want: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, clk := &fake{}, &clock{t: time.Unix(1000, 0)}
			c := digestcache.New(f, digestcache.WithTTL(tc.ttl), digestcache.WithStaleIfError(tc.stale), digestcache.WithClock(clk.now))
			for i, cl := range tc.calls {
				clk.t = time.Unix(1000, 0).Add(cl.at)
				f.failing = cl.failing
				c.Resolve(context.Background(), []string{fmt.Sprintf("app:%d", i)})
				if got := c.Len(); got != cl.want {
					t.Errorf("call %d at %s: %d entries held, want %d", i, cl.at, got, cl.want)
				}
			}
		})
	}
}
