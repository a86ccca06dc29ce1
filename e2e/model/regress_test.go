package model_test

import (
	"fmt"
	"strings"
	"testing"
)

// pod is a Pod template whose containers run images (markers, see pkg_test.go).
func pod(name string, images ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n", name)
	for i, img := range images {
		fmt.Fprintf(&b, "  - name: c%d\n    image: %s\n", i, img)
	}
	return b.String()
}

// regressions are minimal cases, each derived from a seed of TestModel that found a bug (issue 24
// lists the first nine). Each breaks the properties named in its comment until the bug is fixed.
var regressions = []*scenario{
	{
		// Lock × platform: a lock made without a platform answers a linux/arm64 run with the
		// multi-arch index. Breaks: model, digest, lock = fresh.
		name:     "lock made for the index answers a platform run",
		files:    []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx:1.27»")}},
		earlier:  &settings{Lock: "update", Pinned: "keep", OnError: "fail"},
		settings: settings{Platform: "linux/arm64", Pinned: "keep", OnError: "fail"},
	},
	{
		// skip-prefixes × lock: skipping an image drops its lock entry; check with the same
		// settings then fails. Breaks: lock (dropped an entry in use), check after pin, pin twice.
		name:        "skipping drops the lock entry",
		files:       []pkgFile{{name: "pod.yaml", template: pod("web", "«registry.internal/team0/tool:1»", "«nginx:1.27»")}},
		earlier:     &settings{Lock: "update", Pinned: "keep", OnError: "fail"},
		keepEarlier: true,
		settings:    settings{Skip: []string{"registry.internal/team0"}, Pinned: "keep", OnError: "fail"},
	},
	{
		// The KRM function rewrites a folded scalar with more-indented lines (argo-workflows'
		// conditionals-complex.yaml): one more blank line per run. Breaks: krm values.
		name: "folded scalar with more-indented lines",
		files: []pkgFile{{name: "wf.yaml", template: `apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: conditionals
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: heads
        template: flip
        when: >-
            ( {{steps.flip-coin.outputs.result}} == heads &&
              {{steps.flip-again.outputs.result}} == tails
            ) || false
  - name: flip
    container:
      image: «nginx:1.27»
`}},
		settings: settings{Pinned: "keep", OnError: "fail"},
	},
	{
		// The lock is last-writer-wins over the fields of one reference: a kept pin to a digest
		// from elsewhere goes to the lock, though the other field was pinned to the registry's.
		// Breaks: lock.
		name: "lock records a kept pin's foreign digest",
		files: []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx:1.27»",
			"«docker.io/library/nginx:1.27@{other library/nginx:1.27}»")}},
		settings: settings{Lock: "update", Pinned: "keep", OnError: "fail"},
	},
	{
		// ... and a later unpinned field is pinned from the lock to that digest, exit 0.
		// Breaks: digest (never served as nginx:1.27), model.
		name: "lock pins a new field to a kept pin's foreign digest",
		files: []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx:1.27»",
			"«docker.io/library/nginx:1.27@{other library/nginx:1.27}»")}},
		earlier:  &settings{Lock: "update", Pinned: "keep", OnError: "fail"},
		settings: settings{Pinned: "keep", OnError: "fail"},
	},
	{
		// Under pinned: verify, a field pinned to one platform's image puts the child in the
		// lock, where the index was asked for. Breaks: lock.
		name: "verify puts a platform's image in the lock",
		files: []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx:1.27»",
			"«nginx:1.27@{linux/arm64 library/nginx:1.27}»")}},
		settings: settings{Lock: "update", Pinned: "verify", OnError: "fail"},
	},
	{
		// An index-digest lock with --platform linux/arm64 pins an amd64-only image, which
		// without the lock is an error. Breaks: model (must fail), digest, lock = fresh.
		name:     "index lock pins an amd64-only image for arm64",
		files:    []pkgFile{{name: "pod.yaml", template: pod("web", "«busybox:1.36»")}},
		earlier:  &settings{Lock: "update", Pinned: "keep", OnError: "fail"},
		settings: settings{Platform: "linux/arm64", Pinned: "keep", OnError: "fail"},
	},
	{
		// Under pinned: verify with a platform, a pin to the index is "stale: the tag now points
		// to" its arm64 image, though the tag never moved. Breaks: claims.
		name:     "platform mismatch reported as a moved tag",
		files:    []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx:1.27@{cur library/nginx:1.27}»")}},
		settings: settings{Platform: "linux/arm64", Pinned: "verify", OnError: "fail"},
	},
	{
		// ... and so is a pin to another platform's image of the tag's current index.
		// Breaks: claims.
		name:     "other platform's image reported as a moved tag",
		files:    []pkgFile{{name: "pod.yaml", template: pod("web", "«ghcr.io/acme/api:2.1@{linux/amd64 acme/api:2.1}»")}},
		settings: settings{Platform: "linux/arm64", Pinned: "verify", OnError: "fail"},
	},
	{
		// pinned: refresh moves a pin to one platform's image to the index, saying "the tag now
		// points to" the index, though the tag never moved. Breaks: claims.
		name:     "refresh says a tag moved that did not",
		files:    []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx:1.27@{linux/arm64 library/nginx:1.27}»")}},
		settings: settings{Pinned: "refresh", OnError: "fail"},
	},
	{
		// check --pinned verify passes a pin to the index's attestation manifest
		// (unknown/unknown), which is no image. Breaks: model (must fail).
		name:     "verify passes an attestation pin",
		files:    []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx:1.27@{unknown/unknown library/nginx:1.27}»")}},
		settings: settings{Pinned: "verify", OnError: "fail", Check: true},
	},
	{
		// A tag-less reference goes to the lock as written; check then fails ("would drop") and
		// the next pin empties the lock. Breaks: check after pin, pin twice.
		name:     "tag-less reference in the lock",
		files:    []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx»")}},
		settings: settings{Lock: "update", Pinned: "keep", OnError: "fail"},
	},
	{
		// With docker.io mirrored and no fallback, other spellings of Docker Hub go to
		// upstream. Breaks: mirrors.
		name: "Docker Hub spellings bypass the mirror",
		files: []pkgFile{{name: "pod.yaml", template: pod("web", "«registry-1.docker.io/library/nginx:1.27»",
			"«Docker.io/library/nginx:1.27»")}},
		settings: settings{Mirrors: "docker.io=mirror.test", Pinned: "keep", OnError: "fail"},
	},
	{
		// A value the command line cannot edit in place (a block scalar): no file is written,
		// exit 1, but --output json says ok and lists the pins. Breaks: report.
		name: "report says ok when nothing was written",
		files: []pkgFile{{name: "pod.yaml", template: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n" +
			"  - name: a\n    image: >-\n      «nginx:1.27»\n"}},
		settings: settings{Pinned: "keep", OnError: "fail"},
	},
	{
		// A kept sha512 pin goes to the lock, whose reader refuses sha512 digests: the next run
		// cannot read the lock digester wrote (issue 24's "one rule for digest syntax").
		// Breaks: lock, check after pin, pin twice.
		name: "sha512 pin in the lock",
		files: []pkgFile{{name: "pod.yaml", template: pod("web", "«nginx:1.27»",
			"«ghcr.io/acme/api:2.1@sha512:"+strings.Repeat("5e", 64)+"»")}},
		settings: settings{Lock: "update", Pinned: "keep", OnError: "fail"},
	},
	// Found by this test, not in issue 24:
	{
		// A kustomize images: entry that a run pins (it gains digest:) is left alone from then
		// on, so the next run finds its lock entry unused: check with the settings of the pin that
		// wrote the lock fails ("would drop 1"), and a second pin drops the entry.
		// Breaks: check after pin, pin twice.
		name: "a pinned kustomize entry loses its lock entry",
		files: []pkgFile{{name: "kustomization.yaml", template: "resources:\n- pod.yaml\nimages:\n- name: nginx\n  newTag: \"1.27\"\n"},
			{name: "pod.yaml", template: pod("web", "«busybox:1.36»")}},
		settings: settings{Lock: "update", Pinned: "keep", OnError: "fail"},
	},
	{
		// `digester pin -` on documents that hold a DigestLock: when the lock changes, every
		// document on stdout is written anew from its nodes (here: the list's indent and the
		// quotes change), where `digester pin DIR` changes image values only. Breaks: stdin.
		name: "stdin with a lock rewrites every document",
		files: []pkgFile{{name: "pod.yaml", template: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web # the web tier\nspec:\n  containers:\n" +
			"    - name: web\n      image: '«nginx:1.27»'\n"}},
		hand:     [][2]string{{"busybox:1.36", "{cur library/busybox:1.36}"}},
		settings: settings{Lock: "update", Pinned: "keep", OnError: "fail"},
	},
	{
		// A DigestLock in a file with other documents: when the lock changes, `digester pin DIR`
		// writes that whole file anew from its nodes. Breaks: bytes, stdin.
		name: "a lock beside resources rewrites their file",
		files: []pkgFile{{name: "pod.yaml", template: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web # the web tier\nspec:\n  containers:\n" +
			"    - name: web\n      image: '«nginx:1.27»'\n"}},
		hand:     [][2]string{{"busybox:1.36", "{cur library/busybox:1.36}"}},
		handFile: "pod.yaml",
		settings: settings{Lock: "update", Pinned: "keep", OnError: "fail"},
	},
	{
		// The KRM function quotes a tag-less image it pins in a flow mapping:
		// {name: a, image: nginx} comes back as image: 'nginx@sha256:…'. Breaks: krm bytes
		//.
		name: "KRM quotes a pinned flow value",
		files: []pkgFile{{name: "pod.yaml", template: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n" +
			"  - {name: web, image: «nginx»}\n"}},
		settings: settings{Pinned: "keep", OnError: "fail"},
	},
	{
		// The command line refuses an image value that carries an anchor (image: &web nginx:1.27)
		// as "not written as a plain or quoted string on one line"; the KRM function pins it.
		// Breaks: front ends, report.
		name: "command line refuses an anchored image",
		files: []pkgFile{{name: "pod.yaml", template: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n" +
			"  - name: web\n    image: &web «nginx:1.27»\n"}},
		settings: settings{Pinned: "keep", OnError: "fail"},
	},
}

// TestRegressions runs the minimal cases: each must keep every promise TestModel checks.
func TestRegressions(t *testing.T) {
	for _, sc := range regressions {
		t.Run(sc.name, func(t *testing.T) {
			check(t, sc, fmt.Sprintf("go test ./e2e/model -run 'TestRegressions/%s'", strings.ReplaceAll(sc.name, " ", "_")))
		})
	}
}
