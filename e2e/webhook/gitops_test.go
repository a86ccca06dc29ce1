package webhook_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/cli"
	"github.com/digester/digester/internal/registrytest"
)

// get fetches path (/metrics, /readyz) from the webhook whose /v1/mutate is mutateURL.
func get(t *testing.T, mutateURL, path string) (int, string) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: api.CA.Pool()}}}
	resp, err := hc.Get(strings.TrimSuffix(mutateURL, "/v1/mutate") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue is the value of the series name (with its labels) at the webhook's /metrics.
func metricValue(t *testing.T, mutateURL, name string) string {
	t.Helper()
	_, body := get(t, mutateURL, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s at /metrics", name)
	return ""
}

// logLines returns the webhook's JSON log lines (in file log) whose msg is msg.
func logLines(t *testing.T, log, msg string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// ciLock runs `digester pin --lock update` on a package holding a Deployment of img, as a CI job
// does, and returns the digests.lock.yaml it writes.
func ciLock(t *testing.T, img string) string {
	t.Helper()
	dir := t.TempDir()
	manifest := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: app, image: " + img + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "deployment.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli.Main(context.Background(), []string{"pin", "--lock", "update", dir}, cli.Env{Stdout: &stdout, Stderr: &stderr}); code != cli.ExitOK {
		t.Fatalf("digester pin --lock update: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	return filepath.Join(dir, "digests.lock.yaml")
}

// publish creates or replaces the ConfigMap digester-system/digests from the lock file, as the
// README's CI step does.
func publish(t *testing.T, lockFile string) {
	t.Helper()
	cm := mustKubectl(t, "", "create", "configmap", "digests", "-n", "digester-system", "--from-file=digests.lock.yaml="+lockFile, "--dry-run=client", "-o", "yaml")
	mustKubectl(t, cm, "apply", "-f", "-")
}

// moveTag pushes another image as ref ("locked:1") and returns its digest.
func moveTag(t *testing.T, ref, seed string) string {
	t.Helper()
	img, err := registrytest.Image(types.OCIManifestSchema1, seed)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(image(ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(reg.Transport())); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// dryRunImage is the image a dry-run Pod of img in ns is stored with.
func dryRunImage(t *testing.T, ns, img string) string {
	t.Helper()
	return mustKubectl(t, podYAML("probe", ns, nil, img), "create", "--dry-run=server", "-o", "jsonpath={.spec.containers[*].image}", "-f", "-")
}

// followed waits until a dry-run Pod of img in ns is pinned to want, and returns how long it took.
func followed(t *testing.T, ns, img, want string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := dryRunImage(t, ns, img)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("after 30 s a Pod of %s is pinned to %s, want %s", img, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Locks published to the cluster: a lock CI wrote with digester pin --lock update and published
// with kubectl create configmap pins every Pod to its digests, even after the tag moved, with no
// registry request; an edit is followed within seconds; a lock that does not parse is refused
// whole, logged and counted, and the registry answers again; all with deploy/webhook's RBAC,
// which lets the webhook read that one ConfigMap only.
func TestLockConfigMap(t *testing.T) {
	ref := "locked:1"
	first := moveTag(t, ref, "first")
	lockFile := ciLock(t, image(ref))
	publish(t, lockFile)
	t.Cleanup(func() {
		kubectl(t, "", "delete", "configmap", "digests", "-n", "digester-system", "--ignore-not-found")
	})
	second := moveTag(t, ref, "second") // the tag moves after CI recorded it

	url, log := startWebhookLog(t, "--lock-configmap=digester-system/digests")
	ns := "locks"
	label := map[string]string{"digester-e2e": "locks"}
	namespace(t, ns, label)
	for i := 0; ; i++ { // ready once the lock is read
		if code, _ := get(t, url, "/readyz"); code == http.StatusOK {
			break
		} else if i > 100 {
			t.Fatalf("/readyz %d after 10 s", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	reg.Reset()
	register(t, configuration(t, "digester-locks", url, "Fail", map[string]any{"matchLabels": label}), ns,
		func(img string) bool { return img == pinned("app:1") })

	mustKubectl(t, podYAML("web", ns, nil, image(ref)), "create", "-f", "-")
	if got, want := images(t, "pod", ns, "web", "{.spec.containers[*].image}"), image(ref)+"@"+first; got != want {
		t.Errorf("Pod stored with %s, want the lock's %s (the tag now gives %s)", got, want, second)
	}
	for _, r := range reg.Requests() {
		if strings.Contains(r.Path, "/locked/") {
			t.Errorf("registry asked %s %s for an image the lock lists", r.Method, r.Path)
		}
	}
	lines := logLines(t, log, "pinned")
	var logged []any
	for _, l := range lines {
		if o, _ := l["object"].(string); o == "Pod "+ns+"/web" {
			logged = l["images"].([]any)
		}
	}
	wantLogged := []any{map[string]any{"image": image(ref), "digest": first, "source": "lock", "from": "digester-system/digests"}}
	if diff := cmp.Diff(wantLogged, logged); diff != "" {
		t.Errorf("the pinned Pod's log line's images (-want +got):\n%s", diff)
	}
	if got := metricValue(t, url, `digester_webhook_digests_total{source="lock"}`); got == "0" {
		t.Errorf("digests from the lock: %s, want some", got)
	}

	// CI records the new digest and publishes it: the webhook follows.
	publish(t, ciLock(t, image(ref)))
	t.Logf("an edited lock ConfigMap followed in %s", followed(t, ns, image(ref), image(ref)+"@"+second).Round(time.Millisecond))

	// A lock that does not parse is refused whole: the registry answers again (the tag moved once more).
	third := moveTag(t, ref, "third")
	bad, err := os.ReadFile(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(t.TempDir(), "digests.lock.yaml")
	if err := os.WriteFile(badFile, []byte(strings.Replace(string(bad), first, "sha256:0123", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	publish(t, badFile)
	followed(t, ns, image(ref), image(ref)+"@"+third)
	if got := metricValue(t, url, "digester_webhook_lock_configmaps_rejected_total"); got != "1" {
		t.Errorf("lock ConfigMaps rejected: %s, want 1", got)
	}
	refused := logLines(t, log, "lock ConfigMap refused: none of its entries is used until it is fixed")
	if len(refused) != 1 || !strings.Contains(refused[0]["error"].(string), `"sha256:0123" is not a digest`) {
		t.Errorf("refusal log lines %v, want one naming the bad digest", refused)
	}
}

// RBAC grants the webhook one lock ConfigMap, by name: told to read another, it cannot, stays
// unready and says why.
func TestLockConfigMapNotGranted(t *testing.T) {
	url, log := startWebhookLog(t, "--lock-configmap=digester-system/other")
	time.Sleep(2 * time.Second)
	if code, body := get(t, url, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "the lock ConfigMaps are not read yet") {
		t.Errorf("/readyz: %d %q, want 503 saying the locks are not read", code, body)
	}
	warned := logLines(t, log, "cannot list or watch a lock ConfigMap")
	if len(warned) == 0 || !strings.Contains(warned[0]["error"].(string), "forbidden") {
		t.Errorf("log lines %v, want one saying listing digester-system/other is forbidden", warned)
	}
}

// With the registry gone, a Pod of an image the webhook resolved within --stale-if-error is
// stored pinned to that digest, and kubectl prints the webhook's warning; an image never resolved
// is still refused.
func TestStaleIfErrorThroughAPIServer(t *testing.T) {
	own := registrytest.New()
	d, err := own.PushImage("app", "1", types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	img := own.Host + "/app:1"
	url := startWebhook(t, "--cache-ttl=1s", "--stale-if-error=1h", "--timeout=1s", "--deadline=3s")
	ns := "stale"
	label := map[string]string{"digester-e2e": "stale"}
	namespace(t, ns, label)
	register(t, configuration(t, "digester-stale", url, "Fail", map[string]any{"matchLabels": label}), ns,
		func(got string) bool { return got == pinned("app:1") })
	mustKubectl(t, podYAML("before", ns, nil, img), "create", "-f", "-")
	own.Close()
	time.Sleep(1100 * time.Millisecond) // past the cache's TTL: the webhook asks the registry again

	_, stderr, err := kubectl(t, podYAML("during", ns, nil, img), "create", "-f", "-")
	want := "Warning: digester: " + img + ": pinned to " + d.String() + ", its digest "
	if err != nil || !strings.Contains(stderr, want) || !strings.Contains(stderr, "because the registry gave no answer now (stale-if-error)") {
		t.Errorf("kubectl create: %v\n%s\nwant a warning starting %q", err, stderr, want)
	}
	if got := images(t, "pod", ns, "during", "{.spec.containers[*].image}"); got != img+"@"+d.String() {
		t.Errorf("stored %s, want %s", got, img+"@"+d.String())
	}
	if got := metricValue(t, url, `digester_webhook_digests_total{source="stale"}`); got != "1" {
		t.Errorf("stale digests %s, want 1", got)
	}
	if _, stderr, err := kubectl(t, podYAML("never", ns, nil, own.Host+"/other:1"), "create", "-f", "-"); err == nil || !strings.Contains(stderr, "cannot pin "+own.Host+"/other:1") {
		t.Errorf("an image never resolved: %v\n%s\nwant the Pod refused", err, stderr)
	}
}

// --scope=pods holds whatever the registration sends: a Deployment is stored as written, a Pod
// pinned.
func TestScopePodsInTheWebhook(t *testing.T) {
	url := startWebhook(t, "--scope=pods")
	ns := "scope-flag"
	label := map[string]string{"digester-e2e": "scope-flag"}
	namespace(t, ns, label)
	register(t, configuration(t, "digester-scope-flag", url, "Fail", map[string]any{"matchLabels": label}), ns,
		func(img string) bool { return img == pinned("app:1") })
	mustKubectl(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: `+ns+`}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: `+image("app:1")+`}]
`, "create", "-f", "-")
	mustKubectl(t, podYAML("web", ns, nil, image("app:1")), "create", "-f", "-")
	got := []string{images(t, "deployment", ns, "web", "{.spec.template.spec.containers[*].image}"), images(t, "pod", ns, "web", "{.spec.containers[*].image}")}
	if diff := cmp.Diff([]string{image("app:1"), pinned("app:1")}, got); diff != "" {
		t.Errorf("Deployment and Pod as stored (-want +got):\n%s", diff)
	}
}
