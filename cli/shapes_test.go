package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/internal/testfiles"
)

// shapeRefs are the references the shape tests pin, as the registry serves them.
var shapeRefs = []string{
	"ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.1.5", "gcr.io/kpt-fn/apply-setters:v0.2.0",
	"gcr.io/kpt-fn/set-namespace:v0.4.1", "bitnami/nginx:1.27", "bitnami/redis-exporter:1.62.0",
	"ghcr.io/acme/manifests:v1.2", "quay.io/acme/db:15", "redis:7.4",
}

// TestPinShapes pins every reference that is not a container's image field through files, each
// shape in block and flow style, CRLF among them, and checks the files byte for byte: the pin is
// written in the syntax the shape's consumer reads (a Kptfile function as repo@digest with its tag
// in the line comment, a digest key set or added, a value appended to), and nothing else changes,
// comments included. A chart's templates/, which are no YAML, are neither read nor written. A
// second run changes nothing and check passes.
func TestPinShapes(t *testing.T) {
	reg, d := testRegistry(t, shapeRefs...)
	files := map[string]string{
		"Kptfile": `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: shop # the package
  annotations:
    config.kubernetes.io/local-config: "true"
pipeline:
  mutators:
    # kpt puts its prefix in front of a short name
    - image: set-labels:v0.1.5 # labels every resource
      configMap: {app: shop}
    - image: "gcr.io/kpt-fn/apply-setters:v0.2.0"
    - {image: 'gcr.io/kpt-fn/set-namespace:v0.4.1', configMap: {namespace: shop}}
    - exec: ./bin/digester
`,
		"flux/web.yaml": "apiVersion: helm.toolkit.fluxcd.io/v2\r\nkind: HelmRelease\r\nmetadata:\r\n  name: web\r\nspec:\r\n  values:\r\n" +
			"    image:\r\n      registry: docker.io # Docker Hub\r\n      repository: bitnami/nginx\r\n      tag: 1.27\r\n      digest: \"\"   # filled in by digester\r\n      pullPolicy: IfNotPresent\r\n" +
			"    metrics:\r\n      image: {repository: bitnami/redis-exporter, tag: 1.62.0, digest: }\r\n",
		"flux/sources.yaml": `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: manifests}
spec:
  url: oci://ghcr.io/acme/manifests
  ref:
    tag: v1.2 # the release
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: flow}
spec: {url: "oci://ghcr.io/acme/manifests", ref: {tag: "v1.2"}}
`,
		"argocd/app.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: cache}
spec:
  sources:
  - chart: redis
    helm:
      valuesObject: {metrics: {image: {registry: docker.io, repository: bitnami/redis-exporter, tag: "1.62.0", digest: ''}}}
`,
		"kustomization.yaml": `resources: [flux]
helmCharts:
- name: nginx
  valuesInline:
    image:
      repository: bitnami/nginx
      tag: "1.27"
      digest: ~ # pinned
`,
		"operator.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: op}
spec:
  template:
    spec:
      containers:
      - name: op
        image: redis:7.4
        env:
        - name: RELATED_IMAGE_DB
          value: 'quay.io/acme/db:15' # deployed
        - {name: RELATED_IMAGE_CACHE, value: redis:7.4}
`,
		"chart/Chart.yaml":                "apiVersion: v2\nname: web\nversion: 1.0.0\nappVersion: \"1.27\"\n",
		"chart/values.yaml":               "# Default values.\nimage:\n  repository: bitnami/nginx\n  # the chart's appVersion, if empty\n  tag: \"1.27\"\n  digest: \"\"\nexporter:\n  image:\n    registry: docker.io\n    repository: bitnami/redis-exporter\n    tag: 1.62.0\n",
		"chart/values-flow.yml":           "image: {repository: bitnami/nginx, tag: '1.27', digest: ''}\n",
		"chart/templates/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n{{- if .Values.extra }}\n{{ toYaml .Values.extra }}\n{{- end }}\n",
	}
	want := map[string]string{
		"Kptfile": `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: shop # the package
  annotations:
    config.kubernetes.io/local-config: "true"
pipeline:
  mutators:
    # kpt puts its prefix in front of a short name
    - image: ghcr.io/kptdev/krm-functions-catalog/set-labels@` + d["ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.1.5"] + ` # v0.1.5 labels every resource
      configMap: {app: shop}
    - image: "gcr.io/kpt-fn/apply-setters@` + d["gcr.io/kpt-fn/apply-setters:v0.2.0"] + `" # v0.2.0
    - {image: 'gcr.io/kpt-fn/set-namespace@` + d["gcr.io/kpt-fn/set-namespace:v0.4.1"] + `', configMap: {namespace: shop}} # v0.4.1
    - exec: ./bin/digester
`,
		"flux/web.yaml": "apiVersion: helm.toolkit.fluxcd.io/v2\r\nkind: HelmRelease\r\nmetadata:\r\n  name: web\r\nspec:\r\n  values:\r\n" +
			"    image:\r\n      registry: docker.io # Docker Hub\r\n      repository: bitnami/nginx\r\n      tag: 1.27\r\n      digest: \"" + d["bitnami/nginx:1.27"] + "\"   # filled in by digester\r\n      pullPolicy: IfNotPresent\r\n" +
			"    metrics:\r\n      image: {repository: bitnami/redis-exporter, tag: 1.62.0, digest: '" + d["bitnami/redis-exporter:1.62.0"] + "' }\r\n",
		"flux/sources.yaml": `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: manifests}
spec:
  url: oci://ghcr.io/acme/manifests
  ref:
    tag: v1.2 # the release
    digest: ` + d["ghcr.io/acme/manifests:v1.2"] + `
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: flow}
spec: {url: "oci://ghcr.io/acme/manifests", ref: {tag: "v1.2", digest: '` + d["ghcr.io/acme/manifests:v1.2"] + `'}}
`,
		"argocd/app.yaml": `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: cache}
spec:
  sources:
  - chart: redis
    helm:
      valuesObject: {metrics: {image: {registry: docker.io, repository: bitnami/redis-exporter, tag: "1.62.0", digest: '` + d["bitnami/redis-exporter:1.62.0"] + `'}}}
`,
		"kustomization.yaml": `resources: [flux]
helmCharts:
- name: nginx
  valuesInline:
    image:
      repository: bitnami/nginx
      tag: "1.27"
      digest: ` + d["bitnami/nginx:1.27"] + ` # pinned
`,
		"operator.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: op}
spec:
  template:
    spec:
      containers:
      - name: op
        image: redis:7.4@` + d["redis:7.4"] + `
        env:
        - name: RELATED_IMAGE_DB
          value: 'quay.io/acme/db:15@` + d["quay.io/acme/db:15"] + `' # deployed
        - {name: RELATED_IMAGE_CACHE, value: redis:7.4@` + d["redis:7.4"] + `}
`,
		"chart/Chart.yaml":                files["chart/Chart.yaml"],
		"chart/values.yaml":               strings.Replace(files["chart/values.yaml"], `digest: ""`, `digest: "`+d["bitnami/nginx:1.27"]+`"`, 1),
		"chart/values-flow.yml":           "image: {repository: bitnami/nginx, tag: '1.27', digest: '" + d["bitnami/nginx:1.27"] + "'}\n",
		"chart/templates/deployment.yaml": files["chart/templates/deployment.yaml"],
	}
	dir := t.TempDir()
	testfiles.Write(t, dir, files)
	got := runCLI(t, reg, "", "pin", "--report", "fields", dir)
	if got.code != 0 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr)
	}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	// One warning for the split image without a digest key, naming where to add one.
	warning := filepath.Join(dir, "chart/values.yaml") + ":9:5: warning: left alone: the image docker.io/bitnami/redis-exporter:1.62.0 has no digest key to pin it in; if the chart reads one, add `digest: \"\"` at exporter.image.digest\n"
	if strings.Count(got.stdout, ": warning: ") != 1 || !strings.Contains(got.stdout, warning) {
		t.Errorf("stdout holds not one warning, %q:\n%s", warning, got.stdout)
	}
	if n := strings.Count(got.stdout, ": info: pinned "); n != 14 {
		t.Errorf("%d fields pinned, want 14:\n%s", n, got.stdout)
	}

	again := runCLI(t, reg, "", "pin", dir)
	if again.code != 0 || strings.Contains(again.stdout, "info: pinned") {
		t.Errorf("second run: exit %d, stdout %q", again.code, again.stdout)
	}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("second run changed files (-want +got):\n%s", diff)
	}
	if check := runCLI(t, reg, "", "check", "--pinned", "verify", dir); check.code != 0 {
		t.Errorf("check --pinned verify after pin: exit %d\n%s%s", check.code, check.stdout, check.stderr)
	}
}

// TestRefreshShapes: pinned: refresh follows the tag of each shape's pin (a Kptfile function's
// tag from its comment) and rewrites only the digest, in place.
func TestRefreshShapes(t *testing.T) {
	reg, d := testRegistry(t, shapeRefs...)
	const stale = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	files := map[string]string{
		"Kptfile": "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata: {name: p}\npipeline:\n  validators:\n  - image: gcr.io/kpt-fn/apply-setters@" + stale + "   # v0.2.0 reviewed\n",
		"web.yaml": "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: web}\nspec:\n  values:\n    image: {repository: bitnami/nginx, tag: \"1.27@" + stale + "\"}\n" +
			"---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: m}\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref:\n    tag: v1.2\n    digest: \"" + stale + "\"\n",
		"kustomization.yaml": "images:\n- name: web\n  newName: bitnami/nginx\n  newTag: \"1.27\" # the web tier\n  digest: " + stale + "\n",
	}
	dir := t.TempDir()
	testfiles.Write(t, dir, files)
	if check := runCLI(t, reg, "", "check", "--pinned", "verify", dir); check.code != 1 || strings.Count(check.stdout, "stale pin") != 4 {
		t.Errorf("check --pinned verify: exit %d, want 1 and four stale pins:\n%s", check.code, check.stdout)
	}
	got := runCLI(t, reg, "", "pin", "--pinned", "refresh", dir)
	if got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	want := map[string]string{
		"Kptfile":  strings.Replace(files["Kptfile"], stale, d["gcr.io/kpt-fn/apply-setters:v0.2.0"], 1),
		"web.yaml": strings.Replace(strings.Replace(files["web.yaml"], stale, d["bitnami/nginx:1.27"], 1), stale, d["ghcr.io/acme/manifests:v1.2"], 1),
		// a pinned kustomize images: entry is a pin like any: its digest refreshed in place
		"kustomization.yaml": strings.Replace(files["kustomization.yaml"], stale, d["bitnami/nginx:1.27"], 1),
	}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

// TestShapeNotInPlace: a shape whose text digester cannot edit in place (the key before the one to
// add holds a block scalar) fails the run, naming the place, and no file is written.
func TestShapeNotInPlace(t *testing.T) {
	reg, _ := testRegistry(t, append(shapeRefs, "nginx:1.27")...)
	const fix = ", so digester cannot pin it in place; write it as a plain or quoted string on one line"
	for _, tc := range []struct{ name, file, want string }{
		{
			name: "flux ref",
			file: "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata: {name: m}\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref:\n    tag: >-\n      v1.2\n",
			want: `b.yaml:7:5: error: the value "v1.2" at line 7 is a block scalar (>)` + fix,
		},
		{
			name: "kustomize images: entry",
			file: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: nginx\n  newTag: |-\n    1.27\n",
			want: `b.yaml:4:3: error: the value "1.27" at line 5 is a block scalar (|)` + fix,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{
				"a.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers: [{name: a, image: redis:7.4}]\n",
				"b.yaml": tc.file,
			}
			dir := t.TempDir()
			testfiles.Write(t, dir, files)
			got := runCLI(t, reg, "", "pin", dir)
			want := filepath.Join(dir, tc.want) + "\n"
			if got.code != 1 || got.stdout != want || !strings.HasPrefix(got.stderr, "digester: pinned nothing: no file was written, for the error above") {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, %q and no file written", got.code, got.stdout, got.stderr, want)
			}
			if diff := cmp.Diff(files, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files changed (-want +got):\n%s", diff)
			}
		})
	}
}
