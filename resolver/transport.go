package resolver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// counter counts the HTTP requests that reach the network, retries included.
type counter struct {
	inner    http.RoundTripper
	requests *atomic.Int64
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.RoundTrip(req)
	var notTLS tls.RecordHeaderError
	if errors.As(err, &notTLS) {
		// An HTTPS probe of a plain-HTTP loopback registry: no request was sent.
		return resp, err
	}
	c.requests.Add(1)
	return resp, err
}

// guard refuses plain HTTP to any host that is neither loopback nor listed as insecure, whatever
// asked for it: a ping fallback, a redirect or a token realm.
type guard struct {
	inner    http.RoundTripper
	insecure func(host string) bool
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure(req.URL.Host) {
		return nil, &plainHTTPError{host: req.URL.Host}
	}
	return g.inner.RoundTrip(req)
}

type plainHTTPError struct{ host string }

func (e *plainHTTPError) Error() string {
	return fmt.Sprintf("refusing plain HTTP to %s: list it under insecure-registries to allow it", e.host)
}

// retry retries requests that failed for reasons that may pass: HTTP 408, 429, 500, 502, 503, 504
// and dropped connections. It honours Retry-After (up to maxWait), otherwise backs off
// exponentially with full jitter. Each attempt gets its own timeout. A retry repeats the same
// request, so a HEAD stays a HEAD.
type retry struct {
	inner    http.RoundTripper
	attempts int           // total attempts, at least 1
	timeout  time.Duration // per attempt; 0 for none
	maxWait  time.Duration // longest single wait, Retry-After included
	base     time.Duration // first backoff
}

func (r *retry) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		resp, err := r.once(req)
		wait, again := r.shouldRetry(resp, err, attempt)
		if !again || (req.Body != nil && req.GetBody == nil) || pastDeadline(req.Context(), wait) {
			return resp, err
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// pastDeadline reports whether waiting d would take past ctx's deadline: then the failure is
// reported at once (a Retry-After of 20s with 5s left is a rate limit, not a deadline).
func pastDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < d
}

// maxBodyBytes bounds every response body read through the transport, whoever reads it:
// go-containerregistry's ping drains its body to the end.
const maxBodyBytes = maxManifestBytes + 1

// once sends one attempt under the per-attempt timeout; the timeout also covers reading the body,
// and the body is cut off after maxBodyBytes.
func (r *retry) once(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	ctx, cancel := parent, context.CancelFunc(func() {})
	if r.timeout > 0 {
		ctx, cancel = context.WithTimeout(parent, r.timeout)
		req = req.Clone(ctx)
	}
	resp, err := r.inner.RoundTrip(req)
	if err != nil {
		cancel()
		if ctx.Err() == context.DeadlineExceeded && parent.Err() == nil {
			return nil, &TimeoutError{After: r.timeout, Host: req.URL.Host}
		}
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel, ctx: ctx, parent: parent, timeout: r.timeout, host: req.URL.Host, left: maxBodyBytes}
	return resp, nil
}

func (r *retry) shouldRetry(resp *http.Response, err error, attempt int) (time.Duration, bool) {
	if attempt >= r.attempts {
		return 0, false
	}
	backoff := r.base << (attempt - 1)
	if backoff > r.maxWait || backoff <= 0 {
		backoff = r.maxWait
	}
	backoff = time.Duration(rand.Int64N(int64(backoff)) + 1) // full jitter
	if err != nil {
		return backoff, retryableNetError(err)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			if d > r.maxWait {
				return 0, false // the registry asks for longer than we wait: report it now
			}
			return d, true
		}
		return backoff, true
	case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout:
		return backoff, true
	}
	return 0, false
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(min(s, 1<<32)) * time.Second, true // capped: a huge value must not wrap negative
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

func retryableNetError(err error) bool {
	var te *TimeoutError
	if errors.As(err, &te) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *plainHTTPError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || isNetReset(err)
}

func isNetReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "read"
}

// cancelBody releases the per-attempt timeout when the body is closed, reports a timeout hit
// while reading as a TimeoutError, and ends the body after left more bytes.
type cancelBody struct {
	io.ReadCloser
	cancel  context.CancelFunc
	ctx     context.Context
	parent  context.Context
	timeout time.Duration
	host    string
	left    int64
}

func (b *cancelBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, &tooLargeError{host: b.host}
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF && b.ctx.Err() == context.DeadlineExceeded && b.parent.Err() == nil {
		err = &TimeoutError{After: b.timeout, Host: b.host}
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// tooLargeError is a response body cut off after maxBodyBytes.
type tooLargeError struct{ host string }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("registry %s sent a response larger than %d MiB: stopped reading", e.host, maxManifestBytes>>20)
}

// TimeoutError is a registry request that got no complete answer in time.
type TimeoutError struct {
	After time.Duration
	Host  string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("timed out after %s waiting for registry %s", e.After, e.Host)
}
