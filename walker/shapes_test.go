package walker

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// TestShapes: every OCI reference that is not a container's image field: Kptfile functions, Helm
// values that split an image, Flux OCIRepository refs and RELATED_IMAGE_* variables.
func TestShapes(t *testing.T) {
	runWalkCases(t, []walkCase{
		{
			name: "kptfile: mutators and validators, short and full names, pins with and without a tag comment",
			doc: `apiVersion: kpt.dev/v1
kind: Kptfile
metadata: {name: pkg}
pipeline:
  mutators:
  - image: set-labels:v0.1.5 # labels
    configMap: {app: web}
  - image: gcr.io/kpt-fn/apply-setters@` + d1 + ` # v0.2.0
  - image: gcr.io/kpt-fn/apply-setters@` + d1 + `
  - image: gcr.io/kpt-fn/set-namespace:v0.4@` + d1 + ` # v9
  - exec: ./fn
  - {image: "ghcr.io/acme/fn@` + d1 + `", configPath: fn.yaml} # v1.2
  validators:
  - image: kubeval
`,
			want: []found{
				{"pipeline.mutators[0].image", "ghcr.io/kptdev/krm-functions-catalog/set-labels:v0.1.5"},
				{"pipeline.mutators[1].image", "gcr.io/kpt-fn/apply-setters:v0.2.0@" + d1},
				{"pipeline.mutators[2].image", "gcr.io/kpt-fn/apply-setters@" + d1},
				{"pipeline.mutators[3].image", "gcr.io/kpt-fn/set-namespace:v0.4@" + d1},
				{"pipeline.mutators[5].image", "ghcr.io/acme/fn:v1.2@" + d1},
				{"pipeline.validators[0].image", "ghcr.io/kptdev/krm-functions-catalog/kubeval"},
			},
		},
		{
			name: "kptfile: a comment that is no tag, a prefix of one's own",
			doc:  "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: set-labels@" + d1 + " # (reviewed)\n  - image: set-labels:v1\n",
			opts: []Option{WithKptImagePrefix("gcr.io/kpt-fn/")},
			want: []found{
				{"pipeline.mutators[0].image", "gcr.io/kpt-fn/set-labels@" + d1},
				{"pipeline.mutators[1].image", "gcr.io/kpt-fn/set-labels:v1"},
			},
		},
		{
			name: "kptfile: a flow list holds pins but cannot keep a tag beside one",
			doc:  "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators: [{image: 'set-labels:v1'}, {image: 'set-labels@" + d1 + "'}, {image: x:1@" + d1 + "}]\n  validators:\n  - {image: a:1,\n     configPath: x.yaml}\n",
			want: []found{
				{"pipeline.mutators[1].image", "ghcr.io/kptdev/krm-functions-catalog/set-labels@" + d1},
				{"pipeline.mutators[2].image", "ghcr.io/kptdev/krm-functions-catalog/x:1@" + d1},
			},
			wantProblems: []string{
				"pipeline.mutators[0].image: is written in a flow list, where digester cannot keep the function's tag in a line comment beside its pin (kpt 1.0.0-beta.56 refuses repo:tag@digest); write the list as a block list, one function a line",
				"pipeline.validators[0].image: is written in a flow list, where digester cannot keep the function's tag in a line comment beside its pin (kpt 1.0.0-beta.56 refuses repo:tag@digest); write the list as a block list, one function a line",
			},
		},
		{
			name:         "kptfile: odd images",
			doc:          "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: 3\n  - image: ''\n  - image: null\n  - plain\n",
			wantProblems: []string{"pipeline.mutators[0].image: is a number (3), want a string", "pipeline.mutators[1].image: is empty"},
		},
		{
			name: "kptfile: presets off, as before",
			doc:  "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: set-labels:v1\n",
			opts: []Option{WithoutPresets()},
			wantProblems: []string{
				"unlisted pipeline.mutators[0].image: left alone: digester does not pin pipeline/mutators/image in kind Kptfile (kpt.dev); to pin it, add {group: kpt.dev, kind: Kptfile, path: pipeline/mutators/image} to additionalImageFields [set-labels:v1]",
			},
		},
		{
			name: "flux helmrelease: split images at any depth, numbers as written",
			doc: `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: web}
spec:
  values:
    image:
      registry: docker.io
      repository: bitnami/nginx
      tag: 1.27
      digest: ""
    metrics:
      image: {repository: bitnami/exporter, tag: "1.0", pullPolicy: IfNotPresent}
    defaults:
      image: {repository: chart/default, tag: ""}
    workers:
    - image: {repository: acme/worker, tag: 2, digest: ` + d1 + `}
    - image: {repository: acme/pinned, tag: "3@` + d1 + `", digest: ""}
    odd:
      image: {repository: acme/odd, tag: "", digest: ""}
    git: {repository: {url: x}, tag: v1}
`,
			want: []found{
				{"spec.values.image", "docker.io/bitnami/nginx:1.27"},
				{"spec.values.workers[0].image", "acme/worker:2@" + d1},
				{"spec.values.workers[1].image", "acme/pinned:3@" + d1},
			},
			wantProblems: []string{
				"no-digest spec.values.metrics.image: left alone: the image bitnami/exporter:1.0 has no digest key to pin it in; if the chart reads one, add `digest: \"\"` at spec.values.metrics.image.digest [bitnami/exporter:1.0]",
				"spec.values.odd.image.tag: is empty beside a digest key: the chart picks the tag (often its appVersion), so digester has no tag of acme/odd to pin; set it",
			},
		},
		{
			name: "argo cd application: source and sources",
			doc:  "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  source:\n    helm:\n      valuesObject: {image: {repository: a/b, tag: v1, digest: ''}}\n  sources:\n  - helm: {valuesObject: {image: {repository: c/d, tag: v2, digest: ''}}}\n  - repoURL: x\n",
			want: []found{
				{"spec.source.helm.valuesObject.image", "a/b:v1"},
				{"spec.sources[0].helm.valuesObject.image", "c/d:v2"},
			},
		},
		{
			name: "kustomization: helmCharts valuesInline, beside images:",
			doc:  "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages: [{name: a, newTag: '1'}]\nhelmCharts:\n- name: web\n  valuesInline:\n    image: {repository: bitnami/nginx, tag: '1.27', digest: ''}\n",
			want: []found{
				{"images[0]", "a:1"},
				{"helmCharts[0].valuesInline.image", "bitnami/nginx:1.27"},
			},
		},
		{
			name: "flux ocirepository: tag, tag and digest",
			doc:  "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref:\n    tag: v1.2\n",
			want: []found{{"spec.ref", "ghcr.io/acme/manifests:v1.2"}},
		},
		{
			name: "flux ocirepository: pinned",
			doc:  "apiVersion: source.toolkit.fluxcd.io/v1beta2\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref: {tag: v1.2, digest: '" + d1 + "'}\n",
			want: []found{{"spec.ref", "ghcr.io/acme/manifests:v1.2@" + d1}},
		},
		{
			name: "flux ocirepository: a digest beside a semver range has no tag",
			doc:  "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref: {semver: '>=1.0', tag: v1, digest: '" + d1 + "'}\n",
			want: []found{{"spec.ref", "ghcr.io/acme/manifests@" + d1}},
		},
		{
			name:         "flux ocirepository: semver",
			doc:          "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref: {semver: '>=1.0', tag: v1}\n",
			wantProblems: []string{`floating spec.ref.semver: left alone: ghcr.io/acme/manifests follows the semver range ">=1.0", so Flux picks its tag and there is no one tag to pin [ghcr.io/acme/manifests]`},
		},
		{
			name:         "flux ocirepository: no ref",
			doc:          "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec: {url: 'oci://r.example/a'}\n",
			wantProblems: []string{"spec.ref: is not set, so Flux pulls r.example/a:latest, whichever it is; set spec.ref.tag for digester to pin it"},
		},
		{
			name:         "flux ocirepository: an empty ref",
			doc:          "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec: {url: 'oci://r.example/b', ref: {}}\n",
			wantProblems: []string{"spec.ref.tag: is not set, so Flux pulls r.example/b:latest, whichever it is; set it for digester to pin it"},
		},
		{
			name:         "flux ocirepository: an https URL",
			doc:          "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec: {url: 'https://r.example/b', ref: {tag: v1}}\n",
			wantProblems: []string{"spec.url: is not an oci:// URL, as Flux wants one"},
		},
		{
			name: "RELATED_IMAGE_ variables of every container list",
			doc: `apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers:
      - {name: i, image: init:1, env: [{name: RELATED_IMAGE_INIT, value: busybox:1.36}]}
      containers:
      - name: operator
        image: operator:1
        env:
        - {name: WATCH_NAMESPACE, value: "ns:1"}
        - name: RELATED_IMAGE_DB
          value: quay.io/acme/db:15 # the database
        - {name: RELATED_IMAGE_FROM, valueFrom: {configMapKeyRef: {name: x, key: y}}}
        - {name: RELATED_IMAGE_NUM, value: 3}
        - {name: RELATED_IMAGE_EMPTY, value: ""}
`,
			want: []found{
				{"spec.template.spec.containers[0].image", "operator:1"},
				{"spec.template.spec.containers[0].env[1].value", "quay.io/acme/db:15"},
				{"spec.template.spec.initContainers[0].image", "init:1"},
				{"spec.template.spec.initContainers[0].env[0].value", "busybox:1.36"},
			},
			wantProblems: []string{
				"spec.template.spec.containers[0].env[3].value: is a number (3), want an image reference",
				"spec.template.spec.containers[0].env[4].value: is empty, want an image reference",
			},
		},
		{
			name: "RELATED_IMAGE_ variables in preset containers (Argo, Tekton)",
			doc:  "apiVersion: tekton.dev/v1\nkind: Task\nspec:\n  steps:\n  - {image: 'a:1', env: [{name: RELATED_IMAGE_X, value: 'x:1'}]}\n  stepTemplate: {env: [{name: RELATED_IMAGE_Y, value: 'y:1'}]}\n",
			want: []found{
				{"spec.steps[0].image", "a:1"},
				{"spec.steps[0].env[0].value", "x:1"},
				{"spec.stepTemplate.env[0].value", "y:1"},
			},
		},
		{
			name: "presets off: no RELATED_IMAGE_, no helm values, no OCIRepository",
			doc:  "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{image: 'a:1', env: [{name: RELATED_IMAGE_X, value: 'x:1'}]}]\n",
			opts: []Option{WithoutPresets()},
			want: []found{{"spec.containers[0].image", "a:1"}},
		},
	})
}

// TestHelmValuesFile: a chart's values file, which only its caller knows to be one, is read for
// split images, at paths from its root; with presets off it is not.
func TestHelmValuesFile(t *testing.T) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("image:\n  repository: nginx\n  tag: \"1.27\"\n  digest: \"\"\nlist: [{repository: a, tag: '1', digest: ''}]\n"), &n); err != nil {
		t.Fatal(err)
	}
	var got []found
	fields, problems := New().HelmValues(&n)
	for _, f := range fields {
		got = append(got, found{f.Path, f.Image})
	}
	if diff := cmp.Diff([]found{{"image", "nginx:1.27"}, {"list[0]", "a:1"}}, got); diff != "" || len(problems) != 0 {
		t.Errorf("fields (-want +got):\n%s\nproblems: %v", diff, problems)
	}
	if fields, _ := New(WithoutPresets()).HelmValues(&n); len(fields) != 0 {
		t.Errorf("presets off: %d fields, want none", len(fields))
	}
}

// TestSetShapes: each shape is pinned in its own syntax, and nothing else changes; a second Set
// to the same reference changes nothing, a Set to another digest (a refresh) only the digest.
func TestSetShapes(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		to             string // the reference to pin to; "" pins Image to d1
	}{
		{
			name: "kpt function: repo@digest, tag in a new comment",
			in:   "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: set-labels:v0.1.5\n    configMap: {app: web}\n",
			want: "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: ghcr.io/kptdev/krm-functions-catalog/set-labels@" + d1 + " # v0.1.5\n    configMap: {app: web}\n",
		},
		{
			name: "kpt function: the tag goes first in a comment there is",
			in:   "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  validators:\n  - image: \"gcr.io/kpt-fn/kubeval:v0.3\" # strict\n",
			want: "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  validators:\n  - image: \"gcr.io/kpt-fn/kubeval@" + d1 + "\" # v0.3 strict\n",
		},
		{
			name: "kpt function: a pin with its tag comment is refreshed in place",
			in:   "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: gcr.io/kpt-fn/apply-setters@" + d2 + " # v0.2.0 pinned\n",
			want: "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: gcr.io/kpt-fn/apply-setters@" + d1 + " # v0.2.0 pinned\n",
			to:   "gcr.io/kpt-fn/apply-setters:v0.2.0@" + d1,
		},
		{
			name: "kpt function: repo:tag@digest stays in that form",
			in:   "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: gcr.io/kpt-fn/apply-setters:v0.2.0@" + d2 + "\n",
			want: "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - image: gcr.io/kpt-fn/apply-setters:v0.2.0@" + d1 + "\n",
			to:   "gcr.io/kpt-fn/apply-setters:v0.2.0@" + d1,
		},
		{
			name: "kpt function: a one-line flow mapping carries the comment",
			in:   "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - {image: set-labels:v1, configPath: x.yaml}\n",
			want: "apiVersion: kpt.dev/v1\nkind: Kptfile\npipeline:\n  mutators:\n  - {image: 'ghcr.io/kptdev/krm-functions-catalog/set-labels@" + d1 + "', configPath: x.yaml} # v1\n",
		},
		{
			name: "helm image: the empty digest, in its quotes",
			in:   "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image:\n      repository: bitnami/nginx\n      tag: 1.27 # pinned by digester\n      digest: \"\"\n      pullPolicy: Always\n",
			want: "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image:\n      repository: bitnami/nginx\n      tag: 1.27 # pinned by digester\n      digest: \"" + d1 + "\"\n      pullPolicy: Always\n",
		},
		{
			name: "helm image: a null digest",
			in:   "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image: {repository: nginx, tag: '1.27', digest: }\n",
			want: "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image: {repository: nginx, tag: '1.27', digest: '" + d1 + "'}\n",
		},
		{
			name: "helm image: a tag that carries its digest keeps carrying it",
			in:   "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image: {repository: nginx, tag: '1.27@" + d2 + "'}\n",
			want: "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  values:\n    image: {repository: nginx, tag: '1.27@" + d1 + "'}\n",
			to:   "nginx:1.27@" + d1,
		},
		{
			name: "oci repository: digest after tag",
			in:   "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref:\n    tag: v1.2 # release\n    semverFilter: x\n",
			want: "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec:\n  url: oci://ghcr.io/acme/manifests\n  ref:\n    tag: v1.2 # release\n    digest: " + d1 + "\n    semverFilter: x\n",
		},
		{
			name: "RELATED_IMAGE_: the value",
			in:   "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: a@" + d2 + "\n    env: [{name: RELATED_IMAGE_X, value: 'x:1'}]\n",
			want: "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: a@" + d2 + "\n    env: [{name: RELATED_IMAGE_X, value: 'x:1@" + d1 + "'}]\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rn, err := yaml.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			fields, problems := New().Walk(rn.YNode())
			fields = dropPinned(fields)
			if len(fields) != 1 || len(problems) != 0 {
				t.Fatalf("fields %+v, problems %+v; want one field to pin", fields, problems)
			}
			to := tc.to
			if to == "" {
				to = fields[0].Image + "@" + d1
			}
			fields[0].Set(to)
			out := mustString(t, rn)
			if diff := cmp.Diff(tc.want, out); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			// Walked again, the field stands for what it was pinned to; a second Set changes nothing.
			all, _ := New().Walk(rn.YNode())
			var stands []string
			for _, f := range all {
				stands = append(stands, f.Image)
				if f.Image == to {
					f.Set(to)
				}
			}
			if !strings.Contains(" "+strings.Join(stands, " ")+" ", " "+to+" ") {
				t.Errorf("walked again, the fields stand for %q, want %q among them", stands, to)
			}
			if diff := cmp.Diff(tc.want, mustString(t, rn)); diff != "" {
				t.Errorf("a second Set changed the output (-want +got):\n%s", diff)
			}
		})
	}
}

// dropPinned drops the fields that carry a digest already and are no test's subject.
func dropPinned(fields []Field) []Field {
	var out []Field
	for _, f := range fields {
		if !strings.Contains(f.Image, "@"+d2) || f.Kind != Reference {
			out = append(out, f)
		}
	}
	return out
}

// TestPresetRulesShared: the preset rules every Walker shares are not changed by those that
// declare fields for a preset's kind: each finds its own, and a Walker without finds none.
func TestPresetRulesShared(t *testing.T) {
	const doc = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n  - plugin: {image: 'plug:1'}\n    other: {image: 'other:1'}\n"
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	declare := func(path string) *Walker {
		return New(WithImageFields(ImageField{Group: "argoproj.io", Kind: "Workflow", Path: path}))
	}
	plugin, other, none := declare("spec/templates/plugin/image"), declare("spec/templates/other/image"), New()
	for w, want := range map[*Walker]string{plugin: "plug:1", other: "other:1", none: ""} {
		fields, _ := w.Walk(&n)
		var got []string
		for _, f := range fields {
			got = append(got, f.Image)
		}
		if want == "" && len(got) != 0 || want != "" && (len(got) != 1 || got[0] != want) {
			t.Errorf("found %v, want %q", got, want)
		}
	}
}
