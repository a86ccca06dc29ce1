// Package webhook_test runs digester's admission webhook (the built cmd/webhook binary) behind a
// real kube-apiserver (internal/apiservertest) and checks, with kubectl, what a cluster user sees:
// the objects as stored, the errors and the warnings kubectl prints.
//
// It needs bin/kube-apiserver and bin/etcd (built by scripts/install-deps.sh from tools/apiserver)
// and kubectl on PATH; when one is missing, the tests fail and say how to get it.
package webhook_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/internal/apiservertest"
	"github.com/digester/digester/internal/registrytest"
)

var (
	repoRoot string
	binary   string // cmd/webhook, built by TestMain
	api      *apiservertest.Server
	reg      *registrytest.Registry
	digests  = map[string]string{} // "app:1" -> sha256:...
	tmp      string
	// kubeconfig is the webhook's: the token of ServiceAccount digester-webhook, bound to
	// deploy/webhook's RBAC, so that every test runs with no more than the package grants.
	kubeconfig string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	var err error
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "e2e/webhook:", err); return 1 }
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		return fail(err)
	}
	if tmp, err = os.MkdirTemp("", "digester-webhook-e2e-"); err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	if _, err := exec.LookPath("kubectl"); err != nil {
		return fail(fmt.Errorf("kubectl is not on PATH: install it (https://kubernetes.io/docs/tasks/tools/)"))
	}
	binary = filepath.Join(tmp, "webhook")
	build := exec.Command("go", "build", "-o", binary, "./cmd/webhook")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("build cmd/webhook: %v\n%s", err, out))
	}
	reg = registrytest.New()
	defer reg.Close()
	for _, ref := range []string{"app:1", "sidecar:1"} {
		repo, tag, _ := strings.Cut(ref, ":")
		d, err := reg.PushImage(repo, tag, types.OCIManifestSchema1)
		if err != nil {
			return fail(err)
		}
		digests[ref] = d.String()
	}
	dir := filepath.Join(tmp, "apiserver")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fail(err)
	}
	if api, err = apiservertest.Start(repoRoot, dir); err != nil {
		return fail(err)
	}
	defer api.Close()
	if kubeconfig, err = webhookKubeconfig(dir); err != nil {
		return fail(err)
	}
	return m.Run()
}

// webhookKubeconfig applies deploy/webhook's namespace, ServiceAccount and RBAC, and writes a
// kubeconfig holding a token of that ServiceAccount into dir.
func webhookKubeconfig(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, f := range []string{"namespace.yaml", "serviceaccount.yaml", "rbac.yaml"} {
		if _, _, err := api.Kubectl(ctx, "", "apply", "-f", filepath.Join(repoRoot, "deploy/webhook", f)); err != nil {
			return "", err
		}
	}
	token, _, err := api.Kubectl(ctx, "", "create", "token", "digester-webhook", "-n", "digester-system", "--duration=2h")
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(api.Kubeconfig)
	if err != nil {
		return "", err
	}
	kc := filepath.Join(dir, "webhook.kubeconfig")
	return kc, os.WriteFile(kc, []byte(strings.Replace(string(b), "token: "+api.Token, "token: "+strings.TrimSpace(token), 1)), 0o600)
}

// image is the reference of ref ("app:1") on the test registry; pinned, with its digest.
func image(ref string) string  { return reg.Host + "/" + ref }
func pinned(ref string) string { return image(ref) + "@" + digests[ref] }

func kubectl(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return api.Kubectl(ctx, stdin, args...)
}

func mustKubectl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, _, err := kubectl(t, stdin, args...)
	if err != nil {
		t.Fatalf("%v\napiserver log:\n%s", err, api.Log(3000))
	}
	return out
}

func namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := api.CreateNamespace(ctx, name, labels); err != nil {
		t.Fatal(err)
	}
}

// startWebhook runs the webhook binary with args on a free loopback port, with a certificate from
// the API server's CA, and returns its /v1/mutate URL once it answers /healthz.
func startWebhook(t *testing.T, args ...string) string {
	t.Helper()
	url, _ := startWebhookLog(t, args...)
	return url
}

// startWebhookLog is startWebhook, and also returns the file the webhook logs to.
func startWebhookLog(t *testing.T, args ...string) (url, log string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	cert, key, err := api.CA.WriteServing(dir, "webhook", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "webhook.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"--bind-address=127.0.0.1", "--port=" + strconv.Itoa(port),
		"--tls-cert-file=" + cert, "--tls-private-key-file=" + key, "--shutdown-delay=0s", "--kubeconfig=" + kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := <-exited; err != nil {
			t.Errorf("webhook exited with %v after SIGTERM, want a clean drain", err)
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("webhook log:\n%s", b)
		}
	})
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: api.CA.Pool()}}}
	for i := 0; ; i++ {
		resp, err := hc.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logFile.Name())
			t.Fatalf("webhook exited (%v):\n%s", err, b)
		case <-time.After(50 * time.Millisecond):
		}
		if i > 400 {
			t.Fatalf("webhook did not answer /healthz: %v", err)
		}
	}
	return base + "/v1/mutate", logFile.Name()
}

// configuration returns deploy/webhook's MutatingWebhookConfiguration, named name, its webhooks
// calling url (trusting the API server's CA) instead of the in-cluster Service, with failurePolicy
// policy and, if selector is not nil, that namespaceSelector.
func configuration(t *testing.T, name, url, policy string, selector map[string]any) string {
	t.Helper()
	return configurationWith(t, name, url, policy, selector, nil)
}

// configurationWith is configuration with the kpt setters given values applied first.
func configurationWith(t *testing.T, name, url, policy string, selector map[string]any, setters map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/webhook/mutatingwebhookconfiguration.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var mwc map[string]any
	if err := yaml.Unmarshal([]byte(applySetters(t, string(b), setters)), &mwc); err != nil {
		t.Fatal(err)
	}
	mwc["metadata"] = map[string]any{"name": name}
	for _, h := range mwc["webhooks"].([]any) {
		hook := h.(map[string]any)
		hook["clientConfig"] = map[string]any{"url": url, "caBundle": api.CA.CertPEM}
		hook["failurePolicy"] = policy
		if selector != nil {
			hook["namespaceSelector"] = selector
		}
	}
	out, err := json.Marshal(mwc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// register creates a MutatingWebhookConfiguration, deletes it when the test ends, and waits until
// the API server calls the webhook: until a dry-run Pod in probeNS comes back with probe's image
// changed (webhooks take effect asynchronously).
func register(t *testing.T, mwc, probeNS string, changed func(image string) bool) {
	t.Helper()
	registerProbe(t, mwc, probeNS, image("app:1"), changed)
}

// registerProbe is register with a dry-run Pod of the image probeImage.
func registerProbe(t *testing.T, mwc, probeNS, probeImage string, changed func(image string) bool) {
	t.Helper()
	mustKubectl(t, mwc, "apply", "-f", "-")
	var m struct{ Metadata struct{ Name string } }
	json.Unmarshal([]byte(mwc), &m)
	t.Cleanup(func() { kubectl(t, "", "delete", "mutatingwebhookconfiguration", m.Metadata.Name, "--wait") })
	probe := podYAML("probe", probeNS, nil, probeImage)
	for i := 0; ; i++ {
		out, _, err := kubectl(t, probe, "create", "--dry-run=server", "-o", "jsonpath={.spec.containers[*].image}", "-f", "-")
		if err == nil && changed(out) {
			return
		}
		if i > 200 {
			t.Fatalf("webhook %s never acted on a dry-run Pod in %s: last image %q, error %v", m.Metadata.Name, probeNS, out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func podYAML(name, ns string, labels map[string]string, images ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n", name, ns)
	if len(labels) > 0 {
		b.WriteString("  labels:\n")
		for k, v := range labels {
			fmt.Fprintf(&b, "    %s: %q\n", k, v)
		}
	}
	b.WriteString("spec:\n  containers:\n")
	for i, img := range images {
		fmt.Fprintf(&b, "  - name: c%d\n    image: %s\n", i, img)
	}
	return b.String()
}

// images returns the container images of a stored object at jsonpath path.
func images(t *testing.T, kind, ns, name, path string) string {
	t.Helper()
	return mustKubectl(t, "", "get", kind, name, "-n", ns, "-o", "jsonpath="+path)
}

var enabled = map[string]string{"digest-resolution": "enabled"}

// The webhook as deploy/webhook configures it: labelled namespaces get pinned Pods and Deployments,
// others and the webhook's own namespace do not; another webhook's sidecar is pinned through
// reinvocation.
func TestPinAtAdmission(t *testing.T) {
	url := startWebhook(t)
	namespace(t, "pinned", enabled)
	namespace(t, "plain", nil)
	namespace(t, "digester-system", enabled) // labelled by mistake: still excluded
	register(t, configuration(t, "digester", url, "Fail", nil), "pinned", func(img string) bool { return img == pinned("app:1") })

	mustKubectl(t, podYAML("web", "pinned", nil, image("app:1"), pinned("sidecar:1")), "apply", "-f", "-")
	mustKubectl(t, podYAML("web", "plain", nil, image("app:1")), "apply", "-f", "-")
	mustKubectl(t, podYAML("web", "digester-system", nil, image("app:1")), "apply", "-f", "-")
	mustKubectl(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: pinned}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      initContainers: [{name: init, image: %s}]
      containers: [{name: app, image: %s}]
`, image("sidecar:1"), image("app:1")), "apply", "-f", "-")
	got := []string{
		images(t, "pod", "pinned", "web", "{.spec.containers[*].image}"),
		images(t, "pod", "plain", "web", "{.spec.containers[*].image}"),
		images(t, "pod", "digester-system", "web", "{.spec.containers[*].image}"),
		images(t, "deployment", "pinned", "web", "{.spec.template.spec.initContainers[*].image} {.spec.template.spec.containers[*].image}"),
	}
	want := []string{
		pinned("app:1") + " " + pinned("sidecar:1"),
		image("app:1"),
		image("app:1"),
		pinned("sidecar:1") + " " + pinned("app:1"),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored images (-want +got):\n%s", diff)
	}

	// An UPDATE that leaves the images alone is admitted as it is, and costs no lookup.
	reg.Reset()
	mustKubectl(t, "", "label", "pod", "web", "-n", "pinned", "touched=yes")
	if n := reg.Count("", "manifest"); n != 0 {
		t.Errorf("relabelling a pinned Pod sent %d manifest requests, want 0", n)
	}
}

// A second webhook, called after digester's, injects a sidecar with an unpinned image; the API
// server calls digester again (reinvocationPolicy: IfNeeded) and the sidecar is stored pinned.
func TestSidecarPinnedThroughReinvocation(t *testing.T) {
	url := startWebhook(t)
	namespace(t, "mesh", enabled)
	register(t, configuration(t, "digester", url, "Fail", nil), "mesh", func(img string) bool { return img == pinned("app:1") })
	injector := startInjector(t, image("sidecar:1"))
	inj := configuration(t, "zz-sidecar-injector", injector, "Fail", nil)
	register(t, inj, "mesh", func(img string) bool { return strings.Contains(img, "sidecar") })

	mustKubectl(t, podYAML("web", "mesh", nil, image("app:1")), "apply", "-f", "-")
	got := images(t, "pod", "mesh", "web", "{.spec.containers[*].image}")
	if want := pinned("app:1") + " " + pinned("sidecar:1"); got != want {
		t.Errorf("stored images %q, want %q", got, want)
	}
}

// startInjector serves a mutating webhook that appends a container named injected running
// sidecar to every Pod that has none, as a service mesh's injector does, and returns its URL.
func startInjector(t *testing.T, sidecar string) string {
	t.Helper()
	dir := t.TempDir()
	cert, key, err := api.CA.WriteServing(dir, "injector", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rev struct {
			Request struct {
				UID    string
				Object struct {
					Kind string
					Spec struct{ Containers []struct{ Name string } }
				}
			}
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &rev)
		resp := map[string]any{"uid": rev.Request.UID, "allowed": true}
		inject := rev.Request.Object.Kind == "Pod"
		for _, c := range rev.Request.Object.Spec.Containers {
			inject = inject && c.Name != "injected"
		}
		if inject {
			patch, _ := json.Marshal([]map[string]any{{"op": "add", "path": "/spec/containers/-", "value": map[string]string{"name": "injected", "image": sidecar}}})
			resp["patch"], resp["patchType"] = patch, "JSONPatch"
		}
		json.NewEncoder(w).Encode(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.ServeTLS(l, cert, key)
	t.Cleanup(func() { srv.Close() })
	return "https://" + l.Addr().String() + "/inject"
}

// A registry that cannot be reached: with --on-error=fail the Pod is refused and kubectl says
// which container, image and error; with --on-error=warn it is stored unpinned and kubectl prints
// the webhook's warning.
func TestRegistryDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String() + "/app:1" // nothing listens there once closed
	l.Close()
	for _, policy := range []string{"fail", "warn"} {
		t.Run(policy, func(t *testing.T) {
			url := startWebhook(t, "--on-error="+policy, "--deadline=3s", "--timeout=1s")
			ns := "down-" + policy
			label := map[string]string{"digester-e2e": policy}
			namespace(t, ns, label)
			register(t, configuration(t, "digester-"+policy, url, "Fail", map[string]any{"matchLabels": label}), ns,
				func(img string) bool { return img == pinned("app:1") })
			_, stderr, err := kubectl(t, podYAML("web", ns, nil, down), "apply", "-f", "-")
			t.Logf("kubectl apply printed:\n%s", stderr)
			switch policy {
			case "fail":
				want := `admission webhook "pin.digester.dev" denied the request: digester could not pin the images of Pod ` + ns + `/web: spec.containers[0].image (container "c0"): cannot pin ` + down + `: `
				if err == nil || !strings.Contains(stderr, want) {
					t.Errorf("kubectl apply: err %v, stderr:\n%s\nwant an error containing\n%s", err, stderr, want)
				}
				if out, _, err := kubectl(t, "", "get", "pod", "web", "-n", ns, "--ignore-not-found", "-o", "name"); err != nil || out != "" {
					t.Errorf("pod stored (%q, %v), want none", out, err)
				}
			case "warn":
				want := `Warning: digester: spec.containers[0].image (container "c0"): cannot pin ` + down + `: `
				if err != nil || !strings.Contains(stderr, want) {
					t.Errorf("kubectl apply: err %v, stderr:\n%s\nwant a warning containing\n%s", err, stderr, want)
				}
				if got := images(t, "pod", ns, "web", "{.spec.containers[*].image}"); got != down {
					t.Errorf("stored image %q, want %q unpinned", got, down)
				}
			}
		})
	}
}

// Pods created at once whose reviews need more memory than the webhook lets reviews in flight take
// together: the webhook answers those beyond it 429 with Retry-After, the API server retries them,
// and every Pod is stored pinned (issue 23: eight 4.2 MB reviews at once took 2.4 GB).
func TestBusyWebhookIsRetried(t *testing.T) {
	// Each review holds its memory while it looks its image up (no cache) over a slow registry.
	reg.SetLatency(300 * time.Millisecond)
	t.Cleanup(func() { reg.SetLatency(0) })
	// A Pod of 4,000 environment variables: a review of about 0.4 MB, reckoned at 3.5 MB; the
	// webhook's 5 MiB take one at a time.
	url := startWebhook(t, "--max-review-memory=5242880", "--cache-ttl=0")
	const ns = "busy"
	label := map[string]string{"digester-e2e": ns}
	namespace(t, ns, label)
	register(t, configuration(t, "digester-busy", url, "Fail", map[string]any{"matchLabels": label}), ns,
		func(img string) bool { return img == pinned("app:1") })

	var env []string
	for i := range 4000 {
		env = append(env, fmt.Sprintf(`{"name":"VAR_%d","value":"value-%d"}`, i, i))
	}
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: api.CA.Pool()}}}
	const pods = 4
	var wg sync.WaitGroup
	errs := make([]error, pods)
	for i := range pods {
		wg.Go(func() {
			pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"big%d"},"spec":{"containers":[{"name":"app","image":%q,"env":[%s]}]}}`,
				i, image("app:1"), strings.Join(env, ","))
			req, err := http.NewRequest(http.MethodPost, api.URL+"/api/v1/namespaces/"+ns+"/pods", strings.NewReader(pod))
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Authorization", "Bearer "+api.Token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusCreated {
				errs[i] = fmt.Errorf("pod big%d: %s\n%s", i, resp.Status, b)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i := range pods {
		if got := images(t, "pod", ns, fmt.Sprintf("big%d", i), "{.spec.containers[*].image}"); got != pinned("app:1") {
			t.Errorf("pod big%d stored with %q, want %q", i, got, pinned("app:1"))
		}
	}
	resp, err := client.Get(strings.TrimSuffix(url, "/v1/mutate") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var throttled int
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "digester_webhook_throttled_requests_total "); ok {
			throttled, _ = strconv.Atoi(v)
		}
	}
	t.Logf("%d reviews answered 429 and retried", throttled)
	if throttled == 0 {
		t.Errorf("no review was answered 429: the reviews did not meet the bound, the test proves nothing")
	}
}

// Every object of deploy/webhook is accepted by the API server (server-side dry run), applied as
// files and as kustomize builds it. cert-manager's kinds are stood in for by CRDs that accept any
// spec, since cert-manager is not installed.
func TestDeployPackageDryRun(t *testing.T) {
	for _, kind := range []string{"Issuer", "Certificate"} {
		plural := strings.ToLower(kind) + "s"
		mustKubectl(t, fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %s.cert-manager.io}
spec:
  group: cert-manager.io
  names: {kind: %s, plural: %s}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`, plural, kind, plural), "apply", "-f", "-")
	}
	mustKubectl(t, "", "wait", "--for=condition=Established", "crd/issuers.cert-manager.io", "crd/certificates.cert-manager.io")
	pkg := filepath.Join(repoRoot, "deploy/webhook")
	mustKubectl(t, "", "apply", "-f", filepath.Join(pkg, "namespace.yaml"))
	files, err := filepath.Glob(filepath.Join(pkg, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "config.kubernetes.io/local-config") || filepath.Base(f) == "namespace.yaml" {
			continue // Kptfile, setters, kustomization: configuration for tools; the namespace is applied
		}
		out := mustKubectl(t, "", "apply", "--dry-run=server", "-f", f)
		applied = append(applied, strings.TrimSpace(out))
	}
	want := []string{
		"issuer.cert-manager.io/digester-webhook created (server dry run)\ncertificate.cert-manager.io/digester-webhook created (server dry run)",
		"configmap/digester-config created (server dry run)",
		"deployment.apps/digester-webhook created (server dry run)",
		"mutatingwebhookconfiguration.admissionregistration.k8s.io/digester created (server dry run)",
		"poddisruptionbudget.policy/digester-webhook created (server dry run)",
		// applied for real by TestMain, which runs the webhook with this ServiceAccount and RBAC
		"clusterrole.rbac.authorization.k8s.io/digester-webhook unchanged (server dry run)\nclusterrolebinding.rbac.authorization.k8s.io/digester-webhook unchanged (server dry run)\n" +
			"role.rbac.authorization.k8s.io/digester-webhook-lock unchanged (server dry run)\nrolebinding.rbac.authorization.k8s.io/digester-webhook-lock unchanged (server dry run)",
		"service/digester-webhook created (server dry run)",
		"serviceaccount/digester-webhook unchanged (server dry run)",
	}
	if diff := cmp.Diff(want, applied); diff != "" {
		t.Errorf("kubectl apply --dry-run=server (-want +got):\n%s", diff)
	}

	kustomize := filepath.Join(repoRoot, "bin", "kustomize")
	built, err := exec.Command(kustomize, "build", pkg).Output()
	if err != nil {
		t.Fatalf("%s build (run ./scripts/install-deps.sh if it is missing): %v", kustomize, err)
	}
	out := mustKubectl(t, string(built), "apply", "--dry-run=server", "-f", "-")
	if n := strings.Count(out, "(server dry run)"); n != 13 {
		t.Errorf("kustomize build applied %d objects, want 13:\n%s", n, out)
	}
}

// A registry that demands a password: Pods and Deployments in a labelled namespace are pinned with
// the pull secret they name or their ServiceAccount names, read by the webhook with no more than
// deploy/webhook's RBAC; a Pod without it is refused, even right after the digest was found with
// it; the password is in no output and no log line.
func TestPullSecrets(t *testing.T) {
	const password = "s3cret-pull-password-e2e"
	var mu sync.Mutex
	armed := false
	private := registrytest.New(registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			on := armed
			mu.Unlock()
			if user, pass, ok := r.BasicAuth(); on && (!ok || user != "robot" || pass != password) {
				w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	defer private.Close()
	d, err := private.PushImage("team/app", "1", types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	armed = true
	mu.Unlock()
	app := private.Host + "/team/app:1"
	pinnedApp := app + "@" + d.String()

	url, log := startWebhookLog(t)
	namespace(t, "private", enabled)
	register(t, configuration(t, "digester", url, "Fail", nil), "private", func(img string) bool { return img == pinned("app:1") })
	var outputs []string
	run := func(stdin string, args ...string) (string, error) {
		out, stderr, err := kubectl(t, stdin, args...)
		outputs = append(outputs, out, stderr)
		return stderr, err
	}
	if _, err := run("", "create", "secret", "docker-registry", "regcred", "-n", "private",
		"--docker-server="+private.Host, "--docker-username=robot", "--docker-password="+password); err != nil {
		t.Fatal(err)
	}
	if _, err := run("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: builder, namespace: private}\nimagePullSecrets: [{name: regcred}]\n", "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}

	withSecret := strings.Replace(podYAML("with-secret", "private", nil, app), "spec:\n", "spec:\n  imagePullSecrets: [{name: regcred}]\n", 1)
	if _, err := run(withSecret, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	// Refused although the webhook found this digest a moment ago, with the secret.
	stderr, err := run(podYAML("anonymous", "private", nil, app), "apply", "-f", "-")
	want := `denied the request: digester could not pin the images of Pod private/anonymous: spec.containers[0].image (container "c0"): cannot pin ` + app + `: `
	if err == nil || !strings.Contains(stderr, want) || !strings.Contains(stderr, "unauthorized") ||
		!strings.Contains(stderr, "(credentials tried: the pod spec's imagePullSecrets, its ServiceAccount's, then the webhook's own)") {
		t.Errorf("a Pod without the pull secret: err %v, stderr:\n%s\nwant a denial containing\n%s\nand \"unauthorized\"", err, stderr, want)
	}
	if _, err := run(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: via-sa, namespace: private}
spec:
  selector: {matchLabels: {app: via-sa}}
  template:
    metadata: {labels: {app: via-sa}}
    spec:
      serviceAccountName: builder
      containers: [{name: app, image: %s}]
`, app), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	got := []string{
		images(t, "pod", "private", "with-secret", "{.spec.containers[*].image}"),
		images(t, "deployment", "private", "via-sa", "{.spec.template.spec.containers[*].image}"),
	}
	if diff := cmp.Diff([]string{pinnedApp, pinnedApp}, got); diff != "" {
		t.Errorf("stored images (-want +got):\n%s", diff)
	}
	logged, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	encoded := base64.StdEncoding.EncodeToString([]byte("robot:" + password))
	for _, out := range append(outputs, string(logged)) {
		if strings.Contains(out, password) || strings.Contains(out, encoded) {
			t.Errorf("the password appears in output or the webhook's log:\n%s", out)
		}
	}
}

// The webhook reads the settings file digester pin reads (--config), and every setting as a flag of
// the same name and syntax: a mirror with a path prefix answers for a registry the cluster cannot
// reach, multi-arch tags pin to their linux/arm64 images (the mirrored one too), and --skip-prefixes, colon-separated as
// google/k8s-digester and the command line take it, leaves Docker Hub images written short alone.
func TestSharedSettings(t *testing.T) {
	for _, repo := range []string{"mirror/team/app", "multi"} {
		if _, err := reg.PushIndex(repo, "1", types.OCIImageIndex); err != nil {
			t.Fatal(err)
		}
	}
	app, arm64 := platformImage(t, "mirror/team/app:1", "arm64"), platformImage(t, "multi:1", "arm64")
	file := filepath.Join(t.TempDir(), "digester.yaml")
	config := fmt.Sprintf(`apiVersion: fn.kpt.dev/v1alpha1
kind: Digester
metadata: {name: digester}
registryMirrors:
  upstream.invalid: [%s/mirror]
platform: linux/arm64
`, reg.Host)
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	url := startWebhook(t, "--config="+file, "--skip-prefixes=docker.io/:quay.io/")
	namespace(t, "settings", enabled)
	registerProbe(t, configuration(t, "digester-settings", url, "Fail", nil), "settings", image("multi:1"),
		func(img string) bool { return img == image("multi:1@"+arm64) })

	mustKubectl(t, podYAML("web", "settings", nil, "upstream.invalid/team/app:1", image("multi:1"), "nginx:1.27", "quay.io/team/tool:2"), "apply", "-f", "-")
	got := images(t, "pod", "settings", "web", "{.spec.containers[*].image}")
	want := strings.Join([]string{"upstream.invalid/team/app:1@" + app, image("multi:1@" + arm64), "nginx:1.27", "quay.io/team/tool:2"}, " ")
	if got != want {
		t.Errorf("stored images:\n got %s\nwant %s", got, want)
	}
}

// platformImage is the digest of the arch image of the index registrytest.PushIndex pushes as ref.
func platformImage(t *testing.T, ref, arch string) string {
	t.Helper()
	idx, err := registrytest.Index(types.OCIImageIndex, ref)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.Architecture == arch {
			return d.Digest.String()
		}
	}
	t.Fatalf("%s has no %s image", ref, arch)
	return ""
}
