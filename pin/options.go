package pin

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

// Mode says what a run does with the fields it finds.
type Mode int

const (
	// ModePin sets digests (the default).
	ModePin Mode = iota
	// ModeCheck changes nothing and reports every field that ModePin would change.
	ModeCheck
)

// Pinned says what a run does with references that already carry a digest.
type Pinned int

const (
	// PinnedKeep leaves them as they are and sends no request for them (the default).
	PinnedKeep Pinned = iota
	// PinnedVerify looks their tags up and fails on a pin the tag no longer points to.
	PinnedVerify
	// PinnedRefresh moves a pin to the digest its tag points to now.
	PinnedRefresh
)

// OnError says what a run does when an image cannot be pinned.
type OnError int

const (
	// OnErrorFail fails the run and changes nothing (the default).
	OnErrorFail OnError = iota
	// OnErrorWarn pins what resolved and leaves the rest, with a warning each.
	OnErrorWarn
)

// LockMode says how a run uses the package's DigestLock.
type LockMode int

const (
	// LockAuto pins from the package's lock, if it has one, and keeps it current (the default).
	LockAuto LockMode = iota
	// LockUpdate also creates a lock when the package has none.
	LockUpdate
	// LockFrozen pins from the lock alone and sends no registry request.
	LockFrozen
)

// String is the mode as the settings name it: pin, check.
func (m Mode) String() string { return name(int(m), "pin", "check") }

// String is the mode as the settings name it: keep, verify, refresh.
func (p Pinned) String() string { return name(int(p), "keep", "verify", "refresh") }

// String is the mode as the settings name it: fail, warn.
func (o OnError) String() string { return name(int(o), "fail", "warn") }

// String is the mode as the settings name it: "" (auto), update, frozen.
func (l LockMode) String() string { return name(int(l), "", "update", "frozen") }

func name(i int, names ...string) string {
	if i < 0 || i >= len(names) {
		return fmt.Sprintf("%d", i)
	}
	return names[i]
}

// DefaultLockFile is where a new DigestLock is written, relative to the package.
const DefaultLockFile = "digests.lock.yaml"

// Options are a run's settings. The zero value is the default: pin, keep pins, fail on error,
// use a lock if there is one, presets on, no deadline but the context's.
type Options struct {
	Mode    Mode
	Pinned  Pinned
	OnError OnError
	Lock    LockMode
	// LockFile is the file a new lock is written to (default DefaultLockFile).
	LockFile string
	// SkipPrefixes leave alone the images they match (see hasPrefix).
	SkipPrefixes []string
	// Deadline bounds the lookups of a run; 0 leaves it to the context.
	Deadline time.Duration
	// Platform is the platform the Lookup resolves multi-arch tags for; nil: their index.
	Platform *v1.Platform
	// NoPresets turns the walker's built-in places (walker.Presets) off.
	NoPresets bool
	// ImageFields are further places that hold images.
	ImageFields []walker.ImageField
	// KptImagePrefix is what kpt puts in front of a function image named without "/"
	// (default walker.DefaultKptImagePrefix).
	KptImagePrefix string
}

// Lookup resolves references to digests. *resolver.Resolver is one; a long-lived front end wraps
// one in a cache (package digestcache) and gives it to every run.
type Lookup interface {
	// Resolve returns a result for every reference in refs (see resolver.Resolver.Resolve).
	Resolve(ctx context.Context, refs []string) map[string]resolver.Result
	// Requests counts the HTTP requests sent to registries so far.
	Requests() int64
}

// PlatformLister is a Lookup that can also list the images of a multi-arch index by platform.
// Under pinned: verify and mode: check, a pin that its tag no longer points to may be one
// platform's image of the tag's index: a run asks a PlatformLister before it calls the pin stale.
// A Lookup that wraps another (a cache) should forward it.
type PlatformLister interface {
	// Platforms returns, for an index (repo@digest), the digest of each image it lists and its
	// platform ("linux/arm64").
	Platforms(ctx context.Context, ref string) (map[string]string, error)
}

// Option adds to a Pinner what only some front ends need.
type Option func(*Pinner)

// WithLeave leaves alone, as a skip prefix would, every image field for which leave returns true:
// the webhook leaves the fields an UPDATE did not change, so they cost no lookup.
func WithLeave(leave func(obj *Object, f walker.Field) bool) Option {
	return func(p *Pinner) { p.leave = leave }
}

// Pinner runs the core with one set of options and one Lookup.
type Pinner struct {
	opts   Options
	lookup Lookup
	walker *walker.Walker
	leave  func(obj *Object, f walker.Field) bool
}

// New returns a Pinner that looks references up through lookup, which it shares between runs.
func New(lookup Lookup, opts Options, extra ...Option) *Pinner {
	if opts.LockFile == "" {
		opts.LockFile = DefaultLockFile
	}
	wopts := []walker.Option{walker.WithImageFields(opts.ImageFields...), walker.WithKptImagePrefix(opts.KptImagePrefix)}
	if opts.NoPresets {
		wopts = append(wopts, walker.WithoutPresets())
	}
	p := &Pinner{opts: opts, lookup: lookup, walker: walker.New(wopts...)}
	for _, o := range extra {
		o(p)
	}
	return p
}
