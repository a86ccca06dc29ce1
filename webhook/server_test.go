package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/internal/testcerts"
)

// serve starts a Server of h on loopback with a certificate from a new CA and returns its URL, a
// client that trusts the CA, the certificate files and a function that stops the server and
// returns Serve's error.
func serve(t *testing.T, h http.Handler, opts ...ServerOption) (url string, client *http.Client, certs *Certificates, certFile, keyFile string, ca *testcerts.CA, stop func() error) {
	t.Helper()
	ca, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err = ca.WriteServing(dir, "webhook", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certs, err = LoadCertificates(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	certs.every = 0 // read the files on every handshake
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- NewServer(h, nil, certs, opts...).Serve(ctx, ln) }()
	client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-errc
	}
	t.Cleanup(func() { stop() })
	return "https://" + ln.Addr().String(), client, certs, certFile, keyFile, ca, stop
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealth(t *testing.T) {
	url, c, _, _, _, _, _ := serve(t, http.NotFoundHandler())
	type answer struct {
		Code int
		Body string
	}
	var got []answer
	for _, p := range []string{HealthzPath, ReadyzPath} {
		code, body := get(t, c, url+p)
		got = append(got, answer{code, body})
	}
	if diff := cmp.Diff([]answer{{200, "ok\n"}, {200, "ok\n"}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestTLS12Minimum(t *testing.T) {
	url, _, _, _, _, ca, _ := serve(t, http.NotFoundHandler())
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(url + HealthzPath); err == nil {
		t.Error("a TLS 1.1 client was served, want a handshake failure")
	}
}

// A certificate rotated in place (as cert-manager does) is served from the next handshake on; a
// broken file keeps the previous certificate in service.
func TestCertificateReload(t *testing.T) {
	url, _, _, certFile, keyFile, ca, _ := serve(t, http.NotFoundHandler())
	serial := func() string {
		t.Helper()
		// A new transport each time: a new connection, so a new handshake.
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
		resp, err := c.Get(url + HealthzPath)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	if again := serial(); again != first {
		t.Fatalf("serial changed from %s to %s with the files unchanged", first, again)
	}
	c, k, err := ca.Issue("webhook", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		t.Fatal(err)
	}
	second := serial()
	if second == first {
		t.Fatalf("still serving serial %s after the files changed", first)
	}
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != second {
		t.Errorf("with a broken file, serving serial %s, want the previous %s", got, second)
	}
}

// Stopping the server lets an admission in flight finish and be answered.
func TestDrain(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "answered")
	})
	url, c, _, _, _, _, stop := serve(t, h)
	type result struct {
		code int
		body string
	}
	res := make(chan result, 1)
	go func() {
		code, body := get(t, c, url+MutatePath)
		res <- result{code, body}
	}()
	<-arrived
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	for { // until the server has stopped accepting connections, so the request is drained, not raced
		conn, err := net.Dial("tcp", strings.TrimPrefix(url, "https://"))
		if err != nil {
			break
		}
		conn.Close()
		runtime.Gosched()
	}
	close(release)
	if r := <-res; r.code != 200 || r.body != "answered" {
		t.Errorf("in-flight request got %d %q, want 200 answered", r.code, r.body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve returned %v after draining, want nil", err)
	}
}

// Clients that stall are let go of within the server's bounds: a connection that never starts its
// TLS handshake, one that never finishes its headers, (issue 23) 200 that announce a 7 MB body and
// send one byte of it, and one that sends no second request; on HTTP/2, a stream whose body stalls
// is answered.
func TestStalledClientsAreClosed(t *testing.T) {
	const headerTimeout, readTimeout, idleTimeout = time.Second, 1500 * time.Millisecond, time.Second
	shorten := func(s *Server) {
		s.readHeaderTimeout, s.readTimeout, s.idleTimeout = headerTimeout, readTimeout, idleTimeout
	}
	drain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "read request body: "+err.Error(), http.StatusBadRequest)
		}
	})
	url, _, _, _, _, ca, _ := serve(t, drain, shorten)
	addr := strings.TrimPrefix(url, "https://")
	const slack = 2 * time.Second // the client gives up waiting after the bound and this
	for _, tc := range []struct {
		name  string
		conns int
		tls   bool
		send  string
		bound time.Duration
	}{
		{"handshake never started", 20, false, "", headerTimeout},
		{"headers never finished", 20, true, "POST /v1/mutate HTTP/1.1\r\nHost: webhook\r\n", headerTimeout},
		{"7 MB body stalled after one byte", 200, true, "POST /v1/mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: 7000000\r\n\r\n{", readTimeout},
		{"kept alive, then idle", 20, true, "GET /healthz HTTP/1.1\r\nHost: webhook\r\n\r\n", idleTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var wg sync.WaitGroup
			dialing := make(chan struct{}, 5) // a few handshakes at a time: each must fit in the bound
			closedAfter := make([]time.Duration, tc.conns)
			errs := make([]error, tc.conns)
			for i := range tc.conns {
				wg.Go(func() {
					dialing <- struct{}{}
					start := time.Now()
					var conn net.Conn
					var err error
					if tc.tls {
						conn, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}})
					} else {
						conn, err = net.Dial("tcp", addr)
					}
					<-dialing
					if err != nil {
						errs[i] = err
						return
					}
					defer conn.Close()
					if _, err := io.WriteString(conn, tc.send); err != nil {
						errs[i] = err
						return
					}
					conn.SetReadDeadline(start.Add(tc.bound + slack))
					_, err = io.Copy(io.Discard, conn) // until the server closes it (EOF or reset)
					if errors.Is(err, os.ErrDeadlineExceeded) {
						errs[i] = fmt.Errorf("still open after %s", time.Since(start).Round(time.Millisecond))
						return
					}
					closedAfter[i] = time.Since(start)
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("want every connection closed within %s (+%s):\n%v", tc.bound, slack, err)
			}
			if last := slices.Max(closedAfter); last > tc.bound+slack {
				t.Errorf("last connection closed after %s, want within %s", last, tc.bound+slack)
			}
		})
	}
	t.Run("HTTP/2 body stalled", func(t *testing.T) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}}
		body, stall := io.Pipe()
		defer stall.Close()
		go io.WriteString(stall, "{")
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout+slack)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+MutatePath, body)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 7000000
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("no answer within %s: %v", readTimeout+slack, err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusBadRequest || string(msg) != "read request body: i/o timeout\n" {
			t.Errorf("got %s %d %q, want HTTP/2.0 400 read request body: i/o timeout", resp.Proto, resp.StatusCode, msg)
		}
	})
}

// logLines returns the level and message of each JSON log line in b.
func logLines(t *testing.T, b *bytes.Buffer) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var e struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, e.Level+" "+e.Msg)
	}
	b.Reset()
	return out
}

type noCounters struct{}

func (noCounters) Lookups() int64  { return 0 }
func (noCounters) Hits() int64     { return 0 }
func (noCounters) Requests() int64 { return 0 }

// expiryMetric reads the serving certificate's expiry from m's /metrics.
func expiryMetric(t *testing.T, m *Metrics) int64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MetricsPath, nil))
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(l, "digester_webhook_serving_certificate_expiry_timestamp_seconds "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("expiry metric %q: %v", v, err)
			}
			return int64(f)
		}
	}
	t.Fatalf("no expiry metric in\n%s", rec.Body)
	return 0
}

// An expired certificate, or one near its end, is logged when it is loaded and every hour after
// while it is served, and /metrics says when it expires; a certificate with time left is not logged.
func TestCertificateExpiry(t *testing.T) {
	ca, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name                string
		notBefore, notAfter time.Time
		want                string // logged at load, then again an hour later; "" for nothing
	}{
		{"expired", now.Add(-90 * day), now.Add(-3 * time.Hour), "ERROR serving certificate expired 3h ago, at %s: the API server refuses it until it is replaced"},
		{"90-day certificate with 2 days left", now.Add(-88 * day), now.Add(50 * time.Hour), "WARN serving certificate expires in 2 days, at %s: it should have been renewed by now"},
		{"day-long certificate with an hour left", now.Add(-23 * time.Hour), now.Add(time.Hour), "WARN serving certificate expires in 1h, at %s: it should have been renewed by now"},
		{"90-day certificate with 8 days left", now.Add(-82 * day), now.Add(8 * day), ""},
		{"day-long certificate with 5 hours left", now.Add(-19 * time.Hour), now.Add(5 * time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, k, err := ca.IssueValid("webhook", tc.notBefore, tc.notAfter, "127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			if err := errors.Join(os.WriteFile(certFile, c, 0o600), os.WriteFile(keyFile, k, 0o600)); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			certs, err := LoadCertificates(certFile, keyFile, slog.New(slog.NewJSONHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			if tc.want != "" {
				want = []string{fmt.Sprintf(tc.want, tc.notAfter.UTC().Format(time.RFC3339))}
			}
			if diff := cmp.Diff(want, logLines(t, &logs)); diff != "" {
				t.Errorf("logged at load (-want +got):\n%s", diff)
			}
			m := NewMetrics(noCounters{})
			NewServer(http.NotFoundHandler(), m, certs)
			if got, want := expiryMetric(t, m), tc.notAfter.Unix(); got != want {
				t.Errorf("expiry metric %d, want %d", got, want)
			}
			certs.checkExpiry(now.Add(30 * time.Minute))
			if got := logLines(t, &logs); len(got) != 0 {
				t.Errorf("logged again after half an hour: %q", got)
			}
			certs.checkExpiry(now.Add(61 * time.Minute))
			if diff := cmp.Diff(len(want), len(logLines(t, &logs))); diff != "" {
				t.Errorf("lines logged an hour after load (-want +got):\n%s", diff)
			}
		})
	}
}

// A Server looks at its certificate while no handshake does: an expired one is logged again and
// again until a new one is in the files, which is then loaded, logged and exported.
func TestCertificateExpiryWatched(t *testing.T) {
	ca, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	c, k, err := ca.IssueValid("webhook", time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write := func(c, k []byte) {
		if err := errors.Join(os.WriteFile(certFile, c, 0o600), os.WriteFile(keyFile, k, 0o600)); err != nil {
			t.Fatal(err)
		}
	}
	write(c, k)
	var mu sync.Mutex
	var logs bytes.Buffer
	certs, err := LoadCertificates(certFile, keyFile, slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	certs.every, certs.warnEvery = 0, 20*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := NewMetrics(noCounters{})
	go NewServer(http.NotFoundHandler(), m, certs, func(s *Server) { s.checkEvery = 10 * time.Millisecond }).Serve(ctx, ln)
	expired := "ERROR serving certificate expired 1h ago, at "
	count := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			var e struct{ Level, Msg string }
			if json.Unmarshal([]byte(l), &e) == nil && strings.HasPrefix(e.Level+" "+e.Msg, prefix) {
				n++
			}
		}
		return n
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s; log:\n%s", what, logs.String())
			}
		}
	}
	waitFor("three warnings", func() bool { return count(expired) >= 3 })
	notAfter := time.Now().Add(24 * time.Hour)
	c, k, err = ca.IssueValid("webhook", time.Now().Add(-time.Hour), notAfter, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	write(c, k)
	waitFor("the new certificate", func() bool { return count("INFO loaded a new serving certificate") == 1 })
	if got, want := expiryMetric(t, m), notAfter.Unix(); got != want {
		t.Errorf("expiry metric %d after the new certificate, want %d", got, want)
	}
	before := count(expired)
	time.Sleep(100 * time.Millisecond)
	if after := count(expired); after != before {
		t.Errorf("%d more expiry errors after the new certificate was loaded", after-before)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
