package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Error is a failed lookup, explained in plain words. It never holds a credential.
type Error struct {
	// Registry, Repository and Tag say what was looked up (Tag holds the digest of a lookup by
	// digest); Repository and Tag are empty when the registry failed before any repository was
	// asked for (ping, token exchange).
	Registry, Repository, Tag string
	// StatusCode is the registry's HTTP status, 0 if it gave none.
	StatusCode int
	msg        string
}

func (e *Error) Error() string { return e.msg }

// statusError is an HTTP answer that is not the one wanted.
type statusError struct {
	code   int
	status string
	header http.Header
	body   []byte
}

func (e *statusError) Error() string { return "HTTP " + e.status }

// explain turns err into an Error in plain words, naming registry, repository and tag.
func (g *session) explain(err error, repo, tag string) error {
	host := g.name.RegistryStr()
	e := &Error{Registry: host, Repository: repo, Tag: tag}
	where := "registry " + host
	what := "" // what was asked for, as a suffix
	byDigest := digestRE.MatchString(tag)
	if repo != "" {
		where = fmt.Sprintf("repository %s on registry %s", repo, host)
		what = fmt.Sprintf(" for repository %s, tag %q", repo, tag)
		if byDigest {
			what = fmt.Sprintf(" for repository %s, digest %s", repo, tag)
		}
	}
	detail, errCode := "", "" // the registry's words, and its OCI error code
	rateLimited := false      // a 429, or a 503 that says when to come back
	var se *statusError
	var te *transport.Error
	switch {
	case errors.As(err, &se):
		e.StatusCode = se.code
		errCode, detail = registryError(se.body)
		if ra := se.header.Get("Retry-After"); ra != "" && (se.code == http.StatusTooManyRequests || se.code == http.StatusServiceUnavailable) {
			rateLimited, detail = true, "it asks to retry after "+ra+", longer than digester may wait"
		}
	case errors.As(err, &te):
		e.StatusCode = te.StatusCode
		if len(te.Errors) > 0 {
			detail = te.Errors[0].Message
		}
	}
	var timeout *TimeoutError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	var dnsErr *net.DNSError
	var plain *plainHTTPError
	// A TLS alert from the registry that it wants a (different) client certificate.
	clientCert := strings.Contains(err.Error(), "remote error: tls: certificate required") ||
		strings.Contains(err.Error(), "remote error: tls: bad certificate") ||
		strings.Contains(err.Error(), "remote error: tls: unknown certificate authority")
	if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) || clientCert {
		// A loopback or insecure registry is pinged over plain HTTP too; when HTTPS failed on the
		// certificate, that answer (a TLS server's HTTP 400) is not the cause: the certificate is.
		e.StatusCode, detail = 0, ""
	}
	switch {
	case e.StatusCode == http.StatusNotFound && repo != "" && errCode == "NAME_UNKNOWN":
		e.msg = fmt.Sprintf("repository not found: registry %s has no repository %s", host, repo)
		if g.anonymous {
			e.msg += " (or it is private: digester asked without credentials)"
		}
	case e.StatusCode == http.StatusNotFound && byDigest:
		e.msg = fmt.Sprintf("digest not served: %s is not in %s", tag, where)
	case e.StatusCode == http.StatusNotFound && repo != "":
		e.msg = fmt.Sprintf("tag not found: %q in %s", tag, where)
	case e.StatusCode == http.StatusUnauthorized && g.anonymous:
		e.msg = fmt.Sprintf("unauthorized: registry %s wants credentials%s and digester has none for it (add them to the docker config or a credential helper)%s", host, what, unreadableConfig())
	case e.StatusCode == http.StatusUnauthorized:
		e.msg = fmt.Sprintf("unauthorized: registry %s rejected the credentials digester found for it%s", host, what)
	case e.StatusCode == http.StatusForbidden:
		e.msg = fmt.Sprintf("forbidden: registry %s denies these credentials access%s", host, what)
	case rateLimited || e.StatusCode == http.StatusTooManyRequests:
		e.msg = fmt.Sprintf("rate limited: registry %s answered HTTP %d %s%s", host, e.StatusCode, http.StatusText(e.StatusCode), what)
	case e.StatusCode != 0:
		e.msg = fmt.Sprintf("registry %s answered HTTP %d %s%s", host, e.StatusCode, http.StatusText(e.StatusCode), what)
	case errors.As(err, &timeout):
		e.msg = timeout.Error()
	case errors.Is(err, context.Canceled):
		e.msg = fmt.Sprintf("canceled while waiting for registry %s", host)
	case errors.Is(err, context.DeadlineExceeded):
		e.msg = fmt.Sprintf("deadline reached while waiting for registry %s", host)
	case clientCert:
		e.msg = fmt.Sprintf("TLS: registry %s asks for a client certificate and digester has none it accepts (give one for it under registries.HOST.cert and key, or registry-client-cert-files and registry-client-key-files)", host)
	case errors.As(err, &unknownCA):
		e.msg = fmt.Sprintf("TLS: registry %s presents a certificate signed by an unknown authority (trust its CA through SSL_CERT_FILE, the system store, or registry-ca-files)", host)
	case errors.As(err, &hostErr), errors.As(err, &certErr):
		e.msg = fmt.Sprintf("TLS: registry %s presents an invalid certificate: %v", host, err)
	case errors.As(err, &recErr), errors.Is(err, http.ErrSchemeMismatch):
		e.msg = fmt.Sprintf("TLS: registry %s does not speak TLS (a plain-HTTP registry must be listed under insecure-registries)", host)
	case errors.Is(err, syscall.ECONNREFUSED):
		e.msg = fmt.Sprintf("cannot connect to registry %s: connection refused", host)
	case errors.As(err, &dnsErr):
		e.msg = fmt.Sprintf("cannot resolve registry host %s", dnsErr.Name)
	case errors.As(err, &plain):
		e.msg = plain.Error()
	default:
		e.msg = fmt.Sprintf("%s: %v", where, err)
	}
	if e.StatusCode == 0 && (errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr) ||
		errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)) && offline() {
		e.msg += " (digester sees no network but loopback: a container function needs `kpt fn eval --network` or `kpt fn render --allow-network`)"
	}
	if detail != "" && e.StatusCode != http.StatusNotFound {
		// Redact before shortening: a secret cut in two would escape redaction.
		e.msg += ": " + shorten(redact(detail, g.secrets), 200)
	}
	e.msg = redact(e.msg, g.secrets)
	return e
}

// unreadableConfig says, when $DOCKER_CONFIG/config.json exists but this process may not read
// it, why no credentials were found: the keychain then takes it for absent. A kpt container
// function runs as nobody unless kpt is given --as-current-user.
func unreadableConfig() string {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		return ""
	}
	f, err := os.Open(filepath.Join(dir, "config.json"))
	if err == nil {
		f.Close()
		return ""
	}
	if !errors.Is(err, fs.ErrPermission) {
		return ""
	}
	return fmt.Sprintf("; uid %d cannot read %s (as a kpt container function it runs as nobody unless kpt is given --as-current-user)",
		os.Getuid(), filepath.Join(dir, "config.json"))
}

// offline reports whether this process sees no network interface up but loopback, as in a
// container kpt starts without --network (docker run --network none). A variable for tests.
var offline = sync.OnceValue(func() bool {
	ifaces, err := net.Interfaces()
	if err != nil {
		return false
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagUp != 0 && i.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return true
})

// registryError extracts the code and message of an OCI error body
// ({"errors":[{"code":"NAME_UNKNOWN","message":...}]}).
func registryError(body []byte) (code, message string) {
	var r struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &r) != nil || len(r.Errors) == 0 {
		return "", ""
	}
	return r.Errors[0].Code, r.Errors[0].Message
}

// shorten cuts s to at most n bytes, on a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// authValueRE matches the value of an Authorization header echoed back: bearer tokens live inside
// go-containerregistry's transport and are never seen here, so they are recognised by their place.
var authValueRE = regexp.MustCompile(`(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{4,}`)

// redact removes secrets from s, in case a registry or a library echoed one back.
func redact(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "[redacted]")
	}
	return authValueRE.ReplaceAllString(s, "$1 [redacted]")
}
