// Package apiservertest runs a real Kubernetes API server on loopback for end-to-end tests: etcd and
// kube-apiserver v1.36, built into bin/ from tools/apiserver by scripts/install-deps.sh, with a
// certificate authority, a serving certificate for 127.0.0.1, a service-account signing key and a
// static admin token, and a kubeconfig for kubectl.
//
// There is no scheduler and, unless a test starts one (StartControllerManager), no
// controller-manager: objects are stored and admitted (webhooks included) but nothing acts on
// them, which is what admission tests need. With the controller-manager, built into bin/ too, its
// deployment and replicaset controllers turn a Deployment into a ReplicaSet and Pods (Pending:
// there is no scheduler or kubelet). Namespaces get no default ServiceAccount by themselves;
// CreateNamespace makes one, as the ServiceAccount admission plugin requires it for Pods.
package apiservertest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/digester/digester/internal/testcerts"
)

// Server is a running etcd and kube-apiserver.
type Server struct {
	// URL is the API server's address, https://127.0.0.1:PORT.
	URL string
	// Token is a bearer token of a user in group system:masters.
	Token string
	// Kubeconfig is a kubeconfig file for URL and Token; pass it to kubectl with --kubeconfig.
	Kubeconfig string
	// CA signed the API server's certificate; tests can issue webhook certificates from it.
	CA *testcerts.CA

	root    string
	dir     string
	etcd    *process
	api     *process
	kcm     *process
	apiLog  string
	etcdLog string
	kcmLog  string
}

type process struct {
	cmd    *exec.Cmd
	exited chan error
}

// Binaries returns the paths of kube-apiserver and etcd under root/bin, or an error that says how
// to build them.
func Binaries(root string) (apiserver, etcd string, err error) {
	apiserver, etcd = filepath.Join(root, "bin", "kube-apiserver"), filepath.Join(root, "bin", "etcd")
	for _, p := range []string{apiserver, etcd} {
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Errorf("%s is missing: run ./scripts/install-deps.sh (make deps), which builds it from tools/apiserver", p)
		}
	}
	return apiserver, etcd, nil
}

// Start starts etcd and kube-apiserver from root/bin, keeping their files under dir, and waits
// until the API server is ready. Close stops them.
func Start(root, dir string) (*Server, error) {
	apiserver, etcd, err := Binaries(root)
	if err != nil {
		return nil, err
	}
	s := &Server{root: root, dir: dir, apiLog: filepath.Join(dir, "kube-apiserver.log"), etcdLog: filepath.Join(dir, "etcd.log")}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peer := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	s.etcd, err = start(s.etcdLog, etcd,
		"--name=test", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=test="+peer, "--log-level=warn", "--unsafe-no-fsync")
	if err != nil {
		return nil, err
	}
	if err := waitFor(s.etcd, s.etcdLog, 30*time.Second, func() bool {
		resp, err := http.Get(client + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}

	if s.CA, err = testcerts.NewCA(); err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, s.CA.CertPEM, 0o600); err != nil {
		return nil, err
	}
	certFile, keyFile, err := s.CA.WriteServing(dir, "kube-apiserver", "127.0.0.1", "localhost")
	if err != nil {
		return nil, err
	}
	saKey, err := writeKey(filepath.Join(dir, "sa.key"))
	if err != nil {
		return nil, err
	}
	s.Token = randomToken()
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(s.Token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	s.URL = "https://127.0.0.1:" + strconv.Itoa(ports[2])
	s.api, err = start(s.apiLog, apiserver,
		"--etcd-servers="+client,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile,
		"--token-auth-file="+tokens, "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.0.0.0/24", "--endpoint-reconciler-type=none")
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CA.Pool()}}}
	if err := waitFor(s.api, s.apiLog, 90*time.Second, func() bool {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+s.Token)
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}

	s.Kubeconfig = filepath.Join(dir, "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, s.URL, base64.StdEncoding.EncodeToString(s.CA.CertPEM), s.Token)
	if err := os.WriteFile(s.Kubeconfig, []byte(kc), 0o600); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Controllers are the controllers StartControllerManager runs: those that turn a Deployment into a
// ReplicaSet and its Pods.
const Controllers = "deployment-controller,replicaset-controller"

// StartControllerManager starts kube-controller-manager from root/bin against the server, running
// Controllers as the admin user, without leader election or a serving port. It returns once the
// process runs; its controllers act within seconds. StopControllerManager stops it, and Close
// stops it first.
func (s *Server) StartControllerManager() error {
	if s.kcm != nil {
		return fmt.Errorf("kube-controller-manager is already running")
	}
	bin := filepath.Join(s.root, "bin", "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s is missing: run ./scripts/install-deps.sh (make deps), which builds it from tools/apiserver", bin)
	}
	s.kcmLog = filepath.Join(s.dir, "kube-controller-manager.log")
	p, err := start(s.kcmLog, bin, "--kubeconfig="+s.Kubeconfig, "--controllers="+Controllers,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0")
	if err != nil {
		return err
	}
	s.kcm = p
	return nil
}

// StopControllerManager stops kube-controller-manager if it runs; objects it made stay.
func (s *Server) StopControllerManager() {
	s.kcm.stop()
	s.kcm = nil
}

// ControllerManagerLog returns the last n bytes of kube-controller-manager's log, for a failing
// test to show.
func (s *Server) ControllerManagerLog(n int) string { return lastBytes(s.kcmLog, n) }

// Close stops kube-controller-manager if it runs, then kube-apiserver, then etcd (with etcd gone
// first, kube-apiserver retries for minutes; with kube-apiserver gone first, the controller-manager
// would retry too).
func (s *Server) Close() {
	s.kcm.stop()
	s.api.stop()
	s.etcd.stop()
}

// Log returns the last n bytes of the API server's log, for a failing test to show.
func (s *Server) Log(n int) string { return lastBytes(s.apiLog, n) }

func lastBytes(file string, n int) string {
	b, _ := os.ReadFile(file)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Kubectl runs kubectl against the server with stdin (if not empty) and returns its stdout and
// stderr, and an error if it failed.
func (s *Server) Kubectl(ctx context.Context, stdin string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig=" + s.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String(), err
}

// CreateNamespace creates a namespace with labels and its default ServiceAccount.
func (s *Server) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	var ls []string
	for k, v := range labels {
		ls = append(ls, fmt.Sprintf("%q: %q", k, v))
	}
	doc := fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels: {%s}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: %s\n",
		name, strings.Join(ls, ", "), name)
	_, _, err := s.Kubectl(ctx, doc, "apply", "-f", "-")
	return err
}

func start(logFile, bin string, args ...string) (*process, error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait(); log.Close() }()
	return p, nil
}

func (p *process) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// waitFor polls ready until it reports true, the process exits, or timeout passes.
func waitFor(p *process, logFile string, timeout time.Duration, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ready() {
		select {
		case err := <-p.exited:
			p.exited <- err
			return fmt.Errorf("exited (%v) before it was ready; log:\n%s", err, tail(logFile))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s; log:\n%s", timeout, tail(logFile))
		}
	}
	return nil
}

func tail(file string) string {
	b, _ := os.ReadFile(file)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// writeKey writes a new ECDSA private key, PEM, to file: the service-account signing key (the API
// server reads the public half from it too).
func writeKey(file string) (string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", err
	}
	return file, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
}

func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
