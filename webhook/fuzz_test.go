package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

// unreachable fails every lookup, so the fuzzer exercises the handler without a registry.
type unreachable struct{}

func (unreachable) Resolve(_ context.Context, refs []string) map[string]resolver.Result {
	out := map[string]resolver.Result{}
	for _, r := range refs {
		out[r] = resolver.Result{Err: errors.New("unreachable")}
	}
	return out
}

func (unreachable) Requests() int64 { return 0 }

// FuzzAdmit: whatever the body, the handler answers 200 with an AdmissionReview or 4xx, never panics,
// and never returns a patch, since no lookup succeeds.
func FuzzAdmit(f *testing.F) {
	f.Add(review("CREATE", "Pod", podJSON("nginx:1.27", "nginx@sha256:"+strings.Repeat("a", 64)), ""))
	f.Add(review("UPDATE", "Deployment", `{"spec":{"template":{"spec":{"containers":[{"image":"a"},{"image":1},null]}}}}`, podJSON("a")))
	f.Add(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE","object":{"spec":{"containers":{"a":"b"}}}}}`)
	f.Add("{")
	h := webhook.NewHandler(unreachable{}, pin.Options{OnError: pin.OnErrorWarn}, webhook.WithMaxRequestBytes(1<<16))
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(body)))
		switch rec.Code {
		case http.StatusOK:
			if strings.Contains(rec.Body.String(), `"patch"`) {
				t.Errorf("patch with no lookup succeeding: %s", rec.Body)
			}
		case http.StatusBadRequest:
		default:
			t.Errorf("status %d: %s", rec.Code, rec.Body)
		}
	})
}
