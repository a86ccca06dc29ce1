package webhook_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

// scrape returns the body of m's /metrics and its digester_webhook_admissions_total lines.
func scrape(t *testing.T, m *webhook.Metrics) (string, []string) {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, webhook.MetricsPath, nil))
	var admissions []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "digester_webhook_admissions_total{") {
			admissions = append(admissions, l)
		}
	}
	return rec.Body.String(), admissions
}

// Operations the API never sends (anyone who reaches the port can send them) fold into one label
// value: 1,000 random ones leave /metrics the size it was, where each used to add a series.
func TestMetricsOperationLabelIsClosed(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	m := webhook.NewMetrics(f.cache)
	h := webhook.NewHandler(f.cache, pin.Options{}, webhook.WithMetrics(m))
	post(t, h, review("DELETE", "Pod", "", ""))
	post(t, h, review("CONNECT", "Pod", "", ""))
	post(t, h, review("connect", "Pod", "", ""))
	before, _ := scrape(t, m)
	for range 1000 {
		post(t, h, review("OP-"+rand.Text(), "Pod", "", ""))
	}
	after, got := scrape(t, m)
	want := []string{
		`digester_webhook_admissions_total{operation="CONNECT",outcome="ignored"} 1`,
		`digester_webhook_admissions_total{operation="DELETE",outcome="ignored"} 1`,
		`digester_webhook_admissions_total{operation="other",outcome="ignored"} 1001`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("admissions (-want +got):\n%s", diff)
	}
	if grew := len(after) - len(before); grew > 1024 {
		t.Errorf("/metrics grew by %d bytes (from %d to %d) after 1,000 unknown operations, want at most 1 KB", grew, len(before), len(after))
	}
}

// A Pod of 1,000 images that cannot be pinned is denied (or warned about) in a few KB that list the
// first ten and count the rest, and logged likewise, instead of in a 226 KB message logged whole.
func TestManyFailuresAreCapped(t *testing.T) {
	var images []string
	for i := range 1000 {
		images = append(images, fmt.Sprintf("ghcr.io/acme/app%d:1", i))
	}
	body := review("CREATE", "Pod", podJSON(images...), "")
	failure := func(i int) string {
		return fmt.Sprintf(`spec.containers[%d].image (container "c%d"): cannot pin ghcr.io/acme/app%d:1: unreachable`, i, i, i)
	}
	var first10 []string
	for i := range 10 {
		first10 = append(first10, failure(i))
	}
	for _, onError := range []string{"fail", "warn"} {
		t.Run(onError, func(t *testing.T) {
			opts := pin.Options{OnError: pin.OnErrorFail}
			if onError == "warn" {
				opts.OnError = pin.OnErrorWarn
			}
			var logs bytes.Buffer
			h := webhook.NewHandler(unreachable{}, opts, webhook.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
			code, got, msg := post(t, h, body)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, msg)
			}
			var want answer
			if onError == "fail" {
				want = answer{UID: "u-1", Message: "digester could not pin the images of Pod ns/web: " + strings.Join(first10, "; ") + "; and 990 more"}
			} else {
				want = answer{UID: "u-1", Allowed: true}
				for _, f := range first10 {
					want.Warnings = append(want.Warnings, "digester: "+f)
				}
				want.Warnings = append(want.Warnings, "digester: and 990 more")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			size := len(got.Message)
			for _, w := range got.Warnings {
				size += len(w)
			}
			if size > 2048 {
				t.Errorf("message and warnings are %d bytes, want at most 2 KB", size)
			}
			count := map[string]string{"fail": `"failed":1000`, "warn": `"warned":1000`}[onError]
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			if len(lines) != 1 || len(lines[0]) > 2048 || !strings.Contains(lines[0], count) {
				t.Errorf("logged %d lines, the longest %d bytes, want one of at most 2 KB saying %s:\n%.1000s", len(lines), len(slices.MaxFunc(lines, func(a, b string) int { return len(a) - len(b) })), count, logs.String())
			}
		})
	}
}

// bigPod is a Pod of containers each with the image image(i) and 100 environment variables: 4 MB
// for 1,000 containers.
func bigPod(containers int, image func(i int) string) string {
	var cs []string
	for i := range containers {
		var env []string
		for j := range 100 {
			env = append(env, fmt.Sprintf(`{"name":"VAR_%d","value":"value-%d-%d"}`, j, i, j))
		}
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q,"env":[%s]}`, i, image(i), strings.Join(env, ",")))
	}
	return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"ns"},"spec":{"containers":[` + strings.Join(cs, ",") + `]}}`
}

// gate is a lookup that holds every lookup until release is closed, saying when the first arrives.
type gate struct {
	next     pin.Lookup
	once     sync.Once
	entered  chan struct{}
	released chan struct{}
}

func (g *gate) Resolve(ctx context.Context, refs []string) map[string]resolver.Result {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.released:
	case <-ctx.Done():
	}
	return g.next.Resolve(ctx, refs)
}

func (g *gate) Requests() int64 { return g.next.Requests() }

// serveRecorded posts body to h and returns the recorded answer.
func serveRecorded(h http.Handler, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(body)))
	return rec
}

// Large reviews beyond the memory for reviews in flight are answered 429 with Retry-After, at once,
// while one holds it; one at a time, all are admitted. (Eight Pod reviews of 4.2 MB at once took
// 2.4 GB.)
func TestReviewsBeyondMemoryAreThrottled(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	g := &gate{next: f.cache, entered: make(chan struct{}), released: make(chan struct{})}
	m := webhook.NewMetrics(f.cache)
	// A Pod of 100 containers of 100 variables: a review of 0.4 MB, reckoned at about 7 MB; the
	// memory takes one such review, not two.
	h := webhook.NewHandler(g, pin.Options{}, webhook.WithMaxReviewMemory(10<<20), webhook.WithMetrics(m))
	body := review("CREATE", "Pod", bigPod(100, func(int) string { return "nginx:1.27" }), "")
	small := review("CREATE", "Pod", podJSON("nginx:1.27"), "")
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- serveRecorded(h, body) }()
	<-g.entered // the first review holds its memory while it waits for its lookups

	type answer struct {
		Code       int
		RetryAfter string
		Body       string
	}
	var wg sync.WaitGroup
	got := make([]answer, 3)
	for i := range got {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second) // if let in, held by the gate
			defer cancel()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodPost, webhook.MutatePath, strings.NewReader(body)))
			got[i] = answer{rec.Code, rec.Header().Get("Retry-After"), rec.Body.String()}
		})
	}
	wg.Wait()
	busy := answer{http.StatusTooManyRequests, "1", "the webhook is busy with other reviews; retry\n"}
	if diff := cmp.Diff([]answer{busy, busy, busy}, got); diff != "" {
		t.Errorf("reviews beyond the memory (-want +got):\n%s", diff)
	}
	close(g.released)
	if rec := <-first; rec.Code != http.StatusOK {
		t.Errorf("the first review: %d %s", rec.Code, rec.Body)
	}
	for i := range 3 {
		if code, a, msg := post(t, h, body); code != http.StatusOK || len(a.Patch) != 100 {
			t.Errorf("review %d alone: %d, %d patches, %s", i, code, len(a.Patch), msg)
		}
	}
	if code, a, msg := post(t, h, small); code != http.StatusOK || len(a.Patch) != 1 {
		t.Errorf("a small review: %d, %d patches, %s", code, len(a.Patch), msg)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, webhook.MetricsPath, nil))
	if !strings.Contains(rec.Body.String(), "\ndigester_webhook_throttled_requests_total 3\n") {
		t.Errorf("metrics do not count 3 throttled requests:\n%s", rec.Body)
	}
}

// A review that alone needs more than the memory for reviews is answered 413, saying so; the same
// webhook admits smaller ones.
func TestReviewTooLargeForMemory(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	h := webhook.NewHandler(f.cache, pin.Options{}, webhook.WithMaxReviewMemory(4<<20))
	rec := serveRecorded(h, review("CREATE", "Pod", bigPod(100, func(int) string { return "nginx:1.27" }), ""))
	want := "the review needs more than the webhook's memory for reviews in flight (4 MiB); it has 4 MiB or more\n"
	if rec.Code != http.StatusRequestEntityTooLarge || rec.Body.String() != want {
		t.Errorf("got %d %q, want 413 %q", rec.Code, rec.Body, want)
	}
	if code, a, msg := post(t, h, review("CREATE", "Pod", podJSON("nginx:1.27"), "")); code != http.StatusOK || len(a.Patch) != 1 {
		t.Errorf("a small review: %d, %d patches, %s", code, len(a.Patch), msg)
	}
}
