package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/krmio"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testfiles"
)

// panicProcessor is a processor with a bug.
type panicProcessor struct{}

func (panicProcessor) Process(*krmio.List) (bool, error) { panic("processor bug") }

// TestFunctionPanicIsAnError: a panic in the KRM function is exit 1 and a message saying where,
// with nothing on stdout (no partial ResourceList), not a crash with exit 2 (issue 23, item 3).
func TestFunctionPanicIsAnError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runFunction(context.Background(), panicProcessor{}, strings.NewReader(imageList("nginx:1.27")), &stdout, &stderr)
	want := "digester: internal error (a bug in digester: please report it, with the input): processor bug, at digester.panicProcessor.Process (faults_test.go:"
	if code != 1 || stdout.Len() != 0 || !strings.HasPrefix(stderr.String(), want) {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, %q…", code, stdout.String(), stderr.String(), want)
	}
}

// startArgs starts the binary with args and stdin, no credentials; exited receives cmd.Wait's
// error. A nil stdin is a pipe that stays open and empty until the test ends.
func startArgs(t *testing.T, bin string, stdin io.Reader, args ...string) (cmd *exec.Cmd, stdout, stderr *bytes.Buffer, exited <-chan error) {
	t.Helper()
	cmd = exec.Command(bin, args...)
	if stdin == nil {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		stdin = r
	}
	cmd.Stdin = stdin
	cmd.Env = append(cmd.Environ(), "DOCKER_CONFIG="+t.TempDir())
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, stdout, stderr, done
}

// bigPackage writes n Deployments, every image already pinned, in one file: a package that
// takes the binary seconds of CPU to read and check, and needs no registry.
func bigPackage(t *testing.T, n int) (dir string, list string) {
	t.Helper()
	var docs, items strings.Builder
	items.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
	for i := range n {
		fmt.Fprintf(&docs, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app%d\n  labels: {app: a%d, tier: web}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: registry.example/app%d@sha256:%064d\n        env:\n        - {name: A, value: \"1\"}\n", i, i, i%50, i)
		fmt.Fprintf(&items, "- apiVersion: apps/v1\n  kind: Deployment\n  metadata:\n    name: app%d\n    annotations: {config.kubernetes.io/path: app.yaml}\n  spec:\n    template:\n      spec:\n        containers:\n        - name: c\n          image: registry.example/app%d@sha256:%064d\n", i, i%50, i)
	}
	dir = t.TempDir()
	testfiles.Write(t, dir, map[string]string{"app.yaml": docs.String()})
	return dir, items.String()
}

// TestSignalEndsBusyRun: SIGTERM and SIGINT end a run within 2 s even where it does not look at
// its context: reading and checking a large package (CPU-bound), or reading a stdin that never
// ends; exit 1 and a message, nothing on stdout, no file changed (issue 23: "SIGTERM and SIGINT
// end any run within 2 s, CPU-bound parts included").
func TestSignalEndsBusyRun(t *testing.T) {
	bin := buildBinary(t)
	dir, list := bigPackage(t, 25000)
	before := testfiles.Read(t, dir)
	for i, tt := range []struct {
		name  string
		stdin io.Reader
		args  []string
	}{
		{"command line, large package", strings.NewReader(""), []string{"pin", dir}},
		{"function, large ResourceList", strings.NewReader(list), nil},
		{"command line, stdin that never ends", nil, []string{"pin", "-"}},
		{"function, stdin that never ends", nil, nil},
	} {
		sigs := []syscall.Signal{syscall.SIGTERM}
		if i == 0 { // one signal.Notify catches both; each is tried once on the CPU-bound run
			sigs = append(sigs, syscall.SIGINT)
		}
		for _, sig := range sigs {
			t.Run(tt.name+", "+sig.String(), func(t *testing.T) {
				if s, ok := tt.stdin.(*strings.Reader); ok {
					s.Seek(0, io.SeekStart)
				}
				cmd, stdout, stderr, exited := startArgs(t, bin, tt.stdin, tt.args...)
				time.Sleep(300 * time.Millisecond) // into the run: reading, parsing, walking
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				sent := time.Now()
				var err error
				select {
				case err = <-exited:
				case <-time.After(hangGuard):
					cmd.Process.Kill()
					<-exited
					t.Fatalf("still running %s after %s; stderr:\n%s", hangGuard, sig, stderr.String())
				}
				if took := time.Since(sent); took > 2*time.Second {
					t.Errorf("ended %v after %s, want within 2s", took.Round(time.Millisecond), sig)
				}
				// Either the watchdog ended the run, or the run saw the signal and ended by itself:
				// both say so and write nothing (which one depends on how fast this machine is).
				name := map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT"}[sig]
				want := []string{"digester: stopped by " + name + ": the run had not ended 1.5s after it\n", "digester: stopped by " + name + ": nothing was written\n"}
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !slices.Contains(want, stderr.String()) {
					t.Errorf("exit %v, stderr %q; want exit 1 and one of %q", err, stderr.String(), want)
				}
				if stdout.Len() != 0 {
					t.Errorf("stdout: %d bytes, want none", stdout.Len())
				}
			})
		}
	}
	if diff := cmp.Diff(before, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files changed (-want +got):\n%s", diff)
	}
}

// failurePackage is three files to pin against reg, in three directories; b/b.yaml is padded to
// pad bytes with a comment.
func failurePackage(t *testing.T, reg *registrytest.Registry, pad int) (dir string, files map[string]string) {
	t.Helper()
	if _, err := reg.PushImage("team/app", "v1", types.DockerManifestSchema2); err != nil {
		t.Fatal(err)
	}
	pod := func(name string) string {
		return "kind: Pod\nmetadata: {name: " + name + "}\nspec:\n  containers:\n  - name: c\n    image: " + reg.Host + "/team/app:v1\n"
	}
	files = map[string]string{"a/a.yaml": pod("a"), "b/b.yaml": pod("b"), "c/c.yaml": pod("c")}
	if pad > 0 {
		files["b/b.yaml"] += "# " + strings.Repeat("x", pad) + "\n"
	}
	dir, err := os.MkdirTemp("", "digester-faults-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "b"), 0o755); os.RemoveAll(dir) })
	testfiles.Write(t, dir, files)
	return dir, files
}

// jsonReport is what --output json says, in part.
type jsonReport struct {
	OK      bool
	Summary struct {
		Message        string
		Pinned, Failed int
	}
	Findings []struct{ Severity, Message, File string }
}

// checkUnwritten checks a run that could not write b/b.yaml: exit 1, JSON that says so and
// names the file, and every file as it was.
func checkUnwritten(t *testing.T, dir string, files map[string]string, stdout, stderr string, err error, cause string) {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit %v, want 1; stderr:\n%s", err, stderr)
	}
	var rep jsonReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, stdout)
	}
	want := jsonReport{OK: false}
	want.Summary.Message = "pinned nothing: no file was written, for the error above (1 distinct reference, 2 registry requests)"
	want.Summary.Failed = 1
	want.Findings = []struct{ Severity, Message, File string }{{"error", cause, filepath.Join(dir, "b/b.yaml")}}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(files, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

// TestReadOnlyDirectory: when one directory of the package cannot be written, no file is (issue
// 23, item 8: the files before it were left pinned and the run reported success). Root writes
// anywhere, so as root the binary runs as user nobody, which owns the package; the read-only
// directory is mode 0555, which stops its owner.
func TestReadOnlyDirectory(t *testing.T) {
	bin := buildBinary(t)
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	dir, files := failurePackage(t, reg, 0)
	cmd := exec.Command(bin, "pin", "--output", "json", dir)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				err = os.Chown(p, uid, gid)
			}
			return err
		})
		// The binary, where nobody may run it.
		binDir, err := os.MkdirTemp("", "digester-bin-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(binDir) })
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(binDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(binDir, "digester"), b, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(filepath.Join(binDir, "digester"), "pin", "--output", "json", dir)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir+"/no-docker-config", "HOME="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := os.Chmod(filepath.Join(dir, "b"), 0o555); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	checkUnwritten(t, dir, files, stdout.String(), stderr.String(), err,
		"cannot create a temporary file in "+filepath.Join(dir, "b")+": permission denied")
}

// TestFullDisk: a write that fails for want of space (a file size limit, ulimit -f, stands in for
// a full disk: the write fails with EFBIG as it would with ENOSPC) leaves every file as it was
// (issue 23, item 8).
func TestFullDisk(t *testing.T) {
	bin := buildBinary(t)
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	dir, files := failurePackage(t, reg, 64<<10)
	cmd := exec.Command("sh", "-c", `ulimit -f 16 && exec "$0" "$@"`, bin, "pin", "--output", "json", dir) // 16 blocks: 8 or 16 KiB
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	checkUnwritten(t, dir, files, stdout.String(), stderr.String(), err,
		"cannot write a temporary file in "+filepath.Join(dir, "b")+": file too large")
}
