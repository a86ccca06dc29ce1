// Package registrytest runs in-process OCI registries for tests, the demo and benchmarks:
// go-containerregistry's pkg/registry behind an httptest server on loopback, with request counting,
// injectable latency and a middleware hook for fault injection, plus helpers that push
// images and indexes.
package registrytest

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
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
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
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
	tls        bool
	middleware []func(http.Handler) http.Handler
}

// WithLatency delays every response by d, as a distant registry would.
func WithLatency(d time.Duration) Option { return func(c *config) { c.latency = d } }

// WithTLS serves HTTPS with httptest's self-signed certificate; Transport trusts it.
func WithTLS() Option { return func(c *config) { c.tls = true } }

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
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path})
		d := r.latency
		r.mu.Unlock()
		if d > 0 {
			time.Sleep(d)
		}
		h.ServeHTTP(w, req)
	}))
	if c.tls {
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	r.Host = r.srv.Listener.Addr().String()
	return r
}

// CertificatePEM returns the certificate a registry made WithTLS serves (httptest's, for 127.0.0.1
// and example.com), as PEM: a test's CA bundle for it. Nil without TLS.
func (r *Registry) CertificatePEM() []byte {
	if r.srv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
}

// Transport returns an HTTP transport that sends requests for every registry host to this
// registry and trusts its certificate: "nginx:1.27" or "gcr.io/x/y:1" are served from here,
// so tests can use realistic references. With it, plain-HTTP registries must still be loopback
// names (localhost:5000) or listed as insecure.
func (r *Registry) Transport() *http.Transport {
	var t *http.Transport
	if r.srv.TLS != nil {
		t = r.srv.Client().Transport.(*http.Transport).Clone()
		t.TLSClientConfig.InsecureSkipVerify = true // any host name is served with this one certificate
	} else {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	addr := r.Host
	t.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	t.DialTLSContext = nil
	return t
}

// ref names repo:tag on this registry; a repo whose first component is a host
// ("gcr.io/x", "localhost:5000/x") or a Docker Hub name ("nginx") is kept as written,
// for use with Transport.
func (r *Registry) ref(repo, tag string) (name.Tag, error) {
	if r.srv.TLS == nil && !strings.HasPrefix(repo, "localhost") {
		repo = r.Host + "/" + repo
	}
	return name.NewTag(repo + ":" + tag)
}

// URL is the registry's base URL (http:// or https://).
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

// PushImage pushes a small image, the same for the same repo:tag, as repo:tag and returns its manifest digest.
// PushImages pushes an image of media type mt for each "repo:tag" and returns their digests by
// reference, then resets the request log: a fixture's pushes are not the test's requests.
func (r *Registry) PushImages(mt types.MediaType, refs ...string) (map[string]string, error) {
	digests := make(map[string]string, len(refs))
	for _, ref := range refs {
		i := strings.LastIndex(ref, ":")
		if i < 0 {
			return nil, fmt.Errorf("push %s: want repo:tag", ref)
		}
		d, err := r.PushImage(ref[:i], ref[i+1:], mt)
		if err != nil {
			return nil, err
		}
		digests[ref] = d.String()
	}
	r.Reset()
	return digests, nil
}

// mt selects the manifest media type: types.OCIManifestSchema1 or types.DockerManifestSchema2.
func (r *Registry) PushImage(repo, tag string, mt types.MediaType) (v1.Hash, error) {
	img, err := Image(mt, repo+":"+tag)
	if err != nil {
		return v1.Hash{}, err
	}
	ref, err := r.ref(repo, tag)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(ref, img, remote.WithTransport(r.Transport())); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return img.Digest()
}

// PushIndex pushes a multi-arch index of two small images (linux/amd64, linux/arm64) as repo:tag and returns the index digest.
// mt selects the index media type: types.OCIImageIndex or types.DockerManifestList.
func (r *Registry) PushIndex(repo, tag string, mt types.MediaType) (v1.Hash, error) {
	idx, err := Index(mt, repo+":"+tag)
	if err != nil {
		return v1.Hash{}, err
	}
	ref, err := r.ref(repo, tag)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithTransport(r.Transport())); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return idx.Digest()
}

// Image builds a small linux/amd64 image whose content, and so digest, depends only on mt
// (types.OCIManifestSchema1 or types.DockerManifestSchema2) and seed: the same repository and
// tag always get the same digest, which keeps golden files stable.
func Image(mt types.MediaType, seed string) (v1.Image, error) {
	return image(mt, seed, "amd64")
}

// Index builds a multi-arch index (types.OCIImageIndex or types.DockerManifestList) of two
// small images, linux/amd64 and linux/arm64, whose digest depends only on mt and seed.
// An OCI index holds OCI images, a Docker list Docker images.
func Index(mt types.MediaType, seed string) (v1.ImageIndex, error) {
	child := types.OCIManifestSchema1
	if mt == types.DockerManifestList {
		child = types.DockerManifestSchema2
	}
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := image(child, seed+"/"+arch, arch)
		if err != nil {
			return nil, err
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: child, Platform: &v1.Platform{OS: "linux", Architecture: arch},
		}})
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), mt), nil
}

// image builds a small image for linux/arch whose content depends only on mt and seed.
func image(mt types.MediaType, seed, arch string) (v1.Image, error) {
	layerType := types.DockerLayer
	if mt == types.OCIManifestSchema1 {
		layerType = types.OCILayer
	}
	layer := static.NewLayer([]byte("digester test layer "+seed), layerType)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch, OS: "linux",
		Config: v1.Config{Labels: map[string]string{"seed": seed}},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{mustDiffID(layer)}},
	})
	if err != nil {
		return nil, err
	}
	if mt == types.OCIManifestSchema1 {
		img = mutate.ConfigMediaType(mutate.MediaType(img, mt), types.OCIConfigJSON)
	}
	return img, nil
}

func mustDiffID(l v1.Layer) v1.Hash {
	h, err := l.DiffID()
	if err != nil {
		panic(err) // static layers cannot fail
	}
	return h
}
