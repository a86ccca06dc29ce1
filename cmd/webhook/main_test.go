package main

import (
	"io"
	"strings"
	"testing"
)

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--tls-cert-file and --tls-private-key-file are required"},
		{[]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--on-error=ignore"}, `--on-error="ignore": want fail or warn`},
		{[]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--deadline=0s"}, "--deadline and --timeout must be positive"},
		{[]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--port=0"}, "--port=0: want 1-65535"},
		{[]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--max-review-memory=0"}, "--concurrency, --registry-concurrency, --max-request-bytes and --max-review-memory must be at least 1"},
		{[]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--credential-refresh=-1m"}, "--credential-refresh=-1m0s: want 0 or more"},
		{[]string{"--tls-cert-file=c", "--tls-private-key-file=k", "extra"}, `unexpected arguments ["extra"]`},
	} {
		_, _, err := parseFlags(tc.args, io.Discard)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: error %v, want %q", tc.args, err, tc.want)
		}
	}
	f, cfg, err := parseFlags([]string{"--tls-cert-file=c", "--tls-private-key-file=k", "--on-error=warn", "--skip-prefixes=a/, b/"}, io.Discard)
	if err != nil || cfg.OnError != "warn" || len(cfg.SkipPrefixes) != 2 || cfg.SkipPrefixes[1] != "b/" || f.port != 8443 || cfg.Deadline.String() != "8s" || f.credentialRefresh != defaultCredentialRefresh || f.maxReviewMemory != 128<<20 {
		t.Errorf("got %+v %+v %v", f, cfg, err)
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
	f, _, err := parseFlags([]string{"--tls-cert-file=c", "--tls-private-key-file=k"}, io.Discard)
	if err != nil || !f.pullSecrets {
		t.Errorf("pull secrets are read by default: got %v, %v", f.pullSecrets, err)
	}
}
