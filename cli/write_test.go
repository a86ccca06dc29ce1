package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testfiles"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
)

const (
	nginxPod = "kind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: web\n    image: nginx:1.27\n"
	redisPod = "kind: Pod\nmetadata: {name: cache}\nspec:\n  containers:\n  - name: cache\n    image: redis:7.4 # cache\n"
)

// TestLockOnlyOverALock: a new DigestLock is never written over a file that holds something
// else (issue 23, item 1): the run fails naming the file and what it holds, and writes nothing.
func TestLockOnlyOverALock(t *testing.T) {
	reg, _ := testRegistry(t, "nginx:1.27")
	for _, tt := range []struct {
		name  string
		files map[string]string
		args  []string
		file  string // the one the lock would have overwritten
		holds string
		here  bool // run in dir, on the PATH "."
	}{
		{
			name: "a ConfigMap in digests.lock.yaml",
			files: map[string]string{
				"app.yaml":          nginxPod,
				"digests.lock.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
			},
			args: []string{"--lock", "update"}, file: "digests.lock.yaml", holds: "holds ConfigMap settings",
		},
		{
			name:  "--lock-file naming a Deployment's file",
			files: map[string]string{"dep1.yaml": strings.Replace(nginxPod, "kind: Pod", "kind: Deployment", 1)},
			args:  []string{"--lock", "update", "--lock-file", "dep1.yaml"}, file: "dep1.yaml", holds: "holds Deployment web",
		},
		{
			name:  "a file digester does not read",
			files: map[string]string{"app.yaml": nginxPod, "locks/images.yaml": "notes\n", ".krmignore": "locks/\n"},
			args:  []string{"--lock", "update", "--lock-file", "locks/images.yaml"}, file: "locks/images.yaml", holds: "is not among the files digester read",
		},
		{
			// the file's name is relative, its real path absolute: it was said not to be read
			name: "a ConfigMap in digests.lock.yaml, the PATH relative",
			files: map[string]string{
				"app.yaml":          nginxPod,
				"digests.lock.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
			},
			args: []string{"--lock", "update"}, file: "digests.lock.yaml", holds: "holds ConfigMap settings", here: true,
		},
		{
			name:  "an emptied file: an empty document and a comment",
			files: map[string]string{"app.yaml": nginxPod, "digests.lock.yaml": "---\n# emptied\n--- ~\n"},
			args:  []string{"--lock", "update"}, file: "digests.lock.yaml", holds: "holds no resource",
		},
		{
			name:  "documents that name no resource", // was "exists and holds , so …"
			files: map[string]string{"app.yaml": nginxPod, "digests.lock.yaml": "--- just text\n---\nnotes: [a, b]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: prod}\n"},
			args:  []string{"--lock", "update"}, file: "digests.lock.yaml",
			holds: "holds a document that names no resource, a document that names no resource, ConfigMap prod/settings",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, tt.files)
			path, file := dir, filepath.Join(dir, tt.file)
			if tt.here {
				t.Chdir(dir)
				path, file = ".", tt.file
			}
			got := runCLI(t, reg, "", append(append([]string{"pin"}, tt.args...), path)...)
			want := result{
				code: 1,
				stdout: file + ": error: exists and " + tt.holds + ", so the new DigestLock is not written over it: " +
					"digester writes a lock only over a DigestLock or as a new file; name another file with --lock-file, or move this one\n",
				stderr: "digester: pinned nothing: no file was written, for the error above (1 distinct reference, 2 registry requests)\n",
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.files, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files changed (-want +got):\n%s", diff)
			}
		})
	}
}

// onFirstManifest returns a registry middleware that runs act once, when the first manifest
// request arrives after arm is set: a user's edit made while digester waits for the registry.
func onFirstManifest(arm *atomic.Bool, act func()) registrytest.Option {
	var once sync.Once
	return registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if arm.Load() && strings.Contains(r.URL.Path, "/manifests/") {
				once.Do(act)
			}
			next.ServeHTTP(w, r)
		})
	})
}

// TestEditsDuringRunAreKept: a file that changed between digester's read and its write is not
// overwritten, and no other file is written either (issue 23, item 2).
func TestEditsDuringRunAreKept(t *testing.T) {
	files := map[string]string{"a.yaml": nginxPod, "b.yaml": redisPod}
	for _, tt := range []struct {
		name string
		act  func(dir string) error
		what string // the error, after the file's name
		args []string
		file string
		want map[string]string // the files afterwards: as the user left them
	}{
		{
			name: "text appended", what: "changed since digester read it, so it was not overwritten: run digester again", file: "a.yaml",
			act: func(dir string) error {
				f, err := os.OpenFile(filepath.Join(dir, "a.yaml"), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = f.WriteString("# added during the run\n")
				return err
			},
			want: map[string]string{"a.yaml": nginxPod + "# added during the run\n", "b.yaml": redisPod},
		},
		{
			name: "same size, same time, other bytes", what: "changed since digester read it, so it was not overwritten: run digester again", file: "a.yaml",
			act: func(dir string) error {
				p := filepath.Join(dir, "a.yaml")
				fi, err := os.Stat(p)
				if err != nil {
					return err
				}
				if err := os.WriteFile(p, []byte(strings.Replace(nginxPod, "web", "WEB", 1)), 0o644); err != nil {
					return err
				}
				return os.Chtimes(p, fi.ModTime(), fi.ModTime())
			},
			want: map[string]string{"a.yaml": strings.Replace(nginxPod, "web", "WEB", 1), "b.yaml": redisPod},
		},
		{
			name: "deleted", what: "was deleted or moved away since digester read it, so it was not overwritten: run digester again", file: "a.yaml",
			act:  func(dir string) error { return os.Remove(filepath.Join(dir, "a.yaml")) },
			want: map[string]string{"b.yaml": redisPod},
		},
		{
			name: "renamed", what: "was deleted or moved away since digester read it, so it was not overwritten: run digester again", file: "b.yaml",
			act:  func(dir string) error { return os.Rename(filepath.Join(dir, "b.yaml"), filepath.Join(dir, "c.yaml")) },
			want: map[string]string{"a.yaml": nginxPod, "c.yaml": redisPod},
		},
		{
			name: "the new lock's name taken", file: "digests.lock.yaml", args: []string{"--lock", "update"},
			what: "exists and is not among the files digester read, so the new DigestLock is not written over it: digester writes a lock only over a DigestLock or as a new file; name another file with --lock-file, or move this one",
			act: func(dir string) error {
				return os.WriteFile(filepath.Join(dir, "digests.lock.yaml"), []byte("# mine\n"), 0o644)
			},
			want: map[string]string{"a.yaml": nginxPod, "b.yaml": redisPod, "digests.lock.yaml": "# mine\n"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, files)
			var arm atomic.Bool
			var actErr error
			reg, _ := testRegistryWith(t, []registrytest.Option{onFirstManifest(&arm, func() { actErr = tt.act(dir) })}, "nginx:1.27", "redis:7.4")
			arm.Store(true)
			got := runCLI(t, reg, "", append(append([]string{"pin"}, tt.args...), dir)...)
			if actErr != nil {
				t.Fatal(actErr)
			}
			want := result{
				code:   1,
				stdout: filepath.Join(dir, tt.file) + ": error: " + tt.what + "\n",
				stderr: "digester: pinned nothing: no file was written, for the error above (2 distinct references, 3 registry requests)\n",
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAliasedContainers: a container reached through an alias or a merge key is pinned once, at
// its anchor, and nothing else changes (issue 23, item 3: the command line panicked).
func TestAliasedContainers(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27")
	for name, in := range map[string]string{
		"merge key":                            "kind: Pod\nmetadata: {name: a}\nspec:\n  containers: [&base {name: a, image: nginx:1.27}, {<<: *base, name: b}]\n",
		"alias in a sequence":                  "kind: Pod\nmetadata: {name: a}\nspec:\n  containers: [&base {name: a, image: nginx:1.27}]\n  initContainers: [*base]\n",
		"anchored image used by another image": "kind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: a\n    image: &img nginx:1.27\n  - name: b\n    image: *img\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, map[string]string{"pod.yaml": in})
			got := runCLI(t, reg, "", "pin", dir)
			if got.code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr)
			}
			want := strings.Replace(in, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1)
			if diff := cmp.Diff(map[string]string{"pod.yaml": want}, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			if again := runCLI(t, reg, "", "check", dir); again.code != 0 {
				t.Errorf("check after pin: exit %d\n%s%s", again.code, again.stdout, again.stderr)
			}
		})
	}
}

// TestOverlappingEdits: two findings on one value are one edit when they agree, and an error
// naming both when they do not; neither panics.
func TestOverlappingEdits(t *testing.T) {
	f := &file{name: "pod.yaml", data: []byte("kind: Pod\nspec:\n  containers: [{image: nginx:1.27}]\n")}
	if err := f.parse(); err != nil {
		t.Fatal(err)
	}
	fd := func(path, pinned string) pin.Finding {
		return pin.Finding{Object: f.objs[0], ID: pin.ID{Kind: "Pod", Name: "a"}, Path: path, Line: 3, Column: 24, Image: "nginx:1.27", Pinned: pinned}
	}
	a, b := "nginx:1.27@sha256:"+strings.Repeat("a", 64), "nginx:1.27@sha256:"+strings.Repeat("b", 64)

	in := &input{file: f}
	if err := in.render([]pin.Finding{fd("spec.containers[0].image", a), fd("spec.initContainers[0].image", a)}, nil); err != nil {
		t.Fatal(err)
	}
	if want := "kind: Pod\nspec:\n  containers: [{image: " + a + "}]\n"; string(in.pinned) != want {
		t.Errorf("got %q, want %q", in.pinned, want)
	}

	err := in.render([]pin.Finding{fd("spec.containers[0].image", a), fd("spec.initContainers[0].image", b)}, nil)
	want := "pod.yaml:3:24: Pod a spec.initContainers[0].image: its value is also that of Pod a spec.containers[0].image (line 3), and the two would be pinned differently (" + b + ", " + a + "); write each in its own place"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
}

// TestPanicIsAnError: a panic anywhere in a run is exit 1 and a message saying where, not a
// crash with exit 2 (issue 23, item 3); no file is written. The panic is a resolver option's,
// which resolver.New runs on the run's own goroutine.
func TestPanicIsAnError(t *testing.T) {
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{"a.yaml": nginxPod})
	var stdout, stderr strings.Builder
	code := Main(context.Background(), []string{"pin", dir}, Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Resolver: []resolver.Option{func(*resolver.Resolver) { panic("resolver bug") }},
	})
	want := "digester: internal error (a bug in digester: please report it, with the input): resolver bug, at cli.TestPanicIsAnError.func1 (write_test.go:"
	if code != ExitFail || !strings.HasPrefix(stderr.String(), want) || stdout.String() != "" {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, %q…", code, stdout.String(), stderr.String(), want)
	}
	if diff := cmp.Diff(map[string]string{"a.yaml": nginxPod}, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files changed (-want +got):\n%s", diff)
	}
}

// immutable makes the file at p immutable (chattr +i) until the test ends: not even root may
// rename over it, link to it or write it, which makes a commit fail part way. It needs root.
func immutable(t *testing.T, p string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chattr +i needs root; internal/filetx's TestCommitRollsBack covers the rollback with a failing rename")
	}
	if out, err := exec.Command("chattr", "+i", p).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v: %s (the file system does not support it)", p, err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", p).Run() })
}

// TestWriteFailsPartWay: when a file cannot be replaced after others were, those are put back,
// and every output says the run failed: no "pinned", exit 1 (issue 23, item 8).
func TestWriteFailsPartWay(t *testing.T) {
	reg, _ := testRegistry(t, "nginx:1.27", "redis:7.4")
	files := map[string]string{"a.yaml": nginxPod, "b.yaml": redisPod, "c.yaml": strings.Replace(nginxPod, "web", "c", -1)}
	for _, output := range []string{"text", "json", "github"} {
		t.Run(output, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, files)
			immutable(t, filepath.Join(dir, "b.yaml"))
			got := runCLI(t, reg, "", "pin", "--output", output, dir)
			b := filepath.Join(dir, "b.yaml")
			msg := "cannot replace it: operation not permitted; the file written before it was put back"
			summary := "pinned nothing: no file was written, for the error above (2 distinct references, 3 registry requests)"
			want := result{code: 1, stderr: "digester: " + summary + "\n"}
			switch output {
			case "text":
				want.stdout = b + ": error: " + msg + "\n"
			case "github":
				want.stdout = "::error file=" + escapeProperty(b) + ",title=digester::" + msg + "\n"
			case "json":
				want.stdout = `{
  "ok": false,
  "summary": {
    "message": "` + summary + `",
    "pinned": 0,
    "fromLock": 0,
    "alreadyPinned": 0,
    "skipped": 0,
    "templated": 0,
    "verified": 0,
    "refreshed": 0,
    "failed": 1,
    "unpinned": 0,
    "stale": 0,
    "distinctReferences": 2,
    "registryRequests": 3,
    "onErrorWarn": false,
    "check": false
  },
  "findings": [
    {
      "severity": "error",
      "message": "` + msg + `",
      "file": "` + b + `"
    }
  ]
}
`
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(files, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("on-error warn", func(t *testing.T) { // a run told to warn still fails when it writes nothing
		dir := t.TempDir()
		testfiles.Write(t, dir, files)
		immutable(t, filepath.Join(dir, "b.yaml"))
		got := runCLI(t, reg, "", "pin", "--on-error", "warn", "--output", "json", dir)
		var rep struct {
			OK      bool
			Summary struct{ Pinned, Failed int }
		}
		if err := json.Unmarshal([]byte(got.stdout), &rep); err != nil {
			t.Fatalf("%v:\n%s", err, got.stdout)
		}
		if got.code != 1 || rep.OK || rep.Summary.Pinned != 0 || rep.Summary.Failed != 1 {
			t.Errorf("exit %d, ok %v, pinned %d, failed %d; want 1, false, 0, 1", got.code, rep.OK, rep.Summary.Pinned, rep.Summary.Failed)
		}
		if diff := cmp.Diff(files, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})
}

// TestSymlinks: a symbolic link in the package is followed to its target, which is written while
// the link stays a link; a file reached by two names is read and pinned once; a link whose target
// is outside the paths given is refused, as is a link to nothing, with exit 1 and no usage text
// (issue 23, items 9 and 15).
func TestSymlinks(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27")
	pinned := strings.Replace(nginxPod, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1)
	link := func(t *testing.T, target, name string) {
		t.Helper()
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("to a file in the package", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, map[string]string{"base/pod.yaml": nginxPod})
		link(t, "base/pod.yaml", filepath.Join(dir, "app.yaml"))
		got := runCLI(t, reg, "", "pin", dir)
		want := result{0, filepath.Join(dir, "app.yaml") + ":6:12: info: pinned nginx:1.27 to " + d["nginx:1.27"] + "\n",
			"digester: pinned 1 image field (1 distinct reference, 2 registry requests); 0 already pinned, 0 skipped by prefix\n"}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"base/pod.yaml": pinned}, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
		if target, err := os.Readlink(filepath.Join(dir, "app.yaml")); err != nil || target != "base/pod.yaml" {
			t.Errorf("app.yaml: link to %q (%v), want base/pod.yaml", target, err)
		}
	})

	t.Run("the lock", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, map[string]string{"app.yaml": nginxPod, "locks/digests.yaml": lockYAML("nginx:1.27", "sha256:"+strings.Repeat("0", 64))})
		link(t, "locks/digests.yaml", filepath.Join(dir, "digests.lock.yaml"))
		if got := runCLI(t, reg, "", "pin", "--pinned=refresh", "--lock=update", dir); got.code != 0 {
			t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
		}
		want := map[string]string{"app.yaml": pinned, "locks/digests.yaml": lockYAML("nginx:1.27", d["nginx:1.27"])}
		if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
		if fi, err := os.Lstat(filepath.Join(dir, "digests.lock.yaml")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("digests.lock.yaml is no longer a link: %v", err)
		}
	})

	t.Run("outside the paths given", func(t *testing.T) {
		dir, outside := t.TempDir(), t.TempDir()
		testfiles.Write(t, outside, map[string]string{"pod.yaml": nginxPod})
		testfiles.Write(t, dir, map[string]string{"a.yaml": strings.Replace(nginxPod, "web", "a", -1)})
		link(t, filepath.Join(outside, "pod.yaml"), filepath.Join(dir, "b.yaml"))
		got := runCLI(t, reg, "", "pin", dir)
		want := result{1, filepath.Join(dir, "b.yaml") + ": error: is a symbolic link to " + filepath.Join(outside, "pod.yaml") +
			", outside the paths given, and digester writes only under them: give " + filepath.Join(outside, "pod.yaml") + " (or its directory) as a PATH too, or replace the link by the file\n",
			"digester: pinned nothing: no file was written, for the error above (1 distinct reference, 2 registry requests)\n"}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"a.yaml": strings.Replace(nginxPod, "web", "a", -1)}, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"pod.yaml": nginxPod}, testfiles.Read(t, outside)); diff != "" {
			t.Errorf("the link's target changed (-want +got):\n%s", diff)
		}

		// Named as a PATH too, the target is within the paths given: it is pinned once.
		got = runCLI(t, reg, "", "pin", dir, outside)
		if got.code != 0 || !strings.Contains(got.stdout, "(2 image fields, in ") {
			t.Errorf("exit %d, stdout:\n%s\nwant 0 and 2 fields pinned", got.code, got.stdout)
		}
		if diff := cmp.Diff(map[string]string{"pod.yaml": pinned}, testfiles.Read(t, outside)); diff != "" {
			t.Errorf("the link's target (-want +got):\n%s", diff)
		}
	})

	t.Run("to nothing", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, map[string]string{"a.yaml": nginxPod})
		link(t, "gone.yaml", filepath.Join(dir, "b.yaml"))
		for _, path := range []string{dir, filepath.Join(dir, "b.yaml")} {
			got := runCLI(t, reg, "", "pin", path)
			want := result{1, "", "digester: " + filepath.Join(dir, "b.yaml") + " is a symbolic link to gone.yaml, which does not exist\n"}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("pin %s (-want +got):\n%s", path, diff)
			}
		}
		if diff := cmp.Diff(map[string]string{"a.yaml": nginxPod}, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})

	t.Run("to itself", func(t *testing.T) {
		dir := t.TempDir()
		link(t, "loop.yaml", filepath.Join(dir, "loop.yaml"))
		got := runCLI(t, reg, "", "check", dir)
		want := result{1, "", "digester: " + filepath.Join(dir, "loop.yaml") + " is a symbolic link to loop.yaml, which cannot be followed: EvalSymlinks: too many links\n"}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// lockYAML is a DigestLock as digester writes it, with one entry.
func lockYAML(ref, digest string) string {
	return `# Image digests pinned by digester: each reference as written in the package, and its digest.
# digester reads this file to pin without asking registries; do not edit by hand.
apiVersion: fn.kpt.dev/v1alpha1
kind: DigestLock
metadata:
  name: digests
  annotations:
    config.kubernetes.io/local-config: "true"
images:
- image: ` + ref + `
  digest: ` + digest + "\n"
}

// TestFileMetadataKept: a pinned file keeps its owner, group and mode (set-user-ID and
// set-group-ID bits included), and a file with other hard links stays one file with them
// (issue 23, item 9).
func TestFileMetadataKept(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27")
	pinned := strings.Replace(nginxPod, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1)
	dir, elsewhere := t.TempDir(), t.TempDir()
	testfiles.Write(t, dir, map[string]string{"owned.yaml": nginxPod, "linked.yaml": nginxPod})
	owned, linked, other := filepath.Join(dir, "owned.yaml"), filepath.Join(dir, "linked.yaml"), filepath.Join(elsewhere, "other-name.yaml")
	const mode = os.ModeSetuid | os.ModeSetgid | 0o751
	if err := os.Chmod(owned, mode); err != nil {
		t.Fatal(err)
	}
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 { // root can give the file to anyone: a run as root must not take it
		uid, gid = 4321, 8765
		if err := os.Chown(owned, uid, gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(owned, mode); err != nil { // chown cleared the set-ID bits
			t.Fatal(err)
		}
	}
	if err := os.Link(linked, other); err != nil {
		t.Fatal(err)
	}

	if got := runCLI(t, reg, "", "pin", dir); got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	if diff := cmp.Diff(map[string]string{"owned.yaml": pinned, "linked.yaml": pinned}, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(owned)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	type meta struct {
		Mode     os.FileMode
		UID, GID int
	}
	if diff := cmp.Diff(meta{mode, uid, gid}, meta{fi.Mode(), int(st.Uid), int(st.Gid)}); diff != "" {
		t.Errorf("owned.yaml (-want +got):\n%s", diff)
	}
	a, err := os.Stat(linked)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.Stat(other)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(a, b) {
		t.Errorf("linked.yaml and its hard link %s are no longer one file", other)
	}
	if diff := cmp.Diff(map[string]string{"other-name.yaml": pinned}, testfiles.Read(t, elsewhere)); diff != "" {
		t.Errorf("the hard link (-want +got):\n%s", diff)
	}
}

// TestLockInSharedFile: updating a DigestLock changes its images: and no other byte of its file:
// not the other documents, their comments, or a document that is only a comment (issue 23,
// item 13: the whole file was written out again from its nodes).
func TestLockInSharedFile(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27", "redis:7.4")
	old := "sha256:" + strings.Repeat("0", 64)
	lockHead := "# Image digests pinned by digester.\napiVersion: fn.kpt.dev/v1alpha1 # the lock\nkind: DigestLock\nmetadata:\n  name: digests\n" +
		"  annotations:\n    config.kubernetes.io/local-config: \"true\"\n"
	others := "# The package's resources and its lock.\n---\n# only a comment in this document\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings   # aligned\ndata:\n    key:    value\n---\n"
	pod := func(nginx, redis string) string {
		return "---\napiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: web\n    image: " + nginx + "\n  - name: cache\n    image: " + redis + "\n"
	}
	in, out := pod("nginx:1.27", "redis:7.4"), pod("nginx:1.27@"+old, "redis:7.4@"+d["redis:7.4"])
	newImages := "images:\n- image: nginx:1.27\n  digest: " + old + "\n- image: redis:7.4\n  digest: " + d["redis:7.4"]
	for _, tt := range []struct {
		name     string
		in, want string
	}{
		{
			name: "images: last, indented, with comments",
			in:   others + lockHead + "images:\n    # old entries\n    - image: nginx:1.27\n      digest: " + old + "\n# after the images\n" + in,
			want: others + lockHead + newImages + "\n# after the images\n" + out,
		},
		{
			name: "images: before another key",
			in:   others + lockHead + "images: [{image: nginx:1.27, digest: '" + old + "'}] # flow\nnotes: kept\n" + in,
			want: others + lockHead + newImages + "\nnotes: kept\n" + out,
		},
		{
			name: "no images: yet", // a pin the run did not resolve or verify is not locked
			in:   others + lockHead + "# no images yet\n" + pod("nginx:1.27@"+old, "redis:7.4"),
			want: others + lockHead + "images:\n- image: redis:7.4\n  digest: " + d["redis:7.4"] + "\n# no images yet\n" + out,
		},
		{
			name: "CRLF",
			in:   strings.ReplaceAll(others+lockHead+"images:\n- image: nginx:1.27\n  digest: "+old+"\n"+in, "\n", "\r\n"),
			want: strings.ReplaceAll(others+lockHead+newImages+"\n"+out, "\n", "\r\n"),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, map[string]string{"all.yaml": tt.in})
			got := runCLI(t, reg, "", "pin", "--lock=update", dir)
			if got.code != 0 {
				t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
			}
			if diff := cmp.Diff(tt.want, testfiles.Read(t, dir)["all.yaml"]); diff != "" {
				t.Errorf("all.yaml (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("every entry dropped", func(t *testing.T) {
		dir := t.TempDir()
		in := others + lockHead + "images:\n- image: gone:1\n  digest: " + old + " # was used\n"
		testfiles.Write(t, dir, map[string]string{"all.yaml": in})
		if got := runCLI(t, reg, "", "pin", "--lock=update", dir); got.code != 0 {
			t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
		}
		if diff := cmp.Diff(others+lockHead+"images: []\n", testfiles.Read(t, dir)["all.yaml"]); diff != "" {
			t.Errorf("all.yaml (-want +got):\n%s", diff)
		}
	})

	t.Run("a lock in flow style", func(t *testing.T) {
		dir := t.TempDir()
		in := others + "{apiVersion: fn.kpt.dev/v1alpha1, kind: DigestLock, metadata: {name: d}, images: []}\n" + in
		testfiles.Write(t, dir, map[string]string{"all.yaml": in})
		got := runCLI(t, reg, "", "pin", "--lock=update", dir)
		want := result{1, filepath.Join(dir, "all.yaml") + ": error: the DigestLock at line 12 is written in flow style ({...}), so digester cannot update its images: in place; write it in block style, or delete it and run pin --lock update to write a new one\n",
			"digester: pinned nothing: no file was written, for the error above (2 distinct references, 3 registry requests)\n"}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"all.yaml": in}, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})
}

// TestValuesNotEditedInPlace: a value the command line cannot edit in place is reported as what
// it is: a tag, an escape (issue 23, item 15: each was "not written as a plain or quoted string
// on one line"); a value tagged !!str is pinned, its tag kept. (An anchor that a label shares is
// the walker's Shared error: TestAliasesAndTags.)
func TestValuesNotEditedInPlace(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27")
	head := "kind: Pod\nmetadata:\n  name: a\n"
	for _, tt := range []struct {
		name, in, err string // err: "" when the file is pinned
		line, col     int
	}{
		{
			name: "escape sequence", in: head + "spec:\n  containers:\n  - name: a\n    image: \"nginx:1.2\\x37\"\n",
			line: 7, col: 12,
			err: `the value "nginx:1.27" holds an escape sequence, so digester cannot pin it in place; write it as a plain or quoted string on one line`,
		},
		{name: "tagged !!str", in: head + "spec:\n  containers:\n  - name: a\n    image: !!str nginx:1.27\n  - name: b\n    image: !!str 'nginx:1.27'\n"},
		{name: "anchored, no alias", in: head + "spec:\n  containers:\n  - name: a\n    image: &x nginx:1.27 # why not\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, map[string]string{"pod.yaml": tt.in})
			got := runCLI(t, reg, "", "pin", dir)
			if tt.err == "" {
				want := strings.ReplaceAll(tt.in, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"])
				if diff := cmp.Diff(map[string]string{"pod.yaml": want}, testfiles.Read(t, dir)); got.code != 0 || diff != "" {
					t.Errorf("exit %d, files (-want +got):\n%s\n%s%s", got.code, diff, got.stdout, got.stderr)
				}
				return
			}
			want := result{1, fmt.Sprintf("%s:%d:%d: error: %s\n", filepath.Join(dir, "pod.yaml"), tt.line, tt.col, tt.err),
				"digester: pinned nothing: no file was written, for the error above (1 distinct reference, 2 registry requests)\n"}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]string{"pod.yaml": tt.in}, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}
