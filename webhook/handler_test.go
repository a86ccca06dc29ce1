package webhook_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/internal/faultregistry"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

// fixture is a handler in front of an in-process registry serving nginx:1.27 and
// ghcr.io/acme/sidecar:1 (any registry host is served by it).
type fixture struct {
	reg     *registrytest.Registry
	cache   *digestcache.Cache
	h       *webhook.Handler
	digests map[string]string
}

func newFixture(t *testing.T, onError pin.OnError, opts ...registrytest.Option) *fixture {
	t.Helper()
	reg := registrytest.New(append([]registrytest.Option{registrytest.WithTLS()}, opts...)...)
	t.Cleanup(reg.Close)
	digests, err := reg.PushImages(types.OCIManifestSchema1, "nginx:1.27", "ghcr.io/acme/sidecar:1")
	if err != nil {
		t.Fatal(err)
	}
	cache := digestcache.New(resolver.New(resolver.WithTransport(reg.Transport()), resolver.WithRetries(1, 0, 0)))
	return &fixture{reg: reg, cache: cache, h: webhook.NewHandler(cache, pin.Options{OnError: onError}), digests: digests}
}

// review is an AdmissionReview as the API server sends it.
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

func podJSON(images ...string) string {
	var cs []string
	for i, img := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, img))
	}
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"ns"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`
}

// answer is what the API server reads of a response.
type answer struct {
	UID      string
	Allowed  bool
	Message  string
	Patch    []map[string]string
	Warnings []string
}

func post(t *testing.T, h http.Handler, body string) (int, answer, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		return rec.Code, answer{}, rec.Body.String()
	}
	var out struct {
		APIVersion, Kind string
		Response         struct {
			UID       string
			Allowed   bool
			Status    struct{ Message string }
			Patch     []byte
			PatchType string
			Warnings  []string
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not JSON: %v\n%s", err, rec.Body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
		t.Fatalf("response is %s %s, want admission.k8s.io/v1 AdmissionReview", out.APIVersion, out.Kind)
	}
	a := answer{UID: out.Response.UID, Allowed: out.Response.Allowed, Message: out.Response.Status.Message, Warnings: out.Response.Warnings}
	if len(out.Response.Patch) > 0 {
		if out.Response.PatchType != "JSONPatch" {
			t.Errorf("patchType %q, want JSONPatch", out.Response.PatchType)
		}
		if err := json.Unmarshal(out.Response.Patch, &a.Patch); err != nil {
			t.Fatalf("patch is not a JSONPatch: %v", err)
		}
	}
	return rec.Code, a, ""
}

func replace(path, value string) map[string]string {
	return map[string]string{"op": "replace", "path": path, "value": value}
}

func TestAdmit(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	nginx := "nginx:1.27@" + f.digests["nginx:1.27"]
	sidecar := "ghcr.io/acme/sidecar:1@" + f.digests["ghcr.io/acme/sidecar:1"]
	deployment := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"metadata":{"labels":{"a/b~c":"x"}},"spec":{"initContainers":[{"name":"init","image":"ghcr.io/acme/sidecar:1"}],"containers":[{"name":"app","image":"nginx:1.27","ports":[{"containerPort":80}],"tty":true,"x":null,"f":1.5}]}}}}`
	tests := []struct {
		name     string
		body     string
		want     answer
		requests int // manifest requests the registry saw
	}{{
		name:     "CREATE pins only the unpinned image",
		body:     review("CREATE", "Pod", podJSON("nginx:1.27", sidecar), ""),
		want:     answer{UID: "u-1", Allowed: true, Patch: []map[string]string{replace("/spec/containers/0/image", nginx)}},
		requests: 1,
	}, {
		name:     "Deployment pinned at its template",
		body:     review("CREATE", "Deployment", deployment, ""),
		want:     answer{UID: "u-1", Allowed: true, Patch: []map[string]string{replace("/spec/template/spec/containers/0/image", nginx), replace("/spec/template/spec/initContainers/0/image", sidecar)}},
		requests: 1, // nginx is in the cache since the first case; the sidecar is new
	}, {
		name: "already pinned: allowed, no patch",
		body: review("CREATE", "Pod", podJSON(nginx), ""),
		want: answer{UID: "u-1", Allowed: true},
	}, {
		name: "DELETE is allowed untouched",
		body: review("DELETE", "Pod", "", podJSON("nginx:1.28")),
		want: answer{UID: "u-1", Allowed: true},
	}, {
		name: "CONNECT is allowed untouched",
		body: review("CONNECT", "Pod", `{"kind":"PodExecOptions","container":"nginx:9"}`, ""),
		want: answer{UID: "u-1", Allowed: true},
	}, {
		name: "UPDATE leaving unpinned images as they were costs no lookup",
		body: review("UPDATE", "Pod", podJSON("nginx:1.28", "nginx:1.29"), podJSON("nginx:1.28", "nginx:1.29")),
		want: answer{UID: "u-1", Allowed: true},
	}, {
		name: "UPDATE pins the image it changes, and only that one",
		body: review("UPDATE", "Pod", podJSON("nginx:1.28", "nginx:1.27"), podJSON("nginx:1.28", "nginx:1.26")),
		want: answer{UID: "u-1", Allowed: true, Patch: []map[string]string{replace("/spec/containers/1/image", nginx)}},
	}, {
		name: "object that is not a JSON object is denied, naming it",
		body: review("CREATE", "Pod", `["a"]`, ""),
		want: answer{UID: "u-1", Message: "digester: Pod ns/web: object is a list, want a JSON object"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.reg.Reset()
			code, got, body := post(t, f.h, tc.body)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if n := f.reg.Count("", "manifest"); n != tc.requests {
				t.Errorf("registry saw %d manifest requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestAdmitFailurePolicy(t *testing.T) {
	for _, tc := range []struct {
		onError pin.OnError
		want    answer
	}{{
		onError: pin.OnErrorFail,
		want: answer{UID: "u-1", Message: `digester could not pin the images of Pod ns/web: spec.containers[1].image (container "c1"): cannot pin ghcr.io/acme/sidecar:9: ` +
			`tag not found: "9" in repository acme/sidecar on registry ghcr.io`},
	}, {
		onError: pin.OnErrorWarn,
		want:    answer{UID: "u-1", Allowed: true, Warnings: []string{`digester: spec.containers[1].image (container "c1"): cannot pin ghcr.io/acme/sidecar:9: tag not found: "9" in repository acme/sidecar on registry ghcr.io`}},
	}} {
		t.Run(fmt.Sprint(tc.onError), func(t *testing.T) {
			f := newFixture(t, tc.onError)
			if tc.onError == pin.OnErrorWarn {
				tc.want.Patch = []map[string]string{replace("/spec/containers/0/image", "nginx:1.27@"+f.digests["nginx:1.27"])}
			}
			_, got, _ := post(t, f.h, review("CREATE", "Pod", podJSON("nginx:1.27", "ghcr.io/acme/sidecar:9"), ""))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// A registry that does not answer within the admission's deadline: the admission is answered
// (denied, saying so) when the deadline passes, not when the API server gives up.
//
// The registry hangs for longer than the deadline and then answers, so that a Handler that waited
// past its deadline would say what the registry answered, not that the deadline passed. Unset, the
// deadline is DefaultDeadline.
func TestAdmitDeadline(t *testing.T) {
	for _, tc := range []struct {
		deadline, hang time.Duration
	}{
		{200 * time.Millisecond, 2 * time.Second},
		{0, webhook.DefaultDeadline + 2*time.Second},
	} {
		release := make(chan struct{})
		time.AfterFunc(tc.hang, func() { close(release) })
		reg := registrytest.New(registrytest.WithTLS(), registrytest.WithMiddleware(faultregistry.Always(faultregistry.Manifest(""), faultregistry.Hang(release, nil))))
		h := webhook.NewHandler(digestcache.New(resolver.New(resolver.WithTransport(reg.Transport()), resolver.WithRetries(1, 0, 0))), pin.Options{Deadline: tc.deadline})
		_, got, _ := post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27"), ""))
		if got.Allowed || !strings.Contains(got.Message, `spec.containers[0].image (container "c0"): cannot pin nginx:1.27`) || !strings.Contains(got.Message, "deadline") {
			t.Errorf("deadline %s: answer %+v, want a denial naming the container, the image and the deadline", tc.deadline, got)
		}
		reg.Close()
	}
}

func TestRejectMalformed(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	h := webhook.NewHandler(f.cache, pin.Options{}, webhook.WithMaxRequestBytes(2000))
	for _, tc := range []struct {
		name, method, body string
		want               int
		msg                string
	}{
		{"not JSON", http.MethodPost, "{", http.StatusBadRequest, "request body is not an AdmissionReview: unexpected end of JSON input\n"},
		{"wrong kind", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}}`, http.StatusBadRequest, "want an admission.k8s.io/v1 AdmissionReview with a request, got apiVersion \"admission.k8s.io/v1\" kind \"Pod\"\n"},
		{"v1beta1", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}`, http.StatusBadRequest, "want an admission.k8s.io/v1 AdmissionReview with a request, got apiVersion \"admission.k8s.io/v1beta1\" kind \"AdmissionReview\"\n"},
		{"no request", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, http.StatusBadRequest, "want an admission.k8s.io/v1 AdmissionReview with a request, got apiVersion \"admission.k8s.io/v1\" kind \"AdmissionReview\"\n"},
		{"long kind, quoted in part", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1","kind":"` + strings.Repeat("x", 1500) + `"}`, http.StatusBadRequest, "want an admission.k8s.io/v1 AdmissionReview with a request, got apiVersion \"admission.k8s.io/v1\" kind \"" + strings.Repeat("x", 64) + "\"\n"},
		{"oversized", http.MethodPost, review("CREATE", "Pod", podJSON(strings.Repeat("a", 2000)), ""), http.StatusBadRequest, "request body is over 2000 bytes\n"},
		{"exactly the bound", http.MethodPost, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}` + strings.Repeat(" ", 2000-61), http.StatusBadRequest, "want an admission.k8s.io/v1 AdmissionReview with a request, got apiVersion \"admission.k8s.io/v1\" kind \"AdmissionReview\"\n"},
		{"GET", http.MethodGet, "", http.StatusMethodNotAllowed, "POST an AdmissionReview\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, webhook.MutatePath, strings.NewReader(tc.body)))
			if rec.Code != tc.want || rec.Body.String() != tc.msg {
				t.Errorf("got %d %q, want %d %q", rec.Code, rec.Body.String(), tc.want, tc.msg)
			}
		})
	}
	if n := f.reg.Count("", ""); n != 0 {
		t.Errorf("registry saw %d requests, want none", n)
	}
	// An empty body claims no memory for reviews (one of unknown length is reckoned at the bound).
	h = webhook.NewHandler(f.cache, pin.Options{}, webhook.WithMaxRequestBytes(2000), webhook.WithMaxReviewMemory(100))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader("")))
	if want := "request body is not an AdmissionReview: unexpected end of JSON input\n"; rec.Code != http.StatusBadRequest || rec.Body.String() != want {
		t.Errorf("empty body: %d %q, want 400 %q", rec.Code, rec.Body.String(), want)
	}
}

// A body of no stated length (chunked) is read up to the bound, as one that states it.
func TestUnstatedLength(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	h := webhook.NewHandler(f.cache, pin.Options{}, webhook.WithMaxRequestBytes(2000))
	for _, tc := range []struct {
		body string
		want int
	}{
		{review("CREATE", "Pod", podJSON("nginx:1.27"), ""), http.StatusOK},
		{review("CREATE", "Pod", podJSON(strings.Repeat("a", 2000)), ""), http.StatusBadRequest},
	} {
		req := httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(tc.body))
		req.ContentLength = -1
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%d bytes: %d %s, want %d", len(tc.body), rec.Code, rec.Body, tc.want)
		}
	}
}

// 100 admissions at once of one image nobody has looked up: one lookup, one manifest request.
func TestConcurrentAdmissionsShareOneLookup(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	want := []map[string]string{replace("/spec/containers/0/image", "nginx:1.27@"+f.digests["nginx:1.27"])}
	body := review("CREATE", "Pod", podJSON("nginx:1.27"), "")
	var wg sync.WaitGroup
	answers := make([]answer, 100)
	for i := range answers {
		wg.Go(func() { _, answers[i], _ = post(t, f.h, body) })
	}
	wg.Wait()
	for i, a := range answers {
		if diff := cmp.Diff(want, a.Patch); diff != "" {
			t.Fatalf("admission %d: patch (-want +got):\n%s", i, diff)
		}
	}
	if n := f.reg.Count("", "manifest"); n != 1 {
		t.Errorf("registry saw %d manifest requests, want 1", n)
	}
	if n := f.cache.Lookups(); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	m := webhook.NewMetrics(f.cache)
	h := webhook.NewHandler(f.cache, pin.Options{}, webhook.WithMetrics(m))
	post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27"), ""))
	post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27"), ""))
	post(t, h, review("DELETE", "Pod", "", ""))
	post(t, h, "{")
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, webhook.MetricsPath, nil))
	var got []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "digester_webhook_") && !strings.Contains(l, "_bucket") && !strings.Contains(l, "_sum") {
			got = append(got, l)
		}
	}
	want := []string{
		`digester_webhook_admission_duration_seconds_count 3`,
		`digester_webhook_admissions_total{operation="CREATE",outcome="pinned"} 2`,
		`digester_webhook_admissions_total{operation="DELETE",outcome="ignored"} 1`,
		`digester_webhook_cache_hits_total 1`,
		`digester_webhook_digests_total{source="cache"} 1`, // the second Pod's
		`digester_webhook_digests_total{source="lock"} 0`,
		`digester_webhook_digests_total{source="registry"} 1`, // the first Pod's
		`digester_webhook_digests_total{source="stale"} 0`,
		`digester_webhook_lookups_total 1`,
		`digester_webhook_pinned_fields_total 2`,
		`digester_webhook_registry_requests_total 2`, // the ping and one HEAD
		`digester_webhook_rejected_requests_total 1`,
		`digester_webhook_throttled_requests_total 0`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
