package pin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/pin"
	"github.com/digester/digester/walker"
)

// TestKptfileExemption: a local-config Kptfile is left alone but for its pipeline's function
// images, which kpt runs; any other local-config object, and a Kptfile of another group, is left
// alone whole. A short name is looked up and written under the prefix the options give, and the
// lock that lock: update writes names the function by that full reference.
func TestKptfileExemption(t *testing.T) {
	reg, _ := serve(t)
	d, err := reg.PushImages(types.OCIManifestSchema1, "r.example/fns/set-labels:v1")
	if err != nil {
		t.Fatal(err)
	}
	const local = "  annotations:\n    config.kubernetes.io/local-config: \"true\"\n"
	kptfile := "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: p\n" + local +
		"info:\n  image: nginx:1.27\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n" +
		"pipeline:\n  mutators:\n  - image: set-labels:v1\n  - exec: ./fn\n"
	other := "apiVersion: example.com/v1\nkind: Kptfile\nmetadata:\n  name: q\n" + local + "pipeline:\n  mutators:\n  - image: set-labels:v1\n"
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n" + local + "spec:\n  containers:\n  - name: c\n    image: nginx:1.27\n"
	objs := objects(t, kptfile, other, cm)
	rep := newPinner(reg, func(o *pin.Options) {
		o.KptImagePrefix, o.Lock = "r.example/fns/", pin.LockUpdate
	}).Run(context.Background(), objs)
	want := []finding{{"info", "Kptfile p", "a.yaml", "pipeline.mutators[0].image", "r.example/fns/set-labels:v1", "r.example/fns/set-labels:v1@" + d["r.example/fns/set-labels:v1"],
		"pinned r.example/fns/set-labels:v1 to " + d["r.example/fns/set-labels:v1"]},
		{Severity: "info", ID: "DigestLock digests", File: "digests.lock.yaml", Message: "created the lock with 1 reference"}}
	if diff := cmp.Diff(want, simplify(rep.Findings)); diff != "" || !rep.OK() {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if rep.Findings[0].Kind != walker.KptFunction {
		t.Errorf("finding's kind %v, want KptFunction", rep.Findings[0].Kind)
	}
	wantKptfile := strings.Replace(kptfile, "image: set-labels:v1\n", "image: r.example/fns/set-labels@"+d["r.example/fns/set-labels:v1"]+" # v1\n", 1)
	for i, want := range []string{wantKptfile, other, cm} {
		if diff := cmp.Diff(want, encode(t, objs[i])); diff != "" {
			t.Errorf("object %d (-want +got):\n%s", i, diff)
		}
	}
	if len(rep.Created) != 1 || !strings.Contains(encode(t, rep.Created[0]), "- image: r.example/fns/set-labels:v1\n  digest: "+d["r.example/fns/set-labels:v1"]) {
		t.Errorf("the new lock does not list the function by its full reference: %+v", rep.Created)
	}
}

// TestLenientKinds: a RELATED_IMAGE_ variable or a split image that holds no reference is a
// warning and fails nothing; the same text in an image field is an error.
func TestLenientKinds(t *testing.T) {
	reg, d := serve(t)
	objs := objects(t, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    image: nginx:1.27\n    env:\n    - {name: RELATED_IMAGE_X, value: 'Not A Ref'}\n",
		"apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: h\nspec:\n  values:\n    image: {repository: 'https://example.com/x', tag: '1', digest: ''}\n")
	rep := newPinner(reg, nil).Run(context.Background(), objs)
	want := []finding{
		{"warning", "Pod a", "a.yaml", "spec.containers[0].env[0].value", "Not A Ref", "", `left alone: "Not A Ref" is not a valid image reference`},
		{"warning", "HelmRelease h", "b.yaml", "spec.values.image", "https://example.com/x:1", "", `left alone: "https://example.com/x:1" is not a valid image reference`},
		{"info", "Pod a", "a.yaml", "spec.containers[0].image", "nginx:1.27", "nginx:1.27@" + d["nginx:1.27"], "pinned nginx:1.27 to " + d["nginx:1.27"]},
	}
	got := simplify(rep.Findings)
	for i := range got { // the resolver's reason after it is its own to word
		const why = "is not a valid image reference"
		if j := strings.Index(got[i].Message, why); j >= 0 {
			got[i].Message = got[i].Message[:j+len(why)]
		}
	}
	if diff := cmp.Diff(want, got); diff != "" || !rep.OK() {
		t.Errorf("ok %v, findings (-want +got):\n%s", rep.OK(), diff)
	}
}
