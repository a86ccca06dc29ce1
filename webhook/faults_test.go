package webhook_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/config"
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
	f := newFixture(t, "fail")
	m := webhook.NewMetrics(f.cache)
	h := webhook.NewHandler(config.Default(), f.cache, webhook.WithMetrics(m))
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
			cfg := config.Default()
			cfg.OnError = onError
			var logs bytes.Buffer
			h := webhook.NewHandler(cfg, unreachable{}, webhook.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
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
