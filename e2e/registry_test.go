package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// TestRegistry feeds the binary a ResourceList on stdin, as every client does, with the
// credentials and trust a user may or may not have set up for a registry that requires both.
func TestRegistry(t *testing.T) {
	s := newSpace(t)
	mediaTypes := map[string]types.MediaType{
		"docker-image:1": types.DockerManifestSchema2,
		"oci-image:1":    types.OCIManifestSchema1,
		"docker-list:1":  types.DockerManifestList,
		"oci-index:1":    types.OCIImageIndex,
	}
	digests := s.push(t, mediaTypes)
	input := "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" +
		"- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: app\n  spec:\n    containers:\n"
	var pinned, unpinned []string
	for ref := range mediaTypes {
		input += "    - name: " + strings.TrimSuffix(ref, ":1") + "\n      image: " + s.image(ref) + "\n"
		pinned = append(pinned, s.image(ref)+"@"+digests[ref])
		unpinned = append(unpinned, s.image(ref))
	}

	emptyConfig := t.TempDir()
	wrongConfig := t.TempDir()
	const wrongPassword = "not-the-password-0451"
	auth := base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + wrongPassword))
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, wrongConfig, map[string]string{"config.json": string(cfg)})
	// A docker credential helper, as docker-credential-gcr or -ecr-login are: a program on PATH
	// that answers "get" with the server's credentials. Named in credHelpers for this registry,
	// or as the credsStore for all of them.
	helperDir := t.TempDir()
	writeFiles(t, helperDir, map[string]string{"docker-credential-digestertest": "#!/bin/sh\n" +
		"[ \"$1\" = get ] || exit 1\nread server\n" +
		"printf '{\"ServerURL\":\"%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}\\n' \"$server\" '" + reg.User + "' '" + reg.Password + "'\n"})
	if err := os.Chmod(filepath.Join(helperDir, "docker-credential-digestertest"), 0o755); err != nil {
		t.Fatal(err)
	}
	helperConfig, storeConfig := t.TempDir(), t.TempDir()
	writeFiles(t, helperConfig, map[string]string{"config.json": `{"credHelpers": {"` + reg.Host + `": "digestertest"}}`})
	writeFiles(t, storeConfig, map[string]string{"config.json": `{"credsStore": "digestertest"}`})
	otherCA := filepath.Join(t.TempDir(), "no-ca.pem")
	writeFiles(t, filepath.Dir(otherCA), map[string]string{"no-ca.pem": ""})

	for _, tc := range []struct {
		name       string
		env        env
		wantCode   int
		wantImages []string
		wantStderr []string // what each image's error line says, in this order
	}{
		{name: "credentials", env: env{}, wantImages: pinned},
		{name: "credential helper (credHelpers)", env: env{dockerConfig: helperConfig, path: helperDir}, wantImages: pinned},
		{name: "credential store (credsStore)", env: env{dockerConfig: storeConfig, path: helperDir}, wantImages: pinned},
		{
			name: "no credentials", env: env{dockerConfig: emptyConfig}, wantCode: 1, wantImages: unpinned,
			wantStderr: []string{"unauthorized: registry " + reg.Host + " wants credentials", "digester has none for it (add them to the docker config or a credential helper)"},
		},
		{
			name: "wrong password", env: env{dockerConfig: wrongConfig}, wantCode: 1, wantImages: unpinned,
			wantStderr: []string{"unauthorized: registry " + reg.Host + " rejected the credentials digester found for it"},
		},
		{
			name: "CA not trusted", env: env{caFile: otherCA}, wantCode: 1, wantImages: unpinned,
			wantStderr: []string{"TLS: registry " + reg.Host + " presents a certificate signed by an unknown authority (trust its CA through SSL_CERT_FILE, the system store, or registry-ca-files)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := run(t, tc.env, []byte(input), t.TempDir(), digester)
			if out.code != tc.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", out.code, tc.wantCode, out.stderr)
			}
			if tc.wantStderr == nil && out.stderr != "" {
				t.Errorf("stderr is not empty:\n%s", out.stderr)
			}
			// Every lookup fails the same way: each image is named by an error line, its own ("cannot
			// pin IMAGE: why") or, when the cause is the registry's alone, the registry's ("why: N
			// references cannot be pinned (…): IMAGE, …").
			for _, img := range unpinned {
				if tc.wantStderr == nil {
					continue
				}
				why := ""
				for _, w := range tc.wantStderr {
					why += regexp.QuoteMeta(w) + ".*"
				}
				pattern := regexp.QuoteMeta("cannot pin "+img+": ") + why + "|" + why + `: \d+ references cannot be pinned .*` + regexp.QuoteMeta(img)
				if !regexp.MustCompile(pattern).MatchString(out.stderr) {
					t.Errorf("stderr has no line for %s saying %q:\n%s", img, tc.wantStderr, out.stderr)
				}
			}
			if diff := cmp.Diff(sorted(tc.wantImages), sorted(outputImages(t, out.stdout))); diff != "" {
				t.Errorf("images in the output (-want +got):\n%s", diff)
			}
			for _, text := range []string{out.stdout, out.stderr} {
				if strings.Contains(text, wrongPassword) || strings.Contains(text, auth) {
					t.Errorf("the output contains the wrong password from the docker config")
				}
			}
		})
	}
}

// outputImages returns the images of the Pod in a ResourceList.
func outputImages(t *testing.T, resourceList string) []string {
	t.Helper()
	rl, err := yaml.Parse(resourceList)
	if err != nil {
		t.Fatalf("output is not a ResourceList: %v\n%s", err, resourceList)
	}
	items, err := rl.Pipe(yaml.Lookup("items"))
	if err != nil || items == nil || len(items.Content()) != 1 {
		t.Fatalf("output has not one item (%v):\n%s", err, resourceList)
	}
	containers, err := yaml.NewRNode(items.Content()[0]).Pipe(yaml.Lookup("spec", "containers"))
	if err != nil || containers == nil {
		t.Fatalf("output has no Pod containers (%v):\n%s", err, resourceList)
	}
	images, err := containers.ElementValues("image")
	if err != nil {
		t.Fatal(err)
	}
	return images
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	slices.Sort(s)
	return s
}
