package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
)

// TestREADMEWebhookLocally runs the README's "Run the webhook locally" block as bash runs it, with
// the webhook built as make build-webhook builds it, on a free port, and nginx:1.27 served by a
// registry on loopback: it prints the JSONPatch that pins the image.
func TestREADMEWebhookLocally(t *testing.T) {
	for _, tool := range []string{"openssl", "curl", "jq", "base64"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not on PATH: scripts/install-deps.sh installs it", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```sh\n(# Run the webhook locally\n.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no sh block starting # Run the webhook locally")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "digester-webhook"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	d, err := reg.PushImage("library/nginx", "1.27", types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	img := reg.Host + "/library/nginx:1.27"
	script := strings.NewReplacer("nginx:1.27", img, "8443", port).Replace(string(m[1]))

	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir) // no host credentials
	out, err := cmd.Output()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "webhook.log"))
		t.Fatalf("the README's block failed: %v\n%s\nwebhook log:\n%s", err, out, log)
	}
	want := `[{"op":"replace","path":"/spec/containers/0/image","value":"` + img + "@" + d.String() + `"}]` + "\n"
	if string(out) != want {
		t.Errorf("the README's block printed\n%s\nwant\n%s", out, want)
	}
}
