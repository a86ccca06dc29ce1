package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"log/slog"

	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

const deploymentJSON = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"ns"},"spec":{"template":{"spec":{"containers":[{"name":"c0","image":"nginx:1.27"}]}}}}`

// TestScope: under pods, only Pods are pinned (their ephemeral containers come as Pods); every
// other object is admitted as it is, with no lookup, whatever the registration sends.
func TestScope(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	crd := strings.Replace(review("CREATE", "Runner", `{"apiVersion":"example.com/v1","kind":"Runner","spec":{"template":{"spec":{"containers":[{"name":"c0","image":"nginx:1.27"}]}}}}`, ""),
		`"group":""`, `"group":"example.com"`, 1)
	podOtherGroup := strings.Replace(review("CREATE", "Pod", podJSON("nginx:1.27"), ""), `"group":""`, `"group":"example.com"`, 1)
	for _, tc := range []struct {
		scope  webhook.Scope
		body   string
		pinned bool
	}{
		{webhook.ScopeWorkloads, review("CREATE", "Deployment", deploymentJSON, ""), true},
		{webhook.ScopeWorkloads, review("CREATE", "Pod", podJSON("nginx:1.27"), ""), true},
		{webhook.ScopeWorkloads, crd, true},
		{webhook.ScopePods, review("CREATE", "Deployment", deploymentJSON, ""), false},
		{webhook.ScopePods, crd, false},
		{webhook.ScopePods, podOtherGroup, false},
		{webhook.ScopePods, review("CREATE", "Pod", podJSON("nginx:1.27"), ""), true},
		{webhook.ScopePods, review("UPDATE", "Pod", podJSON("nginx:1.27", "ghcr.io/acme/sidecar:1"), podJSON("nginx:1.27")), true},
	} {
		h := webhook.NewHandler(f.cache, pin.Options{}, webhook.WithScope(tc.scope))
		code, a, body := post(t, h, tc.body)
		if code != http.StatusOK || !a.Allowed {
			t.Fatalf("%s: %d %+v %s", tc.scope, code, a, body)
		}
		if got := len(a.Patch) > 0; got != tc.pinned {
			t.Errorf("scope %s, %.80s: pinned %v, want %v (%v)", tc.scope, tc.body[strings.Index(tc.body, `"kind":{`):], got, tc.pinned, a.Patch)
		}
	}
}

func TestParseScope(t *testing.T) {
	for _, s := range []string{"pods", "workloads"} {
		if got, err := webhook.ParseScope(s); err != nil || string(got) != s {
			t.Errorf("ParseScope(%q) = %q, %v", s, got, err)
		}
	}
	if _, err := webhook.ParseScope("Pods"); err == nil || err.Error() != `scope "Pods": want workloads or pods` {
		t.Errorf("ParseScope(Pods) = %v", err)
	}
}

// logLines returns the JSON log lines in buf with the message msg.
func logLines(t *testing.T, buf *bytes.Buffer, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, l)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

type logged struct {
	Image, Digest, Source, From string
}

func images(t *testing.T, line map[string]any) []logged {
	t.Helper()
	b, _ := json.Marshal(line["images"])
	var out []logged
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("images %s: %v", b, err)
	}
	return out
}

// TestDecisionLog: each admission that pins or denies is logged once, with its images, where each
// digest came from (lock, cache, registry) and its duration in milliseconds; the metrics count
// digests by source.
func TestDecisionLog(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	const locked = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	cache := digestcache.New(resolver.New(resolver.WithTransport(f.reg.Transport()), resolver.WithRetries(1, 0, 0)),
		digestcache.WithLock(func(ref string) (string, string, bool) {
			return locked, "ci/digests", ref == "ghcr.io/acme/sidecar:1"
		}))
	var buf bytes.Buffer
	m := webhook.NewMetrics(cache)
	h := webhook.NewHandler(cache, pin.Options{}, webhook.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))), webhook.WithMetrics(m))
	post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27", "ghcr.io/acme/sidecar:1"), ""))
	post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27"), ""))
	post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27", "nginx:9.9"), "")) // 9.9 does not exist: denied

	pinned := logLines(t, &buf, "pinned")
	denied := logLines(t, &buf, "denied")
	if len(pinned) != 2 || len(denied) != 1 {
		t.Fatalf("%d pinned and %d denied lines, want 2 and 1:\n%s", len(pinned), len(denied), buf.String())
	}
	byImage := cmpopts.SortSlices(func(a, b logged) bool { return a.Image < b.Image })
	for i, tc := range []struct {
		line map[string]any
		want []logged
	}{
		{pinned[0], []logged{{"nginx:1.27", f.digests["nginx:1.27"], "registry", ""}, {"ghcr.io/acme/sidecar:1", locked, "lock", "ci/digests"}}},
		{pinned[1], []logged{{"nginx:1.27", f.digests["nginx:1.27"], "cache", ""}}},
		{denied[0], []logged{{"nginx:1.27", f.digests["nginx:1.27"], "cache", ""}}}, // failures are in "errors"
	} {
		if diff := cmp.Diff(tc.want, images(t, tc.line), byImage); diff != "" {
			t.Errorf("line %d: images (-want +got):\n%s", i, diff)
		}
		ms, ok := tc.line["durationMs"].(float64)
		if !ok || ms < 0 || ms > 60_000 {
			t.Errorf("line %d: durationMs %v, want milliseconds", i, tc.line["durationMs"])
		}
	}
	if got := metric(t, m, `digester_webhook_digests_total{source="cache"}`); got != "2" {
		t.Errorf("cache digests %s, want 2", got)
	}
	for src, want := range map[string]string{"lock": "1", "registry": "1", "stale": "0"} {
		if got := metric(t, m, `digester_webhook_digests_total{source="`+src+`"}`); got != want {
			t.Errorf("%s digests %s, want %s", src, got, want)
		}
	}
}

// metric returns the value of the series named name (with its labels) in m's exposition.
func metric(t *testing.T, m *webhook.Metrics, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, webhook.MetricsPath, nil))
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in\n%s", name, rec.Body)
	return ""
}

// TestStaleIfError: with the registry gone, an image resolved within the window is pinned to its
// digest, with a warning naming it and why; one never resolved is still refused.
func TestStaleIfError(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	cache := digestcache.New(resolver.New(resolver.WithTransport(f.reg.Transport()), resolver.WithRetries(1, 0, 0)),
		digestcache.WithTTL(time.Nanosecond), digestcache.WithStaleIfError(time.Hour))
	m := webhook.NewMetrics(cache)
	var buf bytes.Buffer
	h := webhook.NewHandler(cache, pin.Options{}, webhook.WithMetrics(m), webhook.WithLogger(slog.New(slog.NewJSONHandler(&buf, nil))))
	post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27"), ""))
	f.reg.Close()
	buf.Reset()

	_, a, _ := post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27"), ""))
	if diff := cmp.Diff([]map[string]string{replace("/spec/containers/0/image", "nginx:1.27@"+f.digests["nginx:1.27"])}, a.Patch); !a.Allowed || diff != "" {
		t.Errorf("allowed %v, patch (-want +got):\n%s", a.Allowed, diff)
	}
	if len(a.Warnings) != 1 || !strings.HasPrefix(a.Warnings[0], "digester: nginx:1.27: pinned to "+f.digests["nginx:1.27"]+", its digest ") ||
		!strings.Contains(a.Warnings[0], "because the registry gave no answer now (stale-if-error)") {
		t.Errorf("warnings %q, want one saying nginx:1.27 was pinned stale", a.Warnings)
	}
	if got := metric(t, m, `digester_webhook_digests_total{source="stale"}`); got != "1" {
		t.Errorf("stale digests %s, want 1", got)
	}
	// One log line for the admission: it pinned, and warned.
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d log lines for one admission, want 1:\n%s", n, buf.String())
	}
	lines := logLines(t, &buf, "pinned, with warnings")
	if len(lines) != 1 {
		t.Fatalf("no 'pinned, with warnings' line:\n%s", buf.String())
	}
	if diff := cmp.Diff([]logged{{"nginx:1.27", f.digests["nginx:1.27"], "stale", ""}}, images(t, lines[0])); diff != "" {
		t.Errorf("images logged (-want +got):\n%s", diff)
	}
	_, a, _ = post(t, h, review("CREATE", "Pod", podJSON("ghcr.io/acme/sidecar:1"), ""))
	if a.Allowed || !strings.Contains(a.Message, "ghcr.io/acme/sidecar:1") {
		t.Errorf("an image never resolved: allowed %v, %q; want denied, naming it", a.Allowed, a.Message)
	}
}

// pods records the pod specs whose credentials were asked for, and looks up through next.
type pods struct {
	next  pin.Lookup
	asked []webhook.Pod
}

func (p *pods) For(_ context.Context, pod webhook.Pod) (pin.Lookup, []string) {
	p.asked = append(p.asked, pod)
	return p.next, nil
}

// The credentials of a namespaced object's pod spec are asked for, once an image needs a lookup;
// a cluster-scoped object's are not (it runs no Pod of its own namespace).
func TestPodCredentialsAskedFor(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	p := &pods{next: f.cache}
	h := webhook.NewHandler(f.cache, pin.Options{}, webhook.WithPodCredentials(p))
	withSecrets := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"ns"},"spec":{"serviceAccountName":"builder","imagePullSecrets":[{"name":"regcred"}],"containers":[{"name":"c0","image":"nginx:1.27"}]}}`
	post(t, h, review("CREATE", "Pod", withSecrets, ""))
	clusterScoped := strings.Replace(review("CREATE", "Pod", podJSON("ghcr.io/acme/sidecar:1"), ""), `"namespace":"ns",`, "", 1)
	if _, a, _ := post(t, h, clusterScoped); len(a.Patch) != 1 {
		t.Errorf("cluster-scoped object: patch %v, want its image pinned", a.Patch)
	}
	want := []webhook.Pod{{Namespace: "ns", ServiceAccount: "builder", PullSecrets: []string{"regcred"}}}
	if diff := cmp.Diff(want, p.asked); diff != "" {
		t.Errorf("credentials asked for (-want +got):\n%s", diff)
	}
}

// An UPDATE that carries no oldObject is pinned as a CREATE.
func TestUpdateWithoutOldObject(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	_, a, _ := post(t, f.h, review("UPDATE", "Pod", podJSON("nginx:1.27"), ""))
	if diff := cmp.Diff([]map[string]string{replace("/spec/containers/0/image", "nginx:1.27@"+f.digests["nginx:1.27"])}, a.Patch); !a.Allowed || diff != "" {
		t.Errorf("allowed %v %q, patch (-want +got):\n%s", a.Allowed, a.Message, diff)
	}
}

// A review is reckoned at three times its size, whatever its few JSON values: one of 6 KB, mostly
// one long annotation, does not fit in 10 KB for reviews.
func TestReviewReckonedBySize(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	h := webhook.NewHandler(f.cache, pin.Options{}, webhook.WithMaxReviewMemory(10_000))
	body := review("CREATE", "Pod", strings.Replace(podJSON("nginx:1.27"), `"namespace":"ns"`, `"namespace":"ns","annotations":{"note":"`+strings.Repeat("x", 6000)+`"}`, 1), "")
	if code, _, msg := post(t, h, body); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte review: %d %q, want 413", len(body), code, msg)
	}
}
