package model_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testcerts"
	"github.com/digester/digester/resolver"
)

// tagSpec is one tag the world serves: a multi-arch index or a single-platform image.
type tagSpec struct {
	path, tag string
	// platforms are the images of an index, or the one platform of a single image.
	platforms []string
	index     bool
	// attest: the index also lists an attestation manifest (platform unknown/unknown), as
	// docker buildx pushes one.
	attest bool
	// versions is how many versions are pushed before a case starts; the last is current.
	versions int
}

// catalogue is every tag a case's registry serves, by repository path (the same path under every
// registry host: the loopback registry serves all of them).
var catalogue = []tagSpec{
	{path: "library/nginx", tag: "1.27", platforms: []string{"linux/amd64", "linux/arm64"}, index: true, attest: true, versions: 2},
	{path: "library/nginx", tag: "latest", platforms: []string{"linux/amd64", "linux/arm64"}, index: true, versions: 1},
	{path: "library/nginx", tag: "1.26", platforms: []string{"linux/amd64"}, versions: 1},
	{path: "library/busybox", tag: "1.36", platforms: []string{"linux/amd64"}, versions: 2},
	{path: "acme/api", tag: "2.1", platforms: []string{"linux/amd64", "linux/arm64"}, index: true, versions: 2},
	{path: "acme/api", tag: "2.0", platforms: []string{"linux/arm64"}, versions: 1},
	{path: "team0/tool", tag: "1", platforms: []string{"linux/amd64"}, index: false, versions: 1},
}

// mirrorPrefixes are the path prefixes under which the world also serves each repository, for
// mirrors that put one in front (registry-mirrors: docker.io=mirror.test/hub).
var mirrorPrefixes = []string{"hub", "ghcr"}

// registryHosts are the host names the built binary reaches through the proxy; its certificate
// names each.
var registryHosts = []string{"docker.io", "index.docker.io", "registry-1.docker.io", "ghcr.io", "registry.internal", "mirror.test"}

// version is what a tag pointed to for a while.
type version struct {
	index    string            // the index digest; "" for a single image
	children map[string]string // platform ("linux/arm64", "unknown/unknown") -> image digest
	image    string            // a single-platform image's digest
	platform string            // and its platform
}

// forPlatform is the digest a lookup for platform ("" for none: the index) gets from v.
func (v version) forPlatform(platform string) (string, bool) {
	switch {
	case v.index != "" && platform == "":
		return v.index, true
	case v.index != "":
		d, ok := v.children[platform]
		return d, ok && platform != "unknown/unknown"
	case platform == "" || platform == v.platform:
		return v.image, true
	}
	return "", false
}

// digests are every digest of v: the index, its images (attestations included), or the image.
func (v version) digests() []string {
	out := []string{}
	if v.index != "" {
		out = append(out, v.index)
	}
	for _, d := range v.children {
		out = append(out, d)
	}
	if v.image != "" {
		out = append(out, v.image)
	}
	return out
}

// world is one case's registry and what it has served: a loopback registry behind TLS (every
// registry host is served by it), a proxy through which the built binary reaches it by name, the
// history of every tag, and the Host of every request.
type world struct {
	t     *testing.T
	reg   *registrytest.Registry
	proxy *mitm
	// transport reaches the registry under any host name; one for the world, so that its runs
	// and pushes share connections.
	transport *http.Transport
	// prefixed: each catalogue repository is also served under the mirror prefixes.
	prefixed bool

	mu      sync.Mutex
	history map[string][]version // "path:tag" -> versions, oldest first
	hosts   []string             // Host of each request since the last reset
	pushes  int
}

// newWorld starts a registry serving the catalogue, each tag with its versions pushed.
// With prefixed, each is also served under the mirror prefixes.
func newWorld(t *testing.T, prefixed bool) *world {
	return startWorld(t, catalogue, registryHosts, prefixed)
}

// startWorld starts a registry serving tags, each with its versions pushed, and a proxy whose
// certificate names hosts.
func startWorld(t *testing.T, tags []tagSpec, hosts []string, prefixed bool) *world {
	t.Helper()
	w := &world{t: t, history: map[string][]version{}, prefixed: prefixed}
	w.reg = registrytest.New(registrytest.WithTLS(), registrytest.WithMiddleware(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			w.mu.Lock()
			w.hosts = append(w.hosts, strings.ToLower(r.Host))
			w.mu.Unlock()
			h.ServeHTTP(rw, r)
		})
	}))
	t.Cleanup(w.reg.Close)
	w.transport = w.reg.Transport()
	t.Cleanup(w.transport.CloseIdleConnections)
	for _, s := range tags {
		for range s.versions {
			w.push(s)
		}
	}
	w.proxy = newMITM(t, w.reg, w.transport, hosts)
	w.resetHosts()
	return w
}

// key is a tag's catalogue key, "path:tag".
func key(path, tag string) string { return path + ":" + tag }

// specOf returns the catalogue entry of a "path:tag" key.
func specOf(k string) (tagSpec, bool) {
	for _, s := range catalogue {
		if key(s.path, s.tag) == k {
			return s, true
		}
	}
	return tagSpec{}, false
}

// move pushes a new version of the tag k ("path:tag"): the tag moves.
func (w *world) move(k string) {
	s, ok := specOf(k)
	if !ok {
		w.t.Fatalf("move %s: not in the catalogue", k)
	}
	w.push(s)
}

// serve pushes a single-platform (linux/amd64) image as tag k ("path:tag") unless it is served.
func (w *world) serve(k string) {
	if len(w.versions(k)) > 0 {
		return
	}
	path, tag, _ := strings.Cut(k, ":")
	w.push(tagSpec{path: path, tag: tag, platforms: []string{"linux/amd64"}, versions: 1})
}

// push pushes a new version of s under its path and each mirror prefix, and records it.
func (w *world) push(s tagSpec) {
	w.t.Helper()
	w.mu.Lock()
	w.pushes++
	seed := fmt.Sprintf("%s:%s#%d", s.path, s.tag, w.pushes)
	w.mu.Unlock()
	var v version
	var write func(ref name.Reference) error
	if s.index {
		idx, children := buildIndex(w.t, seed, s.platforms, s.attest)
		v.index, v.children = digestOf(w.t, idx.Digest), children
		write = func(ref name.Reference) error {
			return remote.WriteIndex(ref, idx, remote.WithTransport(w.reg.Transport()))
		}
	} else {
		img := buildImage(w.t, seed, s.platforms[0])
		v.image, v.platform = digestOf(w.t, img.Digest), s.platforms[0]
		write = func(ref name.Reference) error { return remote.Write(ref, img, remote.WithTransport(w.transport)) }
	}
	for _, prefix := range append([]string{""}, mirrorPrefixes...) {
		if prefix != "" && !w.prefixed {
			continue
		}
		p := s.path
		if prefix != "" {
			p = prefix + "/" + p
		}
		ref, err := name.NewTag("push.test/" + p + ":" + s.tag)
		if err != nil {
			w.t.Fatal(err)
		}
		if err := write(ref); err != nil {
			w.t.Fatalf("push %s: %v", ref, err)
		}
	}
	w.mu.Lock()
	w.history[key(s.path, s.tag)] = append(w.history[key(s.path, s.tag)], v)
	w.mu.Unlock()
}

// digestOf is the digest f returns, as sha256:….
func digestOf(t *testing.T, f func() (v1.Hash, error)) string {
	t.Helper()
	h, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// buildImage makes a small OCI image for platform (os/arch) whose content depends on seed.
func buildImage(t *testing.T, seed, platform string) v1.Image {
	t.Helper()
	os, arch, _ := strings.Cut(platform, "/")
	layer := static.NewLayer([]byte("model layer "+seed+" "+platform), types.OCILayer)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	diffID, err := layer.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		OS: os, Architecture: arch,
		Config: v1.Config{Labels: map[string]string{"seed": seed}},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{diffID}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
}

// buildIndex makes an OCI index of one image per platform and, with attest, an attestation
// manifest for the first (platform unknown/unknown, as buildx writes it). It returns the index
// and the digest of each entry by platform.
func buildIndex(t *testing.T, seed string, platforms []string, attest bool) (v1.ImageIndex, map[string]string) {
	t.Helper()
	children := map[string]string{}
	var adds []mutate.IndexAddendum
	for _, p := range platforms {
		img := buildImage(t, seed, p)
		children[p] = digestOf(t, img.Digest)
		os, arch, _ := strings.Cut(p, "/")
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: os, Architecture: arch},
		}})
	}
	if attest {
		att := buildImage(t, seed+" attestation", "unknown/unknown")
		children["unknown/unknown"] = digestOf(t, att.Digest)
		adds = append(adds, mutate.IndexAddendum{Add: att, Descriptor: v1.Descriptor{
			MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{
				"vnd.docker.reference.type":   "attestation-manifest",
				"vnd.docker.reference.digest": children[platforms[0]],
			},
		}})
	}
	return mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex), children
}

// refKey is the catalogue key ("path:tag") of a reference as written, its digest ignored; a
// reference without a tag means :latest. ok is false for a reference that does not parse or
// names no tag (repo@digest).
func refKey(ref string) (string, bool) {
	tagPart, _, pinned := strings.Cut(ref, "@")
	r, err := resolver.Parse(tagPart)
	if err != nil {
		return "", false
	}
	if pinned && !hasTag(tagPart) {
		return "", false
	}
	return key(r.Context().RepositoryStr(), r.Identifier()), true
}

// hasTag reports whether a reference (without digest) is written with a tag.
func hasTag(ref string) bool {
	return strings.LastIndex(ref, ":") > strings.LastIndex(ref, "/")
}

// normalise is a reference's full name (index.docker.io/library/nginx:latest for nginx), its
// digest cut; the lock's key for it.
func normalise(ref string) string {
	tagPart, _, _ := strings.Cut(ref, "@")
	r, err := resolver.Parse(tagPart)
	if err != nil {
		return tagPart
	}
	return r.Name()
}

// versions returns the versions of the tag k, oldest first.
func (w *world) versions(k string) []version {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.history[k])
}

// current is what a lookup of k for platform gets now; ok is false if none (no such tag, or no
// image for the platform).
func (w *world) current(k, platform string) (string, bool) {
	vs := w.versions(k)
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1].forPlatform(platform)
}

// served reports whether a lookup of k for platform ever got digest: whether the registry ever
// served it as that tag's image for that platform (the index, for none).
func (w *world) served(k, platform, digest string) bool {
	for _, v := range w.versions(k) {
		if d, ok := v.forPlatform(platform); ok && d == digest {
			return true
		}
	}
	return false
}

// inCurrent reports whether digest is any manifest of k's current version: its index, one of its
// images (attestations included), or its image. A pin to one of these was not left behind by a
// tag that moved.
func (w *world) inCurrent(k, digest string) bool {
	vs := w.versions(k)
	return len(vs) > 0 && slices.Contains(vs[len(vs)-1].digests(), digest)
}

// resetHosts forgets the requests seen so far.
func (w *world) resetHosts() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hosts = nil
}

// seenHosts returns the Host of every request since the last reset.
func (w *world) seenHosts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.hosts)
}

// mitm is an HTTPS proxy (HTTPS_PROXY) that answers every CONNECT itself, with a certificate for
// registryHosts signed by a CA of its own (SSL_CERT_FILE), and forwards the requests to the
// loopback registry with their Host: the built binary reaches "index.docker.io" as it would in
// production, TLS verified, and the registry sees which host was asked for.
type mitm struct {
	URL    string // http://127.0.0.1:PORT
	CAFile string
}

// newMITM starts the proxy in front of reg, reached through transport, with a certificate for hosts.
func newMITM(t *testing.T, reg *registrytest.Registry, transport http.RoundTripper, hosts []string) *mitm {
	t.Helper()
	ca, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("registries", hosts...)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	m := &mitm{CAFile: filepath.Join(t.TempDir(), "ca.pem")}
	conns := chanListener{conns: make(chan net.Conn), done: make(chan struct{}), once: &sync.Once{}}
	if err := os.WriteFile(m.CAFile, ca.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	forward := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport: transport,
		ErrorLog:  log.New(io.Discard, "", 0),
	}
	quiet := log.New(io.Discard, "", 0) // a client that gives up mid-handshake is no news
	inner := &http.Server{Handler: forward, ErrorLog: quiet}
	go inner.Serve(conns)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	outer := &http.Server{ErrorLog: quiet, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(rw, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		conn, buf, err := rw.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n"))
		tc := tls.Server(bufferedConn{conn, buf.Reader}, &tls.Config{Certificates: []tls.Certificate{cert}})
		select {
		case conns.conns <- tc:
		case <-conns.done:
			conn.Close()
		}
	})}
	go outer.Serve(ln)
	t.Cleanup(func() { outer.Close(); conns.Close(); inner.Close() })
	m.URL = "http://" + ln.Addr().String()
	return m
}

// chanListener hands the proxy's TLS connections to an http.Server.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  *sync.Once
}

// Accept hands over the next connection.
func (l chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept.
func (l chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is a placeholder: the connections come from the proxy.
func (l chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// bufferedConn reads what the hijacked connection had buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

// Read reads what was buffered, then the connection.
func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
