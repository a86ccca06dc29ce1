package main

import (
	"bytes"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/internal/faultregistry"
	"github.com/digester/digester/internal/registrytest"
)

// hangGuard bounds each wait in the binary tests below; it is a guard against a hung test, not
// a timing assertion.
const hangGuard = 10 * time.Second

// imageList is a ResourceList with one Deployment whose containers use images.
func imageList(images ...string) string {
	var b strings.Builder
	b.WriteString(`apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: app
    annotations:
      config.kubernetes.io/path: app.yaml
      internal.config.kubernetes.io/path: app.yaml
  spec:
    template:
      spec:
        containers:
`)
	for i, img := range images {
		b.WriteString("        - name: c" + string(rune('0'+i)) + "\n          image: " + img + "\n")
	}
	return b.String()
}

// start starts the binary on stdin with no credentials; exited receives what cmd.Wait returns.
func start(t *testing.T, bin, stdin string) (cmd *exec.Cmd, stdout, stderr *bytes.Buffer, exited <-chan error) {
	t.Helper()
	cmd = exec.Command(bin)
	cmd.Stdin = strings.NewReader(stdin)
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

// TestSignalStopsLookups: SIGTERM and SIGINT stop lookups in flight against a registry that never
// answers; the binary exits 1, says why, and returns the items unchanged.
func TestSignalStopsLookups(t *testing.T) {
	bin := buildBinary(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			arrived := make(chan *http.Request, 8)
			reg := registrytest.New(registrytest.WithMiddleware(
				faultregistry.Always(faultregistry.Manifest(""), faultregistry.Hang(nil, arrived))))
			t.Cleanup(reg.Close)
			in := imageList(reg.Host+"/app:v1", reg.Host+"/other:v2")

			cmd, stdout, stderr, exited := start(t, bin, in)

			select {
			case <-arrived:
			case err := <-exited:
				t.Fatalf("digester exited (%v) before its lookup reached the registry; stderr:\n%s", err, stderr.String())
			case <-time.After(hangGuard):
				cmd.Process.Kill()
				t.Fatal("no lookup reached the registry")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-exited:
			case <-time.After(hangGuard):
				cmd.Process.Kill()
				<-exited
				t.Fatalf("digester still running after %s; stderr:\n%s", sig, stderr.String())
			}

			// Exit 1, as the README's table says: not killed by the signal (-1), not 130 or 143.
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v; want exit code 1; stderr:\n%s", err, stderr.String())
			}
			if want := "canceled while waiting for registry " + reg.Host; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
			}
			if diff := cmp.Diff(itemsYAML(t, []byte(in)), itemsYAML(t, stdout.Bytes())); diff != "" {
				t.Errorf("items changed after %s (-want +got):\n%s", sig, diff)
			}
			if n := reg.Count(http.MethodGet, "manifest"); n != 0 {
				t.Errorf("manifest GETs = %d, want 0", n)
			}
		})
	}
}

// TestHungRegistryCannotHangTheBinary: with no signal at all, the configured per-request timeout
// and the run's deadline each end a run against a registry that never answers.
func TestHungRegistryCannotHangTheBinary(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct{ name, config, want string }{
		{"timeout", "timeout: 500ms", "timed out after 500ms waiting for registry "},
		{"deadline", "deadline: 1s", "deadline reached while waiting for registry "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.New(registrytest.WithMiddleware(
				faultregistry.Always(faultregistry.Manifest(""), faultregistry.Hang(nil, nil))))
			t.Cleanup(reg.Close)
			in := imageList(reg.Host+"/app:v1") + `functionConfig:
  apiVersion: v1
  kind: ConfigMap
  metadata:
    name: digester
  data:
    ` + tc.config + "\n"

			cmd, _, stderr, exited := start(t, bin, in)
			var err error
			select {
			case err = <-exited:
			case <-time.After(hangGuard):
				cmd.Process.Kill()
				<-exited
				t.Fatalf("digester hung; stderr:\n%s", stderr.String())
			}
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v; want exit code 1; stderr:\n%s", err, stderr.String())
			}
			if want := tc.want + reg.Host; !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
			}
			if n := reg.Count(http.MethodHead, "manifest"); n != 1 {
				t.Errorf("manifest HEADs = %d, want 1 (a timeout is not retried)", n)
			}
		})
	}
}
