package webhook_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"

	"github.com/digester/digester/pin"
	"github.com/digester/digester/webhook"
)

// TestAdmitShapes: the cluster objects that hold references in syntaxes of their own are pinned
// by JSONPatch: a Flux HelmRelease's and an Argo CD Application's split images get their digest
// key replaced, a Flux OCIRepository gets spec.ref.digest added, an operator's RELATED_IMAGE_*
// variables are replaced like images. Each patch is applied to the object as the API server
// applies it (evanphx/json-patch), and the result compared whole.
func TestAdmitShapes(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	d, err := f.reg.PushImages(types.OCIManifestSchema1, "bitnami/nginx:1.27", "ghcr.io/acme/manifests:v1.2", "quay.io/acme/db:15")
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range f.digests {
		d[k] = v
	}
	for _, tc := range []struct {
		name, kind, object string
		wantOps            []map[string]string
		want               string // the object after the patch
		warnings           []string
	}{
		{
			name:     "HelmRelease: the digest key, in values; a number tag read as written; one without a digest key warned of",
			kind:     "HelmRelease",
			object:   `{"apiVersion":"helm.toolkit.fluxcd.io/v2","kind":"HelmRelease","metadata":{"name":"web"},"spec":{"values":{"image":{"registry":"docker.io","repository":"bitnami/nginx","tag":1.27,"digest":""},"sidecar":{"image":{"repository":"nginx","tag":"1.27"}}}}}`,
			wantOps:  []map[string]string{replace("/spec/values/image/digest", d["bitnami/nginx:1.27"])},
			want:     `{"apiVersion":"helm.toolkit.fluxcd.io/v2","kind":"HelmRelease","metadata":{"name":"web"},"spec":{"values":{"image":{"registry":"docker.io","repository":"bitnami/nginx","tag":1.27,"digest":"` + d["bitnami/nginx:1.27"] + `"},"sidecar":{"image":{"repository":"nginx","tag":"1.27"}}}}}`,
			warnings: []string{"digester: spec.values.sidecar.image: left alone: the image nginx:1.27 has no digest key to pin it in; if the chart reads one, add `digest: \"\"` at spec.values.sidecar.image.digest"},
		},
		{
			name:    "Application: a null digest key in valuesObject of sources",
			kind:    "Application",
			object:  `{"apiVersion":"argoproj.io/v1alpha1","kind":"Application","metadata":{"name":"web"},"spec":{"sources":[{"helm":{"valuesObject":{"image":{"repository":"bitnami/nginx","tag":"1.27","digest":null}}}}]}}`,
			wantOps: []map[string]string{replace("/spec/sources/0/helm/valuesObject/image/digest", d["bitnami/nginx:1.27"])},
			want:    `{"apiVersion":"argoproj.io/v1alpha1","kind":"Application","metadata":{"name":"web"},"spec":{"sources":[{"helm":{"valuesObject":{"image":{"repository":"bitnami/nginx","tag":"1.27","digest":"` + d["bitnami/nginx:1.27"] + `"}}}}]}}`,
		},
		{
			name:    "OCIRepository: spec.ref.digest added beside the tag",
			kind:    "OCIRepository",
			object:  `{"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"OCIRepository","metadata":{"name":"m"},"spec":{"url":"oci://ghcr.io/acme/manifests","ref":{"tag":"v1.2"}}}`,
			wantOps: []map[string]string{{"op": "add", "path": "/spec/ref/digest", "value": d["ghcr.io/acme/manifests:v1.2"]}},
			want:    `{"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"OCIRepository","metadata":{"name":"m"},"spec":{"url":"oci://ghcr.io/acme/manifests","ref":{"tag":"v1.2","digest":"` + d["ghcr.io/acme/manifests:v1.2"] + `"}}}`,
		},
		{
			name:   "OCIRepository: a semver range is Flux's",
			kind:   "OCIRepository",
			object: `{"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"OCIRepository","metadata":{"name":"m"},"spec":{"url":"oci://ghcr.io/acme/manifests","ref":{"semver":">=1"}}}`,
			want:   `{"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"OCIRepository","metadata":{"name":"m"},"spec":{"url":"oci://ghcr.io/acme/manifests","ref":{"semver":">=1"}}}`,
		},
		{
			name:   "Deployment: RELATED_IMAGE_ variables beside the image",
			kind:   "Deployment",
			object: `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"op"},"spec":{"template":{"spec":{"containers":[{"name":"op","image":"nginx:1.27","env":[{"name":"RELATED_IMAGE_DB","value":"quay.io/acme/db:15"},{"name":"RELATED_IMAGE_NOTE","value":"see the runbook"}]}]}}}}`,
			wantOps: []map[string]string{
				replace("/spec/template/spec/containers/0/image", "nginx:1.27@"+d["nginx:1.27"]),
				replace("/spec/template/spec/containers/0/env/0/value", "quay.io/acme/db:15@"+d["quay.io/acme/db:15"]),
			},
			want:     `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"op"},"spec":{"template":{"spec":{"containers":[{"name":"op","image":"nginx:1.27@` + d["nginx:1.27"] + `","env":[{"name":"RELATED_IMAGE_DB","value":"quay.io/acme/db:15@` + d["quay.io/acme/db:15"] + `"},{"name":"RELATED_IMAGE_NOTE","value":"see the runbook"}]}]}}}}`,
			warnings: []string{`digester: spec.template.spec.containers[0].env[1].value: left alone: "see the runbook" is not a valid image reference: it contains white space`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			patch, a := admitRaw(t, f.h, review("CREATE", tc.kind, tc.object, ""))
			if !a.Allowed {
				t.Fatalf("denied: %s", a.Message)
			}
			if diff := cmp.Diff(tc.wantOps, a.Patch); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warnings, a.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			got := []byte(tc.object)
			if len(patch) > 0 {
				p, err := jsonpatch.DecodePatch(patch)
				if err != nil {
					t.Fatal(err)
				}
				if got, err = p.Apply(got); err != nil {
					t.Fatalf("the API server could not apply the patch: %v", err)
				}
			}
			if !jsonpatch.Equal(got, []byte(tc.want)) {
				t.Errorf("patched object:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestUpdateShapes: an UPDATE that leaves a split image or an OCIRepository ref as it was costs
// no lookup, pinned or not; one that changes it is pinned.
func TestUpdateShapes(t *testing.T) {
	f := newFixture(t, pin.OnErrorFail)
	d, err := f.reg.PushImages(types.OCIManifestSchema1, "ghcr.io/acme/manifests:v1.2")
	if err != nil {
		t.Fatal(err)
	}
	oci := func(tag string) string {
		return `{"apiVersion":"source.toolkit.fluxcd.io/v1","kind":"OCIRepository","metadata":{"name":"m"},"spec":{"url":"oci://ghcr.io/acme/manifests","ref":{"tag":"` + tag + `"}}}`
	}
	for _, tc := range []struct {
		name     string
		old, now string
		wantOps  []map[string]string
		requests int
	}{
		{name: "unchanged, unpinned, and its tag not even served", old: oci("v9"), now: oci("v9")},
		{name: "tag changed", old: oci("v1.1"), now: oci("v1.2"), wantOps: []map[string]string{{"op": "add", "path": "/spec/ref/digest", "value": d["ghcr.io/acme/manifests:v1.2"]}}, requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.reg.Reset()
			_, a := admitRaw(t, f.h, review("UPDATE", "OCIRepository", tc.now, tc.old))
			if !a.Allowed {
				t.Fatalf("denied: %s", a.Message)
			}
			if diff := cmp.Diff(tc.wantOps, a.Patch); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
			if n := f.reg.Count("", "manifest"); n != tc.requests {
				t.Errorf("registry saw %d manifest requests, want %d", n, tc.requests)
			}
		})
	}
}

// admitRaw posts body and returns the raw JSONPatch with the answer.
func admitRaw(t *testing.T, h http.Handler, body string) ([]byte, answer) {
	t.Helper()
	_, a, msg := post(t, h, body)
	if msg != "" {
		t.Fatal(msg)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(body)))
	var out struct{ Response struct{ Patch []byte } }
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out.Response.Patch, a
}
