// Package digestcache remembers tag→digest lookups for a short time and makes concurrent callers
// asking for one reference share one lookup. A long-lived process (the admission webhook) puts it
// in front of one resolver.Resolver, so a burst of admissions for a new image costs one registry
// lookup, and admissions within the TTL cost none.
//
// Failures are never remembered: the callers waiting on a failed lookup share its error, and the
// next caller looks the reference up again.
package digestcache

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digester/digester/resolver"
)

// DefaultTTL is how long a digest is reused before the tag is looked up again.
const DefaultTTL = 60 * time.Second

// Resolver resolves references; *resolver.Resolver is one.
type Resolver interface {
	Resolve(ctx context.Context, refs []string) map[string]resolver.Result
	Requests() int64
}

// Cache is a Resolver that remembers digests. It is safe for concurrent use.
type Cache struct {
	next Resolver
	ttl  time.Duration
	now  func() time.Time

	lookups, hits atomic.Int64

	mu        sync.Mutex
	entries   map[string]*entry // by normalised reference: nginx and docker.io/library/nginx:latest are one
	lastSweep time.Time
}

// entry is one lookup, in flight until done is closed; res and expires are set before.
type entry struct {
	done    chan struct{}
	res     resolver.Result
	expires time.Time
}

// Option configures a Cache.
type Option func(*Cache)

// WithTTL sets how long a digest is reused (default DefaultTTL). Zero or less disables the cache;
// concurrent callers still share one lookup.
func WithTTL(d time.Duration) Option { return func(c *Cache) { c.ttl = d } }

// WithClock sets where the time comes from (default time.Now), for tests.
func WithClock(now func() time.Time) Option { return func(c *Cache) { c.now = now } }

// New returns a Cache in front of next.
func New(next Resolver, opts ...Option) *Cache {
	c := &Cache{next: next, ttl: DefaultTTL, now: time.Now, entries: map[string]*entry{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Requests counts the HTTP requests next has sent to registries.
func (c *Cache) Requests() int64 { return c.next.Requests() }

// Lookups counts the references passed on to next: cache misses not shared with a lookup in flight.
func (c *Cache) Lookups() int64 { return c.lookups.Load() }

// Hits counts the references answered from the cache or by another caller's lookup.
func (c *Cache) Hits() int64 { return c.hits.Load() }

// Resolve returns a result for every reference in refs: from the cache, from a lookup another
// caller has in flight, or from one lookup of all the rest through next. A lookup this call starts
// runs to its end (bounded by ctx's deadline) even if ctx is cancelled, since other callers may be
// waiting on it; this call stops waiting when ctx is done.
func (c *Cache) Resolve(ctx context.Context, refs []string) map[string]resolver.Result {
	want := make(map[string]*entry, len(refs))
	var mine []string
	var owned []*entry
	c.mu.Lock()
	now := c.now()
	c.sweep(now)
	for _, s := range refs {
		if _, ok := want[s]; ok {
			continue
		}
		k := key(s)
		e := c.entries[k]
		if e != nil && !e.expires.IsZero() && !now.Before(e.expires) {
			delete(c.entries, k)
			e = nil
		}
		if e == nil {
			e = &entry{done: make(chan struct{})}
			c.entries[k] = e
			mine = append(mine, s)
			owned = append(owned, e)
		} else {
			c.hits.Add(1)
		}
		want[s] = e
	}
	c.mu.Unlock()

	if len(mine) > 0 {
		c.lookups.Add(int64(len(mine)))
		lctx := context.WithoutCancel(ctx)
		if d, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			lctx, cancel = context.WithDeadline(lctx, d)
			defer cancel()
		}
		res := c.next.Resolve(lctx, mine)
		c.mu.Lock()
		expires := c.now().Add(c.ttl)
		for i, s := range mine {
			e := owned[i]
			e.res = res[s]
			e.expires = expires
			if (e.res.Err != nil || c.ttl <= 0) && c.entries[key(s)] == e {
				delete(c.entries, key(s))
			}
			close(e.done)
		}
		c.mu.Unlock()
	}

	out := make(map[string]resolver.Result, len(want))
	for s, e := range want {
		select {
		case <-e.done:
			out[s] = e.res
		case <-ctx.Done():
			out[s] = resolver.Result{Err: fmt.Errorf("gave up waiting for the lookup of %s: %w", s, ctx.Err())}
		}
	}
	return out
}

// sweep drops expired entries, at most once per TTL, so that images seen once do not stay forever.
// c.mu is held.
func (c *Cache) sweep(now time.Time) {
	if c.ttl <= 0 || now.Sub(c.lastSweep) < c.ttl {
		return
	}
	c.lastSweep = now
	for k, e := range c.entries {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
}

// key is the reference's normalised name, or the reference itself if it does not parse.
func key(s string) string {
	if ref, err := resolver.Parse(s); err == nil {
		return ref.Name()
	}
	return s
}

// Platforms lists the images of a multi-arch index by platform, through next, uncached: only
// verify and check runs ask, once per moved pin. It makes the Cache a pin.PlatformLister whenever
// next is one; otherwise it fails, and the pin it was asked for is reported stale.
func (c *Cache) Platforms(ctx context.Context, ref string) (map[string]string, error) {
	l, ok := c.next.(interface {
		Platforms(ctx context.Context, ref string) (map[string]string, error)
	})
	if !ok {
		return nil, fmt.Errorf("listing the platforms of %s: the lookup cannot", ref)
	}
	return l.Platforms(ctx, ref)
}
