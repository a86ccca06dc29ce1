package clusterlock

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// The DigestLock kind, as package pin writes and reads it.
const (
	lockAPIVersion = "fn.kpt.dev/v1alpha1"
	lockKind       = "DigestLock"
)

// parseLockFor reads a DigestLock document as package pin reads one from a package: apiVersion
// fn.kpt.dev/v1alpha1, kind DigestLock, images: a list of {image, digest, platform}, each with an
// image and a digest, and the platform the Watcher pins for (WithPlatform): an entry recorded for
// another holds a digest the webhook would not pin. It is stricter than pin's reading, since a
// ConfigMap is written by hand as often as by digester: one document only, duplicate keys
// refused, for a lock read wrong pins wrong. The Watcher checks each entry's image and digest
// itself.
func parseLockFor(platform string) Parser {
	return func(b []byte) (map[string]string, error) { return parse(b, platform) }
}

func parse(b []byte, platform string) (map[string]string, error) {
	var doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Images     []struct {
			Image    string `yaml:"image"`
			Digest   string `yaml:"digest"`
			Platform string `yaml:"platform"`
		} `yaml:"images"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty: want a DigestLock")
		}
		return nil, fmt.Errorf("not a DigestLock: %w", err)
	}
	var more any
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document: want one DigestLock")
	}
	if doc.APIVersion != lockAPIVersion || doc.Kind != lockKind {
		return nil, fmt.Errorf("apiVersion %q, kind %q: want %s %s", doc.APIVersion, doc.Kind, lockAPIVersion, lockKind)
	}
	entries := make(map[string]string, len(doc.Images))
	for i, e := range doc.Images {
		switch {
		case e.Image == "" || e.Digest == "":
			return nil, fmt.Errorf("images[%d] needs an image and a digest", i)
		case entries[e.Image] != "" && entries[e.Image] != e.Digest:
			return nil, fmt.Errorf("images[%d]: %s is listed twice with different digests", i, e.Image)
		case e.Platform != platform:
			return nil, fmt.Errorf("images[%d]: %s is locked for platform %s, and the webhook pins for %s (--platform)", i, e.Image, orIndex(e.Platform), orIndex(platform))
		}
		entries[e.Image] = e.Digest
	}
	return entries, nil
}

// orIndex names the platform "" stands for.
func orIndex(platform string) string {
	if platform == "" {
		return "none (the image index)"
	}
	return platform
}
