package digestcache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/resolver"
)

var errDown = errors.New("registry down")

// TestSources: a reference a lock lists is answered from it with no lookup, before the cache; the
// others come from the registry, then from the cache within the TTL; each answer is recorded with
// where it came from, and failures are not.
func TestSources(t *testing.T) {
	f := &fake{}
	clk := &clock{t: time.Unix(1000, 0)}
	lock := map[string]string{"app:1": "sha256:aa"}
	c := digestcache.New(f, digestcache.WithTTL(time.Minute), digestcache.WithClock(clk.now),
		digestcache.WithLock(func(ref string) (string, string, bool) {
			d, ok := lock[ref]
			return d, "team/digests", ok
		}))
	resolved := clk.t
	for i, step := range []struct {
		failing bool
		refs    []string
		want    map[string]resolver.Result
		answers []digestcache.Answer
		calls   [][]string
	}{{
		refs: []string{"app:1", "app:2", "app:1"},
		want: map[string]resolver.Result{"app:1": {Digest: "sha256:aa"}, "app:2": {Digest: "sha256:1"}},
		answers: []digestcache.Answer{
			{Ref: "app:1", Digest: "sha256:aa", Source: digestcache.SourceLock, From: "team/digests"},
			{Ref: "app:2", Digest: "sha256:1", Source: digestcache.SourceRegistry, Resolved: resolved},
		},
		calls: [][]string{{"app:2"}},
	}, {
		refs: []string{"app:2", "app:4"},
		want: map[string]resolver.Result{"app:2": {Digest: "sha256:1"}, "app:4": {Digest: "sha256:2"}},
		answers: []digestcache.Answer{
			{Ref: "app:2", Digest: "sha256:1", Source: digestcache.SourceCache, Resolved: resolved},
			{Ref: "app:4", Digest: "sha256:2", Source: digestcache.SourceRegistry, Resolved: resolved},
		},
		calls: [][]string{{"app:4"}},
	}, {
		failing: true,
		refs:    []string{"app:1", "app:3"},
		want:    map[string]resolver.Result{"app:1": {Digest: "sha256:aa"}, "app:3": {Err: errDown}},
		answers: []digestcache.Answer{{Ref: "app:1", Digest: "sha256:aa", Source: digestcache.SourceLock, From: "team/digests"}},
		calls:   [][]string{{"app:3"}},
	}} {
		f.failing, f.err, f.calls = step.failing, errDown, nil
		ctx, recorded := digestcache.Record(context.Background())
		if diff := cmp.Diff(step.want, c.Resolve(ctx, step.refs), errText); diff != "" {
			t.Errorf("step %d: results (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(step.answers, recorded(), errText, cmpopts.SortSlices(func(a, b digestcache.Answer) bool { return a.Ref < b.Ref })); diff != "" {
			t.Errorf("step %d: answers (-want +got):\n%s", i, diff)
		}
		if diff := cmp.Diff(step.calls, f.calls); diff != "" {
			t.Errorf("step %d: lookups (-want +got):\n%s", i, diff)
		}
	}
	if got := c.LockHits(); got != 2 {
		t.Errorf("LockHits = %d, want 2", got)
	}
}
