package container_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/internal/testcerts"
)

// TestWebhookImage builds the admission webhook's image (`make image-webhook`: mkimage -image
// webhook), loads it, runs it as deploy/webhook's Deployment does (its own non-root user, read-only
// root filesystem, no capabilities, certificate files mounted read-only) and asks it to admit a Pod:
// the answer pins the Pod's image, and the image's user, entrypoint and title are the webhook's.
func TestWebhookImage(t *testing.T) {
	needDocker(t)
	webhookTag := strings.Replace(tag, "/digester:", "/digester-webhook:", 1)
	build := exec.Command("go", "run", "./cmd/mkimage", "-image", "webhook", "-out", filepath.Join(t.TempDir(), "layout"),
		"-platforms", platform, "-version", "e2e", "-revision", "test", "-load", webhookTag)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building and loading the webhook image: %v\n%s", err, out)
	}
	t.Cleanup(func() { removeImage(webhookTag) })

	out, err := exec.Command("docker", "image", "inspect", "--format",
		`{{.Config.User}} {{json .Config.Entrypoint}} {{index .Config.Labels "org.opencontainers.image.title"}}`, webhookTag).CombinedOutput()
	if err != nil {
		t.Fatalf("docker image inspect: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), `65532:65532 ["/usr/local/bin/digester-webhook"] digester-webhook`; got != want {
		t.Errorf("image config %q, want %q", got, want)
	}

	ca, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	tlsDir := sharedTempDir(t)
	certFile, keyFile, err := ca.WriteServing(tlsDir, "tls", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{certFile, keyFile} { // the kubelet mounts a Secret's files readable by the pod's user
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	name := "digester-webhook-e2e-" + strings.TrimPrefix(tag, "localhost/digester:e2e-")
	run := exec.Command("docker", "run", "-d", "--name", name, "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
		"--network", "host", "-v", tlsDir+":/tls:ro", webhookTag,
		"--tls-cert-file=/tls/"+filepath.Base(certFile), "--tls-private-key-file=/tls/"+filepath.Base(keyFile),
		"--bind-address=127.0.0.1", fmt.Sprintf("--port=%d", port), "--pull-secrets=false")
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("webhook container log:\n%s", logs)
		}
		exec.Command("docker", "rm", "-f", name).Run()
	})

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 200 {
			t.Fatalf("the webhook never became ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	web, webDigest, _, _ := publicImages(t)
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},` +
		`"namespace":"shop","name":"web","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"shop"},` +
		`"spec":{"containers":[{"name":"web","image":"` + web + `"}]}}}}`
	resp, err := hc.Post(base+"/v1/mutate", "application/json", strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Response struct {
			Allowed bool
			Patch   []byte
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatalf("answer is not an AdmissionReview: %v", err)
	}
	var patch []map[string]string
	if err := json.Unmarshal(got.Response.Patch, &patch); err != nil || !got.Response.Allowed {
		t.Fatalf("allowed %v, patch %s: %v", got.Response.Allowed, got.Response.Patch, err)
	}
	want := []map[string]string{{"op": "replace", "path": "/spec/containers/0/image", "value": web + "@" + webDigest}}
	if diff := cmp.Diff(want, patch); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}
}
