package pin

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

// The DigestLock kind: a local-config resource in the package that maps each image reference to
// the digest it was pinned to, so that a package re-rendered from unpinned sources pins the same
// way, offline.
const (
	LockAPIVersion = "fn.kpt.dev/v1alpha1"
	LockKind       = "DigestLock"
)

// lock is a DigestLock read from a package: its entries and its node.
type lock struct {
	obj     *Object
	entries map[string]string // reference as written -> digest
}

// IsLock reports whether m, a mapping (or a document holding one), is a DigestLock.
func IsLock(m *yaml.Node) bool {
	m = mapping(m)
	return walker.Scalar(walker.Lookup(m, "kind")) == LockKind && walker.Scalar(walker.Lookup(m, "apiVersion")) == LockAPIVersion
}

// ParseLock reads a DigestLock written as YAML (as a ConfigMap publishes one) and returns its
// entries: each reference as written and its digest.
func ParseLock(data []byte) (map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	m := mapping(&doc)
	if m == nil || !IsLock(m) {
		return nil, fmt.Errorf("not a %s %s", LockAPIVersion, LockKind)
	}
	entries, err := lockEntries(m)
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// lockEntries reads a DigestLock's images, a list of {image, digest}; a malformed entry is an
// error naming its index, since a lock that is read wrong pins wrong.
func lockEntries(m *yaml.Node) (map[string]string, error) {
	entries := map[string]string{}
	images := walker.Lookup(m, "images")
	if images == nil || images.Kind == yaml.ScalarNode && images.Tag == "!!null" {
		return entries, nil
	}
	if images.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("images is not a list")
	}
	for i, e := range images.Content {
		img, d := walker.Scalar(walker.Lookup(e, "image")), walker.Scalar(walker.Lookup(e, "digest"))
		switch {
		case e.Kind != yaml.MappingNode || img == "" || d == "":
			return nil, fmt.Errorf("images[%d] needs an image and a digest", i)
		case !digestRE(d):
			return nil, fmt.Errorf("images[%d] (%s): %q is not a digest (sha256: and 64 lowercase hex digits)", i, img, d)
		case strings.Contains(img, "@"):
			return nil, fmt.Errorf("images[%d]: %q carries a digest already; the lock maps tags to digests", i, img)
		case entries[img] != "" && entries[img] != d:
			return nil, fmt.Errorf("images[%d]: %s is listed twice with different digests", i, img)
		}
		entries[img] = d
	}
	return entries, nil
}

func digestRE(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for _, c := range hex {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// readLock finds the package's DigestLock. A malformed lock, or two, fail the run: pinning from a
// lock read wrong would write wrong digests.
func (r *run) readLock(objs []*Object) {
	for _, obj := range objs {
		m := mapping(obj.Node)
		if m == nil || !IsLock(m) {
			continue
		}
		u := use{obj: obj, id: identify(m), field: walker.Field{Path: "images"}}
		if r.lock != nil {
			r.failed(CauseLock, u, fmt.Sprintf("a second DigestLock: the package may hold one (the first is in %s)", orNone(r.lock.obj.File)))
			continue
		}
		entries, err := lockEntries(m)
		if err != nil {
			r.failed(CauseLock, u, "the DigestLock cannot be read: "+err.Error())
			continue
		}
		r.lock = &lock{obj: obj, entries: entries}
	}
	if r.lock == nil && r.opts.Lock == LockFrozen {
		r.failed(CauseLock, use{}, "lock: frozen, but the package has no DigestLock (run once with lock: update to create "+r.opts.LockFile+")")
	}
	r.byName = map[string]string{}
	if r.lock != nil {
		for img, d := range r.lock.entries {
			r.byName[normalise(img)] = d
		}
	}
}

// writeLock brings the lock up to date with the references the package uses, creating it under
// lock: update, and reports what changed.
func (r *run) writeLock() {
	lk := r.lock
	if lk == nil && r.opts.Lock != LockUpdate || r.opts.Lock == LockFrozen {
		return
	}
	var before map[string]string
	if lk != nil {
		before = lk.entries
	}
	used := canonical(r.used, before)
	added, changed, dropped := lockDiff(before, used)
	switch {
	case lk == nil:
		obj := newLock(r.opts.LockFile, used)
		r.rep.Created = append(r.rep.Created, obj)
		r.add(Info, "", use{obj: obj, id: identify(mapping(obj.Node))}, "created the lock with "+plural(len(used), "reference"), "")
	case added+changed+dropped > 0:
		lk.setImages(used)
		r.add(Info, "", use{obj: lk.obj, id: identify(mapping(lk.obj.Node)), field: walker.Field{Path: "images"}},
			fmt.Sprintf("updated the lock: %d added, %d changed, %d dropped", added, changed, dropped), "")
	}
}

// checkLock reports, in check mode, a lock that pin mode would change.
func (r *run) checkLock() {
	lk := r.lock
	if lk == nil {
		return
	}
	added, changed, dropped := lockDiff(lk.entries, canonical(r.used, lk.entries))
	if added+changed+dropped > 0 {
		r.failed(CauseUnpinned, use{obj: lk.obj, id: identify(mapping(lk.obj.Node)), field: walker.Field{Path: "images"}},
			fmt.Sprintf("the lock is out of date: pinning would add %d, change %d and drop %d entries", added, changed, dropped))
	}
}

// canonical keys used by one spelling per reference: the lock's own where it has one, else the
// shortest, so that nginx:1.27 and docker.io/library/nginx:1.27 make one entry and
// an existing lock keeps its spelling.
func canonical(used, locked map[string]string) map[string]string {
	keyOf := map[string]string{} // normalised reference -> key
	for _, k := range slices.Sorted(maps.Keys(locked)) {
		if n := normalise(k); keyOf[n] == "" {
			keyOf[n] = k
		}
	}
	out := make(map[string]string, len(used))
	keys := slices.SortedFunc(maps.Keys(used), func(a, b string) int { // shortest spelling first
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	for _, k := range keys {
		n := normalise(k)
		if keyOf[n] == "" {
			keyOf[n] = k
		}
		out[keyOf[n]] = used[k]
	}
	return out
}

// normalise is the reference's full name (docker.io/library/nginx:latest for nginx), or ref itself
// if it does not parse.
func normalise(ref string) string {
	if r, err := resolver.Parse(ref); err == nil {
		return r.Name()
	}
	return ref
}

func lockDiff(before, after map[string]string) (added, changed, dropped int) {
	for k, v := range after {
		switch b, ok := before[k]; {
		case !ok:
			added++
		case b != v:
			changed++
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			dropped++
		}
	}
	return added, changed, dropped
}

func orNone(s string) string {
	if s == "" {
		return "no file"
	}
	return s
}

// lockNode builds a DigestLock's images with entries sorted by reference: the same package always
// gives the same bytes, so a refresh is a reviewable diff.
func lockNode(entries map[string]string) *yaml.Node {
	images := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, r := range slices.Sorted(maps.Keys(entries)) {
		images.Content = append(images.Content, mappingOf("image", r, "digest", entries[r]))
	}
	return images
}

// newLock makes a DigestLock object for file.
func newLock(file string, entries map[string]string) *Object {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	add := func(k string, v *yaml.Node) {
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
	}
	add("apiVersion", str(LockAPIVersion))
	add("kind", str(LockKind))
	meta := mappingOf("name", "digests")
	annotations := mappingOf("config.kubernetes.io/local-config", "true")
	annotations.Content[1].Style = yaml.DoubleQuotedStyle
	meta.Content = append(meta.Content, str("annotations"), annotations)
	add("metadata", meta)
	add("images", lockNode(entries))
	m.HeadComment = "Image digests pinned by digester: each reference as written in the package, and its digest.\n" +
		"digester reads this file to pin without asking registries; do not edit by hand."
	return &Object{Node: m, File: file}
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func mappingOf(kv ...string) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Content = append(m.Content, str(kv[i]), str(kv[i+1]))
	}
	return m
}

// setImages replaces the lock's images with entries, in place.
func (l *lock) setImages(entries map[string]string) {
	m := mapping(l.obj.Node)
	images := lockNode(entries)
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "images" {
			m.Content[i+1] = images
			return
		}
	}
	m.Content = append(m.Content, str("images"), images)
}
