package walker

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// TestPlaces: every place an image lives, by default and through presets and declared fields.
func TestPlaces(t *testing.T) {
	runWalkCases(t, []walkCase{
		{
			name: "image volumes beside every pod spec",
			doc: `kind: Deployment
spec:
  template:
    spec:
      containers: [{name: a, image: a:1}]
      volumes:
      - name: models
        image: {reference: "models:v1", pullPolicy: IfNotPresent}
      - name: cfg
        configMap: {name: x}
      - name: bad
        image: {pullPolicy: Always}`,
			want:         []found{{"spec.template.spec.containers[0].image", "a:1"}, {"spec.template.spec.volumes[0].image.reference", "models:v1"}},
			wantProblems: []string{`spec.template.spec.volumes[2].image.reference: image volume "bad" has no reference`},
		},
		{
			name: "cronjob image volume",
			doc:  "kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          volumes: [{name: v, image: {reference: 'data:2'}}]\n",
			want: []found{{"spec.jobTemplate.spec.template.spec.volumes[0].image.reference", "data:2"}},
		},
		{
			name: "argo workflow: every template kind",
			doc: `apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hello-}
spec:
  arguments:
    parameters: [{name: image, value: "ignored:1"}]
  templateDefaults:
    container: {image: defaults:1}
  templates:
  - name: c
    container: {image: "docker/whalesay:latest"}
    initContainers: [{name: i, image: init:1}]
    sidecars: [{name: s, image: side:1}]
  - name: s
    script: {image: "python:alpine3.6", source: "print(1)"}
  - name: set
    containerSet:
      containers: [{name: a, image: set-a:1}, {name: b, image: set-b:1}]
  - name: loop
    steps:
    - - name: each
        template: c
        withItems: [{image: debian, tag: "9.1"}]
  - name: param
    container: {image: "{{inputs.parameters.image}}"}`,
			want: []found{
				{"spec.templates[0].container.image", "docker/whalesay:latest"},
				{"spec.templates[4].container.image", "{{inputs.parameters.image}}"},
				{"spec.templates[1].script.image", "python:alpine3.6"},
				{"spec.templates[0].initContainers[0].image", "init:1"},
				{"spec.templates[0].sidecars[0].image", "side:1"},
				{"spec.templates[2].containerSet.containers[0].image", "set-a:1"},
				{"spec.templates[2].containerSet.containers[1].image", "set-b:1"},
				{"spec.templateDefaults.container.image", "defaults:1"},
			},
		},
		{
			name: "argo cron workflow",
			doc:  "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nspec:\n  schedule: '* * * * *'\n  workflowSpec:\n    templates:\n    - {name: a, container: {image: 'cron:1'}}\n",
			want: []found{{"spec.workflowSpec.templates[0].container.image", "cron:1"}},
		},
		{
			name: "a Workflow of another group is not Argo's",
			doc:  "apiVersion: example.com/v1\nkind: Workflow\nspec:\n  templates:\n  - container: {image: 'x:1'}\n",
			wantProblems: []string{
				"unlisted spec.templates[0].container.image: left alone: digester does not pin spec/templates/container/image in kind Workflow (example.com); to pin it, add {group: example.com, kind: Workflow, path: spec/templates/container/image} to additionalImageFields [x:1]",
			},
		},
		{
			name: "argo: an image key elsewhere is reported, loop data and arguments are not",
			doc: `apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  annotations: {image: "note:1"}
spec:
  arguments: {parameters: [{name: p, value: "v"}], artifacts: [{image: "art:1"}]}
  templates:
  - name: a
    resource: {manifest: "x", image: "odd:1"}
    steps: [[{name: s, withItems: [{image: "loop:1"}]}]]`,
			wantProblems: []string{
				"unlisted spec.templates[0].resource.image: left alone: digester does not pin spec/templates/resource/image in kind WorkflowTemplate (argoproj.io); to pin it, add {group: argoproj.io, kind: WorkflowTemplate, path: spec/templates/resource/image} to additionalImageFields [odd:1]",
			},
		},
		{
			name: "a Ceph RBD volume's image is a block device, not a container image",
			doc:  "apiVersion: v1\nkind: Pod\nspec:\n  containers: [{name: c, image: 'app:1'}]\n  volumes: [{name: v, rbd: {monitors: ['10.0.0.1:6789'], pool: kube, image: 'foo'}}]\n---\n",
			want: []found{{"spec.containers[0].image", "app:1"}},
		},
		{
			name: "nor a PersistentVolume's",
			doc:  "apiVersion: v1\nkind: PersistentVolume\nspec:\n  rbd: {monitors: ['10.0.0.1:6789'], image: 'foo'}\n",
		},
		{
			name: "argo loop data stays quiet when a field is also declared for the kind",
			doc:  "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n  - steps: [[{withItems: [{image: 'loop:1'}]}]]\n    plugin: {image: 'plug:1'}\n",
			opts: []Option{WithImageFields(ImageField{Group: "argoproj.io", Kind: "Workflow", Path: "spec/templates/plugin/image"})},
			want: []found{{"spec.templates[0].plugin.image", "plug:1"}},
		},
		{
			name: "tekton task: steps, sidecars, stepTemplate; a parameter is a field",
			doc: `apiVersion: tekton.dev/v1
kind: Task
spec:
  params: [{name: IMAGE, default: "gcr.io/x/y:1"}]
  stepTemplate: {image: "tmpl:1"}
  steps:
  - {name: a, image: "$(params.IMAGE)"}
  - {name: b, image: "docker.io/library/golang:$(params.version)"}
  - {name: c, ref: {name: some-action}}
  sidecars: [{name: s, image: "side:1"}]`,
			want: []found{
				{"spec.steps[0].image", "$(params.IMAGE)"},
				{"spec.steps[1].image", "docker.io/library/golang:$(params.version)"},
				{"spec.sidecars[0].image", "side:1"},
				{"spec.stepTemplate.image", "tmpl:1"},
			},
		},
		{
			name: "tekton embedded specs",
			doc: `apiVersion: tekton.dev/v1
kind: PipelineRun
spec:
  pipelineSpec:
    tasks:
    - name: a
      taskSpec: {steps: [{image: "a:1"}], sidecars: [{image: "s:1"}]}
    - name: ref
      taskRef: {name: other}
    finally:
    - name: f
      taskSpec: {stepTemplate: {image: "f:1"}}`,
			want: []found{
				{"spec.pipelineSpec.tasks[0].taskSpec.steps[0].image", "a:1"},
				{"spec.pipelineSpec.tasks[0].taskSpec.sidecars[0].image", "s:1"},
				{"spec.pipelineSpec.finally[0].taskSpec.stepTemplate.image", "f:1"},
			},
		},
		{
			name: "tekton taskrun and pipeline",
			doc:  "apiVersion: tekton.dev/v1beta1\nkind: TaskRun\nspec:\n  taskSpec:\n    steps: [{image: 'tr:1'}]\n",
			want: []found{{"spec.taskSpec.steps[0].image", "tr:1"}},
		},
		{
			name: "tekton pipeline",
			doc:  "apiVersion: tekton.dev/v1\nkind: Pipeline\nspec:\n  tasks:\n  - taskSpec: {steps: [{image: 'p:1'}]}\n  finally:\n  - taskSpec: {sidecars: [{image: 'pf:1'}]}\n",
			want: []found{{"spec.tasks[0].taskSpec.steps[0].image", "p:1"}, {"spec.finally[0].taskSpec.sidecars[0].image", "pf:1"}},
		},
		{
			name: "prometheus: spec.image, thanos, container patches without image are fine",
			doc: `apiVersion: monitoring.coreos.com/v1
kind: Prometheus
spec:
  image: quay.io/prometheus/prometheus:v2.54.1
  thanos: {image: "quay.io/thanos/thanos:v0.36.1"}
  containers:
  - name: prometheus
    resources: {}
  - name: proxy
    image: "proxy:1"
  initContainers: [{name: init, image: "init:1"}]`,
			want: []found{
				{"spec.image", "quay.io/prometheus/prometheus:v2.54.1"},
				{"spec.containers[1].image", "proxy:1"},
				{"spec.initContainers[0].image", "init:1"},
				{"spec.thanos.image", "quay.io/thanos/thanos:v0.36.1"},
			},
		},
		{
			name: "alertmanager, thanosruler, prometheusagent",
			doc:  "apiVersion: monitoring.coreos.com/v1alpha1\nkind: PrometheusAgent\nspec:\n  image: agent:1\n",
			want: []found{{"spec.image", "agent:1"}},
		},
		{
			name: "keda scaledjob",
			doc:  "apiVersion: keda.sh/v1alpha1\nkind: ScaledJob\nspec:\n  jobTargetRef:\n    template:\n      spec:\n        containers: [{name: w, image: 'worker:1'}]\n        volumes: [{name: v, image: {reference: 'vol:1'}}]\n",
			want: []found{{"spec.jobTargetRef.template.spec.containers[0].image", "worker:1"}, {"spec.jobTargetRef.template.spec.volumes[0].image.reference", "vol:1"}},
		},
		{
			name: "presets off",
			doc:  "apiVersion: monitoring.coreos.com/v1\nkind: Alertmanager\nspec:\n  image: am:1\n",
			opts: []Option{WithoutPresets()},
			wantProblems: []string{
				"unlisted spec.image: left alone: digester does not pin spec/image in kind Alertmanager (monitoring.coreos.com); to pin it, add {group: monitoring.coreos.com, kind: Alertmanager, path: spec/image} to additionalImageFields [am:1]",
			},
		},
		{
			name: "declared fields: kustomize path syntax, lists traversed, version matched",
			doc: `apiVersion: example.com/v1
kind: MyKind
spec:
  runLatest: {container: {image: "my:1"}}
  workers:
  - {image: "w:1"}
  - {image: "w:2"}
  odd/key: {image: "slash:1"}`,
			opts: []Option{WithImageFields(
				ImageField{Group: "example.com", Kind: "MyKind", Path: "spec/runLatest/container/image"},
				ImageField{Group: "example.com", Version: "v1", Kind: "MyKind", Path: "/spec/workers[]/image"},
				ImageField{Kind: "MyKind", Path: `spec/odd\/key/image`},
				ImageField{Group: "example.com", Version: "v2", Kind: "MyKind", Path: "spec/other/image"},
				ImageField{Group: "other.com", Kind: "MyKind", Path: "spec/x/image"},
			)},
			want: []found{{"spec.runLatest.container.image", "my:1"}, {"spec.workers[0].image", "w:1"}, {"spec.workers[1].image", "w:2"}, {"spec.odd/key.image", "slash:1"}},
		},
		{
			name: "a declared field without a kind applies to every kind",
			doc:  "apiVersion: example.com/v1\nkind: Job2\nspec:\n  runner: {image: r:1}\n",
			opts: []Option{WithImageFields(ImageField{Path: "spec/runner/image"})},
			want: []found{{"spec.runner.image", "r:1"}},
		},
		{
			name: "a declared field that a default place finds is found once",
			doc:  "kind: Pod\nspec:\n  containers: [{image: a:1}]\n",
			opts: []Option{WithImageFields(ImageField{Kind: "Pod", Path: "spec/containers/image"})},
			want: []found{{"spec.containers[0].image", "a:1"}},
		},
		{
			name: "kind List: each item a resource",
			doc: `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: p, namespace: ns}
  spec: {containers: [{name: c, image: "a:1"}, {name: d}]}
- plain
- apiVersion: argoproj.io/v1alpha1
  kind: Workflow
  metadata: {generateName: wf-}
  spec: {templates: [{container: {image: "b:1"}}]}`,
			want:         []found{{"items[0].spec.containers[0].image", "a:1"}, {"items[2].spec.templates[0].container.image", "b:1"}},
			wantProblems: []string{`(item 0 Pod/p) items[0].spec.containers[1].image: container "d" has no image`},
		},
		{
			name: "a *List kind",
			doc:  "apiVersion: v1\nkind: DeploymentList\nitems:\n- kind: Deployment\n  metadata: {name: d}\n  spec: {template: {spec: {containers: [{image: 'x:1'}]}}}\n",
			want: []found{{"items[0].spec.template.spec.containers[0].image", "x:1"}},
		},
		{
			name: "a List kind without items is a resource",
			doc:  "kind: WatchList\nspec:\n  containers: [{image: 'x:1'}]\n",
			want: []found{{"spec.containers[0].image", "x:1"}},
		},
		{
			name: "kustomization images",
			doc: `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
- name: nginx
  newTag: "1.27"
- name: app
  newName: ghcr.io/acme/app:2.0
- {name: pinned, newName: p, newTag: "1", digest: "sha256:0000000000000000000000000000000000000000000000000000000000000000"}
- {name: short, newName: s, digest: "sha256:25a0d4"}
- name: only-name
  newName: elsewhere/app
- name: suffix
  tagSuffix: -debug
- {newTag: "1"}
- name: num
  newTag: 1.5
- name: bare`,
			want: []found{
				{"images[0]", "nginx:1.27"},
				{"images[1]", "ghcr.io/acme/app:2.0"},
				{"images[2]", "p:1@sha256:0000000000000000000000000000000000000000000000000000000000000000"}, // pinned: kept, verified or refreshed as any pin
				{"images[7]", "num:1.5"},
			},
			wantProblems: []string{
				"images[4]: has no newTag: the tag comes from each resource, so there is no one tag to pin here; the resources are pinned where they are",
				"images[5]: has a tagSuffix: the tag depends on each resource, so there is no one tag to pin",
				"images[6]: has neither name nor newName",
				"images[8]: has no newTag: the tag comes from each resource, so there is no one tag to pin here; the resources are pinned where they are",
			},
		},
		{
			name: "a component's images; images in another kind are not kustomize's",
			doc:  "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages: [{name: a, newTag: '2'}]\n",
			want: []found{{"images[0]", "a:2"}},
		},
		{
			name: "images: in another kind",
			doc:  "apiVersion: example.com/v1\nkind: Kustomization\nimages: [{name: a, newTag: '2'}]\n",
		},
	})
}

// TestDuplicates: only a duplicate that makes an image ambiguous is an error, and its fields are
// not returned; every other duplicate is a warning and the resource is walked as usual.
func TestDuplicates(t *testing.T) {
	runWalkCases(t, []walkCase{
		{
			name: "duplicates that touch no image",
			doc: `apiVersion: apps/v1
kind: Deployment
metadata:
  name: a
  annotations: {x: "1"}
  annotations: {y: "2"}
spec:
  selector: {matchLabels: {app: a}}
  selector: {matchLabels: {app: b}}
  template:
    spec:
      containers:
      - name: a
        name: b
        image: app:1`,
			want: []found{{"spec.template.spec.containers[0].image", "app:1"}},
			wantProblems: []string{
				`duplicate metadata.annotations: key "annotations" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
				`duplicate spec.selector: key "selector" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
				`duplicate spec.template.spec.containers[0].name: key "name" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
		{
			name: "two image keys with the same value",
			doc:  "kind: Pod\nspec:\n  containers:\n  - image: a:1\n    image: a:1\n",
			want: []found{{"spec.containers[0].image", "a:1"}},
			wantProblems: []string{
				`duplicate spec.containers[0].image: key "image" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
		{
			name: "two image keys, the last pinned (a second run)",
			doc:  "kind: Pod\nspec:\n  containers:\n  - image: a:1\n    image: a:1@sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
			want: []found{{"spec.containers[0].image", "a:1@sha256:0000000000000000000000000000000000000000000000000000000000000000"}},
			wantProblems: []string{
				`duplicate spec.containers[0].image: key "image" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
		{
			name: "two image keys with different values",
			doc:  "kind: Pod\nspec:\n  containers:\n  - image: a:1\n    image: a:2\n  - image: b:1\n",
			want: []found{{"spec.containers[1].image", "b:1"}},
			wantProblems: []string{
				`ambiguous spec.containers[0].image: key "image" appears twice, here and 1 line above, with different images: kubectl would keep the last, digester does not guess; remove one`,
			},
		},
		{
			name: "two containers lists with different images",
			doc:  "kind: Pod\nspec:\n  containers: [{name: a, image: a:1}]\n  initContainers: [{image: i:1}]\n  containers: [{name: a, image: a:2}]\n",
			want: []found{{"spec.initContainers[0].image", "i:1"}},
			wantProblems: []string{
				`ambiguous spec.containers: key "containers" appears twice, here and 2 lines above, with different images: kubectl would keep the last, digester does not guess; remove one`,
			},
		},
		{
			name: "two containers lists with the same images",
			doc:  "kind: Pod\nspec:\n  containers: [{name: a, image: a:1, env: [{name: X}]}]\n  containers: [{name: a, image: a:1}]\n",
			want: []found{{"spec.containers[0].image", "a:1"}},
			wantProblems: []string{
				`duplicate spec.containers: key "containers" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
		{
			name: "a pod template twice with different images: the fields below it are not returned",
			doc: `apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers: [{name: app, image: app:1}]
  template:
    spec:
      containers: [{name: app, image: app:2}]`,
			wantProblems: []string{
				`ambiguous spec.template: key "template" appears twice, here and 3 lines above, with different images: kubectl would keep the last, digester does not guess; remove one`,
			},
		},
		{
			name: "two volumes lists whose image volumes differ",
			doc:  "kind: Pod\nspec:\n  containers: [{name: c, image: c:1}]\n  volumes: [{name: m, image: {reference: m:1}}]\n  volumes: [{name: m, image: {reference: m:2}}]\n",
			want: []found{{"spec.containers[0].image", "c:1"}},
			wantProblems: []string{
				`ambiguous spec.volumes: key "volumes" appears twice, here and 1 line above, with different images: kubectl would keep the last, digester does not guess; remove one`,
			},
		},
		{
			name: "two containers lists that differ only in names and commands are not ambiguous",
			doc:  "kind: Pod\nspec:\n  containers: [{name: a, image: a:1, command: [run]}]\n  containers: [{name: b, image: a:1, command: [serve]}]\n",
			want: []found{{"spec.containers[0].image", "a:1"}},
			wantProblems: []string{
				`duplicate spec.containers: key "containers" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
		{
			name: "an unlisted image key beside a duplicate key is still reported",
			doc:  "apiVersion: example.com/v1\nkind: Runner\nspec:\n  replicas: 1\n  replicas: 2\n  image: r:1\n  sidecar: {image: s:1}\n",
			wantProblems: []string{
				`duplicate spec.replicas: key "replicas" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
				"unlisted spec.image: left alone: digester does not pin spec/image in kind Runner (example.com); to pin it, add {group: example.com, kind: Runner, path: spec/image} to additionalImageFields [r:1]",
				"unlisted spec.sidecar.image: left alone: digester does not pin spec/sidecar/image in kind Runner (example.com); to pin it, add {group: example.com, kind: Runner, path: spec/sidecar/image} to additionalImageFields [s:1]",
			},
		},
		{
			name: "a duplicate image key in an argo step, a list inside a list",
			doc: `apiVersion: argoproj.io/v1alpha1
kind: Workflow
spec:
  templates:
  - name: main
    steps:
    - - name: a
        inline: {container: {image: a:1}}
    - - name: b
        inline:
          container:
            image: b:1
            image: b:2`,
			want: []found{{"spec.templates[0].steps[0][0].inline.container.image", "a:1"}},
			wantProblems: []string{
				`ambiguous spec.templates[0].steps[1][0].inline.container.image: key "image" appears twice, here and 1 line above, with different images: kubectl would keep the last, digester does not guess; remove one`,
			},
		},
		{
			name: "a top-level key twice is named by the key alone",
			doc:  "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nmetadata: {name: b}\nspec:\n  containers: [{image: a:1}]\n",
			want: []found{{"spec.containers[0].image", "a:1"}},
			wantProblems: []string{
				`duplicate metadata: key "metadata" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
		{
			name: "a key twice among more than 32 (the large-mapping path)",
			doc:  "kind: Pod\nmetadata:\n  name: p\n  labels:\n" + labels(40) + "    l3: again\nspec:\n  containers: [{image: a:1}]\n",
			want: []found{{"spec.containers[0].image", "a:1"}},
			wantProblems: []string{
				`duplicate metadata.labels.l3: key "l3" appears twice, here and 37 lines above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
		{
			name: "an argo workflow with annotations twice",
			doc:  "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n  annotations: {a: b}\n  annotations: {c: d}\nspec:\n  templates: [{container: {image: w:1}}]\n",
			want: []found{{"spec.templates[0].container.image", "w:1"}},
			wantProblems: []string{
				`duplicate metadata.annotations: key "annotations" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
	})
}

// labels is n distinct labels, l0 to l(n-1), each a line indented under a labels: key.
func labels(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "    l%d: v\n", i)
	}
	return b.String()
}

// TestSetKustomizeImage: pinning an images: entry writes digest: after newTag, in the entry's own
// style, and nothing else; pinning it again to another digest (a refresh) rewrites that value in
// place and leaves every other key as it was written.
func TestSetKustomizeImage(t *testing.T) {
	const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const next = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	for _, tc := range []struct{ in, want string }{
		{
			in:   "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: nginx # web\n  newTag: \"1.27\"\n  newName: mirror/nginx\n",
			want: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: nginx # web\n  newTag: \"1.27\"\n  digest: " + digest + "\n  newName: mirror/nginx\n",
		},
		{
			in:   "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages: [{name: app, newName: 'app:2'}]\n",
			want: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages: [{name: app, newName: 'app:2', digest: '" + digest + "'}]\n",
		},
		{
			in:   "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: web\n  newTag: '1.27'\n",
			want: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: web\n  newTag: '1.27'\n  digest: " + digest + "\n",
		},
		{
			in:   "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: num\n  newTag: 1.5\n",
			want: "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: num\n  newTag: 1.5\n  digest: " + digest + "\n",
		},
	} {
		rn, err := yaml.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		fields, problems := New().Walk(rn.YNode())
		if len(fields) != 1 || len(problems) != 0 {
			t.Fatalf("fields %+v, problems %+v; want one field", fields, problems)
		}
		fields[0].Set(fields[0].Image + "@" + digest)
		out := mustString(t, rn)
		if diff := cmp.Diff(tc.want, out); diff != "" {
			t.Errorf("output (-want +got):\n%s", diff)
		}
		fields[0].Set(fields[0].Image + "@" + digest) // a second Set changes nothing
		if again := mustString(t, rn); again != out {
			t.Errorf("second Set changed the entry:\n%s", again)
		}
		fields[0].Set(fields[0].Image + "@" + next)
		want := strings.ReplaceAll(tc.want, digest, next)
		if diff := cmp.Diff(want, mustString(t, rn)); diff != "" {
			t.Errorf("output after a Set to another digest (-want +got):\n%s", diff)
		}
	}
}

func mustString(t *testing.T, rn *yaml.RNode) string {
	t.Helper()
	s, err := rn.String()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
