// Package realregistry runs a real registry for end-to-end tests: Debian's docker-registry (the
// CNCF distribution registry 2.8) on a free loopback port, serving TLS with a certificate from a CA
// it creates and requiring htpasswd basic auth. It writes the files a client needs to reach it —
// the CA (for SSL_CERT_FILE) and a docker config.json holding the credentials (for DOCKER_CONFIG) —
// and pushes small images and multi-arch indexes with go-containerregistry.
//
// It needs docker-registry and htpasswd (apache2-utils) on PATH: `make deps` installs both.
package realregistry

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testcerts"
)

// Registry is a running docker-registry.
type Registry struct {
	// Host is 127.0.0.1:PORT, ready to prefix a repository.
	Host string
	// CAFile is the PEM file of the CA that signed the registry's certificate; point
	// SSL_CERT_FILE at it to trust the registry.
	CAFile string
	// DockerConfig is a directory whose config.json holds the registry's credentials; point
	// DOCKER_CONFIG at it.
	DockerConfig string
	// User and Password are the credentials the registry accepts.
	User, Password string
	// ClientCert and ClientKey are PEM files of a client certificate the registry accepts, signed
	// by the CA of CAFile; with ClientCerts, the registry accepts no client without one.
	ClientCert, ClientKey string

	dir         string
	logFile     string
	cmd         *exec.Cmd
	exited      chan error
	transport   *http.Transport
	proxy       *Registry
	accessLog   bool
	noAuth      bool
	clientCerts bool
}

// Option configures a Registry.
type Option func(*Registry)

// Proxy makes the registry a pull-through cache of upstream (the distribution registry's proxy
// mode, `proxy: remoteurl:`): it serves upstream's repositories, fetching what it lacks with
// upstream's credentials and trusting upstream's CA.
func Proxy(upstream *Registry) Option { return func(r *Registry) { r.proxy = upstream } }

// Anonymous makes the registry serve everyone without credentials, as a public registry does.
// (The registry's proxy mode, Proxy, can log in to its upstream only through a bearer token
// server, not with basic auth: a cache's upstream here is anonymous.)
func Anonymous() Option { return func(r *Registry) { r.noAuth = true } }

// ClientCerts makes the registry require a client certificate signed by its CA (mutual TLS);
// ClientCert and ClientKey hold one.
func ClientCerts() Option { return func(r *Registry) { r.clientCerts = true } }

// AccessLog makes the registry log every request it serves; read them with Requests.
func AccessLog() Option { return func(r *Registry) { r.accessLog = true } }

// Start starts a registry keeping its files (storage, certificates, config, log) under dir.
// Close it when done.
func Start(dir string, opts ...Option) (*Registry, error) {
	for _, tool := range []string{"docker-registry", "htpasswd"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s is not on PATH: run `make deps` (scripts/install-deps.sh apt-installs docker-registry and apache2-utils)", tool)
		}
	}
	secret := make([]byte, 12)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	r := &Registry{
		User:         "digester",
		Password:     "pw-" + hex.EncodeToString(secret),
		CAFile:       filepath.Join(dir, "ca.pem"),
		DockerConfig: filepath.Join(dir, "docker"),
		dir:          dir,
		logFile:      filepath.Join(dir, "registry.log"),
		ClientCert:   filepath.Join(dir, "client.pem"),
		ClientKey:    filepath.Join(dir, "client-key.pem"),
	}
	for _, o := range opts {
		o(r)
	}
	pool, err := r.writeCerts()
	if err != nil {
		return nil, fmt.Errorf("creating certificates: %w", err)
	}
	r.transport = http.DefaultTransport.(*http.Transport).Clone()
	r.transport.TLSClientConfig = &tls.Config{RootCAs: pool}
	if r.clientCerts {
		cert, err := tls.LoadX509KeyPair(r.ClientCert, r.ClientKey)
		if err != nil {
			return nil, err
		}
		r.transport.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	out, err := exec.Command("htpasswd", "-Bbn", r.User, r.Password).Output()
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
		return nil, err
	}
	// The port is chosen before the registry binds it; another process may take it first, so try
	// a few times.
	for attempt := 0; ; attempt++ {
		err = r.start()
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{r.Host: map[string]string{"auth": auth}}})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.DockerConfig, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(r.DockerConfig, "config.json"), cfg, 0o600); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Registry) start() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.Host = l.Addr().String()
	l.Close()
	clientCAs := "[]"
	if r.clientCerts {
		clientCAs = fmt.Sprintf("[%q]", r.CAFile)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog: {disabled: %t}
storage:
  filesystem: {rootdirectory: %q}
http:
  addr: %q
  tls: {certificate: %q, key: %q, clientcas: %s}
`, !r.accessLog, filepath.Join(r.dir, "storage"), r.Host, filepath.Join(r.dir, "server.pem"),
		filepath.Join(r.dir, "server-key.pem"), clientCAs)
	if !r.noAuth {
		config += fmt.Sprintf("auth:\n  htpasswd: {realm: digester-e2e, path: %q}\n", filepath.Join(r.dir, "htpasswd"))
	}
	if r.proxy != nil {
		config += fmt.Sprintf("proxy: {remoteurl: %q}\n", "https://"+r.proxy.Host)
	}
	cfgFile := filepath.Join(r.dir, "config.yml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		return err
	}
	log, err := os.Create(r.logFile)
	if err != nil {
		return err
	}
	defer log.Close()
	r.cmd = exec.Command("docker-registry", "serve", cfgFile)
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if r.proxy != nil {
		r.cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+r.proxy.CAFile)
	}
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("starting docker-registry: %w", err)
	}
	r.exited = make(chan error, 1)
	go func() { r.exited <- r.cmd.Wait() }()

	// Ready when /v2/ answers: 401 asking for credentials, or 200 when anonymous.
	client := &http.Client{Transport: r.transport, Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		select {
		case err := <-r.exited:
			return fmt.Errorf("docker-registry exited (%v) before serving:\n%s", err, r.Log())
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get("https://" + r.Host + "/v2/")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized || r.noAuth && resp.StatusCode == http.StatusOK {
			return nil
		}
	}
	r.Close()
	return fmt.Errorf("docker-registry did not answer on %s:\n%s", r.Host, r.Log())
}

// writeCerts creates a CA, a server certificate for 127.0.0.1 and localhost and a client
// certificate, both signed by it, and returns a pool trusting the CA.
func (r *Registry) writeCerts() (*x509.CertPool, error) {
	ca, err := testcerts.NewCA()
	if err != nil {
		return nil, err
	}
	// 127.1 is 127.0.0.1 to a proxy's resolver but a host name to Go, which never sends a loopback
	// IP through HTTPS_PROXY: the proxy tests name the registry so. The machine's host name, which
	// /etc/hosts maps to loopback, is one both Go and the proxy resolve: the NO_PROXY test uses it.
	hosts := []string{"127.0.0.1", "localhost", "127.1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	cert, key, err := ca.Issue("127.0.0.1", hosts...)
	if err != nil {
		return nil, err
	}
	clientCert, clientKey, err := ca.Issue("digester e2e client")
	if err != nil {
		return nil, err
	}
	for file, b := range map[string][]byte{"ca.pem": ca.CertPEM, "server.pem": cert, "server-key.pem": key,
		"client.pem": clientCert, "client-key.pem": clientKey} {
		if err := os.WriteFile(filepath.Join(r.dir, file), b, 0o600); err != nil {
			return nil, err
		}
	}
	return ca.Pool(), nil
}

// Close stops the registry.
func (r *Registry) Close() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	r.cmd.Process.Kill()
	<-r.exited
}

// Log returns what the registry has logged.
func (r *Registry) Log() string {
	b, _ := os.ReadFile(r.logFile)
	return string(b)
}

// Request is one request a registry served, from its access log.
type Request struct {
	Method, Path, UserAgent string
	Status                  int
}

// accessLine is a line of the access log (Apache combined format):
// 127.0.0.1 - - [date] "HEAD /v2/a/manifests/1 HTTP/1.1" 200 0 "" "digester".
var accessLine = regexp.MustCompile(`"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"`)

// Requests returns the requests the registry has served, in order; it needs AccessLog. A line is
// logged just after its response is sent: call Sync first to be sure every earlier one is in.
func (r *Registry) Requests() []Request {
	var out []Request
	for _, m := range accessLine.FindAllStringSubmatch(r.Log(), -1) {
		code, _ := strconv.Atoi(m[3])
		out = append(out, Request{Method: m[1], Path: m[2], Status: code, UserAgent: m[4]})
	}
	return out
}

// Sync sends the registry a request of its own and waits until the access log shows it, so that
// the requests answered before it are logged too. It needs AccessLog.
func (r *Registry) Sync() error {
	mark := fmt.Sprintf("/v2/?sync=%d", time.Now().UnixNano())
	client := &http.Client{Transport: r.transport, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + r.Host + mark)
	if err != nil {
		return err
	}
	resp.Body.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, q := range r.Requests() {
			if q.Path == mark {
				return nil
			}
		}
	}
	return fmt.Errorf("registry %s did not log %s", r.Host, mark)
}

// Secrets returns the strings that must never appear in a client's output: the password and the
// base64 user:password of the docker config.
func (r *Registry) Secrets() []string {
	return []string{r.Password, base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))}
}

// Push pushes a small image (mt an image manifest type) or a two-platform index of them
// (mt an index type) as Host/repo:tag, and returns the digest of what it pushed.
// OCI types get OCI children, Docker types Docker children.
func (r *Registry) Push(ctx context.Context, repo, tag string, mt types.MediaType) (string, error) {
	ref, err := name.NewTag(r.Host + "/" + repo + ":" + tag)
	if err != nil {
		return "", err
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(r.transport),
		remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password}),
	}
	var d v1.Hash
	seed := repo + ":" + tag
	switch {
	case mt.IsIndex():
		idx, err := registrytest.Index(mt, seed)
		if err != nil {
			return "", err
		}
		if err := remote.WriteIndex(ref, idx, opts...); err != nil {
			return "", fmt.Errorf("pushing %s: %w", ref, err)
		}
		d, err = idx.Digest()
	case mt.IsImage():
		img, err := registrytest.Image(mt, seed)
		if err != nil {
			return "", err
		}
		if err := remote.Write(ref, img, opts...); err != nil {
			return "", fmt.Errorf("pushing %s: %w", ref, err)
		}
		d, err = img.Digest()
	default:
		return "", fmt.Errorf("pushing %s: %s is neither an image nor an index media type", ref, mt)
	}
	if err != nil {
		return "", err
	}
	return d.String(), nil
}
