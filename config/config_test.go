package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/digester/digester/internal/testcerts"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
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
  presets: "false"
  kpt-image-prefix: gcr.io/kpt-fn
  additional-image-fields: |
    - {group: example.com, kind: MyKind, path: spec/runLatest/container/image}
    - group: example.com
      version: v2
      kind: Other
      path: spec/workers[]/image
`,
			want: Config{
				Options: pin.Options{
					SkipPrefixes: []string{"a.example/", "b.example/"}, Deadline: time.Minute, OnError: pin.OnErrorWarn,
					Mode: pin.ModeCheck, Pinned: pin.PinnedVerify, Lock: pin.LockUpdate, LockFile: "locks/images.yaml", NoPresets: true, KptImagePrefix: "gcr.io/kpt-fn",
					ImageFields: []walker.ImageField{
						{Group: "example.com", Kind: "MyKind", Path: "spec/runLatest/container/image"},
						{Group: "example.com", Version: "v2", Kind: "Other", Path: "spec/workers[]/image"},
					},
				},
				Concurrency: 8, RegistryConcurrency: 2, Timeout: 3 * time.Second,
				InsecureRegistries: []string{"r1.example", "r2.example:5000"}, Report: ReportReferences,
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
			wantErr: "functionConfig: lock: frozen sends no registry request, so it cannot go with pinned: refresh, which asks the registries",
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
report: fields
presets: true
additionalImageFields:
- {group: example.com, version: v1, kind: MyKind, path: spec/runLatest/container/image}
`,
			want: Config{
				Options: pin.Options{
					SkipPrefixes: []string{"a/"}, Deadline: 30 * time.Second, OnError: pin.OnErrorFail,
					Mode: pin.ModeCheck, Pinned: pin.PinnedRefresh, LockFile: "x.yaml", KptImagePrefix: walker.DefaultKptImagePrefix,
					ImageFields: []walker.ImageField{{Group: "example.com", Version: "v1", Kind: "MyKind", Path: "spec/runLatest/container/image"}},
				},
				Concurrency: 4, RegistryConcurrency: 3, Timeout: 2 * time.Second,
				InsecureRegistries: []string{"r.example"}, Report: ReportFields,
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
			name: "typed onError warn",
			in:   "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nonError: warn\n",
			want: with(func(c *Config) { c.OnError = pin.OnErrorWarn }),
		},
		{
			name: "smallest values",
			in:   "kind: ConfigMap\napiVersion: v1\ndata:\n  concurrency: \"1\"\n  registry-concurrency: \"1\"\n  timeout: 1ns\n",
			want: with(func(c *Config) { c.Concurrency, c.RegistryConcurrency, c.Timeout = 1, 1, time.Nanosecond }),
		},
		{
			name: "a prefix that starts with digits",
			in:   "kind: ConfigMap\napiVersion: v1\ndata:\n  skip-prefixes: \"5000/team/:a/\"\n",
			want: with(func(c *Config) { c.SkipPrefixes = []string{"5000/team/", "a/"} }),
		},
		{name: "zero timeout", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  timeout: 0s\n", wantErr: `functionConfig ConfigMap: key "timeout" (line 4): "0s" is not a positive duration such as 10s or 2m`},
		{name: "bad typed onError", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nonError: ignore\n", wantErr: `functionConfig Digester: field "onError" (line 3): "ignore" is not one of fail, warn`},
		{name: "unknown configmap key", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  skip-prefix: a/\n",
			wantErr: `functionConfig ConfigMap: unknown key "skip-prefix" (line 4; known: skip-prefixes, concurrency, registry-concurrency, timeout, deadline, insecure-registries, registry-mirrors, mirror-fallback, platform, registry-ca-files, registry-client-cert-files, registry-client-key-files, on-error, mode, pinned, lock, lock-file, report, presets, kpt-image-prefix, additional-image-fields)`},
		{name: "configmap field outside data", in: "kind: ConfigMap\napiVersion: v1\ndat:\n  on-error: warn\n",
			wantErr: `functionConfig ConfigMap: unknown field "dat" (line 3): settings go under data`},
		{name: "unknown typed field names the key and line, not a Go type", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nmetadata: {name: x}\nonErorr: warn\n",
			wantErr: `functionConfig Digester: unknown field "onErorr" (line 4; known: skipPrefixes, concurrency, registryConcurrency, timeout, deadline, insecureRegistries, registryMirrors, mirrorFallback, platform, registries, onError, mode, pinned, lock, lockFile, report, presets, kptImagePrefix, additionalImageFields)`},
		{name: "bad presets", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  presets: off\n", wantErr: `functionConfig ConfigMap: key "presets" (line 4): "off" is neither true nor false`},
		{name: "kpt image prefix", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  kpt-image-prefix: gcr.io/kpt-fn/\n", want: with(func(c *Config) { c.KptImagePrefix = "gcr.io/kpt-fn" })},
		{name: "typed kpt image prefix with a port", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nkptImagePrefix: 127.0.0.1:5000/fns\n", want: with(func(c *Config) { c.KptImagePrefix = "127.0.0.1:5000/fns" })},
		{name: "kpt image prefix with a scheme", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  kpt-image-prefix: https://gcr.io/kpt-fn\n", wantErr: `functionConfig ConfigMap: key "kpt-image-prefix" (line 4): "https://gcr.io/kpt-fn" is not a registry path such as gcr.io/kpt-fn (a host, then a path, with no scheme)`},
		{name: "empty kpt image prefix", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nkptImagePrefix: ''\n", wantErr: `functionConfig Digester: field "kptImagePrefix" (line 3): "" is not a registry path such as gcr.io/kpt-fn (a host, then a path, with no scheme)`},
		{name: "typed presets off", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\npresets: false\n", want: with(func(c *Config) { c.NoPresets = true })},
		{name: "image field without path", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  additional-image-fields: '[{kind: A}]'\n", wantErr: `functionConfig ConfigMap: key "additional-image-fields" (line 4): entry 0 has no path`},
		{name: "image field with an unknown key", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nadditionalImageFields: [{kind: A, paths: x}]\n", wantErr: `functionConfig Digester: field "additionalImageFields" (line 3): entry 0: unknown key "paths" (known: group, version, kind, path)`},
		{name: "image fields not a list", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  additional-image-fields: 'spec/x/image'\n", wantErr: `functionConfig ConfigMap: key "additional-image-fields" (line 4): want a list of {group, version, kind, path}`},
		{name: "typed value of the wrong type", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nconcurrency: lots\n",
			wantErr: `functionConfig Digester: field "concurrency" (line 3): "lots" is not a whole number of at least 1`},
		{name: "typed list given as a string", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nskipPrefixes: a/\n",
			wantErr: `functionConfig Digester: field "skipPrefixes" (line 3): must be a list, such as [a.example/, b.example/]`},
		{name: "bad concurrency", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  concurrency: \"0\"\n",
			wantErr: `functionConfig ConfigMap: key "concurrency" (line 4): "0" is not a whole number of at least 1`},
		{name: "bad timeout", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  timeout: soon\n",
			wantErr: `functionConfig ConfigMap: key "timeout" (line 4): "soon" is not a positive duration such as 10s or 2m`},
		{name: "bad on-error", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  on-error: ignore\n",
			wantErr: `functionConfig ConfigMap: key "on-error" (line 4): "ignore" is not one of fail, warn`},
		{name: "bad report", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  report: all\n",
			wantErr: `functionConfig ConfigMap: key "report" (line 4): "all" is not one of references, fields`},
		{name: "insecure registry given as a URL", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  insecure-registries: http://foo\n",
			wantErr: `functionConfig ConfigMap: key "insecure-registries" (line 4): "http://foo" is not a registry: give its host or host:port, with no scheme or path (such as registry.example or registry.example:5000)`},
		{name: "typed insecure registry with a path", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\ninsecureRegistries: [foo/bar]\n",
			wantErr: `functionConfig Digester: field "insecureRegistries" (line 3): "foo/bar" is not a registry: give its host or host:port, with no scheme or path (such as registry.example or registry.example:5000)`},
		{name: "bad typed deadline", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\ndeadline: -1s\n",
			wantErr: `functionConfig Digester: field "deadline" (line 3): "-1s" is not a positive duration such as 10s or 2m`},
		{name: "wrong apiVersion", in: "apiVersion: fn.kpt.dev/v1\nkind: Digester\n", wantErr: `functionConfig: apiVersion "fn.kpt.dev/v1" for kind Digester, want fn.kpt.dev/v1alpha1`},
		{name: "other kind", in: "apiVersion: v1\nkind: Secret\n", wantErr: `functionConfig: kind "Secret" is not supported: use a ConfigMap or fn.kpt.dev/v1alpha1 Digester`},
		{name: "bad mode", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  mode: dry-run\n", wantErr: `functionConfig ConfigMap: key "mode" (line 4): "dry-run" is not one of pin, check`},
		{name: "bad pinned", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  pinned: ignore\n", wantErr: `functionConfig ConfigMap: key "pinned" (line 4): "ignore" is not one of keep, verify, refresh`},
		{name: "bad lock", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nlock: read\n", wantErr: `functionConfig Digester: field "lock" (line 3): "read" is not one of update, frozen`},
		{name: "lock file outside the package", in: "kind: ConfigMap\napiVersion: v1\ndata:\n  lock-file: ../digests.yaml\n", wantErr: `functionConfig ConfigMap: key "lock-file" (line 4): "../digests.yaml" is not a .yaml file inside the package`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), tt.env)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Parse succeeded, want error %q", tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantErr, err.Error()); diff != "" {
					t.Errorf("Parse error (-want +got):\n%s", diff)
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

// TestParseRegistries: mirrors and platform, in both forms, and each bad value an error naming it.
func TestParseRegistries(t *testing.T) {
	with := func(f func(*Config)) Config {
		c := Default()
		f(&c)
		return c
	}
	cm := func(data string) string { return "kind: ConfigMap\napiVersion: v1\ndata:\n" + data }
	typed := func(fields string) string { return "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\n" + fields }
	for _, tc := range []struct {
		name, in string
		want     Config
		wantErr  string
	}{
		{
			name: "configmap mirrors",
			in:   cm("  registry-mirrors: \"docker.io=mirror.corp.example/dockerhub, quay.io=mirror.corp.example/quay,docker.io=localhost:5000\"\n  mirror-fallback: \"true\"\n"),
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
			in:   typed("registryMirrors:\n  docker.io: [mirror.corp.example/dockerhub, localhost:5000]\nmirrorFallback: false\n"),
			want: with(func(c *Config) {
				c.Mirrors = resolver.Mirrors{"index.docker.io": {{Host: "mirror.corp.example", Prefix: "dockerhub"}, {Host: "localhost:5000"}}}
			}),
		},
		{name: "mirror that is not a registry", in: cm("  registry-mirrors: docker.io=https://mirror.example\n"), wantErr: `functionConfig ConfigMap: key "registry-mirrors" (line 4): mirror "https://mirror.example" is not a registry: write host[:port][/path] without a scheme`},
		{name: "mirrors of something not a registry", in: cm("  registry-mirrors: dockerhub=mirror.example\n"), wantErr: `functionConfig ConfigMap: key "registry-mirrors" (line 4): "dockerhub" is not a registry host (write host or host:port, as in docker.io or registry.example:5000)`},
		{name: "mirror pair without =", in: cm("  registry-mirrors: mirror.example\n"), wantErr: `functionConfig ConfigMap: key "registry-mirrors" (line 4): "mirror.example" is not registry=mirror (as in docker.io=mirror.example/dockerhub)`},
		{name: "bad mirror-fallback", in: cm("  mirror-fallback: yes\n"), wantErr: `functionConfig ConfigMap: key "mirror-fallback" (line 4): "yes" is neither true nor false`},
		{name: "typed bad mirror", in: typed("registryMirrors: {docker.io: [Mirror.example/Hub]}\n"), wantErr: `functionConfig Digester: field "registryMirrors" (line 3): mirror "Mirror.example/Hub" is not a registry: its path must be lowercase letters, digits and separators (. _ - /)`},
		{name: "typed registry without mirrors", in: typed("registryMirrors: {docker.io: []}\n"), wantErr: `functionConfig Digester: field "registryMirrors" (line 3): registry "docker.io" (line 3) has no list of mirrors`},
		{name: "typed mirrors not a map", in: typed("registryMirrors: [a.example]\n"), wantErr: `functionConfig Digester: field "registryMirrors" (line 3): must be a map from registry to a list of mirrors, such as {docker.io: [mirror.example/dockerhub]}`},
		{
			name: "configmap platform",
			in:   cm("  platform: linux/arm64/v8\n"),
			want: with(func(c *Config) { c.Platform = &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"} }),
		},
		{
			name: "typed platform",
			in:   typed("platform: windows/amd64:10.0.20348\n"),
			want: with(func(c *Config) {
				c.Platform = &v1.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}
			}),
		},
		{name: "unknown platform", in: cm("  platform: linux/x86_64\n"), wantErr: `functionConfig ConfigMap: key "platform" (line 4): platform "linux/x86_64": unknown architecture "x86_64" (known: 386, amd64, arm, arm64, loong64, mips, mips64, mips64le, mipsle, ppc64, ppc64le, riscv64, s390x, wasm)`},
		{name: "typed unknown platform", in: typed("platform: macos/arm64\n"), wantErr: `functionConfig Digester: field "platform" (line 3): platform "macos/arm64": unknown operating system "macos" (known: aix, android, darwin, dragonfly, freebsd, illumos, ios, js, linux, netbsd, openbsd, plan9, solaris, wasip1, windows)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.in), "")
			gotErr := ""
			if err != nil {
				gotErr, got = err.Error(), Config{}
			}
			want := tc.want
			if tc.wantErr != "" {
				want = Config{}
			}
			if diff := cmp.Diff(tc.wantErr, gotErr); diff != "" {
				t.Errorf("Parse error (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTLS(t *testing.T) {
	dir := t.TempDir()
	authority, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	ca := authority.CertPEM
	cert, key, err := authority.Issue("client")
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := authority.Issue("other")
	if err != nil {
		t.Fatal(err)
	}
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
		{name: "unreadable CA file", in: cm("  registry-ca-files: r.example=" + f("nope.pem") + "\n"), wantErr: `key "registry-ca-files" (line 4): registry r.example: cannot read ca file: open ` + f("nope.pem") + ": no such file or directory"},
		{name: "file without PEM", in: cm("  registry-ca-files: r.example=" + f("empty.pem") + "\n"), wantErr: `key "registry-ca-files" (line 4): registry r.example: ` + f("empty.pem") + " holds no PEM block"},
		{name: "not registry=file", in: cm("  registry-ca-files: " + f("ca.pem") + "\n"), wantErr: `key "registry-ca-files" (line 4): "` + f("ca.pem") + `" is not registry=file`},
		{name: "not a registry", in: cm("  registry-ca-files: corp=" + f("ca.pem") + "\n"), wantErr: `key "registry-ca-files" (line 4): registry corp: "corp" is not a registry host`},
		{name: "a key as CA", in: cm("  registry-ca-files: r.example=" + f("key.pem") + "\n"), wantErr: "TLS settings of registry r.example: the CA holds no PEM certificate"},
		{name: "certificate without key", in: cm("  registry-client-cert-files: r.example=" + f("cert.pem") + "\n"), wantErr: "TLS settings of registry r.example: a client certificate needs its key"},
		{name: "key of another certificate", in: cm("  registry-client-cert-files: r.example=" + f("cert.pem") + "\n  registry-client-key-files: r.example=" + f("other-key.pem") + "\n"), wantErr: "TLS settings of registry r.example: the client certificate and key do not make a pair"},
		{name: "typed unreadable key", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nregistries:\n  r.example: {cert: " + f("cert.pem") + ", key: " + f("nope.pem") + "}\n", wantErr: `field "registries" (line 3): r.example: key: cannot read key file`},
		{name: "typed unknown field", in: "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nregistries:\n  r.example: {cacert: x}\n", wantErr: `field "registries" (line 3): r.example: unknown field "cacert" (line 4; known: ca, cert, key)`},
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

// TestDocumentedDefaults: every default the Keys table documents (the README's table and --help
// print it) is the value Default holds.
func TestDocumentedDefaults(t *testing.T) {
	for _, k := range Keys {
		if k.Default == `""` || k.Default == "[]" {
			continue
		}
		want := Default()
		if err := want.Set(k.Key, k.Default); err != nil {
			t.Fatalf("%s: the documented default %q does not parse: %v", k.Key, k.Default, err)
		}
		if diff := cmp.Diff(want, Default()); diff != "" {
			t.Errorf("%s: documented default %q, but Default holds another (-documented +Default):\n%s", k.Key, k.Default, diff)
		}
	}
}
