package webhook

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/digester/digester/internal/testcerts"
)

// A string of exactly the bound is kept whole; one byte more is cut, marked, on a rune boundary.
func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"abcdef", 6, "abcdef"},
		{"abcdefg", 6, "abc..."},
		{"ab€def", 6, "ab..."},
	} {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

// Unless told otherwise, a Server waits for in-flight admissions as long as one may take, and 2 s.
func TestDefaultDrainTimeout(t *testing.T) {
	if got := NewServer(http.NotFoundHandler(), nil, nil).drainTimeout; got != DefaultDeadline+2*time.Second {
		t.Errorf("drain timeout %s, want %s", got, DefaultDeadline+2*time.Second)
	}
}

// A certificate file that breaks is logged, once read again, and the previous certificate kept; a
// good one read again logs nothing.
func TestBrokenCertificateLogged(t *testing.T) {
	ca, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.WriteServing(t.TempDir(), "webhook", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c, err := LoadCertificates(certFile, keyFile, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.every = 0
	c.refresh()
	if buf.Len() != 0 {
		t.Errorf("reading unchanged files logged %q", buf.String())
	}
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.refresh()
	if !strings.Contains(buf.String(), "keeping the previous serving certificate") || c.cert == nil {
		t.Errorf("log %q, certificate %v; want the previous kept, and said", buf.String(), c.cert != nil)
	}
}
