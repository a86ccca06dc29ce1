package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/podcreds"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

// TestPodCredentials: the handler wired to a podcreds.Pool as run wires it (with a fake API client
// here; e2e/webhook has the real API server). An image on a registry that demands a password is
// looked up with the pod spec's pull secrets or its ServiceAccount's, wherever the kind keeps its
// pod spec; a Pod without them is denied even after another Pod's credentials found the digest (the
// cache is per credentials), and the password appears in no answer.
func TestPodCredentials(t *testing.T) {
	const host, password = "private.example", "s3cret-pull-password"
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("robot:"+password))
	var mu sync.Mutex
	armed := false
	reg := registrytest.New(registrytest.WithTLS(), registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			on := armed
			mu.Unlock()
			if on && r.Host == host && r.Header.Get("Authorization") != want {
				w.Header().Set("WWW-Authenticate", `Basic realm="private"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	t.Cleanup(reg.Close)
	digests, err := reg.PushImages(types.OCIManifestSchema1, host+"/team/app:1", "nginx:1.27")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	armed = true
	mu.Unlock()
	app := host + "/team/app:1"
	pinnedApp := app + "@" + digests[app]

	regcred := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "regcred"},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: fmt.Appendf(nil, `{"auths":{%q:{"username":"robot","password":%q}}}`,
			host, password)},
	}
	client := fake.NewClientset(regcred,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "default"}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "builder"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}})
	opts := []resolver.Option{resolver.WithTransport(reg.Transport()), resolver.WithRetries(1, 0, 0)}
	base := digestcache.New(resolver.New(append(opts, resolver.WithKeychain(authn.NewMultiKeychain()))...))
	pool := podcreds.NewPool(podcreds.NewReader(client), base, func(kc authn.Keychain) podcreds.Lookup {
		return digestcache.New(resolver.New(append(opts, resolver.WithKeychain(kc))...))
	})
	h := webhook.NewHandler(base, pin.Options{}, webhook.WithPodCredentials(pool))

	podSpec := func(extra string, images ...string) string {
		var cs []string
		for i, img := range images {
			cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, img))
		}
		return `{` + extra + `"containers":[` + strings.Join(cs, ",") + `]}`
	}
	withSecret := `"imagePullSecrets":[{"name":"regcred"}],`
	object := func(kind, specPath, spec string) string {
		// specPath is where the kind keeps its pod spec, outermost key first.
		keys := strings.Split(specPath, ".")
		for i := len(keys) - 1; i >= 0; i-- {
			spec = fmt.Sprintf(`{%q:%s}`, keys[i], spec)
		}
		return fmt.Sprintf(`{"apiVersion":"v1","kind":%q,"metadata":{"name":"web","namespace":"ns"},%s`, kind, spec[1:])
	}
	noLookup := "digester could not pin the images of Pod ns/web: spec.containers[0].image (container \"c0\"): cannot pin " + app
	tests := []struct {
		name     string
		body     string
		allowed  bool
		patch    []map[string]string
		message  string // a prefix of the denial
		warnings []string
	}{{
		name:    "a Pod with the pull secret",
		body:    review("CREATE", "Pod", object("Pod", "spec", podSpec(withSecret, app, "nginx:1.27")), ""),
		allowed: true,
		patch:   []map[string]string{replace("/spec/containers/0/image", pinnedApp), replace("/spec/containers/1/image", "nginx:1.27@"+digests["nginx:1.27"])},
	}, {
		name:    "a Pod without it, after the digest was found with it, is still denied",
		body:    review("CREATE", "Pod", object("Pod", "spec", podSpec("", app)), ""),
		message: noLookup,
	}, {
		name:    "a Pod whose ServiceAccount holds the pull secret",
		body:    review("CREATE", "Pod", object("Pod", "spec", podSpec(`"serviceAccountName":"builder",`, app)), ""),
		allowed: true,
		patch:   []map[string]string{replace("/spec/containers/0/image", pinnedApp)},
	}, {
		name:    "a Deployment's template with the pull secret",
		body:    review("CREATE", "Deployment", object("Deployment", "spec.template.spec", podSpec(withSecret, app)), ""),
		allowed: true,
		patch:   []map[string]string{replace("/spec/template/spec/containers/0/image", pinnedApp)},
	}, {
		name:    "a CronJob's job template run as the ServiceAccount",
		body:    review("CREATE", "CronJob", object("CronJob", "spec.jobTemplate.spec.template.spec", podSpec(`"serviceAccountName":"builder",`, app)), ""),
		allowed: true,
		patch:   []map[string]string{replace("/spec/jobTemplate/spec/template/spec/containers/0/image", pinnedApp)},
	}, {
		name:    "a missing pull secret is named in the denial",
		body:    review("CREATE", "Pod", object("Pod", "spec", podSpec(`"imagePullSecrets":[{"name":"typo"}],`, app)), ""),
		message: noLookup,
	}, {
		name:     "a missing pull secret is a warning when the images are pinned anyway",
		body:     review("CREATE", "Pod", object("Pod", "spec", podSpec(`"imagePullSecrets":[{"name":"typo"},{"name":"regcred"}],`, app)), ""),
		allowed:  true,
		patch:    []map[string]string{replace("/spec/containers/0/image", pinnedApp)},
		warnings: []string{"digester: pull secret ns/typo not found"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, got, body := post(t, h, tc.body)
			if code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", code, body)
			}
			if got.Allowed != tc.allowed || !strings.HasPrefix(got.Message, tc.message) {
				t.Errorf("allowed %v, message %q; want allowed %v, message starting %q", got.Allowed, got.Message, tc.allowed, tc.message)
			}
			if diff := cmp.Diff(tc.patch, got.Patch); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warnings, got.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if strings.Contains(fmt.Sprint(got), password) {
				t.Errorf("the answer holds the password: %+v", got)
			}
		})
	}
	if got := messageOf(t, h, review("CREATE", "Pod", object("Pod", "spec", podSpec(`"imagePullSecrets":[{"name":"typo"}],`, app)), "")); !strings.HasSuffix(got, "(credentials: pull secret ns/typo not found)") {
		t.Errorf("denial %q does not end naming the missing secret", got)
	}

	if got := messageOf(t, h, review("CREATE", "Pod", object("Pod", "spec", podSpec("", app)), "")); !strings.HasSuffix(got, "(credentials tried: the pod spec's imagePullSecrets, its ServiceAccount's, then the webhook's own)") {
		t.Errorf("denial %q does not say which credentials were tried", got)
	}

	// An UPDATE that leaves the images as they were reads no credentials.
	client.ClearActions()
	pod := object("Pod", "spec", podSpec(withSecret, app))
	if _, got, _ := post(t, h, review("UPDATE", "Pod", pod, pod)); !got.Allowed || got.Patch != nil {
		t.Errorf("UPDATE: %+v, want allowed, unchanged", got)
	}
	if n := len(client.Actions()); n != 0 {
		t.Errorf("an UPDATE that changed no image sent %d requests to the API server, want 0", n)
	}
}

// review is an AdmissionReview as the API server sends it, of object in namespace ns.
func review(op, kind, object, oldObject string) string {
	r := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":%q},"namespace":"ns","name":"web","operation":%q`, kind, op)
	if object != "" {
		r += `,"object":` + object
	}
	if oldObject != "" {
		r += `,"oldObject":` + oldObject
	}
	return r + "}}"
}

// answer is what the API server reads of a response.
type answer struct {
	Allowed  bool
	Message  string
	Patch    []map[string]string
	Warnings []string
}

// post sends body to h and returns the HTTP status, the answer, and the body when it is not 200.
func post(t *testing.T, h http.Handler, body string) (int, answer, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		return rec.Code, answer{}, rec.Body.String()
	}
	var out struct {
		Response struct {
			Allowed  bool
			Status   struct{ Message string }
			Patch    []byte
			Warnings []string
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, rec.Body)
	}
	a := answer{Allowed: out.Response.Allowed, Message: out.Response.Status.Message, Warnings: out.Response.Warnings}
	if len(out.Response.Patch) > 0 {
		if err := json.Unmarshal(out.Response.Patch, &a.Patch); err != nil {
			t.Fatalf("patch is not a JSONPatch: %v", err)
		}
	}
	return rec.Code, a, ""
}

func replace(path, value string) map[string]string {
	return map[string]string{"op": "replace", "path": path, "value": value}
}

func messageOf(t *testing.T, h http.Handler, body string) string {
	t.Helper()
	_, a, _ := post(t, h, body)
	return a.Message
}
