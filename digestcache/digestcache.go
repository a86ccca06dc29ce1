// Package digestcache remembers tag→digest lookups for a short time and makes concurrent callers
// asking for one reference share one lookup. A long-lived process (the admission webhook) puts it
// in front of one resolver.Resolver, so a burst of admissions for a new image costs one registry
// lookup, and admissions within the TTL cost none.
//
// Failures are never remembered: the callers waiting on a failed lookup share its error, and the
// next caller looks the reference up again. With WithStaleIfError, a failed lookup of a reference
// resolved a short while ago is answered with that digest instead, marked stale. With WithLock, a
// reference a DigestLock lists is answered from it, before the cache and with no lookup. Record
// collects where each answer of a call came from: lock, cache, registry or stale.
package digestcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
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
	next         Resolver
	ttl          time.Duration
	staleIfError time.Duration
	lock         LockFunc
	now          func() time.Time

	lookups, hits, stale, locked atomic.Int64

	mu        sync.Mutex
	entries   map[string]*entry // by normalised reference: nginx and docker.io/library/nginx:latest are one
	lastSweep time.Time
}

// entry is one lookup, in flight until done is closed; res, resolved and expires are set before.
type entry struct {
	done     chan struct{}
	res      resolver.Result
	resolved time.Time // when res's digest was looked up
	expires  time.Time
	// failed is the error of this entry's lookup when res is an earlier lookup's digest served
	// stale in its place (WithStaleIfError); nil otherwise.
	failed error
	// prev is the expired entry this lookup replaces, whose digest may be served stale if it fails.
	prev *entry
}

// Option configures a Cache.
type Option func(*Cache)

// WithTTL sets how long a digest is reused (default DefaultTTL). Zero or less disables the cache;
// concurrent callers still share one lookup.
func WithTTL(d time.Duration) Option { return func(c *Cache) { c.ttl = d } }

// WithStaleIfError makes a failed lookup answer with the digest the reference last resolved to, if
// that was less than d ago, instead of the error: the registry's outage then does not refuse what
// it admitted a moment earlier. d counts from the digest's resolution, not from the end of its
// TTL as RFC 5861's stale-if-error counts from staleness, so that d alone bounds how old a digest
// may be served, whatever the TTL; a d not longer than the TTL therefore never applies.
//
// Only failures in which the registry gave no answer about the reference are covered: it could not
// be reached, timed out, or answered 5xx, 408 or 429. An answer that the tag is gone or the
// credentials are refused (any other 4xx) is the registry's word, and is returned as it is. A
// reference never resolved still fails. Stale answers are counted (StaleHits) and can be collected
// per call (RecordStale).
//
// Entries are then kept for max(TTL, d) after their resolution, and dropped by the sweep that runs
// at most once per TTL (per d with the cache disabled): memory holds one entry for each distinct
// reference resolved in the last max(TTL, d) plus one sweep period.
func WithStaleIfError(d time.Duration) Option { return func(c *Cache) { c.staleIfError = d } }

// LockFunc gives the digest a DigestLock lists for ref (as written), and the lock's name; ok is
// false when none lists it. (*clusterlock.Watcher).Digest is one.
type LockFunc func(ref string) (digest, from string, ok bool)

// WithLock answers the references lock lists with its digests, before the cache and with no
// lookup; the others are looked up as without it. Lock answers are counted (LockHits), and
// recorded as SourceLock.
func WithLock(lock LockFunc) Option { return func(c *Cache) { c.lock = lock } }

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

// StaleHits counts the references answered with a stale digest after a failed lookup
// (WithStaleIfError), once for each caller so answered.
func (c *Cache) StaleHits() int64 { return c.stale.Load() }

// LockHits counts the references answered from the lock (WithLock), once for each caller.
func (c *Cache) LockHits() int64 { return c.locked.Load() }

// Source is where the digest of an answer came from.
type Source string

// Sources of answers.
const (
	// SourceLock: the DigestLock of WithLock lists the reference.
	SourceLock Source = "lock"
	// SourceCache: a digest resolved within the TTL.
	SourceCache Source = "cache"
	// SourceRegistry: a lookup in the registry, by this call or one in flight that it joined.
	SourceRegistry Source = "registry"
	// SourceStale: the lookup failed and a digest resolved within the stale-if-error window was
	// served in its place.
	SourceStale Source = "stale"
)

// Answer is where the answer for one reference came from. Failed lookups are not recorded.
type Answer struct {
	// Ref is the reference as the caller spelled it.
	Ref    string
	Digest string
	Source Source
	// From names the lock the digest comes from (SourceLock).
	From string
	// Resolved is when the digest was looked up (SourceCache, SourceRegistry, SourceStale).
	Resolved time.Time
	// Err is why the lookup failed (SourceStale).
	Err error
}

type recorderKey struct{}

type recorder struct {
	mu      sync.Mutex
	answers []Answer
}

// Record returns a context that collects the answers of every Resolve called with it (or a
// context derived from it), and a function that returns those collected so far. A front end
// records one admission's, to say where each digest came from and to warn about stale ones.
func Record(ctx context.Context) (context.Context, func() []Answer) {
	r := &recorder{}
	return context.WithValue(ctx, recorderKey{}, r), func() []Answer {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Clone(r.answers)
	}
}

func record(ctx context.Context, a Answer) {
	if r, ok := ctx.Value(recorderKey{}).(*recorder); ok {
		r.mu.Lock()
		r.answers = append(r.answers, a)
		r.mu.Unlock()
	}
}

// Resolve returns a result for every reference in refs: from the cache, from a lookup another
// caller has in flight, or from one lookup of all the rest through next. A lookup this call starts
// runs to its end (bounded by ctx's deadline) even if ctx is cancelled, since other callers may be
// waiting on it; this call stops waiting when ctx is done.
func (c *Cache) Resolve(ctx context.Context, refs []string) map[string]resolver.Result {
	out := c.fromLock(ctx, refs) // before the mutex: the lock parses each reference it is asked for
	want := make(map[string]*entry, len(refs))
	cached := map[*entry]bool{}
	var mine []string
	var owned []*entry
	c.mu.Lock()
	now := c.now()
	c.sweep(now)
	for _, s := range refs {
		if _, ok := want[s]; ok {
			continue
		}
		if _, ok := out[s]; ok {
			continue
		}
		k := key(s)
		e := c.entries[k]
		var prev *entry
		if e != nil && !e.expires.IsZero() && !now.Before(e.expires) {
			delete(c.entries, k)
			prev, e = e, nil
		}
		if e == nil {
			e = &entry{done: make(chan struct{})}
			if c.staleIfError > 0 {
				e.prev = prev
			}
			c.entries[k] = e
			mine = append(mine, s)
			owned = append(owned, e)
		} else {
			c.hits.Add(1)
			cached[e] = isDone(e)
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
		now := c.now()
		for i, s := range mine {
			if !c.settle(owned[i], res[s], now) && c.entries[key(s)] == owned[i] {
				delete(c.entries, key(s))
			}
			close(owned[i].done)
		}
		c.mu.Unlock()
	}

	for s, e := range want {
		select {
		case <-e.done:
			out[s] = e.res
			switch {
			case e.failed != nil:
				c.stale.Add(1)
				record(ctx, Answer{Ref: s, Digest: e.res.Digest, Source: SourceStale, Resolved: e.resolved, Err: e.failed})
			case e.res.Err == nil && cached[e]:
				record(ctx, Answer{Ref: s, Digest: e.res.Digest, Source: SourceCache, Resolved: e.resolved})
			case e.res.Err == nil:
				record(ctx, Answer{Ref: s, Digest: e.res.Digest, Source: SourceRegistry, Resolved: e.resolved})
			}
		case <-ctx.Done():
			out[s] = resolver.Result{Err: fmt.Errorf("gave up waiting for the lookup of %s: %w", s, ctx.Err())}
		}
	}
	return out
}

// fromLock answers, recorded, the references of refs the lock lists (none without a lock).
func (c *Cache) fromLock(ctx context.Context, refs []string) map[string]resolver.Result {
	out := make(map[string]resolver.Result, len(refs))
	if c.lock == nil {
		return out
	}
	for _, s := range refs {
		if _, done := out[s]; done {
			continue
		}
		if d, from, ok := c.lock(s); ok {
			c.locked.Add(1)
			out[s] = resolver.Result{Digest: d}
			record(ctx, Answer{Ref: s, Digest: d, Source: SourceLock, From: from})
		}
	}
	return out
}

// isDone reports whether e's lookup has ended.
func isDone(e *entry) bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// settle stores the result r of e's lookup, finished at now, and reports whether e stays in the
// cache. A digest stays for the TTL, or as long as it may be served stale. A failure with a recent
// enough digest before it (WithStaleIfError) answers with that digest, expired at once so that the
// next caller looks again; any other failure is dropped. c.mu is held.
func (c *Cache) settle(e *entry, r resolver.Result, now time.Time) bool {
	prev := e.prev
	e.prev = nil
	switch {
	case r.Err == nil:
		e.res, e.resolved, e.expires = r, now, now.Add(c.ttl)
		return c.ttl > 0 || c.staleIfError > 0
	case prev != nil && prev.res.Err == nil && now.Sub(prev.resolved) < c.staleIfError && unanswered(r.Err):
		e.res = resolver.Result{Digest: prev.res.Digest, Mirror: prev.res.Mirror}
		e.resolved, e.expires, e.failed = prev.resolved, now, r.Err
		return true
	default:
		e.res, e.expires = r, now
		return false
	}
}

// unanswered reports whether err is a failure in which the registry said nothing about the
// reference: no answer, a timeout, 5xx, 408 or 429. Any other 4xx (tag or repository not found,
// credentials refused) is an answer.
func unanswered(err error) bool {
	var re *resolver.Error
	if !errors.As(err, &re) || re.StatusCode == 0 {
		return true
	}
	code := re.StatusCode
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code < 400
}

// sweep drops the entries past their keeping time (the TTL, or the stale-if-error window if
// longer), at most once per TTL (per stale-if-error window with the cache disabled), so that images
// seen once do not stay forever. c.mu is held.
func (c *Cache) sweep(now time.Time) {
	every, keep := c.ttl, max(c.ttl, c.staleIfError)
	if every <= 0 {
		every = c.staleIfError
	}
	if every <= 0 || now.Sub(c.lastSweep) < every {
		return
	}
	c.lastSweep = now
	for k, e := range c.entries {
		if !e.expires.IsZero() && !now.Before(e.resolved.Add(keep)) {
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
