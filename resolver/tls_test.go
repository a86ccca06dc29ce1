package resolver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
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
