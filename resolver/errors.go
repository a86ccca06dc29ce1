package resolver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/digester/digester/imageref"
)

// Error is a failed lookup, explained in plain words. It never holds a credential. Every error
// Resolve and Parse return is one; callers act on its Cause, never on its words.
type Error struct {
	// Cause says what kind of failure it is.
	Cause Cause
	// Registry, Repository and Tag say what was looked up (Tag holds the digest of a lookup by
	// digest); Repository and Tag are empty when the registry failed before any repository was
	// asked for (ping, token exchange), and all three when the reference did not parse.
	Registry, Repository, Tag string
	// StatusCode is the registry's HTTP status, 0 if it gave none.
	StatusCode int
	msg        string
	wrapped    error // what Unwrap gives: only errors that are themselves redacted
}

func (e *Error) Error() string { return e.msg }

// Unwrap gives, for a lookup no mirror could answer, the error of the last place asked.
func (e *Error) Unwrap() error { return e.wrapped }

// Cause is the kind of a failed lookup, for callers that branch on it (a webhook that admits a
// Pod when its registry is unreachable, a report that groups failures) instead of matching words.
type Cause int

// The causes. The zero value, Other, is what no other one describes.
const (
	// Other is a failure none of the causes below describes.
	Other Cause = iota
	// Invalid: the reference does not parse, or holds a template variable.
	Invalid
	// NotFound: the registry serves no such repository, tag or digest.
	NotFound
	// Unauthorized: the registry wants credentials digester does not have, or refuses those it
	// has (HTTP 401 or 403, from the registry or its token service).
	Unauthorized
	// Credentials: digester could not read the credentials for the registry (a credential helper
	// that is not installed or fails, an Amazon ECR or Azure token that cannot be had).
	Credentials
	// RateLimited: the registry answered HTTP 429 after every retry, or asked to wait longer
	// than digester may.
	RateLimited
	// Unreachable: no conversation with the registry: its host name does not resolve, the
	// connection is refused or dropped, or there is no network.
	Unreachable
	// TLSFailure: the registry's certificate is not trusted or not valid for its name, it wants
	// a client certificate digester does not have, or it does not speak TLS (or speaks only
	// plain HTTP where that is not allowed).
	TLSFailure
	// Timeout: no complete answer in time: the per-request timeout, the caller's deadline, or
	// HTTP 408.
	Timeout
	// Canceled: the caller canceled the lookup.
	Canceled
	// Server: the registry answered HTTP 5xx after every retry.
	Server
	// BadResponse: the registry answered with something that is not what was asked for: a page
	// or document that is not a manifest, a manifest type digester does not know, a body too large
	// or one that does not parse.
	BadResponse
	// Mismatch: content does not hash to the digest the registry gave for it, or the registry
	// gave another digest than the one asked for: digester refuses to pin what it cannot trust.
	Mismatch
	// Platform: the image has nothing for the platform asked for (WithPlatform): an index with no
	// image for it, a single-platform image of another platform or of none, or indexes nested
	// deeper than digester follows.
	Platform
)

var causeNames = [...]string{
	Other: "other", Invalid: "invalid", NotFound: "not_found", Unauthorized: "unauthorized",
	Credentials: "credentials", RateLimited: "rate_limited", Unreachable: "unreachable",
	TLSFailure: "tls", Timeout: "timeout", Canceled: "canceled", Server: "server",
	BadResponse: "bad_response", Mismatch: "mismatch", Platform: "platform",
}

// String names the cause in lowercase snake case ("not_found"), fit for a metric label.
func (c Cause) String() string {
	if c >= 0 && int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("Cause(%d)", int(c))
}

// CauseOf returns the Cause of the first Error in err's chain, or Other if there is none.
func CauseOf(err error) Cause {
	var e *Error
	if errors.As(err, &e) {
		return e.Cause
	}
	return Other
}

// fail returns an Error of cause about registry host, with a message in plain words.
func fail(cause Cause, host, format string, args ...any) *Error {
	return &Error{Cause: cause, Registry: host, msg: fmt.Sprintf(format, args...)}
}

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
	byDigest := imageref.ValidDigest(tag)
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
	var tooLarge *tooLargeError
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
		e.Cause, e.msg = NotFound, fmt.Sprintf("repository not found: registry %s has no repository %s", host, repo)
		if g.anonymous {
			e.msg += " (or it is private: digester asked without credentials)"
		}
	case e.StatusCode == http.StatusNotFound && byDigest:
		e.Cause, e.msg = NotFound, fmt.Sprintf("digest not served: %s is not in %s", tag, where)
	case e.StatusCode == http.StatusNotFound && repo != "":
		e.Cause, e.msg = NotFound, fmt.Sprintf("tag not found: %q in %s", tag, where)
	case e.StatusCode == http.StatusUnauthorized && g.anonymous:
		e.Cause, e.msg = Unauthorized, fmt.Sprintf("unauthorized: registry %s wants credentials%s and digester has none for it (add them to the docker config or a credential helper)%s", host, what, unreadableConfig())
	case e.StatusCode == http.StatusUnauthorized:
		e.Cause, e.msg = Unauthorized, fmt.Sprintf("unauthorized: registry %s rejected the credentials digester found for it%s", host, what)
	case e.StatusCode == http.StatusForbidden:
		e.Cause, e.msg = Unauthorized, fmt.Sprintf("forbidden: registry %s denies these credentials access%s", host, what)
	case rateLimited || e.StatusCode == http.StatusTooManyRequests:
		e.Cause, e.msg = RateLimited, fmt.Sprintf("rate limited: registry %s answered HTTP %d %s%s", host, e.StatusCode, http.StatusText(e.StatusCode), what)
	case e.StatusCode != 0:
		e.Cause, e.msg = statusCause(e.StatusCode), fmt.Sprintf("registry %s answered HTTP %d %s%s", host, e.StatusCode, http.StatusText(e.StatusCode), what)
	case errors.As(err, &timeout):
		e.Cause, e.msg = Timeout, timeout.Error()
	case errors.Is(err, context.Canceled):
		e.Cause, e.msg = Canceled, fmt.Sprintf("canceled while waiting for registry %s", host)
	case errors.Is(err, context.DeadlineExceeded):
		e.Cause, e.msg = Timeout, fmt.Sprintf("deadline reached while waiting for registry %s", host)
	case clientCert:
		e.Cause, e.msg = TLSFailure, fmt.Sprintf("TLS: registry %s asks for a client certificate and digester has none it accepts (give one for it under registries.HOST.cert and key, or registry-client-cert-files and registry-client-key-files)", host)
	case errors.As(err, &unknownCA):
		e.Cause, e.msg = TLSFailure, fmt.Sprintf("TLS: registry %s presents a certificate signed by an unknown authority (trust its CA through SSL_CERT_FILE, the system store, or registry-ca-files)", host)
	case errors.As(err, &hostErr), errors.As(err, &certErr):
		e.Cause, e.msg = TLSFailure, fmt.Sprintf("TLS: registry %s presents an invalid certificate: %v", host, err)
	case errors.As(err, &recErr), errors.Is(err, http.ErrSchemeMismatch):
		e.Cause, e.msg = TLSFailure, fmt.Sprintf("TLS: registry %s does not speak TLS (a plain-HTTP registry must be listed under insecure-registries)", host)
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Cause, e.msg = Unreachable, fmt.Sprintf("cannot connect to registry %s: connection refused", host)
	case errors.As(err, &dnsErr):
		e.Cause, e.msg = Unreachable, fmt.Sprintf("cannot resolve registry host %s", dnsErr.Name)
	case errors.As(err, &plain):
		e.Cause, e.msg = TLSFailure, plain.Error()
	default:
		e.Cause, e.msg = otherCause(err), fmt.Sprintf("%s: %v", where, err)
		if errors.As(err, &tooLarge) {
			e.Cause = BadResponse
		}
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

// statusCause is the cause of an HTTP status that explain gives no words of its own.
func statusCause(code int) Cause {
	switch {
	case code == http.StatusRequestTimeout:
		return Timeout
	case code >= 500:
		return Server
	}
	return Other
}

// otherCause is the cause of a failure without an HTTP status or words of its own: a network
// error (a connection reset, a host unreachable) makes the registry unreachable.
func otherCause(err error) Cause {
	var op *net.OpError
	if errors.As(err, &op) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ENETUNREACH) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Unreachable
	}
	return Other
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
