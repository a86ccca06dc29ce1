package clusterlock

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

const (
	dA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	dB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

const header = "apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata: {name: digests}\n"

// What a ConfigMap's lock gives, by normalised reference, or why it is refused as a whole.
func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		platform string            // the Watcher's (WithPlatform)
		data     map[string]string // nil: no data at all
		want     map[string]string
		err      string
	}{
		{name: "as digester writes it", data: map[string]string{Key: "# Image digests pinned by digester\n" + header +
			"images:\n- image: nginx:1.27\n  digest: " + dA + "\n- image: registry.example:5000/team/app:v2\n  digest: " + dB + "\n"},
			want: map[string]string{"index.docker.io/library/nginx:1.27": dA, "registry.example:5000/team/app:v2": dB}},
		{name: "no images", data: map[string]string{Key: header + "images: []\n"}, want: map[string]string{}},
		{name: "images null", data: map[string]string{Key: header}, want: map[string]string{}},
		{name: "other keys are ignored", data: map[string]string{Key: header, "README": "x"}, want: map[string]string{}},
		{name: "two spellings of one reference, one digest", data: map[string]string{Key: header + "images:\n- {image: nginx, digest: " + dA + "}\n- {image: docker.io/library/nginx:latest, digest: " + dA + "}\n"},
			want: map[string]string{"index.docker.io/library/nginx:latest": dA}},
		{name: "no data", err: "no key digests.lock.yaml"},
		{name: "another key", data: map[string]string{"digests.lock.yml": header}, err: "no key digests.lock.yaml"},
		{name: "empty", data: map[string]string{Key: ""}, err: "digests.lock.yaml: empty: want a DigestLock"},
		{name: "not YAML", data: map[string]string{Key: header + "images: [\n"}, err: "digests.lock.yaml: not a DigestLock: yaml: line 4: did not find expected node content"},
		{name: "images not a list", data: map[string]string{Key: header + "images: {image: nginx}\n"}, err: "digests.lock.yaml: not a DigestLock: yaml: unmarshal errors:\n  line 4: cannot unmarshal !!map into []struct { Image string \"yaml:\\\"image\\\"\"; Digest string \"yaml:\\\"digest\\\"\"; Platform string \"yaml:\\\"platform\\\"\" }"},
		{name: "a duplicate key", data: map[string]string{Key: header + "images: []\nimages: []\n"}, err: `digests.lock.yaml: not a DigestLock: yaml: unmarshal errors:` + "\n" + `  line 5: mapping key "images" already defined at line 4`},
		{name: "two documents", data: map[string]string{Key: header + "---\n" + header}, err: "digests.lock.yaml: more than one YAML document: want one DigestLock"},
		{name: "another kind", data: map[string]string{Key: "apiVersion: v1\nkind: ConfigMap\n"}, err: `digests.lock.yaml: apiVersion "v1", kind "ConfigMap": want fn.kpt.dev/v1alpha1 DigestLock`},
		{name: "another version", data: map[string]string{Key: "apiVersion: fn.kpt.dev/v1\nkind: DigestLock\n"}, err: `digests.lock.yaml: apiVersion "fn.kpt.dev/v1", kind "DigestLock": want fn.kpt.dev/v1alpha1 DigestLock`},
		{name: "an entry without a digest", data: map[string]string{Key: header + "images:\n- {image: nginx, digest: " + dA + "}\n- {image: app:1}\n"}, err: "digests.lock.yaml: images[1] needs an image and a digest"},
		{name: "an entry without an image", data: map[string]string{Key: header + "images:\n- {digest: " + dA + "}\n"}, err: "digests.lock.yaml: images[0] needs an image and a digest"},
		{name: "an upper-case digest", data: map[string]string{Key: header + "images:\n- {image: nginx, digest: " + dA + "}\n- {image: app:1, digest: sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA}\n"},
			err: `digests.lock.yaml: app:1: "sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" is not a digest (sha256: and 64, or sha512: and 128, lowercase hex digits)`},
		{name: "a short digest", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: sha256:abc}\n"}, err: `digests.lock.yaml: app:1: "sha256:abc" is not a digest (sha256: and 64, or sha512: and 128, lowercase hex digits)`},
		{name: "a digest one digit long", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: " + dA + "a}\n"}, err: `digests.lock.yaml: app:1: "` + dA + `a" is not a digest (sha256: and 64, or sha512: and 128, lowercase hex digits)`},
		{name: "a digest not hex", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: sha256:gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}\n"}, err: `digests.lock.yaml: app:1: "sha256:gaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" is not a digest (sha256: and 64, or sha512: and 128, lowercase hex digits)`},
		{name: "another algorithm", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: sha512:" + dA[7:] + dA[7:] + "}\n"}, err: `digests.lock.yaml: app:1: "sha512:` + dA[7:] + dA[7:] + `" is not a digest (sha256: and 64, or sha512: and 128, lowercase hex digits)`},
		{name: "an image with a digest", data: map[string]string{Key: header + "images:\n- {image: 'app:1@" + dB + "', digest: " + dA + "}\n"}, err: `digests.lock.yaml: "app:1@` + dB + `" carries a digest already; the lock maps tags to digests`},
		{name: "an image that is not a reference", data: map[string]string{Key: header + "images:\n- {image: 'Not A Reference', digest: " + dA + "}\n"}, err: `digests.lock.yaml: "Not A Reference" is not a valid image reference: `},
		{name: "one image twice, two digests", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: " + dA + "}\n- {image: app:1, digest: " + dB + "}\n"}, err: "digests.lock.yaml: images[1]: app:1 is listed twice with different digests"},
		{name: "two spellings of one reference, two digests", data: map[string]string{Key: header + "images:\n- {image: nginx, digest: " + dA + "}\n- {image: docker.io/library/nginx:latest, digest: " + dB + "}\n"},
			err: "digests.lock.yaml: docker.io/library/nginx:latest and nginx are one reference with different digests"},
		{name: "recorded for the platform pinned for", platform: "linux/arm64", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: " + dA + ", platform: linux/arm64}\n"},
			want: map[string]string{"index.docker.io/library/app:1": dA}},
		{name: "recorded for another platform", platform: "linux/arm64", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: " + dA + ", platform: linux/arm64}\n- {image: app:2, digest: " + dB + ", platform: linux/amd64}\n"},
			err: "digests.lock.yaml: images[1]: app:2 is locked for platform linux/amd64, and the webhook pins for linux/arm64 (--platform)"},
		{name: "recorded for the index, pinned for a platform", platform: "linux/arm64", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: " + dA + "}\n"},
			err: "digests.lock.yaml: images[0]: app:1 is locked for platform none (the image index), and the webhook pins for linux/arm64 (--platform)"},
		{name: "recorded for a platform, pinned for the index", data: map[string]string{Key: header + "images:\n- {image: app:1, digest: " + dA + ", platform: linux/arm64}\n"},
			err: "digests.lock.yaml: images[0]: app:1 is locked for platform linux/arm64, and the webhook pins for none (the image index) (--platform)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &Watcher{}
			WithPlatform(tc.platform)(w)
			got, err := w.read(&corev1.ConfigMap{Data: tc.data})
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
				if len(gotErr) > len(tc.err) && tc.err != "" && tc.err[len(tc.err)-2:] == ": " {
					gotErr = gotErr[:len(tc.err)] // the parser's own words after the prefix
				}
			}
			if gotErr != tc.err {
				t.Errorf("error %q, want %q", gotErr, tc.err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		want    Source
	}{
		{in: "digester-system/digests", want: Source{"digester-system", "digests"}},
		{in: "team/digests.v2", want: Source{"team", "digests.v2"}},
		{in: "digests", err: `lock ConfigMap "digests": want NAMESPACE/NAME`},
		{in: "a/b/c", err: `lock ConfigMap "a/b/c": want NAMESPACE/NAME`},
		{in: "/digests", err: `lock ConfigMap "/digests": namespace "": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
		{in: "team/", err: `lock ConfigMap "team/": name "": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{in: "Team/digests", err: `lock ConfigMap "Team/digests": namespace "Team": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`},
	} {
		got, err := ParseSource(tc.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if gotErr != tc.err || got != tc.want {
			t.Errorf("ParseSource(%q) = %v, %q; want %v, %q", tc.in, got, gotErr, tc.want, tc.err)
		}
	}
}

func TestNewRefusesASourceListedTwice(t *testing.T) {
	s := Source{"team", "digests"}
	_, err := New(nil, []Source{s, {"other", "digests"}, s})
	if err == nil || err.Error() != "lock ConfigMap team/digests is listed twice" {
		t.Errorf("New: %v, want an error naming team/digests", err)
	}
}
