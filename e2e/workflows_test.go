package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// lockPackage is a package of two unpinned images, as a pipeline renders it from its sources.
func (s space) lockPackage(t *testing.T, dir string) (pkg string, files map[string]string, digests map[string]string) {
	t.Helper()
	digests = s.push(t, map[string]types.MediaType{"app/web:1.0": types.DockerManifestSchema2, "app/api:2.1": types.OCIImageIndex})
	files = map[string]string{
		"Kptfile": "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: app\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\n",
		"deploy.yaml": strings.ReplaceAll(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        image: HOST/app/web:1.0 # the app
      - name: api
        image: HOST/app/api:2.1
`, "HOST", reg.Host+"/"+s.ns),
	}
	pkg = filepath.Join(dir, "pkg")
	writeFiles(t, pkg, files)
	return pkg, files, digests
}

// untrusting is an environment that trusts no certificate authority: any registry request fails,
// so a run that succeeds in it sent none.
func untrusting(t *testing.T, dir string) env {
	t.Helper()
	writeFiles(t, dir, map[string]string{"empty.pem": ""})
	return env{caFile: filepath.Join(dir, "empty.pem")}
}

// lockFile is the DigestLock digester writes for images (repo:tag as the package names it → digest).
func lockFile(entries ...string) string {
	var b strings.Builder
	b.WriteString(`# Image digests pinned by digester: each reference as written in the package, and its digest.
# digester reads this file to pin without asking registries; do not edit by hand.
apiVersion: fn.kpt.dev/v1alpha1
kind: DigestLock
metadata:
  name: digests
  annotations:
    config.kubernetes.io/local-config: "true"
images:
`)
	for i := 0; i+1 < len(entries); i += 2 {
		b.WriteString("- image: " + entries[i] + "\n  digest: " + entries[i+1] + "\n")
	}
	return b.String()
}

// TestKptLockWorkflow walks the lock through real kpt fn eval as a team would: create it while
// pinning, re-pin a freshly rendered (unpinned) package from it with no registry reachable, refresh
// it after a tag is pushed anew, and gate a pull request with check mode.
func TestKptLockWorkflow(t *testing.T) {
	kpt := tool(t, "kpt")
	dir := t.TempDir()
	s := newSpace(t)
	pkg, source, digests := s.lockPackage(t, dir)
	web, api := s.image("app/web:1.0"), s.image("app/api:2.1")
	pinned := func(webDigest string) string {
		return strings.NewReplacer(web+" ", web+"@"+webDigest+" ", api+"\n", api+"@"+digests["app/api:2.1"]+"\n").Replace(source["deploy.yaml"])
	}

	// 1. Pin and create the lock.
	out := run(t, env{}, nil, dir, kpt, "fn", "eval", "pkg", "--exec", digester, "--", "lock=update")
	if out.code != 0 {
		t.Fatalf("kpt fn eval lock=update exited %d:\n%s", out.code, out.stderr)
	}
	lock := lockFile(api, digests["app/api:2.1"], web, digests["app/web:1.0"])
	checkFiles(t, pkg, map[string]string{"Kptfile": source["Kptfile"], "deploy.yaml": pinned(digests["app/web:1.0"]), "digests.lock.yaml": lock})

	// 2. The sources are rendered again, unpinned; with lock: frozen digester pins them from the
	// lock alone. SSL_CERT_FILE trusts nothing, so any registry request would fail the run.
	writeFiles(t, pkg, map[string]string{"deploy.yaml": source["deploy.yaml"]})
	offline := untrusting(t, dir)
	out = run(t, offline, nil, dir, kpt, "fn", "eval", "pkg", "--exec", digester, "--results-dir", "results", "--", "lock=frozen")
	if out.code != 0 {
		t.Fatalf("kpt fn eval lock=frozen exited %d:\n%s", out.code, out.stderr)
	}
	checkFiles(t, pkg, map[string]string{"Kptfile": source["Kptfile"], "deploy.yaml": pinned(digests["app/web:1.0"]), "digests.lock.yaml": lock})
	if _, results := readResults(t, filepath.Join(dir, "results")); results[0].Message != "pinned 2 image fields (2 distinct references, N registry requests); 0 already pinned, 0 skipped by prefix; 2 pinned from the lock" {
		t.Errorf("summary = %q", results[0].Message)
	}

	// 3. A pull-request check passes on the pinned package without a request, and fails on an
	// unpinned one, naming file and field.
	out = run(t, offline, nil, dir, kpt, "fn", "eval", "pkg", "--exec", digester, "--", "mode=check")
	if out.code != 0 {
		t.Fatalf("check on the pinned package exited %d:\n%s", out.code, out.stderr)
	}
	writeFiles(t, pkg, map[string]string{"deploy.yaml": strings.Replace(pinned(digests["app/web:1.0"]), "@"+digests["app/api:2.1"], "", 1)})
	out = run(t, offline, nil, dir, kpt, "fn", "eval", "pkg", "--exec", digester, "--results-dir", "results", "--", "mode=check")
	if out.code == 0 {
		t.Fatalf("check on an unpinned image passed:\n%s", out.stderr)
	}
	code, results := readResults(t, filepath.Join(dir, "results"))
	want := result{Severity: "error", Message: "not pinned: " + api + " has no digest (digester would pin it)", Kind: "Deployment", Name: "web",
		File: "deploy.yaml", Path: "spec.template.spec.containers[1].image", Current: api}
	wantSummary := "check failed: pinning would make 1 change (0 distinct references, N registry requests); 1 already pinned, 0 skipped by prefix"
	if diff := cmp.Diff([]result{{Severity: "info", Message: wantSummary}, want}, results); code != 1 || diff != "" {
		t.Errorf("check: exit code %d (want 1), results (-want +got):\n%s", code, diff)
	}
	writeFiles(t, pkg, map[string]string{"deploy.yaml": pinned(digests["app/web:1.0"])})

	// 4. web:1.0 is pushed anew. A scheduled refresh moves exactly that pin and its lock entry.
	moved := s.push(t, map[string]types.MediaType{"app/web:1.0": types.OCIManifestSchema1})["app/web:1.0"]
	if moved == digests["app/web:1.0"] {
		t.Fatal("the new push has the old digest")
	}
	out = run(t, env{}, nil, dir, kpt, "fn", "eval", "pkg", "--exec", digester, "--", "pinned=verify")
	if out.code == 0 || !strings.Contains(out.stderr, "stale pin: "+web+" is pinned to "+digests["app/web:1.0"]+", not to "+moved+", which the tag points to now") {
		t.Errorf("verify after the push: exit %d, want 1 and a stale pin naming both digests:\n%s", out.code, out.stderr)
	}
	out = run(t, env{}, nil, dir, kpt, "fn", "eval", "pkg", "--exec", digester, "--", "pinned=refresh")
	if out.code != 0 {
		t.Fatalf("refresh exited %d:\n%s", out.code, out.stderr)
	}
	checkFiles(t, pkg, map[string]string{"Kptfile": source["Kptfile"], "deploy.yaml": pinned(moved),
		"digests.lock.yaml": lockFile(api, digests["app/api:2.1"], web, moved)})
}

// TestKptRenderLock: a Kptfile pipeline with lock: update writes the lock through kpt fn render.
func TestKptRenderLock(t *testing.T) {
	kpt := tool(t, "kpt")
	dir := t.TempDir()
	s := newSpace(t)
	pkg, source, digests := s.lockPackage(t, dir)
	kptfile := source["Kptfile"] + "pipeline:\n  mutators:\n  - exec: " + digester + "\n    configMap:\n      lock: update\n"
	writeFiles(t, pkg, map[string]string{"Kptfile": kptfile})
	out := run(t, env{}, nil, dir, kpt, "fn", "render", "pkg", "--allow-exec")
	if out.code != 0 {
		t.Fatalf("kpt fn render exited %d:\n%s", out.code, out.stderr)
	}
	got, err := os.ReadFile(filepath.Join(pkg, "digests.lock.yaml"))
	if err != nil {
		t.Fatalf("kpt fn render wrote no lock: %v", err)
	}
	if want := lockFile(s.image("app/api:2.1"), digests["app/api:2.1"], s.image("app/web:1.0"), digests["app/web:1.0"]); string(got) != want {
		t.Errorf("lock:\n%s\nwant:\n%s", got, want)
	}
}

// TestKustomizeLock: listed under resources:, the lock pins a kustomize build with lock: frozen
// and no registry reachable, and does not leak into the build output.
func TestKustomizeLock(t *testing.T) {
	kustomize := tool(t, "kustomize")
	dir := t.TempDir()
	s := newSpace(t)
	pkg, _, digests := s.lockPackage(t, dir)
	web, api := s.image("app/web:1.0"), s.image("app/api:2.1")
	writeFiles(t, pkg, map[string]string{
		"digests.lock.yaml":  lockFile(api, digests["app/api:2.1"], web, digests["app/web:1.0"]),
		"kustomization.yaml": "resources:\n- deploy.yaml\n- digests.lock.yaml\ntransformers:\n- digester.yaml\n",
		"digester.yaml": "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nmetadata:\n  name: pin\n  annotations:\n    config.kubernetes.io/function: |\n      exec:\n        path: " +
			digester + "\nlock: frozen\n",
	})
	out := run(t, untrusting(t, dir), nil, pkg, kustomize, "build", "--enable-alpha-plugins", "--enable-exec", ".")
	if out.code != 0 {
		t.Fatalf("kustomize build exited %d:\n%s", out.code, out.stderr)
	}
	want := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - image: ` + web + "@" + digests["app/web:1.0"] + `
        name: web
      - image: ` + api + "@" + digests["app/api:2.1"] + `
        name: api
`
	if out.stdout != want {
		t.Errorf("kustomize build:\n%s\nwant:\n%s", out.stdout, want)
	}
}
