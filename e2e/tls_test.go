package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/e2e/realregistry"
)

// TestRegistryTLS pins from a registry whose CA is in no trust store and that requires a client
// certificate (mutual TLS), with the CA and the certificate given for that registry alone.
func TestRegistryTLS(t *testing.T) {
	r := startRegistry(t, realregistry.ClientCerts())
	d, err := r.Push(context.Background(), "team/app", "1", types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	img := r.Host + "/team/app:1"
	dir := t.TempDir()
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{
		r.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// SSL_CERT_FILE names a file without certificates: the registry's CA is in no store.
	writeFiles(t, dir, map[string]string{"docker/config.json": string(cfg), "empty.pem": ""})
	e := env{dockerConfig: filepath.Join(dir, "docker"), caFile: filepath.Join(dir, "empty.pem")}

	input := func(fnConfig string) []byte {
		return []byte("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" +
			"- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: app\n  spec:\n    containers:\n" +
			"    - name: app\n      image: " + img + "\nfunctionConfig:\n" + fnConfig)
	}
	typed := func(fields string) string {
		return "  apiVersion: fn.kpt.dev/v1alpha1\n  kind: Digester\n  metadata: {name: digester}\n  registries:\n    " + r.Host + ": {" + fields + "}\n"
	}
	for _, tc := range []struct {
		name      string
		fnConfig  string
		wantCode  int
		wantImage string
		wantErr   string
	}{
		{
			name:      "CA and client certificate, typed",
			fnConfig:  typed("ca: " + r.CAFile + ", cert: " + r.ClientCert + ", key: " + r.ClientKey),
			wantImage: img + "@" + d,
		},
		{
			name: "CA and client certificate, ConfigMap",
			fnConfig: "  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: digester}\n  data:\n" +
				"    registry-ca-files: " + r.Host + "=" + r.CAFile + "\n" +
				"    registry-client-cert-files: " + r.Host + "=" + r.ClientCert + "\n" +
				"    registry-client-key-files: " + r.Host + "=" + r.ClientKey + "\n",
			wantImage: img + "@" + d,
		},
		{
			name:      "no client certificate",
			fnConfig:  typed("ca: " + r.CAFile),
			wantCode:  1,
			wantImage: img,
			// Under TLS 1.3 the server's alert comes after the handshake, so the client may see the
			// connection close instead, and then the plain-HTTP retry of a loopback registry
			// answers 400: the message names the registry either way.
			wantErr: "cannot pin " + img + ": ",
		},
		{
			name:      "no CA",
			fnConfig:  typed("cert: " + r.ClientCert + ", key: " + r.ClientKey),
			wantCode:  1,
			wantImage: img,
			wantErr:   "cannot pin " + img + ": TLS: registry " + r.Host + " presents a certificate signed by an unknown authority",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := run(t, e, input(tc.fnConfig), t.TempDir(), digester)
			if out.code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", out.code, tc.wantCode, out.stderr)
			}
			if diff := cmp.Diff([]string{tc.wantImage}, outputImages(t, out.stdout)); diff != "" {
				t.Errorf("images (-want +got):\n%s", diff)
			}
			if tc.wantErr != "" && !strings.Contains(out.stderr, tc.wantErr) {
				t.Errorf("stderr does not say %q:\n%s", tc.wantErr, out.stderr)
			}
			if strings.Contains(out.stdout+out.stderr, "PRIVATE KEY") {
				t.Errorf("the output holds a private key")
			}
		})
	}
}
