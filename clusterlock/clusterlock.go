// Package clusterlock follows DigestLocks published in the cluster: ConfigMaps, each named by
// namespace and name, whose key digests.lock.yaml holds a DigestLock as `digester pin --lock
// update` writes it (a CI job publishes it with `kubectl create configmap NAME
// --from-file=digests.lock.yaml`). A Watcher watches exactly those ConfigMaps (a list and watch
// per ConfigMap, with a metadata.name field selector, so that RBAC can grant get, list and watch
// on them by resourceNames alone), follows their edits within seconds, and answers which digest
// the locks give a reference, and from which ConfigMap.
//
// Bad input stays out: a ConfigMap without the key, whose lock does not parse, or with one entry
// that is malformed (a digest that is not sha256 and 64 hex digits, an image that is not a
// reference or carries a digest, one reference listed twice with different digests) is refused
// as a whole, logged and counted (Rejected), and contributes nothing until it is fixed; its
// earlier content is dropped too, so that what a Watcher holds depends only on what the cluster
// holds now, the same in every replica, restarted or not. A deleted ConfigMap drops its entries.
// When two ConfigMaps disagree on a reference, the one listed first wins and the disagreement is
// logged: the order of the list is a precedence (a team's lock before the platform's).
package clusterlock

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/digester/digester/resolver"
)

// Key is the ConfigMap key that holds the DigestLock.
const Key = "digests.lock.yaml"

// Source names one ConfigMap that holds a DigestLock.
type Source struct{ Namespace, Name string }

func (s Source) String() string { return s.Namespace + "/" + s.Name }

// ParseSource parses "NAMESPACE/NAME", as the webhook's --lock-configmap takes it.
func ParseSource(s string) (Source, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || strings.Contains(name, "/") {
		return Source{}, fmt.Errorf("lock ConfigMap %q: want NAMESPACE/NAME", s)
	}
	if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
		return Source{}, fmt.Errorf("lock ConfigMap %q: namespace %q: %s", s, ns, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return Source{}, fmt.Errorf("lock ConfigMap %q: name %q: %s", s, name, strings.Join(errs, "; "))
	}
	return Source{Namespace: ns, Name: name}, nil
}

// Parser reads a DigestLock: each image reference as written, and its digest.
type Parser func([]byte) (map[string]string, error)

// Watcher holds the entries of the DigestLocks of its sources, kept up to date from the cluster.
// It is safe for concurrent use.
type Watcher struct {
	client  kubernetes.Interface
	sources []Source
	parse   Parser
	log     *slog.Logger

	informers []cache.SharedIndexInformer
	rejected  atomic.Int64
	merged    atomic.Pointer[map[string]Entry] // normalised reference -> entry

	mu    sync.Mutex
	locks map[Source]map[string]string // each source's accepted lock, normalised; absent if none
}

// Entry is what the locks say of one reference.
type Entry struct {
	Digest string
	// From is the ConfigMap the digest comes from, "NAMESPACE/NAME".
	From string
}

// Option configures a Watcher.
type Option func(*Watcher)

// WithParser sets how a DigestLock is read (default: this package's own reading, which follows
// pin's: fn.kpt.dev/v1alpha1 DigestLock, images: [{image, digest, platform}]).
func WithParser(p Parser) Option { return func(w *Watcher) { w.parse = p } }

// WithPlatform sets the platform the locks must be recorded for (digester pin --platform; default
// none: the digests of image indexes). A lock with an entry recorded for another is refused as a
// whole. It applies to the default reading only.
func WithPlatform(p string) Option { return func(w *Watcher) { w.parse = parseLockFor(p) } }

// WithLogger logs each lock loaded, refused or deleted, each disagreement and each failed list or
// watch to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(w *Watcher) { w.log = l } }

// New returns a Watcher of sources, in order of precedence, reading them with client. Start
// starts it.
func New(client kubernetes.Interface, sources []Source, opts ...Option) (*Watcher, error) {
	w := &Watcher{client: client, parse: parseLockFor(""), log: slog.New(slog.DiscardHandler), locks: map[Source]map[string]string{}}
	for _, o := range opts {
		o(w)
	}
	seen := map[Source]bool{}
	for _, s := range sources {
		if seen[s] {
			return nil, fmt.Errorf("lock ConfigMap %s is listed twice", s)
		}
		seen[s] = true
	}
	w.sources = slices.Clone(sources)
	empty := map[string]Entry{}
	w.merged.Store(&empty)
	for _, s := range w.sources {
		w.informers = append(w.informers, w.informer(s))
	}
	return w, nil
}

// informer lists and watches the one ConfigMap s, by a metadata.name field selector.
func (w *Watcher) informer(s Source) cache.SharedIndexInformer {
	byName := func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.Name).String()
	}
	lw := cache.NewFilteredListWatchFromClient(w.client.CoreV1().RESTClient(), "configmaps", s.Namespace, byName)
	inf := cache.NewSharedIndexInformer(lw, &corev1.ConfigMap{}, 0, cache.Indexers{})
	inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.update(s, obj) },
		UpdateFunc: func(_, obj any) { w.update(s, obj) },
		DeleteFunc: func(any) { w.update(s, nil) },
	})
	inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) {
		w.log.Warn("cannot list or watch a lock ConfigMap", "configMap", s.String(), "error", err.Error())
	})
	return inf
}

// Start runs the watches until ctx is done. It returns at once; WaitForSync waits for the first
// state of every ConfigMap.
func (w *Watcher) Start(ctx context.Context) {
	for _, inf := range w.informers {
		go inf.RunWithContext(ctx)
	}
}

// Synced reports whether every ConfigMap's first state has been read.
func (w *Watcher) Synced() bool {
	for _, inf := range w.informers {
		if !inf.HasSynced() {
			return false
		}
	}
	return true
}

// WaitForSync waits until Synced, or ctx is done (an error naming the ConfigMaps not read yet).
func (w *Watcher) WaitForSync(ctx context.Context) error {
	for !w.Synced() {
		select {
		case <-ctx.Done():
			var missing []string
			for i, inf := range w.informers {
				if !inf.HasSynced() {
					missing = append(missing, w.sources[i].String())
				}
			}
			return fmt.Errorf("lock ConfigMaps %s not read: %w", strings.Join(missing, ", "), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Digest returns the digest the locks give ref (as written, or normalised), and the ConfigMap it
// comes from, "NAMESPACE/NAME"; ok is false when no lock lists it.
func (w *Watcher) Digest(ref string) (digest, from string, ok bool) {
	e, ok := (*w.merged.Load())[normalise(ref)]
	return e.Digest, e.From, ok
}

// Entries returns the merged entries of all the locks, by normalised reference
// (index.docker.io/library/nginx:latest for nginx).
func (w *Watcher) Entries() map[string]Entry {
	return maps.Clone(*w.merged.Load())
}

// Rejected counts the versions of lock ConfigMaps refused as a whole (no key, a lock that does
// not parse, a malformed entry).
func (w *Watcher) Rejected() int64 { return w.rejected.Load() }

// update records the new state of source s's ConfigMap (nil: deleted) and rebuilds the merged
// entries.
func (w *Watcher) update(s Source, obj any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cm, _ := obj.(*corev1.ConfigMap)
	switch lock, err := w.read(cm); {
	case cm == nil:
		delete(w.locks, s)
		w.log.Info("lock ConfigMap deleted: its entries are dropped", "configMap", s.String())
	case err != nil:
		delete(w.locks, s)
		w.rejected.Add(1)
		w.log.Error("lock ConfigMap refused: none of its entries is used until it is fixed", "configMap", s.String(),
			"resourceVersion", cm.ResourceVersion, "error", err.Error())
	default:
		w.locks[s] = lock
		w.log.Info("lock ConfigMap loaded", "configMap", s.String(), "resourceVersion", cm.ResourceVersion, "entries", len(lock))
	}
	w.merge()
}

// read returns cm's lock, normalised, or why it is refused.
func (w *Watcher) read(cm *corev1.ConfigMap) (map[string]string, error) {
	if cm == nil {
		return nil, nil
	}
	text, ok := cm.Data[Key]
	if !ok {
		return nil, fmt.Errorf("no key %s", Key)
	}
	entries, err := w.parse([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Key, err)
	}
	lock := make(map[string]string, len(entries))
	spelling := map[string]string{}
	for _, img := range slices.Sorted(maps.Keys(entries)) {
		d := entries[img]
		ref, err := resolver.Parse(img)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%s: %w", Key, err)
		case strings.Contains(img, "@"):
			return nil, fmt.Errorf("%s: %q carries a digest already; the lock maps tags to digests", Key, img)
		case !isDigest(d):
			return nil, fmt.Errorf("%s: %s: %q is not a digest (sha256: and 64, or sha512: and 128, lowercase hex digits)", Key, img, d)
		}
		n := ref.Name()
		if prev, ok := lock[n]; ok && prev != d {
			return nil, fmt.Errorf("%s: %s and %s are one reference with different digests", Key, spelling[n], img)
		}
		lock[n], spelling[n] = d, img
	}
	return lock, nil
}

// merge rebuilds the merged entries from the accepted locks, the first source listed winning a
// disagreement. w.mu is held.
func (w *Watcher) merge() {
	merged := map[string]Entry{}
	for _, s := range w.sources {
		for _, ref := range slices.Sorted(maps.Keys(w.locks[s])) {
			d := w.locks[s][ref]
			if e, ok := merged[ref]; ok {
				if e.Digest != d {
					w.log.Warn("lock ConfigMaps disagree: the one listed first wins", "reference", ref,
						"used", e.From, "digest", e.Digest, "ignored", s.String(), "ignoredDigest", d)
				}
				continue
			}
			merged[ref] = Entry{Digest: d, From: s.String()}
		}
	}
	w.merged.Store(&merged)
}

// normalise is the reference's full name (index.docker.io/library/nginx:latest for nginx), or ref itself
// if it does not parse, as package pin keys its lock.
func normalise(ref string) string {
	if r, err := resolver.Parse(ref); err == nil {
		return r.Name()
	}
	return ref
}

func isDigest(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	return strings.Trim(hex, "0123456789abcdef") == ""
}
