package resolver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testcerts"
	"github.com/digester/digester/resolver"
)

// TestRegistryTLS: a registry whose certificate no system store trusts is reached with the CA
// given for it, and only for it: without one, or with one given for another host, the lookup
// fails on the certificate.
func TestRegistryTLS(t *testing.T) {
	reg := registrytest.New(registrytest.WithTLS())
	t.Cleanup(reg.Close)
	d, err := reg.PushImage("team/app", "1", types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/team/app:1"
	ca := resolver.TLS{CA: reg.CertificatePEM()}
	if err := ca.Check(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		opts    []resolver.Option
		wantErr string
	}{
		{name: "no CA", wantErr: "certificate"},
		{name: "CA for another host", opts: []resolver.Option{resolver.WithRegistryTLS("registry.example:443", ca)}, wantErr: "certificate"},
		{name: "CA for this registry", opts: []resolver.Option{resolver.WithRegistryTLS(reg.Host, ca)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := resolver.New(append(tc.opts, resolver.WithRetries(1, 0, 0))...).Resolve(context.Background(), []string{ref})[ref]
			switch {
			case tc.wantErr == "" && (res.Err != nil || res.Digest != d.String()):
				t.Errorf("got %+v, want %s", res, d)
			case tc.wantErr != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.wantErr)):
				t.Errorf("got %+v, want an error about the %s", res, tc.wantErr)
			}
		})
	}
}

// TestTLSCheck: each part of a registry's TLS may be given without the others, and a part that
// cannot be used is named without quoting a key.
func TestTLSCheck(t *testing.T) {
	ca, err := testcerts.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("client")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tls  resolver.TLS
		want string
	}{
		{name: "CA only", tls: resolver.TLS{CA: ca.CertPEM}},
		{name: "client certificate only", tls: resolver.TLS{Cert: cert, Key: key}},
		{name: "CA that is not PEM", tls: resolver.TLS{CA: []byte("not a certificate")}, want: "the CA holds no PEM certificate"},
		{name: "certificate without key", tls: resolver.TLS{Cert: cert}, want: "a client certificate needs its key"},
		{name: "key without certificate", tls: resolver.TLS{Key: key}, want: "a client key needs its certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := tc.tls.Check(); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Check() = %q, want %q", got, tc.want)
			}
		})
	}
}
