package pin_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

// serve starts a registry with nginx:1.27 and ghcr.io/acme/app:2 and returns it with their digests.
func serve(t *testing.T) (*registrytest.Registry, map[string]string) {
	t.Helper()
	reg := registrytest.New(registrytest.WithTLS())
	t.Cleanup(reg.Close)
	digests, err := reg.PushImages(types.OCIManifestSchema1, "nginx:1.27", "ghcr.io/acme/app:2")
	if err != nil {
		t.Fatal(err)
	}
	return reg, digests
}

// objects parses one YAML document per object, named a.yaml, b.yaml, ... in order.
func objects(t *testing.T, docs ...string) []*pin.Object {
	t.Helper()
	var objs []*pin.Object
	for i, d := range docs {
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(d), &n); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, &pin.Object{Node: &n, File: fmt.Sprintf("%c.yaml", 'a'+i)})
	}
	return objs
}

func encode(t *testing.T, o *pin.Object) string {
	t.Helper()
	b, err := yaml.Marshal(o.Node)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func pod(name, image string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: ns\nspec:\n  containers:\n  - name: c\n    image: %s # keep me\n", name, image)
}

// finding is what a user reads of a Finding; Object and positions are compared separately.
type finding struct {
	Severity      string
	ID            string
	File, Path    string
	Image, Pinned string
	Message       string
}

func simplify(fs []pin.Finding) []finding {
	var out []finding
	for _, f := range fs {
		g := finding{Severity: f.Severity.String(), ID: f.ID.String(), Path: f.Path, Image: f.Image, Pinned: f.Pinned, Message: f.Message}
		if f.Object != nil {
			g.File = f.Object.File
		}
		out = append(out, g)
	}
	return out
}

// newPinner is a Pinner with the options mutate sets, looking up in reg with no credentials, for
// the options' platform.
func newPinner(reg *registrytest.Registry, mutate func(*pin.Options)) *pin.Pinner {
	var opts pin.Options
	if mutate != nil {
		mutate(&opts)
	}
	return pin.New(lookup(reg.Transport(), opts.Platform), opts)
}

// lookup is a resolver over transport with no credentials.
func lookup(transport http.RoundTripper, platform *v1.Platform) *resolver.Resolver {
	ropts := []resolver.Option{resolver.WithTransport(transport), resolver.WithKeychain(authn.NewMultiKeychain())}
	if platform != nil {
		ropts = append(ropts, resolver.WithPlatform(*platform))
	}
	return resolver.New(ropts...)
}

// templated is main's warning for an image holding a template variable.
func templated(img, variable string) string {
	return fmt.Sprintf("not pinned: %q holds an unexpanded template variable, %s: pin the manifests once it is filled in", img, variable)
}

// dupPod has keys twice, none of them deciding an image differently.
const dupPod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  labels: {a: b}\n  labels: {a: c}\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    image: nginx:1.27\n"

func TestRun(t *testing.T) {
	reg, d := serve(t)
	pinned := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name         string
		docs         []string
		files        []string // file names, if not a.yaml, b.yaml, ...
		mutate       func(*pin.Options)
		wantOK       bool
		wantSummary  pin.Summary
		wantFindings []finding
		wantDocs     []string // each object after the run
	}{{
		name:        "pins every field, one lookup per distinct reference",
		docs:        []string{pod("a", "nginx:1.27"), pod("b", "docker.io/library/nginx:1.27"), pod("c", "ghcr.io/acme/app:2")},
		wantOK:      true,
		wantSummary: pin.Summary{Pinned: 3, Distinct: 2, Requests: 4}, // 2 pings, 2 HEADs
		wantFindings: []finding{
			{"info", "Pod ns/a", "a.yaml", "spec.containers[0].image", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
			{"info", "Pod ns/b", "b.yaml", "spec.containers[0].image", "docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27@" + d["nginx:1.27"], "pinned docker.io/library/nginx:1.27 to " + d["nginx:1.27"]},
			{"info", "Pod ns/c", "c.yaml", "spec.containers[0].image", "ghcr.io/acme/app:2", "ghcr.io/acme/app:2@" + d["ghcr.io/acme/app:2"], "pinned ghcr.io/acme/app:2 to " + d["ghcr.io/acme/app:2"]},
		},
		wantDocs: []string{pod("a", "nginx:1.27@"+d["nginx:1.27"]), pod("b", "docker.io/library/nginx:1.27@"+d["nginx:1.27"]), pod("c", "ghcr.io/acme/app:2@"+d["ghcr.io/acme/app:2"])},
	}, {
		name:        "already pinned, skipped and local-config cost nothing",
		docs:        []string{pod("a", "nginx:1.27@"+pinned), pod("b", "ghcr.io/acme/app:2"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: l\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nspec:\n  containers:\n  - image: nginx:1.27\n"},
		mutate:      func(c *pin.Options) { c.SkipPrefixes = []string{"ghcr.io/"} },
		wantOK:      true,
		wantSummary: pin.Summary{AlreadyPinned: 1, Skipped: 1},
		wantDocs:    []string{pod("a", "nginx:1.27@"+pinned), pod("b", "ghcr.io/acme/app:2"), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: l\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nspec:\n  containers:\n  - image: nginx:1.27\n"},
	}, {
		name:        "one failure leaves every object unchanged",
		docs:        []string{pod("a", "nginx:1.27"), pod("b", "nginx:1.28")},
		wantSummary: pin.Summary{Failed: 1, Distinct: 2, Requests: 4}, // ping, 2 HEADs, the missing tag's tag list,
		wantFindings: []finding{
			{"error", "Pod ns/b", "b.yaml", "spec.containers[0].image", "nginx:1.28", "", `cannot pin nginx:1.28: tag not found: "1.28" in repository library/nginx on registry index.docker.io`},
		},
		wantDocs: []string{pod("a", "nginx:1.27"), pod("b", "nginx:1.28")},
	}, {
		name:        "on-error warn pins what resolved",
		docs:        []string{pod("a", "nginx:1.27"), pod("b", "nginx:1.28")},
		mutate:      func(c *pin.Options) { c.OnError = pin.OnErrorWarn },
		wantOK:      true,
		wantSummary: pin.Summary{Pinned: 1, Failed: 1, Distinct: 2, Requests: 4, Warn: true},
		wantFindings: []finding{
			{"warning", "Pod ns/b", "b.yaml", "spec.containers[0].image", "nginx:1.28", "", `cannot pin nginx:1.28: tag not found: "1.28" in repository library/nginx on registry index.docker.io`},
			{"info", "Pod ns/a", "a.yaml", "spec.containers[0].image", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
		},
		wantDocs: []string{pod("a", "nginx:1.27@"+d["nginx:1.27"]), pod("b", "nginx:1.28")},
	}, {
		name:        "an invalid reference is an error and costs no request",
		docs:        []string{pod("a", "Nginx:1.27")},
		wantSummary: pin.Summary{Failed: 1},
		wantFindings: []finding{
			{"error", "Pod ns/a", "a.yaml", "spec.containers[0].image", "Nginx:1.27", "", `"Nginx:1.27" is not a valid image reference: repository names must be lowercase`},
		},
		wantDocs: []string{pod("a", "Nginx:1.27")},
	}, {
		name:         "a field that cannot be read is a warning and does not fail the run",
		docs:         []string{"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: 42\n"},
		wantOK:       true,
		wantFindings: []finding{{"warning", "Pod a", "a.yaml", "spec.containers[0].image", "", "", "is a number (42), want a string"}},
		wantDocs:     []string{"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: 42\n"},
	}, {
		name:        "a duplicate key that decides no image is a warning; the resource is pinned, the duplicate kept",
		docs:        []string{dupPod},
		wantOK:      true,
		wantSummary: pin.Summary{Pinned: 1, Distinct: 1, Requests: 2},
		wantFindings: []finding{
			{"warning", "Pod a", "a.yaml", "metadata.labels", "", "", `key "labels" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`},
			{"warning", "Pod a", "a.yaml", "spec.containers[0].image", "", "", `key "image" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`},
			{"info", "Pod a", "a.yaml", "spec.containers[0].image", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
		},
		wantDocs: []string{strings.TrimSuffix(dupPod, "\n") + "@" + d["nginx:1.27"] + "\n"}, // the last counts
	}, {
		name:        "a duplicate key whose values disagree on an image is an error naming both lines",
		docs:        []string{"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    image: ghcr.io/acme/app:2\n"},
		wantSummary: pin.Summary{Failed: 1},
		wantFindings: []finding{
			{"error", "Pod a", "a.yaml", "spec.containers[0].image", "", "", `key "image" appears twice, here and 1 line above, with different images: kubectl would keep the last, digester does not guess; remove one`},
		},
		wantDocs: []string{"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    image: ghcr.io/acme/app:2\n"},
	}, {
		name: "template parameters at preset places are warnings, not errors",
		docs: []string{
			"apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: t\nspec:\n  steps:\n  - image: $(params.IMAGE)\n  - image: docker.io/library/golang:$(params.version)\n  - image: nginx:1.27\n",
			"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  generateName: w-\nspec:\n  templates:\n  - container:\n      image: '{{inputs.parameters.image}}'\n",
			pod("c", "${IMAGE}"),
		},
		wantOK:      true,
		wantSummary: pin.Summary{Pinned: 1, Templated: 4, Distinct: 1, Requests: 2},
		wantFindings: []finding{
			{"warning", "Task t", "a.yaml", "spec.steps[0].image", "$(params.IMAGE)", "", templated("$(params.IMAGE)", "$(params.IMAGE)")},
			{"warning", "Task t", "a.yaml", "spec.steps[1].image", "docker.io/library/golang:$(params.version)", "", templated("docker.io/library/golang:$(params.version)", "$(params.version)")},
			{"warning", "Workflow w-", "b.yaml", "spec.templates[0].container.image", "{{inputs.parameters.image}}", "", templated("{{inputs.parameters.image}}", "{{inputs.parameters.image}}")},
			{"warning", "Pod ns/c", "c.yaml", "spec.containers[0].image", "${IMAGE}", "", templated("${IMAGE}", "${IMAGE}")},
			{"info", "Task t", "a.yaml", "spec.steps[2].image", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
		},
		wantDocs: []string{
			"apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: t\nspec:\n  steps:\n  - image: $(params.IMAGE)\n  - image: docker.io/library/golang:$(params.version)\n  - image: nginx:1.27@" + d["nginx:1.27"] + "\n",
			"apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  generateName: w-\nspec:\n  templates:\n  - container:\n      image: '{{inputs.parameters.image}}'\n",
			pod("c", "${IMAGE}"),
		},
	}, {
		name: "an image key elsewhere: one warning per kind and place, and only for references",
		docs: []string{
			"apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: a\nspec:\n  runner:\n    image: nginx:1.27\n",
			"apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: b\nspec:\n  runner:\n    image: ghcr.io/acme/app:2\n  other:\n  - image: '*'\n  - image: nginx@" + pinned + "\n",
		},
		wantOK: true,
		wantFindings: []finding{
			{"warning", "Thing a", "a.yaml", "spec.runner.image", "nginx:1.27", "", "left alone: digester does not pin spec/runner/image in kind Thing (example.com); to pin it, add {group: example.com, kind: Thing, path: spec/runner/image} to additionalImageFields"},
		},
		wantDocs: []string{
			"apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: a\nspec:\n  runner:\n    image: nginx:1.27\n",
			"apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: b\nspec:\n  runner:\n    image: ghcr.io/acme/app:2\n  other:\n  - image: '*'\n  - image: nginx@" + pinned + "\n",
		},
	}, {
		name: "declared fields are pinned",
		docs: []string{"apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: a\nspec:\n  runner:\n    image: nginx:1.27\n"},
		mutate: func(c *pin.Options) {
			c.ImageFields = []walker.ImageField{{Group: "example.com", Kind: "Thing", Path: "spec/runner/image"}}
		},
		wantOK:      true,
		wantSummary: pin.Summary{Pinned: 1, Distinct: 1, Requests: 2},
		wantFindings: []finding{
			{"info", "Thing a", "a.yaml", "spec.runner.image", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
		},
		wantDocs: []string{"apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: a\nspec:\n  runner:\n    image: nginx:1.27@" + d["nginx:1.27"] + "\n"},
	}, {
		name:   "presets off",
		docs:   []string{"apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: t\nspec:\n  steps:\n  - image: nginx:1.27\n"},
		mutate: func(c *pin.Options) { c.NoPresets = true },
		wantOK: true,
		wantFindings: []finding{
			{"warning", "Task t", "a.yaml", "spec.steps[0].image", "nginx:1.27", "", "left alone: digester does not pin spec/steps/image in kind Task (tekton.dev); to pin it, add {group: tekton.dev, kind: Task, path: spec/steps/image} to additionalImageFields"},
		},
		wantDocs: []string{"apiVersion: tekton.dev/v1\nkind: Task\nmetadata:\n  name: t\nspec:\n  steps:\n  - image: nginx:1.27\n"},
	}, {
		name:        "List items are resources of their own",
		docs:        []string{"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p, namespace: ns}\n  spec: {containers: [{image: nginx:1.27}]}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: q}\n  spec: {containers: [{image: 'Bad'}]}\n"},
		mutate:      func(c *pin.Options) { c.OnError = pin.OnErrorWarn },
		wantOK:      true,
		wantSummary: pin.Summary{Pinned: 1, Failed: 1, Distinct: 1, Requests: 2, Warn: true},
		wantFindings: []finding{
			{"warning", "Pod q", "a.yaml", "items[1].spec.containers[0].image", "Bad", "", `"Bad" is not a valid image reference: repository names must be lowercase`},
			{"info", "Pod ns/p", "a.yaml", "items[0].spec.containers[0].image", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
		},
		wantDocs: []string{"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p, namespace: ns}\n  spec: {containers: [{image: 'nginx:1.27@" + d["nginx:1.27"] + "'}]}\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: q}\n  spec: {containers: [{image: 'Bad'}]}\n"},
	}, {
		name:        "a kustomization.yaml without apiVersion and kind, told apart by its file name",
		docs:        []string{"images:\n- name: nginx\n  newTag: \"1.27\"\n", "images:\n- name: nginx\n  newTag: \"1.27\"\n"},
		files:       []string{"base/kustomization.yaml", "other.yaml"},
		wantOK:      true,
		wantSummary: pin.Summary{Pinned: 1, Distinct: 1, Requests: 2},
		wantFindings: []finding{
			{"info", " ", "base/kustomization.yaml", "images[0]", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
		},
		wantDocs: []string{"images:\n- name: nginx\n  newTag: \"1.27\"\n  digest: " + d["nginx:1.27"] + "\n", "images:\n- name: nginx\n  newTag: \"1.27\"\n"},
	}, {
		name:        "kustomize images: a tag gets a digest, a pinned entry is kept",
		docs:        []string{"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: web\n  newName: nginx\n  newTag: \"1.27\"\n- name: app\n  newName: ghcr.io/acme/app\n  digest: " + pinned + "\n"},
		wantOK:      true,
		wantSummary: pin.Summary{Pinned: 1, AlreadyPinned: 1, Distinct: 1, Requests: 2},
		wantFindings: []finding{
			{"info", "Kustomization ", "a.yaml", "images[0]", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
		},
		wantDocs: []string{"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: web\n  newName: nginx\n  newTag: \"1.27\"\n  digest: " + d["nginx:1.27"] + "\n- name: app\n  newName: ghcr.io/acme/app\n  digest: " + pinned + "\n"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := objects(t, tt.docs...)
			for i, f := range tt.files {
				objs[i].File = f
			}
			rep := newPinner(reg, tt.mutate).Run(context.Background(), objs)
			if rep.OK() != tt.wantOK {
				t.Errorf("OK() = %v, want %v", rep.OK(), tt.wantOK)
			}
			if diff := cmp.Diff(tt.wantSummary, rep.Summary); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFindings, simplify(rep.Findings)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			var got []string
			for _, o := range objs {
				got = append(got, encode(t, o))
			}
			if diff := cmp.Diff(tt.wantDocs, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFindingPosition checks that findings carry the line and column of the image value, which the
// command line prints as file:line:col.
func TestFindingPosition(t *testing.T) {
	reg, _ := serve(t)
	objs := objects(t, pod("a", "nginx:9"))
	rep := newPinner(reg, nil).Run(context.Background(), objs)
	if len(rep.Findings) != 1 {
		t.Fatalf("findings: %+v", rep.Findings)
	}
	if got, want := [2]int{rep.Findings[0].Line, rep.Findings[0].Column}, [2]int{9, 12}; got != want {
		t.Errorf("line, column = %v, want %v", got, want)
	}
}

// TestUnreachable: a registry that cannot be reached fails the run and changes nothing.
func TestUnreachable(t *testing.T) {
	objs := objects(t, pod("a", "127.0.0.1:1/app:1"))
	rep := pin.New(lookup(http.DefaultTransport, nil), pin.Options{}).Run(context.Background(), objs)
	if rep.OK() || rep.Summary.Failed != 1 {
		t.Fatalf("summary %+v, want one failure", rep.Summary)
	}
	if got := encode(t, objs[0]); got != pod("a", "127.0.0.1:1/app:1") {
		t.Errorf("object changed:\n%s", got)
	}
	if f := rep.Findings[0]; f.Severity != pin.Error || !strings.Contains(f.Message, "127.0.0.1:1") {
		t.Errorf("finding %+v does not name the registry", f)
	}
}

// TestFrozenLockUnreachable: with a complete lock and lock: frozen, a package whose registry
// cannot be reached pins every field from the lock, with no request.
func TestFrozenLockUnreachable(t *testing.T) {
	d := "sha256:" + strings.Repeat("b", 64)
	lock := "apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nimages:\n- image: 127.0.0.1:1/app:1\n  digest: " + d + "\n"
	objs := objects(t, pod("a", "127.0.0.1:1/app:1"), pod("b", "127.0.0.1:1/app:1"), lock)
	rep := pin.New(lookup(http.DefaultTransport, nil), pin.Options{Lock: pin.LockFrozen}).Run(context.Background(), objs)
	if diff := cmp.Diff(pin.Summary{Pinned: 2, FromLock: 2, Distinct: 1}, rep.Summary); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	for i, name := range []string{"a", "b"} {
		if got, want := encode(t, objs[i]), pod(name, "127.0.0.1:1/app:1@"+d); got != want {
			t.Errorf("object %s:\n%s\nwant:\n%s", name, got, want)
		}
	}
	if got := encode(t, objs[2]); got != lock {
		t.Errorf("lock: frozen changed the lock:\n%s", got)
	}
}

// TestLockErrors: a lock that cannot be read, or a second lock, fails the run and pins nothing.
func TestLockErrors(t *testing.T) {
	reg, _ := serve(t)
	head := "apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\n"
	good := head + "images:\n- image: nginx:1.27\n  digest: sha256:" + strings.Repeat("c", 64) + "\n"
	for _, tt := range []struct {
		name  string
		locks []string
		want  string
	}{
		{"not a list", []string{head + "images: nginx\n"}, "the DigestLock cannot be read: images is not a list"},
		{"no digest", []string{head + "images:\n- image: nginx:1.27\n"}, "the DigestLock cannot be read: images[0] needs an image and a digest"},
		{"bad digest", []string{head + "images:\n- image: nginx:1.27\n  digest: sha256:abc\n"}, `the DigestLock cannot be read: images[0] (nginx:1.27): "sha256:abc" is not a digest (sha256: and 64, or sha512: and 128, lowercase hex digits)`},
		{"pinned key", []string{head + "images:\n- image: nginx@sha256:" + strings.Repeat("c", 64) + "\n  digest: sha256:" + strings.Repeat("c", 64) + "\n"}, "carries a digest already"},
		{"two locks", []string{good, good}, "a second DigestLock: the package may hold one (the first is in b.yaml)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objs := objects(t, append([]string{pod("a", "nginx:1.27")}, tt.locks...)...)
			rep := newPinner(reg, nil).Run(context.Background(), objs)
			if rep.OK() || len(rep.Findings) == 0 || !strings.Contains(rep.Findings[0].Message, tt.want) {
				t.Fatalf("findings %+v, want a failure containing %q", simplify(rep.Findings), tt.want)
			}
			if got := encode(t, objs[0]); got != pod("a", "nginx:1.27") {
				t.Errorf("object pinned although the lock is bad:\n%s", got)
			}
		})
	}
}
