package container_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestKptfileFunctionPinned is issue 22's end-to-end case: a function image on a registry (the
// image under test, pushed to a registry on loopback, which Docker pulls from over plain HTTP),
// a Kptfile naming it by tag, `digester pin` pinning it as repo@sha256:… with the tag in a line
// comment, and `kpt fn render --allow-network` pulling it by that digest and running it (the
// function pins the package's Deployment). kpt 1.0.0-beta.56 refuses the repo:tag@sha256:… form
// in a Kptfile, which is why digester does not write it.
func TestKptfileFunctionPinned(t *testing.T) {
	needDocker(t)
	kpt := kptPath(t)
	lp, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := lp.IndexManifest() // the layout's index.json names mkimage's index
	if err != nil || len(m.Manifests) != 1 {
		t.Fatalf("the image layout's index.json: %v, %+v", err, m)
	}
	idx, err := lp.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	fnRepo := public.Host + "/kpt-fn/digester"
	ref, err := name.ParseReference(fnRepo + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithTransport(public.Transport())); err != nil {
		t.Fatal(err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	pinnedFn := fnRepo + "@" + d.String()
	t.Cleanup(func() { exec.Command("docker", "rmi", pinnedFn).Run() })
	if out, err := exec.Command("docker", "image", "inspect", pinnedFn).CombinedOutput(); err == nil {
		t.Fatalf("%s is in the Docker daemon before the test: %s", pinnedFn, out)
	}

	web, webDigest, cache, cacheDigest := publicImages(t)
	kptfileWith := func(image string) string {
		return kptfile("pipeline:\n  mutators:\n    - image: " + image + "\n      configMap: {mode: pin}\n")
	}
	dir := sharedTempDir(t)
	pkg := filepath.Join(dir, "shop")
	writeFiles(t, pkg, map[string]string{"Kptfile": kptfileWith(fnRepo + ":v1 # pins the package"), "app.yaml": deployment(web, cache)})

	// digester pins the function in the Kptfile, and only there: the Deployment is the function's.
	bin := filepath.Join(dir, "digester")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, _ := command{dir: dir}.run(t, bin, "pin", filepath.Join(pkg, "Kptfile"))
	if out.code != 0 {
		t.Fatalf("digester pin: exit %d\n%s%s", out.code, out.stdout, out.stderr)
	}
	pinnedKptfile := kptfileWith(pinnedFn + " # v1 pins the package")
	checkFiles(t, pkg, map[string]string{"Kptfile": pinnedKptfile, "app.yaml": deployment(web, cache)})

	// kpt pulls the function by its digest and runs it.
	out, runs := command{dir: dir}.run(t, kpt, "fn", "render", pkg, "--allow-network")
	if out.code != 0 {
		t.Fatalf("kpt fn render: exit %d\n%s", out.code, out.stderr)
	}
	if len(runs) != 1 || !strings.HasSuffix(runs[0], " "+pinnedFn) {
		t.Errorf("docker run calls %q, want one of %s", runs, pinnedFn)
	}
	if out, err := exec.Command("docker", "image", "inspect", "--format", "{{.RepoDigests}}", pinnedFn).CombinedOutput(); err != nil {
		t.Errorf("%s was not pulled: %v\n%s", pinnedFn, err, out)
	}
	checkFiles(t, pkg, map[string]string{"Kptfile": pinnedKptfile, "app.yaml": deployment(web+"@"+webDigest, cache+"@"+cacheDigest)})

	// The form digester does not write: kpt refuses it.
	refused := fnRepo + ":v1@" + d.String()
	if err := os.WriteFile(filepath.Join(pkg, "Kptfile"), []byte(kptfileWith(refused)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, runs = command{dir: dir}.run(t, kpt, "fn", "render", pkg, "--allow-network")
	if out.code == 0 || !strings.Contains(out.stderr, `function name "`+refused+`" is invalid`) || len(runs) != 0 {
		t.Errorf("kpt fn render of %s: exit %d, docker runs %q, stderr:\n%s\nwant a failure naming the function invalid, and no run", refused, out.code, runs, out.stderr)
	}
}
