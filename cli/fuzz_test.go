package cli

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/digester/digester/config"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
)

// fuzzDigest is what fuzzLookup resolves every reference to.
var fuzzDigest = "sha256:" + strings.Repeat("f", 64)

// fuzzLookup resolves every reference at once, with no registry.
type fuzzLookup struct{}

func (fuzzLookup) Resolve(_ context.Context, refs []string) map[string]resolver.Result {
	out := map[string]resolver.Result{}
	for _, r := range refs {
		out[r] = resolver.Result{Digest: fuzzDigest}
	}
	return out
}

func (fuzzLookup) Requests() int64 { return 0 }

// editSeeds reach the corners of the edit path: anchors, aliases and merge keys around image
// values, tags, quoting and escapes, block scalars, flow collections, CRLF, a byte order mark,
// several documents, a kind: List, a DigestLock that the run updates.
var editSeeds = []string{
	"kind: Pod\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27 # c\n  - {name: b, image: 'redis:7'}\n",
	"kind: Pod\nspec:\n  containers: [&base {name: a, image: r}, {<<: *base, name: b}]\n",
	"kind: Pod\nspec:\n  containers: [&base {name: a, image: r}]\n  initContainers: [*base]\n",
	"kind: Pod\nmetadata: {labels: {app: &img nginx:1.27}}\nspec:\n  containers:\n  - image: *img\n",
	"kind: Pod\nspec:\n  containers:\n  - image: &i nginx\n  - image: *i\n  - image: !!str &j redis\n  - image: &k !!str busybox\n",
	"kind: Pod\nspec:\n  containers:\n  - image: !!str nginx\n  - image: !<tag:yaml.org,2002:str> a\n  - image: !custom b\n",
	"kind: Pod\nspec:\n  containers:\n  - image: \"nginx:1.2\\x37\"\n",
	"kind: Pod\nspec:\n  containers:\n  - image: >-\n      nginx\n  - image: |-\n      redis\n",
	"kind: Pod\nspec:\n  containers:\n  - image: 'nginx:1.27'\n  - image: 'it''s:1'\n",
	"kind: Pod\r\nspec:\r\n  containers:\r\n  - image: nginx:1.27\r\n  - image: \"redis\"\r\n",
	"\ufeff{kind: Pod, spec: {containers: [{image: nginx}, {image: a.b/c:d}]}}\n",
	"kind: Pod\nspec:\n  containers:\n  - image: nginx\n---\n# a comment only\n---\nkind: Pod\nspec: {containers: [{image: nginx}]}\n...\n",
	"apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  spec: {containers: [{image: x}]}\n- kind: Pod\n  spec:\n    containers:\n    - image: y\n",
	"apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: d\n  annotations: {config.kubernetes.io/local-config: \"true\"}\nimages:\n  - image: gone:1\n    digest: sha256:" + strings.Repeat("a", 64) + "\n# after\n---\nkind: Pod\nspec: {containers: [{image: nginx}]}\n",
	"base: &b {image: a}\nkind: Pod\nspec:\n  containers:\n  - <<: *b\n  - <<: [*b]\n    image: own\n  - *b\n",
	"kind: Pod\nspec:\n  containers:\n  - image:\n      nginx\n  - image: \"nginx:\\\n      1.27\"\n",
	// References in syntaxes of their own: a digest key set or added, a Kptfile's line comment.
	"apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: set-labels:v1 # c\n  - {image: \"a/b:2\", configPath: x} # d\n  - image: 'c/d:3'\n    configMap: {a: b}\n",
	"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image: {registry: r.io, repository: a, tag: 1.5, digest: }\n    b:\n      image:\n        repository: c\n        tag: \"2\"\n        digest: ~ # here\n    c: [{repository: d, tag: '3@sha256:x', digest: \"\"}]\n",
	"apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec:\n  url: oci://r.io/m\n  ref:\n    tag: v1 # t\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec: {url: 'oci://r.io/m', ref: {tag: v2}}\n",
	"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages: [{name: a, newTag: '1'}]\nhelmCharts:\n- valuesInline:\n    image: {repository: e, tag: '4', digest: ''}\n",
	"kind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: a\n        env: [{name: RELATED_IMAGE_X, value: x:1}, {name: RELATED_IMAGE_Y, value: 'y'}]\n",
}

// FuzzPinFile runs the command line's edit path on any YAML: parse, pin (every reference
// resolves), work out the file's new bytes. It never panics; an error is one of the command
// line's own, about a field or the file; and when the file is rewritten, the new bytes parse to
// the pinned objects' values and, unless a lock changed, differ from the old only by "@digest"
// after image values.
func FuzzPinFile(f *testing.F) {
	for _, s := range editSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fl := &input{file: &file{name: "pkg/file.yaml", path: "pkg/file.yaml", data: data}}
		if err := fl.parse(); err != nil {
			return
		}
		locks := snapshotLocks([]*input{fl})
		rep := pin.New(fuzzLookup{}, config.Default().Options).Run(context.Background(), fl.objs)
		if !rep.OK() {
			return
		}
		var pinned []pin.Finding
		for _, fd := range rep.Findings {
			if fd.Object != nil && fd.Pinned != "" {
				pinned = append(pinned, fd)
			}
		}
		var changed []*pin.Object
		for o, before := range locks {
			if encode(o.Node) != before {
				changed = append(changed, o)
			}
		}
		err := fl.render(pinned, changed)
		var fe *fieldError
		var fileErr *fileError
		switch {
		case err != nil && strings.Contains(err.Error(), "bug"):
			t.Fatalf("render: %v", err)
		case err != nil && !errors.As(err, &fe) && !errors.As(err, &fileErr):
			t.Fatalf("render: %T %v, not an error of the command line's", err, err)
		case err != nil:
			return
		case fl.pinned == nil:
			if len(pinned) > 0 {
				t.Fatalf("%d fields pinned, no bytes changed", len(pinned))
			}
			return
		}
		after := &file{name: fl.name, data: fl.pinned}
		if err := after.parse(); err != nil {
			t.Fatalf("the new bytes do not parse: %v\n%s", err, fl.pinned)
		}
		if len(after.objs) != len(fl.objs) {
			t.Fatalf("%d objects after, %d before", len(after.objs), len(fl.objs))
		}
		for i := range fl.objs {
			if !sameNodes(after.objs[i].Node, fl.objs[i].Node) {
				t.Fatalf("object %d: the new bytes parse to other values than the pinned object's:\n%s", i, fl.pinned)
			}
		}
		if len(changed) > 0 || slices.ContainsFunc(pinned, func(fd pin.Finding) bool { return !fd.Kind.Verbatim() }) {
			return // a lock rewritten, a digest key set or added, a line comment: the values were compared
		}
		at := []byte("@" + fuzzDigest)
		if !bytes.Equal(bytes.ReplaceAll(fl.pinned, at, nil), bytes.ReplaceAll(data, at, nil)) {
			t.Fatalf("bytes other than digests changed:\n%q\n%q", data, fl.pinned)
		}
		if n := bytes.Count(fl.pinned, at) - bytes.Count(data, at); n < 1 || n > len(pinned) {
			t.Fatalf("%d digests added for %d pinned fields", n, len(pinned))
		}
	})
}
