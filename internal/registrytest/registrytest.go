// Package registrytest runs in-process OCI registries for tests, the demo and benchmarks:
// go-containerregistry's pkg/registry behind an httptest server on loopback, with request counting,
// injectable latency and a middleware hook for fault injection, plus helpers that push random
// images and indexes.
package registrytest

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is a running in-process registry.
type Registry struct {
	// Host is host:port, ready to prefix a repository ("127.0.0.1:41234/app").
	Host string
	srv  *httptest.Server

	mu       sync.Mutex
	requests []Request
	latency  time.Duration
}

// Request is one request the registry received.
type Request struct {
	Method string
	Path   string
}

// Kind classifies a request path: "ping" (/v2/), "manifest", "blob", "tags" or "other".
func (r Request) Kind() string {
	switch {
	case r.Path == "/v2/" || r.Path == "/v2":
		return "ping"
	case strings.Contains(r.Path, "/manifests/"):
		return "manifest"
	case strings.Contains(r.Path, "/blobs/"):
		return "blob"
	case strings.HasSuffix(r.Path, "/tags/list"):
		return "tags"
	}
	return "other"
}

// Option configures a Registry.
type Option func(*config)

type config struct {
	latency    time.Duration
	middleware []func(http.Handler) http.Handler
}

// WithLatency delays every response by d, as a distant registry would.
func WithLatency(d time.Duration) Option { return func(c *config) { c.latency = d } }

// WithMiddleware wraps the registry handler, outermost last; use it to inject faults.
// Requests are counted before any middleware runs.
func WithMiddleware(mw func(http.Handler) http.Handler) Option {
	return func(c *config) { c.middleware = append(c.middleware, mw) }
}

// New starts a registry on a loopback port. Close it when done.
func New(opts ...Option) *Registry {
	var c config
	for _, o := range opts {
		o(&c)
	}
	r := &Registry{latency: c.latency}
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	for _, mw := range c.middleware {
		h = mw(h)
	}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path})
		d := r.latency
		r.mu.Unlock()
		if d > 0 {
			time.Sleep(d)
		}
		h.ServeHTTP(w, req)
	}))
	r.Host = strings.TrimPrefix(r.srv.URL, "http://")
	return r
}

// URL is the registry's base URL.
func (r *Registry) URL() string { return r.srv.URL }

// Close stops the registry.
func (r *Registry) Close() { r.srv.Close() }

// SetLatency changes the delay added to every response.
func (r *Registry) SetLatency(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.latency = d
}

// Requests returns the requests received since the last Reset.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Count returns how many requests of the given method ("" for any) and kind were received.
func (r *Registry) Count(method, kind string) int {
	n := 0
	for _, q := range r.Requests() {
		if (method == "" || q.Method == method) && (kind == "" || q.Kind() == kind) {
			n++
		}
	}
	return n
}

// Reset forgets the requests received so far.
func (r *Registry) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = nil
}

// PushImage pushes a small random image as repo:tag and returns its manifest digest.
// mt selects the manifest media type: types.OCIManifestSchema1 or types.DockerManifestSchema2.
func (r *Registry) PushImage(repo, tag string, mt types.MediaType) (v1.Hash, error) {
	img, err := randomImage(mt, 1)
	if err != nil {
		return v1.Hash{}, err
	}
	ref, err := name.NewTag(r.Host + "/" + repo + ":" + tag)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(ref, img); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return img.Digest()
}

// PushIndex pushes a multi-arch index of two random images as repo:tag and returns the index digest.
// mt selects the index media type: types.OCIImageIndex or types.DockerManifestList.
func (r *Registry) PushIndex(repo, tag string, mt types.MediaType) (v1.Hash, error) {
	child := types.OCIManifestSchema1
	if mt == types.DockerManifestList {
		child = types.DockerManifestSchema2
	}
	var adds []mutate.IndexAddendum
	for i, arch := range []string{"amd64", "arm64"} {
		img, err := randomImage(child, int64(i+2))
		if err != nil {
			return v1.Hash{}, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: child, Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), mt)
	ref, err := name.NewTag(r.Host + "/" + repo + ":" + tag)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return idx.Digest()
}

func randomImage(mt types.MediaType, layers int64) (v1.Image, error) {
	img, err := random.Image(64, layers)
	if err != nil {
		return nil, err
	}
	if mt == types.OCIManifestSchema1 {
		img = mutate.ConfigMediaType(mutate.MediaType(img, mt), types.OCIConfigJSON)
	}
	return img, nil
}
