package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/config"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

func TestFlagErrors(t *testing.T) {
	tls := []string{"--tls-cert-file=c", "--tls-private-key-file=k"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--tls-cert-file and --tls-private-key-file are required"},
		{append(tls, "--on-error=ignore"), `--on-error: "ignore" is not one of fail, warn`},
		{append(tls, "--deadline=0s"), `--deadline: "0s" is not a positive duration such as 10s or 2m`},
		{append(tls, "--port=0"), "--port=0: want 1-65535"},
		{append(tls, "--max-review-memory=0"), "--max-request-bytes and --max-review-memory must be at least 1"},
		{append(tls, "--credential-refresh=-1m"), "--credential-refresh=-1m0s: want 0 or more"},
		{append(tls, "extra"), `unexpected arguments ["extra"]`},
		{append(tls, "--lock=update"), "lock, lock-file: the webhook reads and writes no package lock"},
		{append(tls, "--config=/nonexistent/digester.yaml"), "--config: open /nonexistent/digester.yaml: no such file or directory"},
		{append(tls, "--scope=deployments"), `--scope: scope "deployments": want workloads or pods`},
		{append(tls, "--stale-if-error=-1s"), "--stale-if-error=-1s: want 0 or more"},
		{append(tls, "--lock-configmap=digests"), `invalid value "digests" for flag -lock-configmap: lock ConfigMap "digests": want NAMESPACE/NAME`},
		{append(tls, "--lock-configmap=a/b/c"), `invalid value "a/b/c" for flag -lock-configmap: lock ConfigMap "a/b/c": want NAMESPACE/NAME`},
		{append(tls, "--lock=frozen", "--pinned=verify"), "lock: frozen sends no registry request, so it cannot go with pinned: verify, which asks the registries"},
	} {
		_, _, err := parseFlags(tc.args, io.Discard, noEnv)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
}

func noEnv(string) string { return "" }

// TestSettings: the webhook reads the settings digester pin reads, with the same names and syntax,
// from a --config file and flags (which win), over its own shorter timeouts.
func TestSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "digester.yaml")
	if err := os.WriteFile(file, []byte(`apiVersion: fn.kpt.dev/v1alpha1
kind: Digester
metadata: {name: digester}
skipPrefixes: [registry.internal.example/]
registryMirrors:
  docker.io: [mirror.example/dockerhub]
platform: linux/arm64
onError: warn
additionalImageFields:
- {kind: MyKind, path: spec/runner/image}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	f, cfg, err := parseFlags([]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--config", file,
		"--skip-prefixes=a.example/:localhost:5000/team/,b.example/", "--on-error=fail", "--presets=false"}, io.Discard,
		func(k string) string { return map[string]string{"SKIP_PREFIXES": "env.example/"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := defaults()
	want.SkipPrefixes = []string{"env.example/", "registry.internal.example/", "a.example/", "localhost:5000/team/", "b.example/"}
	want.Mirrors = resolver.Mirrors{}
	if err := want.Mirrors.Add("docker.io", "mirror.example/dockerhub"); err != nil {
		t.Fatal(err)
	}
	want.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"}
	want.OnError = pin.OnErrorFail
	want.NoPresets = true
	want.ImageFields = []walker.ImageField{{Kind: "MyKind", Path: "spec/runner/image"}}
	if diff := cmp.Diff(want, cfg, cmp.AllowUnexported(resolver.Mirror{})); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
	if f.scope != "workloads" || f.staleIfError != time.Hour || len(f.lockConfigMaps) != 0 {
		t.Errorf("gitops defaults: scope %s, stale-if-error %s, lock ConfigMaps %v", f.scope, f.staleIfError, f.lockConfigMaps)
	}
	f, _, err = parseFlags([]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--scope=pods", "--stale-if-error=0",
		"--lock-configmap=team-a/digests", "--lock-configmap=digester-system/digests"}, io.Discard, noEnv)
	if err != nil || f.scope != "pods" || f.staleIfError != 0 || f.lockConfigMaps.String() != "team-a/digests,digester-system/digests" {
		t.Errorf("scope %s, stale-if-error %s, lock ConfigMaps %s, %v", f.scope, f.staleIfError, f.lockConfigMaps.String(), err)
	}
	if f.port != 8443 || cfg.Deadline != 8*time.Second || cfg.Timeout != 5*time.Second || f.credentialRefresh != defaultCredentialRefresh || f.maxReviewMemory != 128<<20 {
		t.Errorf("server defaults: port %d, deadline %s, timeout %s, credential refresh %s, review memory %d", f.port, cfg.Deadline, cfg.Timeout, f.credentialRefresh, f.maxReviewMemory)
	}
}

// Outside a cluster and with no kubeconfig, reading pull secrets cannot work: the webhook says so,
// and how to run without them, instead of starting and failing every private lookup.
func TestKubeClientOutsideCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	for _, kubeconfig := range []string{"", t.TempDir() + "/missing"} {
		_, err := kubeClient(kubeconfig)
		if err == nil || !strings.Contains(err.Error(), "--kubeconfig, or run in a pod), or pass --pull-secrets=false") {
			t.Errorf("kubeconfig %q: error %v, want one saying how to run", kubeconfig, err)
		}
	}
	f, _, err := parseFlags([]string{"--tls-cert-file=c", "--tls-private-key-file=k"}, io.Discard, noEnv)
	if err != nil || !f.pullSecrets {
		t.Errorf("pull secrets are read by default: got %v, %v", f.pullSecrets, err)
	}
}

// TestDeployConfig: the settings file deploy/webhook mounts (its ConfigMap digester-config) is one
// the webhook reads, and digester pin --config reads the same file.
func TestDeployConfig(t *testing.T) {
	b, err := os.ReadFile("../../deploy/webhook/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm struct{ Data map[string]string }
	if err := yaml.Unmarshal(b, &cm); err != nil || cm.Data["digester.yaml"] == "" {
		t.Fatalf("deploy/webhook/config.yaml holds no digester.yaml: %v", err)
	}
	file := filepath.Join(t.TempDir(), "digester.yaml")
	if err := os.WriteFile(file, []byte(cm.Data["digester.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	_, cfg, err := parseFlags([]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--config=" + file}, io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(defaults(), cfg); diff != "" {
		t.Errorf("the package's settings are not the defaults (-want +got):\n%s", diff)
	}
	if _, err := config.Parse([]byte(cm.Data["digester.yaml"]), ""); err != nil {
		t.Errorf("digester pin --config cannot read it: %v", err)
	}
}
