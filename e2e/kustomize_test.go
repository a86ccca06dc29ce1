package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// kustomization builds the shop's Deployment and CronJob, pinned by digester as an exec
// transformer. The exec path is relative to the kustomization's directory.
var kustomization = map[string]string{
	"app/kustomization.yaml": `resources:
- deploy.yaml
- report.yaml
transformers:
- pin-images.yaml
`,
	"app/pin-images.yaml": `apiVersion: fn.kpt.dev/v1alpha1
kind: Digester
metadata:
  name: pin-images
  annotations:
    config.kubernetes.io/function: |
      exec:
        path: ../bin/digester
skipPrefixes:
- vendor.example/
`,
}

// kustomizeApp writes the shop as a kustomization under dir/app, with the binary at
// dir/bin/digester, and returns the digests of its images.
func (s space) kustomizeApp(t *testing.T, dir string) map[string]string {
	t.Helper()
	pkg, _, digests := s.shopPackage(t, t.TempDir())
	files := map[string]string{}
	for name, content := range kustomization {
		files[name] = content
	}
	for to, from := range map[string]string{"app/deploy.yaml": "deploy.yaml", "app/report.yaml": "jobs/report.yaml"} {
		b, err := os.ReadFile(filepath.Join(pkg, from))
		if err != nil {
			t.Fatal(err)
		}
		files[to] = string(b)
	}
	writeFiles(t, dir, files)
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(digester, filepath.Join(dir, "bin", "digester")); err != nil {
		t.Fatal(err)
	}
	return digests
}

// builtApp is what kustomize build prints for the app once pinned: kustomize orders resources
// and fields its own way and drops comments.
const builtApp = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  ports:
  - port: 80
    targetPort: 8080
  selector:
    app: web
---
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    shop.example/previous: HOST/shop/web:0.9
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - image: HOST/shop/web:1.0{pin}
        name: web
        ports:
        - containerPort: 8080
      - image: HOST/library/redis:7.4{pin}
        name: cache
      - image: vendor.example/agent:0.1
        name: agent
      initContainers:
      - image: HOST/shop/api:2.1{pin}
        name: migrate
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: shop
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - image: HOST/library/nginx:1.27{pin}
            name: report
          - image: HOST/shop/web:1.0{pin}
            name: export
          restartPolicy: OnFailure
  schedule: 0 3 * * *
`

// TestKustomizeBuild runs digester as an exec transformer of kustomize build.
func TestKustomizeBuild(t *testing.T) {
	t.Parallel()
	kustomize := tool(t, "kustomize")
	dir := t.TempDir()
	s := newSpace(t)
	digests := s.kustomizeApp(t, dir)
	before := readFiles(t, dir)

	out := run(t, env{}, nil, dir, kustomize, "build", "--enable-alpha-plugins", "--enable-exec", "app")
	if out.code != 0 {
		t.Fatalf("kustomize build exited %d:\n%s", out.code, out.stderr)
	}
	_, want := s.fixture(t, builtApp, digests)
	if diff := cmp.Diff(want, out.stdout); diff != "" {
		t.Errorf("kustomize build output (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, readFiles(t, dir)); diff != "" {
		t.Errorf("kustomize build changed files (-before +after):\n%s", diff)
	}
}

// TestKustomizeBuildFailingLookup: a missing tag fails the build with digester's error, and
// nothing is printed as if it were the build's output.
func TestKustomizeBuildFailingLookup(t *testing.T) {
	t.Parallel()
	kustomize := tool(t, "kustomize")
	dir := t.TempDir()
	s := newSpace(t)
	s.kustomizeApp(t, dir)
	missing := s.image("shop/web:1.1")
	writeFiles(t, dir, map[string]string{
		"app/kustomization.yaml": strings.Replace(kustomization["app/kustomization.yaml"], "- report.yaml\n", "- report.yaml\n- typo.yaml\n", 1),
		"app/typo.yaml":          "apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\nspec:\n  containers:\n  - name: web\n    image: " + missing + "\n",
	})
	before := readFiles(t, dir)

	out := run(t, env{}, nil, dir, kustomize, "build", "--enable-alpha-plugins", "--enable-exec", "app")
	if out.code == 0 {
		t.Fatalf("kustomize build succeeded on a missing tag:\n%s", out.stdout)
	}
	t.Logf("kustomize build prints:\n%s", out.stderr)
	msg := "cannot pin " + missing + `: tag not found: "1.1" in repository ` + s.ns + "/shop/web on registry " + reg.Host
	if !strings.Contains(out.stderr, msg) {
		t.Errorf("kustomize's output does not show %q:\n%s", msg, out.stderr)
	}
	if out.stdout != "" {
		t.Errorf("kustomize build printed output although it failed:\n%s", out.stdout)
	}
	if diff := cmp.Diff(before, readFiles(t, dir)); diff != "" {
		t.Errorf("files changed (-before +after):\n%s", diff)
	}
}

// TestKustomizeFnRun pins a directory in place with kustomize fn run --exec-path.
func TestKustomizeFnRun(t *testing.T) {
	t.Parallel()
	kustomize := tool(t, "kustomize")
	dir := t.TempDir()
	pkg, want, _ := newSpace(t).shopPackage(t, dir)
	out := run(t, env{}, nil, dir, kustomize, "fn", "run", pkg, "--enable-exec", "--exec-path", digester, "--", "skip-prefixes=vendor.example/")
	if out.code != 0 {
		t.Fatalf("kustomize fn run exited %d:\n%s%s", out.code, out.stdout, out.stderr)
	}
	checkFiles(t, pkg, want)
}

// TestKustomizeImagesDigest: digester gives the images: entries of an overlay's
// kustomization.yaml (here without apiVersion and kind, as most are written) a digest: from the
// registry, through kpt fn source and sink, and kustomize build then emits name:tag@digest for
// each image of the base.
func TestKustomizeImagesDigest(t *testing.T) {
	t.Parallel()
	kustomize, kpt := tool(t, "kustomize"), tool(t, "kpt")
	s := newSpace(t)
	digests := s.push(t, map[string]types.MediaType{"shop/web:1.0": types.OCIImageIndex, "shop/worker:2.1": types.DockerManifestSchema2})
	const pinned = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	kz := func(web, worker string) string {
		return "resources:\n- ../base\nimages:\n- name: web # the storefront\n  newName: HOST/shop/web\n  newTag: \"1.0\"\n" + web +
			"- name: worker\n  newName: HOST/shop/worker:2.1\n" + worker +
			"- name: pinned\n  newName: HOST/shop/other\n  digest: " + pinned + "\n"
	}
	host := reg.Host + "/" + s.ns
	in := strings.ReplaceAll(kz("", ""), "HOST", host)
	want := strings.ReplaceAll(kz("  digest: "+digests["shop/web:1.0"]+"\n", "  digest: "+digests["shop/worker:2.1"]+"\n"), "HOST", host)
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  template:\n    spec:\n      containers:\n" +
		"      - {name: web, image: web}\n      - {name: worker, image: worker:1.0}\n      - {name: other, image: pinned:3}\n"
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"app/kustomization.yaml": in, "base/kustomization.yaml": "resources: [deploy.yaml]\n", "base/deploy.yaml": deploy})

	src := run(t, env{}, nil, dir, kpt, "fn", "source", "app")
	if src.code != 0 {
		t.Fatalf("kpt fn source exited %d:\n%s", src.code, src.stderr)
	}
	out := run(t, env{}, []byte(src.stdout), dir, digester)
	if out.code != 0 {
		t.Fatalf("digester exited %d:\n%s", out.code, out.stderr)
	}
	if sink := run(t, env{}, []byte(out.stdout), dir, kpt, "fn", "sink", "pinned"); sink.code != 0 {
		t.Fatalf("kpt fn sink exited %d:\n%s", sink.code, sink.stderr)
	}
	checkFiles(t, filepath.Join(dir, "pinned"), map[string]string{"kustomization.yaml": want})

	built := run(t, env{}, nil, dir, kustomize, "build", "pinned")
	if built.code != 0 {
		t.Fatalf("kustomize build exited %d:\n%s", built.code, built.stderr)
	}
	var images []string
	for _, l := range strings.Split(built.stdout, "\n") {
		if _, img, ok := strings.Cut(l, "image: "); ok {
			images = append(images, img)
		}
	}
	wantImages := []string{host + "/shop/web:1.0@" + digests["shop/web:1.0"], host + "/shop/worker:2.1@" + digests["shop/worker:2.1"], host + "/shop/other@" + pinned}
	if diff := cmp.Diff(wantImages, images); diff != "" {
		t.Errorf("kustomize build images (-want +got):\n%s", diff)
	}
}
