// Package container_test runs digester as users of its container image do: it builds the image
// with cmd/mkimage (what `make image` runs), loads it into the local Docker Engine with
// `docker load` under a tag of its own, and drives it through kpt (fn eval, fn render) and plain
// `docker run`, against registries on loopback; it also builds the Dockerfile with `docker build`
// and compares the two images.
//
// It needs a Docker Engine that answers `docker version` (nothing is pulled: the images are built
// here), kpt on PATH, and docker-registry and htpasswd (`make deps`). Without them the tests fail
// and say how to get them.
package container_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/e2e/realregistry"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testfiles"
)

var (
	// repoRoot is the repository's root directory.
	repoRoot string
	// dockerErr says why no Docker daemon can be used; nil when one answers.
	dockerErr error
	// platform is the Docker daemon's os/arch.
	platform string
	// tag is the image under test, loaded into the daemon by TestMain and removed at the end. It is
	// unique to the run: other runs may load other builds into the same daemon at the same time.
	tag string
	// layoutDir is the OCI image layout mkimage wrote, as `make image` writes out/image.
	layoutDir string
	// public is a registry on loopback without TLS or credentials; private is docker-registry with
	// TLS and htpasswd (see realregistry).
	public  *registrytest.Registry
	private *realregistry.Registry
	// shimDir holds a `docker` that logs its arguments, then runs the real one.
	shimDir string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "e2e/container:", err); return 1 }
	dir, err := os.MkdirTemp("", "digester-container-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // the shim in it runs as kpt's user
		return fail(err)
	}
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		return fail(err)
	}
	public = registrytest.New()
	defer public.Close()
	if err := os.Mkdir(filepath.Join(dir, "registry"), 0o700); err != nil {
		return fail(err)
	}
	if private, err = realregistry.Start(filepath.Join(dir, "registry")); err != nil {
		return fail(fmt.Errorf("starting the test registry: %w", err))
	}
	defer private.Close()
	if shimDir, err = writeShim(filepath.Join(dir, "shim")); err != nil {
		return fail(err)
	}

	out, err := exec.Command("docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}").CombinedOutput()
	if err != nil {
		dockerErr = fmt.Errorf("no Docker daemon answers `docker version` (%v: %s). These tests run the image in a "+
			"Docker Engine, nothing is pulled: install one (Debian: apt-get install docker.io) and start it "+
			"(systemctl start docker), or point DOCKER_HOST at one", err, bytes.TrimSpace(out))
		return m.Run() // each test fails with dockerErr
	}
	platform = strings.TrimSpace(string(out))
	secret := make([]byte, 6)
	if _, err := rand.Read(secret); err != nil {
		return fail(err)
	}
	tag = "localhost/digester:e2e-" + hex.EncodeToString(secret)
	layoutDir = filepath.Join(dir, "layout")
	// What `make image LOAD=tag` runs, for the daemon's platform only.
	mkimage := exec.Command("go", "run", "./cmd/mkimage", "-out", layoutDir, "-platforms", platform,
		"-version", "e2e", "-revision", "test", "-load", tag)
	mkimage.Dir = repoRoot
	mkimage.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if out, err := mkimage.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("building and loading the image: %v\n%s", err, out))
	}
	defer removeImage(tag)
	return m.Run()
}

// needDocker fails the test when no Docker daemon answers.
func needDocker(t *testing.T) {
	t.Helper()
	if dockerErr != nil {
		t.Fatal(dockerErr)
	}
}

// removeImage removes a tag the tests loaded or built, and the image if no other tag names it.
func removeImage(ref string) {
	if out, err := exec.Command("docker", "rmi", ref).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e/container: removing %s: %v\n%s", ref, err, out)
	}
}

// writeShim writes a `docker` into dir that appends its arguments, one line per call, to the file
// $E2E_DOCKER_LOG names, then runs the real docker: kpt runs whatever `docker` is first on PATH, so
// the tests see what kpt asks docker for.
func writeShim(dir string) (string, error) {
	real, err := exec.LookPath("docker")
	if err != nil {
		return "", fmt.Errorf("docker is not on PATH: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	script := "#!/bin/sh\necho \"$*\" >> \"$E2E_DOCKER_LOG\"\nexec " + real + " \"$@\"\n"
	return dir, os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755)
}

// output is what a command printed and how it exited.
type output struct {
	stdout, stderr string
	code           int
}

// command is a command to run in a test, with its own environment.
type command struct {
	dir   string
	env   []string // added to a clean environment: PATH (shim first), HOME
	stdin []byte
	// prepare, if set, changes the command before it runs (e.g. its user).
	prepare func(*exec.Cmd)
}

// run runs name with args and returns its output and the `docker run` calls made through the
// shim, each as its argument line. It fails the test if the command could not run, or if the
// output holds the private registry's password in any form.
func (c command) run(t *testing.T, name string, args ...string) (output, []string) {
	t.Helper()
	logDir := sharedTempDir(t)
	if err := os.Chmod(logDir, 0o777); err != nil { // the command may run as another user
		t.Fatal(err)
	}
	log := filepath.Join(logDir, "docker.log")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = c.dir
	cmd.Env = append([]string{
		"PATH=" + shimDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"E2E_DOCKER_LOG=" + log,
	}, c.env...)
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+h)
	}
	cmd.Stdin = bytes.NewReader(c.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.prepare != nil {
		c.prepare(cmd)
	}
	err := cmd.Run()
	out := output{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		out.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s %s: %v", name, strings.Join(args, " "), err)
	}
	noSecrets(t, name+" stdout", out.stdout)
	noSecrets(t, name+" stderr", out.stderr)
	var runs []string
	if b, err := os.ReadFile(log); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if rest, ok := strings.CutPrefix(line, "run "); ok {
				runs = append(runs, rest)
			}
		}
	}
	return out, runs
}

// noSecrets fails the test if text holds the private registry's password or encoded credentials.
func noSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range private.Secrets() {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the registry credentials", what)
		}
	}
}

// kptPath returns kpt's path, failing the test with how to get it when it is missing.
func kptPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kpt")
	if err != nil {
		t.Fatal("kpt is not on PATH: install kpt 1.0.0-beta.56 or later from https://github.com/kptdev/kpt/releases")
	}
	return p
}

// writeFiles and readFiles write and read a package's files.
var writeFiles, readFiles = testfiles.Write, testfiles.Read

// checkFiles compares the files under dir with want, byte for byte, and checks that none holds
// the private registry's credentials.
func checkFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	got := readFiles(t, dir)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files under %s (-want +got):\n%s", dir, diff)
	}
	for name, content := range got {
		noSecrets(t, name, content)
	}
}
