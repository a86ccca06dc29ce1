package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Paths the server answers on.
const (
	MutatePath  = "/v1/mutate" // the upstream k8s-digester's path
	HealthzPath = "/healthz"
	ReadyzPath  = "/readyz"
	MetricsPath = "/metrics"
)

// Bounds on a client that stalls. The API server sends a review at once and gives up on it after
// the webhook's timeoutSeconds (10 by default, 30 at most), so a client this slow is not one.
const (
	// ReadHeaderTimeout bounds the TLS handshake and the wait for a request's headers, from the
	// connection's opening or the request's first byte.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds the wait for a whole request, headers and body: a connection whose body
	// stalls is answered 400 and closed (on HTTP/2, the stream is), however large its Content-Length.
	ReadTimeout = 10 * time.Second
	// IdleTimeout closes a kept-alive connection that sends no new request for that long.
	IdleTimeout = 90 * time.Second
)

// Server serves a Handler over HTTPS, TLS 1.2 or later.
type Server struct {
	certs         *Certificates
	mux           *http.ServeMux
	shutdownDelay time.Duration
	drainTimeout  time.Duration
	log           *slog.Logger
	ready         atomic.Bool
	readyWhen     func() (bool, string)
	// readHeaderTimeout, readTimeout and idleTimeout are the bounds above (tests shorten them).
	readHeaderTimeout, readTimeout, idleTimeout time.Duration
	checkEvery                                  time.Duration // how often the certificate's expiry is checked
}

// ServerOption configures a Server.
type ServerOption func(*Server)

// WithShutdownDelay sets how long the server keeps serving, unready, after it is told to stop and
// before it stops accepting connections: the time endpoints take to forget it (default 0).
func WithShutdownDelay(d time.Duration) ServerOption { return func(s *Server) { s.shutdownDelay = d } }

// WithDrainTimeout bounds the wait for in-flight admissions once the server stops accepting
// connections (default DefaultDeadline plus 2 s).
func WithDrainTimeout(d time.Duration) ServerOption { return func(s *Server) { s.drainTimeout = d } }

// WithReadyWhen makes /readyz answer 503, with the reason ready gives, until ready reports true:
// the webhook's locks from the cluster are read, so that no admission pins from the registry what
// a lock lists.
func WithReadyWhen(ready func() (bool, string)) ServerOption {
	return func(s *Server) { s.readyWhen = ready }
}

// WithServerLogger logs the server's events and errors to l (default: nowhere).
func WithServerLogger(l *slog.Logger) ServerOption { return func(s *Server) { s.log = l } }

// NewServer returns a server of h at MutatePath, with health endpoints and m at MetricsPath (if m
// is not nil), presenting the certificate certs holds.
func NewServer(h http.Handler, m *Metrics, certs *Certificates, opts ...ServerOption) *Server {
	s := &Server{certs: certs, mux: http.NewServeMux(), drainTimeout: DefaultDeadline + 2*time.Second, log: slog.New(slog.DiscardHandler),
		readHeaderTimeout: ReadHeaderTimeout, readTimeout: ReadTimeout, idleTimeout: IdleTimeout, checkEvery: checkEvery}
	for _, o := range opts {
		o(s)
	}
	m.watch(certs)
	s.mux.Handle(MutatePath, h)
	s.mux.HandleFunc(HealthzPath, func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	s.mux.HandleFunc(ReadyzPath, func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		if s.readyWhen != nil {
			if ok, why := s.readyWhen(); !ok {
				http.Error(w, why, http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	if m != nil {
		s.mux.Handle(MetricsPath, m.Handler())
	}
	return s
}

// Serve accepts connections on ln until ctx is done, then turns unready, waits the shutdown delay,
// stops accepting and waits for in-flight admissions to be answered. It returns nil after a clean
// drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.readHeaderTimeout,
		ReadTimeout:       s.readTimeout,
		IdleTimeout:       s.idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.GetCertificate,
		},
	}
	s.ready.Store(true)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	go s.watchCertificate(ctx)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.ready.Store(false)
	s.log.Info("shutting down: unready, then draining", "delay", s.shutdownDelay.String(), "timeout", s.drainTimeout.String())
	time.Sleep(s.shutdownDelay)
	dctx, cancel := context.WithTimeout(context.Background(), s.drainTimeout)
	defer cancel()
	if err := srv.Shutdown(dctx); err != nil {
		return fmt.Errorf("drain in-flight admissions: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// watchCertificate reads the certificate files (if no handshake did lately) and checks the
// certificate's expiry every checkEvery until ctx is done, so that an expiring certificate is logged
// even when no API server connects.
func (s *Server) watchCertificate(ctx context.Context) {
	t := time.NewTicker(s.checkEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.certs.refresh()
			s.certs.checkExpiry(now)
		}
	}
}

// Certificates holds a serving certificate read from a certificate and a key file, and reads them
// again when their contents change (cert-manager and kubelet replace them in place when they rotate).
// A certificate that has expired or expires soon (see ExpiryWarning) is logged when it is loaded, and
// again every hour while it is served.
type Certificates struct {
	certFile, keyFile string
	log               *slog.Logger
	every             time.Duration // how often the files are read at most
	warnEvery         time.Duration // how often an expiring certificate is logged at most

	mu                  sync.Mutex
	cert                *tls.Certificate
	certPEM             []byte
	keyPEM              []byte
	loadedAt            time.Time
	notBefore, notAfter time.Time // of cert's leaf
	warnedAt            time.Time // when its expiry was last logged; zero: not yet
}

// ExpiryWarning is how close to its end a serving certificate is said to expire soon (a warning in
// the log); a certificate that lives less than ten times as long is, in its last tenth. Its rotation
// (at two thirds of its life by cert-manager's default) should have happened long before.
const ExpiryWarning = 7 * 24 * time.Hour

// LoadCertificates reads certFile and keyFile (PEM) and fails if they do not hold a matching pair.
// Later read failures keep the last good pair and are logged to log.
func LoadCertificates(certFile, keyFile string, log *slog.Logger) (*Certificates, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Certificates{certFile: certFile, keyFile: keyFile, log: log, every: reloadEvery, warnEvery: warnEvery}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

const (
	// reloadEvery bounds how often the files are read: at most once a second, not on every handshake.
	reloadEvery = time.Second
	// warnEvery is how often an expiring certificate is logged while it is served.
	warnEvery = time.Hour
	// checkEvery is how often a Server looks at its certificate when no handshake makes it.
	checkEvery = time.Minute
)

// GetCertificate is a tls.Config.GetCertificate that serves the current pair.
func (c *Certificates) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.refresh()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cert, nil
}

// NotAfter is when the certificate being served expires.
func (c *Certificates) NotAfter() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.notAfter
}

// refresh reads the files again if they were last read longer ago than c.every.
func (c *Certificates) refresh() {
	c.mu.Lock()
	stale := time.Since(c.loadedAt) >= c.every
	c.mu.Unlock()
	if stale {
		if err := c.reload(); err != nil {
			c.log.Error("keeping the previous serving certificate", "error", err)
		}
	}
}

// reload reads both files and, when they differ from what was loaded, parses them.
func (c *Certificates) reload() error {
	certPEM, err := os.ReadFile(c.certFile)
	if err != nil {
		return fmt.Errorf("read TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("read TLS private key: %w", err)
	}
	c.mu.Lock()
	c.loadedAt = time.Now()
	if bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM) {
		c.mu.Unlock()
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err == nil && pair.Leaf == nil { // filled in by X509KeyPair unless GODEBUG=x509keypairleaf=0
		pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0])
	}
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if c.cert != nil {
		c.log.Info("loaded a new serving certificate", "file", c.certFile, "notAfter", pair.Leaf.NotAfter)
	}
	c.cert, c.certPEM, c.keyPEM = &pair, certPEM, keyPEM
	c.notBefore, c.notAfter, c.warnedAt = pair.Leaf.NotBefore, pair.Leaf.NotAfter, time.Time{}
	c.mu.Unlock()
	c.checkExpiry(time.Now())
	return nil
}

// checkExpiry logs, at most once every c.warnEvery, that the certificate has expired or soon will.
func (c *Certificates) checkExpiry(now time.Time) {
	c.mu.Lock()
	left, life := c.notAfter.Sub(now), c.notAfter.Sub(c.notBefore)
	due := c.warnedAt.IsZero() || now.Sub(c.warnedAt) >= c.warnEvery
	if left >= min(ExpiryWarning, life/10) || !due {
		c.mu.Unlock()
		return
	}
	c.warnedAt = now
	c.mu.Unlock()
	at := c.notAfter.UTC().Format(time.RFC3339)
	if left <= 0 {
		c.log.Error(fmt.Sprintf("serving certificate expired %s ago, at %s: the API server refuses it until it is replaced", span(-left), at), "file", c.certFile, "notAfter", c.notAfter)
		return
	}
	c.log.Warn(fmt.Sprintf("serving certificate expires in %s, at %s: it should have been renewed by now", span(left), at), "file", c.certFile, "notAfter", c.notAfter)
}

// span says how long d is: in days from two days on, else to the minute ("5 days", "3h", "3h7m").
func span(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d < time.Minute:
		return "less than a minute"
	}
	s := strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
