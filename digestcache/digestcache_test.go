package digestcache_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/resolver"
)

// fake answers "sha256:<n>" for the n-th lookup of a reference, or fails while failing is set
// (with err, or "registry down"), and records the references each call asked for.
type fake struct {
	mu      sync.Mutex
	calls   [][]string
	n       int
	failing bool
	err     error
	gate    chan struct{} // if not nil, Resolve waits for it to close
}

func (f *fake) Resolve(ctx context.Context, refs []string) map[string]resolver.Result {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, refs)
	out := map[string]resolver.Result{}
	for _, r := range refs {
		f.n++
		if f.failing {
			err := f.err
			if err == nil {
				err = errors.New("registry down")
			}
			out[r] = resolver.Result{Err: err}
			continue
		}
		out[r] = resolver.Result{Digest: "sha256:" + string(rune('0'+f.n))}
	}
	return out
}

func (f *fake) Requests() int64 { return int64(f.n) }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCache(t *testing.T) {
	f := &fake{}
	clk := &clock{t: time.Unix(1000, 0)}
	c := digestcache.New(f, digestcache.WithTTL(time.Minute), digestcache.WithClock(clk.now))
	ctx := context.Background()
	type step struct {
		advance time.Duration
		failing bool
		refs    []string
		want    map[string]resolver.Result
		calls   [][]string // what the step sent on
	}
	digest := func(d string) resolver.Result { return resolver.Result{Digest: d} }
	down := resolver.Result{Err: errors.New("registry down")}
	for i, s := range []step{
		{refs: []string{"nginx", "docker.io/library/nginx:latest", "app:1"},
			want:  map[string]resolver.Result{"nginx": digest("sha256:1"), "docker.io/library/nginx:latest": digest("sha256:1"), "app:1": digest("sha256:2")},
			calls: [][]string{{"nginx", "app:1"}}},
		{advance: 59 * time.Second, refs: []string{"nginx:latest", "app:1"},
			want: map[string]resolver.Result{"nginx:latest": digest("sha256:1"), "app:1": digest("sha256:2")}},
		{advance: time.Second, refs: []string{"nginx"}, // expired
			want: map[string]resolver.Result{"nginx": digest("sha256:3")}, calls: [][]string{{"nginx"}}},
		{advance: 2 * time.Minute, failing: true, refs: []string{"app:1"},
			want: map[string]resolver.Result{"app:1": down}, calls: [][]string{{"app:1"}}},
		{refs: []string{"app:1"}, // failures are not remembered
			want: map[string]resolver.Result{"app:1": digest("sha256:5")}, calls: [][]string{{"app:1"}}},
	} {
		clk.t = clk.t.Add(s.advance)
		f.failing = s.failing
		f.calls = nil
		got := c.Resolve(ctx, s.refs)
		if diff := cmp.Diff(s.want, got, cmp.Comparer(func(a, b error) bool { return a == nil && b == nil || a != nil && b != nil && a.Error() == b.Error() })); diff != "" {
			t.Errorf("step %d: results (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(s.calls, f.calls); diff != "" {
			t.Errorf("step %d: lookups (-want +got):\n%s", i, diff)
		}
	}
}

func TestTTLZeroDisables(t *testing.T) {
	f := &fake{}
	c := digestcache.New(f, digestcache.WithTTL(0))
	c.Resolve(context.Background(), []string{"nginx"})
	c.Resolve(context.Background(), []string{"nginx"})
	if diff := cmp.Diff([][]string{{"nginx"}, {"nginx"}}, f.calls); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
}

// Callers asking while a lookup is in flight wait for it rather than start their own, even with
// the cache disabled.
func TestConcurrentCallersShareOneLookup(t *testing.T) {
	f := &fake{gate: make(chan struct{})}
	c := digestcache.New(f, digestcache.WithTTL(0))
	const n = 100
	results := make([]map[string]resolver.Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = c.Resolve(context.Background(), []string{"nginx:1.27"}) })
	}
	for c.Hits()+c.Lookups() < n { // every caller has joined the one lookup
		runtime.Gosched()
	}
	close(f.gate)
	wg.Wait()
	for i, r := range results {
		if diff := cmp.Diff(map[string]resolver.Result{"nginx:1.27": {Digest: "sha256:1"}}, r); diff != "" {
			t.Fatalf("caller %d (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff([][]string{{"nginx:1.27"}}, f.calls); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
	if c.Lookups() != 1 || c.Hits() != n-1 {
		t.Errorf("lookups %d hits %d, want 1 and %d", c.Lookups(), c.Hits(), n-1)
	}
}

// A caller whose context ends stops waiting; the lookup it shares still completes for the others.
func TestWaiterGivesUp(t *testing.T) {
	f := &fake{gate: make(chan struct{})}
	c := digestcache.New(f)
	done := make(chan map[string]resolver.Result)
	go func() { done <- c.Resolve(context.Background(), []string{"nginx"}) }()
	for c.Lookups() < 1 {
		runtime.Gosched()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := c.Resolve(ctx, []string{"nginx"})
	if got["nginx"].Err == nil || got["nginx"].Err.Error() != "gave up waiting for the lookup of nginx: context canceled" {
		t.Errorf("cancelled waiter got %+v", got)
	}
	close(f.gate)
	if r := <-done; r["nginx"].Digest != "sha256:1" {
		t.Errorf("first caller got %+v, want sha256:1", r)
	}
}
