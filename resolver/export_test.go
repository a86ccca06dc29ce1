package resolver

import (
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// SetOffline replaces, until restore is called, the probe that says whether the process has no
// network but loopback.
func SetOffline(f func() bool) (restore func()) {
	saved := offline
	offline = f
	return func() { offline = saved }
}

// NewECRKeychain returns a keychain for Amazon ECR registries, with a cache of its own.
func NewECRKeychain() authn.Keychain { return &ecrKeychain{} }

// ForgetECRTokens empties the cache of DefaultKeychain's ECR keychain.
func ForgetECRTokens() { defaultECR.tokens.forget() }

// SetACRTransport makes DefaultKeychain's Azure Container Registry keychain send its Microsoft
// Entra and token exchange requests through rt, and forget its credentials and tokens, until
// restore is called.
func SetACRTransport(rt http.RoundTripper) (restore func()) {
	reset := func(rt http.RoundTripper) {
		defaultACR.tokens.forget()
		defaultACR.mu.Lock()
		defer defaultACR.mu.Unlock()
		defaultACR.transport, defaultACR.creds = rt, nil
	}
	reset(rt)
	return func() { reset(nil) }
}

// WithClock makes the Resolver read the time from now: the age of its sessions and tokens, and
// the time since a failed handshake.
func WithClock(now func() time.Time) Option { return func(r *Resolver) { r.now = now } }
