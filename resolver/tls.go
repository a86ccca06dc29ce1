package resolver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
)

// TLS is what digester trusts and shows when it talks to one registry over TLS, on top of the
// system's trust store (and SSL_CERT_FILE). All fields are PEM; each may be empty.
type TLS struct {
	// CA holds the certificates of the authorities trusted to sign the registry's certificate.
	CA []byte
	// Cert and Key are the client certificate (with its chain) and its private key, shown to a
	// registry that asks for one (mutual TLS). Both or neither.
	Cert, Key []byte
}

// Check parses t and says what is wrong with it, without quoting a key.
func (t TLS) Check() error {
	_, err := t.config()
	return err
}

// config builds t's tls.Config: the system roots plus t.CA, and the client certificate.
func (t TLS) config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(t.CA) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(t.CA) {
			return nil, errors.New("the CA holds no PEM certificate")
		}
		c.RootCAs = pool
	}
	switch {
	case len(t.Cert) > 0 && len(t.Key) > 0:
		cert, err := tls.X509KeyPair(t.Cert, t.Key)
		if err != nil {
			// The error of X509KeyPair never quotes the key; it is kept short anyway.
			return nil, errors.New("the client certificate and key do not make a pair: " + err.Error())
		}
		c.Certificates = []tls.Certificate{cert}
	case len(t.Cert) > 0:
		return nil, errors.New("a client certificate needs its key")
	case len(t.Key) > 0:
		return nil, errors.New("a client key needs its certificate")
	}
	return c, nil
}

// WithRegistryTLS makes digester trust t.CA for the registry host (host or host:port, as in a
// reference; "docker.io" is "index.docker.io") and show it t's client certificate. Check t
// first: a TLS that does not parse is ignored here.
func WithRegistryTLS(host string, t TLS) Option {
	return func(r *Resolver) { r.tls[host] = t }
}

// perHostTLS returns a transport that talks to each host listed in insecure without verifying
// its certificate, to each host in byHost with that host's TLS, and to any other through t.
func perHostTLS(t *http.Transport, insecure map[string]bool, byHost map[string]TLS) http.RoundTripper {
	s := &hostSwitch{def: t, hosts: map[string]http.RoundTripper{}}
	var loose *http.Transport
	for h := range insecure {
		if _, ok := byHost[h]; ok {
			continue
		}
		if loose == nil {
			loose = t.Clone()
			loose.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user listed these hosts as insecure
		}
		s.hosts[h] = loose
	}
	for h, ht := range byHost {
		c, err := ht.config()
		if err != nil {
			continue // Check reported it
		}
		c.InsecureSkipVerify = insecure[h] //nolint:gosec // the user listed this host as insecure
		own := t.Clone()
		own.TLSClientConfig = c
		s.hosts[h] = own
	}
	return s
}

// hostSwitch sends each request through the transport of its host (host:port first, then host),
// or through def.
type hostSwitch struct {
	def   http.RoundTripper
	hosts map[string]http.RoundTripper
}

func (s *hostSwitch) RoundTrip(req *http.Request) (*http.Response, error) {
	if t, ok := s.hosts[req.URL.Host]; ok {
		return t.RoundTrip(req)
	}
	if h, _, err := net.SplitHostPort(req.URL.Host); err == nil {
		if t, ok := s.hosts[h]; ok {
			return t.RoundTrip(req)
		}
	}
	return s.def.RoundTrip(req)
}
