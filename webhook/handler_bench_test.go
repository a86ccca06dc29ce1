package webhook_test

import (
	"fmt"
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

// BenchmarkAdmitLargePod is one admission of a Pod of 1,000 containers of 100 environment
// variables (4 MB), its images pinned already: the cost of reading a large object.
func BenchmarkAdmitLargePod(b *testing.B) {
	t := &testing.T{}
	f := newFixture(t, pin.OnErrorFail)
	body := review("CREATE", "Pod", bigPod(1000, func(i int) string {
		return fmt.Sprintf("ghcr.io/acme/app%d:1@sha256:%064d", i, i)
	}), "")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body)
		}
	}
}
