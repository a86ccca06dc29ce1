package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// startProxy runs tinyproxy on a loopback port and returns its URL and its log file.
func startProxy(t *testing.T) (url, logFile string) {
	t.Helper()
	bin, err := exec.LookPath("tinyproxy")
	if err != nil {
		t.Fatal("tinyproxy is not on PATH: run `make deps` (scripts/install-deps.sh apt-installs it)")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	logFile = filepath.Join(dir, "tinyproxy.log")
	conf := fmt.Sprintf("Port %s\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nLogLevel Info\nLogFile %q\n", port, logFile)
	writeFiles(t, dir, map[string]string{"tinyproxy.conf": conf})
	cmd := exec.Command(bin, "-d", "-c", filepath.Join(dir, "tinyproxy.conf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logFile)
			t.Fatalf("tinyproxy did not listen on %s:\n%s", addr, b)
		}
	}
	return "http://" + addr, logFile
}

// proxied pushes app:1 to a namespace of the test registry, named host, and returns its pinned
// image, a docker config directory with the registry's password for host, and a ResourceList
// of one Pod running it.
func proxied(t *testing.T, host string) (pinned, dockerConfig string, input []byte) {
	t.Helper()
	s := newSpace(t)
	digests := s.push(t, map[string]types.MediaType{"app:1": types.OCIManifestSchema1})
	img := host + "/" + s.ns + "/app:1"
	dockerConfig = t.TempDir()
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Password))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dockerConfig, map[string]string{"config.json": string(cfg)})
	input = []byte("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" +
		"- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: app\n  spec:\n    containers:\n" +
		"    - name: app\n      image: " + img + "\n")
	return img + "@" + digests["app:1"], dockerConfig, input
}

// TestProxy pins through a real HTTPS proxy (tinyproxy) named by HTTPS_PROXY, and checks in the
// proxy's log that the lookups went through it. Go never sends loopback addresses through a
// proxy, so the registry is named 127.1: a host name to Go, 127.0.0.1 to the proxy's resolver.
func TestProxy(t *testing.T) {
	host := strings.Replace(reg.Host, "127.0.0.1", "127.1", 1)
	want, dir, input := proxied(t, host)
	proxy, proxyLog := startProxy(t)

	for _, tc := range []struct {
		name    string
		noProxy string
	}{
		{name: "HTTPS_PROXY"},
		{name: "NO_PROXY naming other hosts", noProxy: "registry.example,127.0.0.1," + reg.Host},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(proxyLog)
			e := env{dockerConfig: dir, extra: []string{"HTTPS_PROXY=" + proxy, "NO_PROXY=" + tc.noProxy}}
			out := run(t, e, input, t.TempDir(), digester)
			if out.code != 0 {
				t.Fatalf("exit code %d; stderr:\n%s", out.code, out.stderr)
			}
			if diff := cmp.Diff([]string{want}, outputImages(t, out.stdout)); diff != "" {
				t.Errorf("images (-want +got):\n%s", diff)
			}
			after, _ := os.ReadFile(proxyLog)
			if !strings.Contains(string(after[len(before):]), "CONNECT "+host) {
				t.Errorf("the proxy's log shows no CONNECT %s:\n%s", host, after[len(before):])
			}
		})
	}
}

// TestNoProxy: a registry named in NO_PROXY is reached directly, and the same registry without it
// goes through the proxy. The registry is named by the machine's host name, which /etc/hosts maps to
// a loopback address: Go resolves it (127.1 it would look up in DNS) and, as it is not an IP, would
// send it through HTTPS_PROXY.
func TestNoProxy(t *testing.T) {
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := net.LookupHost(hostname)
	if err != nil || len(addrs) == 0 || !net.ParseIP(addrs[0]).IsLoopback() {
		t.Fatalf("this test needs the machine's host name %q to resolve to a loopback address through /etc/hosts, "+
			"as Debian and container runtimes write it; it resolves to %v (%v)", hostname, addrs, err)
	}
	host := strings.Replace(reg.Host, "127.0.0.1", hostname, 1)
	want, dir, input := proxied(t, host)
	proxy, proxyLog := startProxy(t)
	for _, tc := range []struct {
		name    string
		noProxy string
		proxied bool
	}{
		{name: "not in NO_PROXY", noProxy: "registry.example", proxied: true},
		{name: "in NO_PROXY", noProxy: "registry.example," + hostname},
		{name: "its domain in NO_PROXY", noProxy: "." + hostname + "," + hostname + ":1", proxied: true}, // another port: no match
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := os.ReadFile(proxyLog)
			e := env{dockerConfig: dir, extra: []string{"HTTPS_PROXY=" + proxy, "NO_PROXY=" + tc.noProxy}}
			out := run(t, e, input, t.TempDir(), digester)
			if out.code != 0 {
				t.Fatalf("exit code %d; stderr:\n%s", out.code, out.stderr)
			}
			if diff := cmp.Diff([]string{want}, outputImages(t, out.stdout)); diff != "" {
				t.Errorf("images (-want +got):\n%s", diff)
			}
			after, _ := os.ReadFile(proxyLog)
			if got := strings.Contains(string(after[len(before):]), "CONNECT "+host); got != tc.proxied {
				t.Errorf("NO_PROXY=%s: through the proxy %v, want %v; the proxy's log:\n%s", tc.noProxy, got, tc.proxied, after[len(before):])
			}
		})
	}
}
