package podcreds

import (
	"context"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/digester/digester/pin"
)

// Lookup is a lookup that counts what it does; *digestcache.Cache is one.
type Lookup interface {
	pin.Lookup
	// Lookups counts the references passed on to registries.
	Lookups() int64
	// Hits counts the references answered without a registry request.
	Hits() int64
}

// DefaultIdle is how long, at least, Pool keeps the lookup of credentials no admission has used.
const DefaultIdle = 10 * time.Minute

// Pool gives each Pod the lookup of its credentials: base for a Pod with none, and for each
// distinct set of credentials (by Credentials.ID) a lookup of its own, made by newLookup with the
// Pod's keychain, kept while admissions use it and dropped within twice the idle limit after the
// last. It is safe for concurrent use.
type Pool struct {
	reader    *Reader
	base      Lookup
	newLookup func(authn.Keychain) Lookup
	idle      time.Duration
	now       func() time.Time

	mu        sync.Mutex
	members   map[string]*member
	lastSweep time.Time
	gone      struct{ lookups, hits, requests int64 } // counts of evicted members
}

type member struct {
	lookup   Lookup
	lastUsed time.Time
}

// PoolOption configures a Pool.
type PoolOption func(*Pool)

// WithIdle sets how long a lookup no admission uses is kept at least (default DefaultIdle); it goes
// within twice that.
func WithIdle(d time.Duration) PoolOption { return func(p *Pool) { p.idle = d } }

// WithPoolClock sets where the time comes from (default time.Now), for tests.
func WithPoolClock(now func() time.Time) PoolOption { return func(p *Pool) { p.now = now } }

// NewPool returns a Pool that reads credentials with reader, looks up images of Pods without
// credentials with base, and makes a lookup for each set of credentials with newLookup, which is
// given the Pod's keychain (to be tried before the process's own).
func NewPool(reader *Reader, base Lookup, newLookup func(authn.Keychain) Lookup, opts ...PoolOption) *Pool {
	p := &Pool{reader: reader, base: base, newLookup: newLookup, idle: DefaultIdle, now: time.Now, members: map[string]*member{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// For returns the lookup for pod's images and the problems met reading its credentials.
func (p *Pool) For(ctx context.Context, pod Pod) (pin.Lookup, []string) {
	creds, problems := p.reader.Read(ctx, pod)
	if creds.ID == "" {
		return p.base, problems
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.lastSweep) >= p.idle { // at most once per idle period, not at every admission
		p.lastSweep = now
		for id, m := range p.members {
			if now.Sub(m.lastUsed) > p.idle {
				p.gone.lookups += m.lookup.Lookups()
				p.gone.hits += m.lookup.Hits()
				p.gone.requests += m.lookup.Requests()
				delete(p.members, id)
			}
		}
	}
	m := p.members[creds.ID]
	if m == nil {
		m = &member{lookup: p.newLookup(creds.Keychain)}
		p.members[creds.ID] = m
	}
	m.lastUsed = now
	return m.lookup, problems
}

// Lookups counts the references looked up in registries, all credentials together.
func (p *Pool) Lookups() int64 { return p.sum(Lookup.Lookups, &p.gone.lookups) }

// Hits counts the references answered without a registry request, all credentials together.
func (p *Pool) Hits() int64 { return p.sum(Lookup.Hits, &p.gone.hits) }

// Requests counts the HTTP requests sent to registries, all credentials together.
func (p *Pool) Requests() int64 { return p.sum(Lookup.Requests, &p.gone.requests) }

func (p *Pool) sum(count func(Lookup) int64, gone *int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := count(p.base) + *gone
	for _, m := range p.members {
		n += count(m.lookup)
	}
	return n
}
