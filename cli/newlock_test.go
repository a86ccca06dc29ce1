package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/internal/testfiles"
)

// TestNewLockOnStdout: pin --lock update with no directory given writes the new DigestLock after
// the documents of stdin, as one more document; with neither a directory nor "-" it has nowhere
// to go, and the run fails with no file written. When a file cannot be written, stdin comes back
// unchanged.
func TestNewLockOnStdout(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27")
	pinned := strings.Replace(nginxPod, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1)
	const created = "digests.lock.yaml: info: created the lock with "
	const pinnedOne = "digester: pinned 1 image field (1 distinct reference, 2 registry requests); 0 already pinned, 0 skipped by prefix\n"

	t.Run("stdin", func(t *testing.T) {
		got := runCLI(t, reg, nginxPod, "pin", "--lock=update", "-")
		want := result{0, pinned + "---\n" + lockYAML("nginx:1.27", d["nginx:1.27"]),
			"<stdin>:6:12: info: pinned nginx:1.27 to " + d["nginx:1.27"] + "\n" + created + "1 reference\n" + pinnedOne}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("stdin with nothing to pin", func(t *testing.T) {
		in := "kind: ConfigMap\nmetadata: {name: settings}\n"
		got := runCLI(t, reg, in, "pin", "--lock=update", "-")
		lock := strings.Replace(lockYAML("x", "y"), "images:\n- image: x\n  digest: y\n", "images: []\n", 1)
		want := result{0, in + "---\n" + lock,
			created + "0 references\ndigester: pinned 0 image fields (0 distinct references, 0 registry requests); 0 already pinned, 0 skipped by prefix\n"}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("a file and stdin", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, map[string]string{"a.yaml": nginxPod})
		a := filepath.Join(dir, "a.yaml")
		got := runCLI(t, reg, "kind: ConfigMap\nmetadata: {name: settings}\n", "pin", "--lock=update", a, "-")
		if got.code != 0 || got.stdout != "kind: ConfigMap\nmetadata: {name: settings}\n"+"---\n"+lockYAML("nginx:1.27", d["nginx:1.27"]) {
			t.Errorf("exit %d, stdout:\n%s\nwant 0, stdin as it was and the new lock; stderr:\n%s", got.code, got.stdout, got.stderr)
		}
		if diff := cmp.Diff(map[string]string{"a.yaml": pinned}, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})

	t.Run("a file alone", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, map[string]string{"a.yaml": nginxPod})
		got := runCLI(t, reg, "", "pin", "--lock=update", filepath.Join(dir, "a.yaml"))
		want := result{1, "error: cannot write the new DigestLock digests.lock.yaml: name a directory (the package) or -\n",
			"digester: pinned nothing: no file was written, for the error above (1 distinct reference, 2 registry requests)\n"}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"a.yaml": nginxPod}, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})

	t.Run("a file that cannot be written, and stdin", func(t *testing.T) {
		dir := t.TempDir()
		block := strings.Replace(nginxPod, "image: nginx:1.27", "image: >-\n      nginx:1.27", 1)
		testfiles.Write(t, dir, map[string]string{"a.yaml": block})
		got := runCLI(t, reg, nginxPod, "pin", "-", filepath.Join(dir, "a.yaml")) // stdin rendered first
		if got.code != 1 || got.stdout != nginxPod || !strings.Contains(got.stderr, "digester: pinned nothing: no file was written") {
			t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant 1, stdin unchanged, and pinned nothing", got.code, got.stdout, got.stderr)
		}
		if diff := cmp.Diff(map[string]string{"a.yaml": block}, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})
}
