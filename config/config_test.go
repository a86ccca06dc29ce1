package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/digester/digester/resolver"
)

func TestParse(t *testing.T) {
	def := Default()
	with := func(f func(*Config)) Config {
		c := Default()
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		in      string
		env     string
		want    Config
		wantErr string
	}{
		{name: "none", want: def},
		{name: "empty object (kpt without config)", in: "{}\n", want: def},
		{
			name: "configmap",
			in: `apiVersion: v1
kind: ConfigMap
metadata: {name: function-input}
data:
  skip-prefixes: "a.example/:b.example/"
  concurrency: "8"
  registry-concurrency: "2"
  timeout: 3s
  deadline: 1m
  insecure-registries: "r1.example, r2.example:5000"
  on-error: warn
  mode: check
  pinned: verify
  lock: update
  lock-file: locks/images.yaml
`,
			want: Config{
				SkipPrefixes: []string{"a.example/", "b.example/"}, Concurrency: 8, RegistryConcurrency: 2,
				Timeout: 3 * time.Second, Deadline: time.Minute,
				InsecureRegistries: []string{"r1.example", "r2.example:5000"}, OnError: "warn",
				Mode: "check", Pinned: "verify", Lock: "update", LockFile: "locks/images.yaml",
			},
		},
		{
			name: "SKIP_PREFIXES adds to skip-prefixes",
			in:   "kind: ConfigMap\napiVersion: v1\ndata:\n  skip-prefixes: b/\n",
			env:  "a/:b/",
			want: with(func(c *Config) { c.SkipPrefixes = []string{"a/", "b/"} }),
		},
		{
			name:    "frozen lock and refresh",
			in:      "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\npinned: refresh\nlock: frozen\n",
			wantErr: "lock: frozen sends no registry request, so it cannot go with pinned: refresh",
		},
		{
			name: "typed",
			in: `apiVersion: fn.kpt.dev/v1alpha1
kind: Digester
metadata: {name: pin}
skipPrefixes: [a/]
concurrency: 4
registryConcurrency: 3
timeout: 2s
deadline: 30s
insecureRegistries: [r.example]
onError: fail
mode: check
pinned: refresh
lockFile: x.yaml
`,
			want: Config{
				SkipPrefixes: []string{"a/"}, Concurrency: 4, RegistryConcurrency: 3,
				Timeout: 2 * time.Second, Deadline: 30 * time.Second,
				InsecureRegistries: []string{"r.example"}, OnError: "fail",
				Mode: "check", Pinned: "refresh", LockFile: "x.yaml",
			},
		},
		{
			name: "skip-prefixes with ports and commas",
			in:   "kind: ConfigMap\napiVersion: v1\ndata:\n  skip-prefixes: \"127.0.0.1:5000/vendor/:localhost:5000:gcr.io/x/,quay.io/y/\"\n",
			env:  "registry.example:443/team/",
			want: with(func(c *Config) {
				c.SkipPrefixes = []string{"registry.example:443/team/", "127.0.0.1:5000/vendor/", "localhost:5000", "gcr.io/x/", "quay.io/y/"}
			}),
		},
		{
			name: "configmap mirrors",
			in:   "kind: ConfigMap\napiVersion: v1\ndata:\n  registry-mirrors: \"docker.io=mirror.corp.example/dockerhub, quay.io=mirror.corp.example/quay,docker.io=localhost:5000\"\n  mirror-fallback: \"true\"\n",
			want: with(func(c *Config) {
				c.Mirrors = resolver.Mirrors{
					"index.docker.io": {{Host: "mirror.corp.example", Prefix: "dockerhub"}, {Host: "localhost:5000"}},
					"quay.io":         {{Host: "mirror.corp.example", Prefix: "quay"}},
				}
				c.MirrorFallback = true
			}),
		},
		{
			name: "typed mirrors",
			in:   "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nregistryMirrors:\n  docker.io: [mirror.corp.example/dockerhub, localhost:5000]\nmirrorFallback: false\n",
			want: with(func(c *Config) {
				c.Mirrors = resolver.Mirrors{"index.docker.io": {{Host: "mirror.corp.example", Prefix: "dockerhub"}, {Host: "localhost:5000"}}}
			}),
		},
		{name: "mirror that is not a registry", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  registry-mirrors: docker.io=https://mirror.example\n", wantErr: `key "registry-mirrors": mirror "https://mirror.example" is not a registry: write host[:port][/path] without a scheme`},
		{name: "mirrors of something not a registry", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  registry-mirrors: dockerhub=mirror.example\n", wantErr: `key "registry-mirrors": "dockerhub" is not a registry host`},
		{name: "mirror pair without =", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  registry-mirrors: mirror.example\n", wantErr: `key "registry-mirrors": "mirror.example" is not registry=mirror`},
		{name: "bad mirror-fallback", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  mirror-fallback: yes\n", wantErr: `key "mirror-fallback": "yes" is neither true nor false`},
		{name: "typed bad mirror", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nregistryMirrors: {docker.io: [Mirror.example/Hub]}\n", wantErr: `field "registryMirrors": mirror "Mirror.example/Hub" is not a registry`},
		{name: "typed registry without mirrors", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nregistryMirrors: {docker.io: []}\n", wantErr: `field "registryMirrors": registry "docker.io" has no mirrors listed`},
		{
			name: "configmap platform",
			in:   "kind: ConfigMap\napiVersion: v1\ndata:\n  platform: linux/arm64/v8\n",
			want: with(func(c *Config) { c.Platform = &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"} }),
		},
		{
			name: "typed platform",
			in:   "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nplatform: windows/amd64:10.0.20348\n",
			want: with(func(c *Config) {
				c.Platform = &v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}
			}),
		},
		{name: "unknown platform", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  platform: linux/x86_64\n", wantErr: `key "platform": platform "linux/x86_64": unknown architecture "x86_64"`},
		{name: "typed unknown platform", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nplatform: macos/arm64\n", wantErr: `field "platform": platform "macos/arm64": unknown operating system "macos"`},
		{name: "unknown configmap key", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  skip-prefix: a/\n", wantErr: `unknown key "skip-prefix"`},
		{name: "unknown typed field", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nskipPrefix: [a/]\n", wantErr: `field skipPrefix not found`},
		{name: "bad concurrency", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  concurrency: \"0\"\n", wantErr: `key "concurrency": "0" is not a whole number of at least 1`},
		{name: "bad timeout", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  timeout: soon\n", wantErr: `key "timeout": "soon" is not a positive duration`},
		{name: "bad on-error", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  on-error: ignore\n", wantErr: `key "on-error": "ignore" is neither fail nor warn`},
		{name: "bad mode", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  mode: dry-run\n", wantErr: `key "mode": "dry-run" is not one of pin, check`},
		{name: "bad pinned", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  pinned: ignore\n", wantErr: `key "pinned": "ignore" is not one of keep, verify, refresh`},
		{name: "bad lock", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nlock: read\n", wantErr: `field "lock": "read" is not one of update, frozen`},
		{name: "lock file outside the package", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  lock-file: ../digests.yaml\n", wantErr: `key "lock-file": "../digests.yaml" is not a .yaml file inside the package`},
		{name: "bad typed deadline", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\ndeadline: -1s\n", wantErr: `field "deadline"`},
		{name: "wrong apiVersion", in: "apiVersion: fn.kpt.dev/v1\nkind: Digester\n", wantErr: `apiVersion "fn.kpt.dev/v1" for kind Digester, want fn.kpt.dev/v1alpha1`},
		{name: "other kind", in: "apiVersion: v1\nkind: Secret\n", wantErr: `kind "Secret" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

// TestREADMEDocumentsEveryKey keeps the README's configuration table in step with the code.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, k := range Keys {
		row := "| `" + k.Key + "` | `" + k.Field + "` | `" + k.Default + "` |"
		if !strings.Contains(readme, row) {
			t.Errorf("README has no configuration row starting %q", row)
		}
	}
}

// selfSigned returns a PEM certificate and its PEM key, for a CA or a client.
func selfSigned(t *testing.T, cn string) (cert, key []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func TestParseTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _ := selfSigned(t, "ca")
	cert, key := selfSigned(t, "client")
	_, otherKey := selfSigned(t, "other")
	files := map[string][]byte{"ca.pem": ca, "cert.pem": cert, "key.pem": key, "other-key.pem": otherKey, "empty.pem": []byte("not pem\n")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	cm := func(data string) string { return "kind: ConfigMap\napiVersion: v1\ndata:\n" + data }
	indent := func(b []byte) string {
		return "|\n      " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n      ")
	}
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]resolver.TLS
		wantErr string
	}{
		{
			name: "configmap files",
			in: cm("  registry-ca-files: r.example:5000=" + f("ca.pem") + ",docker.io=" + f("ca.pem") + "\n" +
				"  registry-client-cert-files: r.example:5000=" + f("cert.pem") + "\n  registry-client-key-files: r.example:5000=" + f("key.pem") + "\n"),
			want: map[string]resolver.TLS{"r.example:5000": {CA: ca, Cert: cert, Key: key}, "index.docker.io": {CA: ca}},
		},
		{
			name: "typed, PEM and files",
			in:   "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nregistries:\n  r.example:\n    ca: " + indent(ca) + "\n    cert: " + f("cert.pem") + "\n    key: " + f("key.pem") + "\n",
			want: map[string]resolver.TLS{"r.example": {CA: []byte(strings.TrimSpace(string(ca)) + "\n"), Cert: cert, Key: key}},
		},
		{name: "unreadable CA file", in: cm("  registry-ca-files: r.example=" + f("nope.pem") + "\n"), wantErr: `key "registry-ca-files": registry r.example: cannot read ca file: open ` + f("nope.pem") + ": no such file or directory"},
		{name: "file without PEM", in: cm("  registry-ca-files: r.example=" + f("empty.pem") + "\n"), wantErr: `key "registry-ca-files": registry r.example: ` + f("empty.pem") + " holds no PEM block"},
		{name: "not registry=file", in: cm("  registry-ca-files: " + f("ca.pem") + "\n"), wantErr: `key "registry-ca-files": "` + f("ca.pem") + `" is not registry=file`},
		{name: "not a registry", in: cm("  registry-ca-files: corp=" + f("ca.pem") + "\n"), wantErr: `key "registry-ca-files": registry corp: "corp" is not a registry host`},
		{name: "a key as CA", in: cm("  registry-ca-files: r.example=" + f("key.pem") + "\n"), wantErr: "TLS settings of registry r.example: the CA holds no PEM certificate"},
		{name: "certificate without key", in: cm("  registry-client-cert-files: r.example=" + f("cert.pem") + "\n"), wantErr: "TLS settings of registry r.example: a client certificate needs its key"},
		{name: "key of another certificate", in: cm("  registry-client-cert-files: r.example=" + f("cert.pem") + "\n  registry-client-key-files: r.example=" + f("other-key.pem") + "\n"), wantErr: "TLS settings of registry r.example: the client certificate and key do not make a pair"},
		{name: "typed unreadable key", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nregistries:\n  r.example: {cert: " + f("cert.pem") + ", key: " + f("nope.pem") + "}\n", wantErr: `field "registries": r.example: key: cannot read key file`},
		{name: "typed unknown field", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nregistries:\n  r.example: {cacert: x}\n", wantErr: "field cacert not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in), "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Errorf("the error quotes a key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Registries); diff != "" {
				t.Errorf("Registries (-want +got):\n%s", diff)
			}
		})
	}
}
