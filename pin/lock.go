package pin

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/imageref"
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

// LockEntry is what a DigestLock says of one reference: its digest, and the platform the digest
// was resolved for ("linux/arm64"; "" for none: the tag's own digest, a multi-arch index's or a
// single-platform image's). A lock written before platforms were recorded reads as "".
type LockEntry struct {
	Digest, Platform string
}

// lock is a DigestLock read from a package: its entries and its node.
type lock struct {
	obj     *Object
	entries map[string]LockEntry // by reference as written
}

// IsLock reports whether m, a mapping (or a document holding one), is a DigestLock.
func IsLock(m *yaml.Node) bool {
	m = mapping(m)
	return walker.Scalar(walker.Lookup(m, "kind")) == LockKind && walker.Scalar(walker.Lookup(m, "apiVersion")) == LockAPIVersion
}

// ParseLock reads a DigestLock written as YAML (as a ConfigMap publishes one) and returns its
// entries by reference as written.
func ParseLock(data []byte) (map[string]LockEntry, error) {
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

// lockEntries reads a DigestLock's images, a list of {image, digest, platform}; a malformed
// entry, or two spellings of one reference with different digests, is an error naming them, since
// a lock that is read wrong pins wrong.
func lockEntries(m *yaml.Node) (map[string]LockEntry, error) {
	entries := map[string]LockEntry{}
	images := walker.Lookup(m, "images")
	if images == nil || images.Kind == yaml.ScalarNode && images.Tag == "!!null" {
		return entries, nil
	}
	if images.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("images is not a list")
	}
	first := map[string]int{} // normalised reference -> index of its first entry
	for i, e := range images.Content {
		img, err := lockEntry(e)
		if err != nil {
			return nil, fmt.Errorf("images[%d]%s", i, err)
		}
		n := normalise(img.image)
		if j, seen := first[n]; seen {
			if other := entries[walker.Scalar(walker.Lookup(images.Content[j], "image"))]; other != img.LockEntry {
				return nil, fmt.Errorf("images[%d] (%s) and images[%d] (%s) are one reference with different entries (%s, %s): remove one",
					j, walker.Scalar(walker.Lookup(images.Content[j], "image")), i, img.image, describeEntry(other), describeEntry(img.LockEntry))
			}
		} else {
			first[n] = i
		}
		entries[img.image] = img.LockEntry
	}
	return entries, nil
}

type namedEntry struct {
	image string
	LockEntry
}

// lockEntry reads one entry of a DigestLock's images; an error starts with what follows
// "images[i]" in a message.
func lockEntry(e *yaml.Node) (namedEntry, error) {
	img := walker.Scalar(walker.Lookup(e, "image"))
	d := walker.Scalar(walker.Lookup(e, "digest"))
	p := walker.Scalar(walker.Lookup(e, "platform"))
	switch {
	case e.Kind != yaml.MappingNode || img == "" || d == "":
		return namedEntry{}, fmt.Errorf(" needs an image and a digest")
	case !imageref.ValidDigest(d):
		return namedEntry{}, fmt.Errorf(" (%s): %q is not a digest (sha256: and 64, or sha512: and 128, lowercase hex digits)", img, d)
	case strings.Contains(img, "@"):
		return namedEntry{}, fmt.Errorf(": %q carries a digest already; the lock maps tags to digests", img)
	}
	if p != "" {
		pl, err := resolver.ParsePlatform(p)
		if err != nil {
			return namedEntry{}, fmt.Errorf(" (%s): %v", img, err)
		}
		p = pl.String()
	}
	return namedEntry{img, LockEntry{Digest: d, Platform: p}}, nil
}

// describeEntry is an entry in words: its digest, and its platform if it has one.
func describeEntry(e LockEntry) string {
	if e.Platform == "" {
		return e.Digest
	}
	return e.Digest + " for " + e.Platform
}

// readLock finds the package's DigestLock. A malformed lock, or two, fail the run: pinning from a
// lock read wrong would write wrong digests.
func (r *run) readLock(objs []*Object) {
	for _, obj := range objs {
		m := mapping(obj.Node)
		if m == nil || !IsLock(m) {
			continue
		}
		u := use{obj: obj, id: idOf(m), field: field{Field: walker.Field{Path: "images"}}}
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
	r.byName = map[string]LockEntry{}
	if r.lock != nil {
		for img, e := range r.lock.entries {
			r.byName[normalise(img)] = e
		}
	}
}

// platform is the run's platform as the lock records it: "" for none.
func (r *run) platform() string {
	if r.opts.Platform == nil {
		return ""
	}
	return r.opts.Platform.String()
}

// confirm records that this run resolved or verified ref (a tag, as written) to digest for its
// platform: the lock will say so.
func (r *run) confirm(ref, digest string) {
	if lockable(ref) {
		r.resolvedLock[ref] = LockEntry{Digest: digest, Platform: r.platform()}
	}
}

// lockable reports whether a reference may have a lock entry: one without a digest. A reference
// without a tag (nginx) is locked as it is written, for its implicit tag, latest; once pinned
// (nginx@sha256:…) the field still uses that entry, so it stays.
func lockable(ref string) bool { return ref != "" && !strings.Contains(ref, "@") }

// entries is the lock this run leaves: every entry of the package's lock whose reference a field
// still uses (skipped, templated, failed or kept alike: skipping is not forgetting), with what
// this run resolved or verified written over it, in the lock's own spelling where it has one.
func (r *run) entries() map[string]LockEntry {
	out := map[string]LockEntry{}
	if r.lock != nil {
		for k, e := range r.lock.entries {
			if r.inUse[normalise(k)] {
				out[k] = e
			}
		}
	}
	for k, e := range canonical(r.resolvedLock, out) {
		out[k] = e
	}
	return out
}

// writeLock brings the lock up to date, creating it under lock: update, and reports what changed.
func (r *run) writeLock() {
	lk := r.lock
	if lk == nil && r.opts.Lock != LockUpdate || r.opts.Lock == LockFrozen {
		return
	}
	var before map[string]LockEntry
	if lk != nil {
		before = lk.entries
	}
	after := r.entries()
	added, changed, dropped := lockDiff(before, after)
	switch {
	case lk == nil:
		obj := newLock(r.opts.LockFile, after)
		r.rep.Created = append(r.rep.Created, obj)
		r.add(Info, "", use{obj: obj, id: idOf(mapping(obj.Node))}, "created the lock with "+plural(len(after), "reference"), "")
	case added+changed+dropped > 0:
		lk.setImages(after)
		r.rep.Updated = append(r.rep.Updated, lk.obj)
		r.add(Info, "", use{obj: lk.obj, id: idOf(mapping(lk.obj.Node)), field: field{Field: walker.Field{Path: "images"}}},
			fmt.Sprintf("updated the lock: %d added, %d changed, %d dropped", added, changed, dropped), "")
	}
}

// checkLock reports, in check mode, a lock that pin mode would change (under lock: frozen it
// changes none).
func (r *run) checkLock() {
	lk := r.lock
	if lk == nil || r.opts.Lock == LockFrozen {
		return
	}
	added, changed, dropped := lockDiff(lk.entries, r.entries())
	if added+changed+dropped > 0 {
		r.failed(CauseUnpinned, use{obj: lk.obj, id: idOf(mapping(lk.obj.Node)), field: field{Field: walker.Field{Path: "images"}}},
			fmt.Sprintf("the lock is out of date: pinning would add %d, change %d and drop %d entries", added, changed, dropped))
	}
}

// canonical keys entries by one spelling per reference: the lock's own where it has one, else the
// shortest, so that nginx:1.27 and docker.io/library/nginx:1.27 make one entry and an existing
// lock keeps its spelling.
func canonical(entries, locked map[string]LockEntry) map[string]LockEntry {
	keyOf := map[string]string{} // normalised reference -> key
	for _, k := range slices.Sorted(maps.Keys(locked)) {
		if n := normalise(k); keyOf[n] == "" {
			keyOf[n] = k
		}
	}
	out := make(map[string]LockEntry, len(entries))
	keys := slices.SortedFunc(maps.Keys(entries), func(a, b string) int { // shortest spelling first
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	for _, k := range keys {
		n := normalise(k)
		if keyOf[n] == "" {
			keyOf[n] = k
		}
		out[keyOf[n]] = entries[k]
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

func lockDiff(before, after map[string]LockEntry) (added, changed, dropped int) {
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
func lockNode(entries map[string]LockEntry) *yaml.Node {
	images := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, r := range slices.Sorted(maps.Keys(entries)) {
		e := mappingOf("image", r, "digest", entries[r].Digest)
		if p := entries[r].Platform; p != "" {
			e.Content = append(e.Content, str("platform"), str(p))
		}
		images.Content = append(images.Content, e)
	}
	return images
}

// newLock makes a DigestLock object for file.
func newLock(file string, entries map[string]LockEntry) *Object {
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
func (l *lock) setImages(entries map[string]LockEntry) {
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
