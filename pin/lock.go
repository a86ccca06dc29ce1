package pin

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// The DigestLock kind: a local-config resource in the package that maps each image reference to
// the digest it was pinned to, so that a package re-rendered from unpinned sources pins the same
// way, offline.
const (
	LockAPIVersion = "fn.kpt.dev/v1alpha1"
	LockKind       = "DigestLock"
)

// lock is a DigestLock read from a package: its entries, in file order, and its node.
type lock struct {
	obj     *Object
	entries map[string]string // reference as written -> digest
	order   []string
}

// isLock reports whether m is a DigestLock.
func isLock(m *yaml.Node) bool {
	return scalar(value(m, "kind")) == LockKind && scalar(value(m, "apiVersion")) == LockAPIVersion
}

// readLock reads a DigestLock. Its images are a list of {image, digest}; a malformed entry is an
// error naming its index, since a lock that is read wrong pins wrong.
func readLock(obj *Object, m *yaml.Node) (*lock, error) {
	l := &lock{obj: obj, entries: map[string]string{}}
	images := value(m, "images")
	if images == nil || images.Kind == yaml.ScalarNode && images.Tag == "!!null" {
		return l, nil
	}
	if images.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("images is not a list")
	}
	for i, e := range images.Content {
		img, d := scalar(value(e, "image")), scalar(value(e, "digest"))
		switch {
		case e.Kind != yaml.MappingNode || img == "" || d == "":
			return nil, fmt.Errorf("images[%d] needs an image and a digest", i)
		case !digestRE(d):
			return nil, fmt.Errorf("images[%d] (%s): %q is not a digest (sha256: and 64 lowercase hex digits)", i, img, d)
		case strings.Contains(img, "@"):
			return nil, fmt.Errorf("images[%d]: %q carries a digest already; the lock maps tags to digests", i, img)
		case l.entries[img] != "" && l.entries[img] != d:
			return nil, fmt.Errorf("images[%d]: %s is listed twice with different digests", i, img)
		}
		if _, seen := l.entries[img]; !seen {
			l.order = append(l.order, img)
		}
		l.entries[img] = d
	}
	return l, nil
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

// lockNode builds a DigestLock with entries sorted by reference: the same package always gives the
// same bytes, so a refresh is a reviewable diff.
func lockNode(entries map[string]string) *yaml.Node {
	refs := make([]string, 0, len(entries))
	for r := range entries {
		refs = append(refs, r)
	}
	slices.Sort(refs)
	images := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, r := range refs {
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
