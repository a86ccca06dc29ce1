package webhook_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/digester/digester/pin"
	"github.com/digester/digester/webhook"
)

// BenchmarkAdmitCached is one admission of a Pod whose image is in the cache: the webhook's own
// cost, without TLS or HTTP.
func BenchmarkAdmitCached(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, pin.OnErrorFail)
	body := review("CREATE", "Pod", podJSON("nginx:1.27", "ghcr.io/acme/sidecar:1"), "")
	post(t, f.h, body)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body)
		}
	}
}
