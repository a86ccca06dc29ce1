package webhook_test

import (
	"crypto/rand"
	"net/http"
	"net/http/httptest"
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
