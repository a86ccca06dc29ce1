package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/faultregistry"
	"github.com/digester/digester/internal/registrytest"
)

// Credentials of the security tests. The password is long, so that a piece of it is recognisable.
const (
	secretUser  = "robot"
	secretPass  = "Pa55-w0rd-of-the-robot-account"
	secretToken = "tok-3f9a8b7c6d5e4f3a2b1c0d9e8f7a"
)

// TestCredentialsNeverInOutput runs the built binary with a docker config holding a known secret
// against registries that demand it, reject it, echo it back or redirect elsewhere: the secret
// never appears on stdout (items and results) or stderr, whether the run succeeds or fails.
func TestCredentialsNeverInOutput(t *testing.T) {
	bin := buildBinary(t)
	basicAuth := base64.StdEncoding.EncodeToString([]byte(secretUser + ":" + secretPass))
	secrets := []string{secretPass, basicAuth, secretToken, secretPass[:8]}

	headNotAllowed := faultregistry.Always(faultregistry.Manifest(http.MethodHead), faultregistry.Status(http.StatusMethodNotAllowed))
	getEchoes := faultregistry.Always(faultregistry.Manifest(http.MethodGet), faultregistry.Echo(http.StatusForbidden, "you sent "))

	// The redirect target: another host (localhost rather than 127.0.0.1) serving the same image,
	// recording the Authorization headers it receives.
	var cdnAuth faultregistry.Recorder
	cdn := registrytest.New(registrytest.WithMiddleware(cdnAuth.Middleware))
	t.Cleanup(cdn.Close)
	if _, err := cdn.PushImage("app", "v1", types.DockerManifestSchema2); err != nil {
		t.Fatal(err)
	}
	_, cdnPort, _ := strings.Cut(cdn.Host, ":")

	for _, tc := range []struct {
		name string
		mws  []func(http.Handler) http.Handler
		want string // on stderr for a failure; "" for success
	}{
		{"basic: success", []func(http.Handler) http.Handler{faultregistry.BasicAuth(secretUser, secretPass)}, ""},
		{"bearer: success", []func(http.Handler) http.Handler{faultregistry.TokenAuth(secretUser, secretPass, secretToken, nil)}, ""},
		{"basic: wrong password (401)", []func(http.Handler) http.Handler{faultregistry.BasicAuth(secretUser, "another-password")},
			"rejected the credentials digester found for it"},
		{"basic: 403 echoing the credentials", []func(http.Handler) http.Handler{faultregistry.BasicAuth(secretUser, secretPass), headNotAllowed, getEchoes},
			"forbidden: registry %s denies these credentials access"},
		{"bearer: 403 echoing the token", []func(http.Handler) http.Handler{faultregistry.TokenAuth(secretUser, secretPass, secretToken, nil), headNotAllowed, getEchoes},
			"forbidden: registry %s denies these credentials access"},
		{"bearer: token service rejects the password", []func(http.Handler) http.Handler{faultregistry.TokenAuth(secretUser, "another-password", secretToken, nil)},
			"rejected the credentials digester found for it"},
		{"bearer: token service fails echoing the credentials", []func(http.Handler) http.Handler{
			faultregistry.TokenAuth(secretUser, secretPass, secretToken, faultregistry.Echo(http.StatusInternalServerError, "down, you sent "))},
			"answered HTTP 500 Internal Server Error"},
		{"basic: redirect to another host", []func(http.Handler) http.Handler{faultregistry.BasicAuth(secretUser, secretPass),
			faultregistry.Always(faultregistry.Manifest(""), faultregistry.Redirect("http://localhost:"+cdnPort))}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gate faultregistry.Gate
			reg := registrytest.New(registrytest.WithMiddleware(gate.Wrap(tc.mws...)))
			t.Cleanup(reg.Close)
			digest, err := reg.PushImage("app", "v1", types.DockerManifestSchema2)
			if err != nil {
				t.Fatal(err)
			}
			gate.Arm()
			cdn.Reset()
			ref := reg.Host + "/app:v1"

			stdout, stderr, code := runWithConfig(t, bin, imageList(ref), dockerConfig(t, reg.Host, secretUser, secretPass))
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
				}
				if want := "image: " + ref + "@" + digest.String(); !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			} else {
				if code != 1 {
					t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
				}
				if want := strings.ReplaceAll(tc.want, "%s", reg.Host); !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			for _, s := range secrets {
				if strings.Contains(stdout, s) {
					t.Errorf("stdout carries the secret %q:\n%s", s, stdout)
				}
				if strings.Contains(stderr, s) {
					t.Errorf("stderr carries the secret %q:\n%s", s, stderr)
				}
			}
			for _, a := range cdnAuth.Authorizations() {
				if a != "" {
					t.Errorf("the redirect target received Authorization %q; want none", a)
				}
			}
		})
	}
	if n := cdn.Count(http.MethodHead, "manifest"); n != 1 {
		t.Errorf("the redirect target received %d manifest HEADs, want 1 (from the redirect case)", n)
	}
}

// dockerConfig writes a docker config directory holding user/pass for host, for DOCKER_CONFIG.
func dockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))},
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runWithConfig runs bin on stdin with DOCKER_CONFIG set to dockerConfigDir.
func runWithConfig(t *testing.T, bin, stdin, dockerConfigDir string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(cmd.Environ(), "DOCKER_CONFIG="+dockerConfigDir)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}
