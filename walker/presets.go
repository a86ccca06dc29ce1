package walker

import (
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// ImageField declares a field that holds an image reference in resources of one kind, in the
// form of kpt set-image's additionalImageFields and kustomize's images fieldSpecs: Path is
// slash-separated ("spec/runLatest/container/image"; `\/` for a slash inside a key, a "[]" suffix
// is allowed and ignored) and lists met on the way are traversed. Empty Group, Version or Kind
// match any.
type ImageField struct {
	Group   string `json:"group,omitempty" yaml:"group,omitempty"`
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	Kind    string `json:"kind,omitempty" yaml:"kind,omitempty"`
	Path    string `json:"path" yaml:"path"`
}

// Preset declares where one family of custom resources keeps its images. A preset matches on
// group and kind only; for the kinds it names it replaces the default pod spec paths.
type Preset struct {
	// Name is the project, as the README lists it.
	Name  string
	Group string
	Kinds []string
	// Images are paths (ImageField syntax) to fields that hold one reference each.
	Images []string
	// PodSpecs are paths to pod specs: their containers, initContainers, ephemeralContainers and
	// image volumes are walked as those of a Pod.
	PodSpecs []string
	// Data are keys whose subtrees hold data, not image fields (Argo loop items and arguments):
	// an image key under them is neither pinned nor reported.
	Data []string
	// Values are paths to Helm values: each mapping under them that splits an image into
	// repository and tag is a HelmImage field.
	Values []string
	// Functions are paths to lists of kpt functions: the image of each is a KptFunction field.
	Functions []string
	// OCISources are paths to Flux OCIRepository specs: url and ref are an OCIRepositoryRef field.
	OCISources []string
}

// rules compiles a preset into the rules of each of its kinds. The containers its Images paths
// end in ("…/image") have their RELATED_IMAGE_* variables read too.
func (p Preset) rules() []rule {
	var out []rule
	add := func(path string, podSpec bool, read reader) {
		out = append(out, rule{group: p.Group, path: splitPath(path), podSpec: podSpec, preset: true, data: p.Data, read: read})
	}
	for _, path := range p.Images {
		add(path, false, nil)
		if container, ok := strings.CutSuffix(path, "/image"); ok {
			add(container, false, relatedImages)
		}
	}
	for _, path := range p.PodSpecs {
		add(path, true, nil)
	}
	for _, path := range p.Values {
		add(path, false, helmValues)
	}
	for _, path := range p.Functions {
		add(path, false, kptFunctions)
	}
	for _, path := range p.OCISources {
		add(path, false, ociSource)
	}
	return out
}

// Presets are on by default (WithoutPresets turns them off); the README lists them. They are
// compiled once, by the first New: change them before that, if at all.
var Presets = []Preset{
	argo("Workflow", "spec"),
	argo("WorkflowTemplate", "spec"),
	argo("ClusterWorkflowTemplate", "spec"),
	argo("CronWorkflow", "spec/workflowSpec"),
	tekton([]string{"Task", "ClusterTask"}, "spec"),
	tekton([]string{"TaskRun"}, "spec/taskSpec"),
	tekton([]string{"Pipeline"}, "spec/tasks/taskSpec", "spec/finally/taskSpec"),
	tekton([]string{"PipelineRun"}, "spec/pipelineSpec/tasks/taskSpec", "spec/pipelineSpec/finally/taskSpec"),
	{
		Name:  "Prometheus Operator",
		Group: "monitoring.coreos.com",
		Kinds: []string{"Prometheus", "Alertmanager", "ThanosRuler", "PrometheusAgent"},
		Images: []string{
			"spec/image", "spec/containers/image", "spec/initContainers/image", "spec/thanos/image",
			"spec/volumes/image/reference",
		},
	},
	{
		Name:     "KEDA",
		Group:    "keda.sh",
		Kinds:    []string{"ScaledJob"},
		PodSpecs: []string{"spec/jobTargetRef/template/spec"},
	},
	{
		Name:      "kpt",
		Group:     "kpt.dev",
		Kinds:     []string{"Kptfile"},
		Functions: []string{"pipeline/mutators", "pipeline/validators"},
	},
	{
		Name:   "Flux",
		Group:  "helm.toolkit.fluxcd.io",
		Kinds:  []string{"HelmRelease"},
		Values: []string{"spec/values"},
	},
	{
		Name:       "Flux",
		Group:      "source.toolkit.fluxcd.io",
		Kinds:      []string{"OCIRepository"},
		OCISources: []string{"spec"},
	},
	{
		Name:   "Argo CD",
		Group:  "argoproj.io",
		Kinds:  []string{"Application"},
		Values: []string{"spec/source/helm/valuesObject", "spec/sources/helm/valuesObject"},
	},
}

// argo is the Argo Workflows preset for one kind whose workflow spec is at spec.
func argo(kind, spec string) Preset {
	var images []string
	templates := []string{
		spec + "/templates", spec + "/templateDefaults",
		spec + "/templates/steps/inline", spec + "/templates/dag/tasks/inline", // inline templates (Argo 3.4+)
	}
	for _, t := range templates {
		for _, p := range []string{"container/image", "script/image", "initContainers/image", "sidecars/image", "containerSet/containers/image"} {
			images = append(images, t+"/"+p)
		}
	}
	images = append(images, spec+"/volumes/image/reference", spec+"/executorPlugins/spec/sidecar/container/image")
	return Preset{
		Name: "Argo Workflows", Group: "argoproj.io", Kinds: []string{kind}, Images: images,
		Data: []string{"withItems", "arguments"},
	}
}

// tekton is the Tekton preset for kinds whose task specs are at each of specs.
func tekton(kinds []string, specs ...string) Preset {
	var images []string
	for _, s := range specs {
		images = append(images, s+"/steps/image", s+"/sidecars/image", s+"/stepTemplate/image", s+"/volumes/image/reference")
	}
	return Preset{Name: "Tekton", Group: "tekton.dev", Kinds: kinds, Images: images}
}

// rule is one compiled place to look in resources of a kind.
type rule struct {
	group, version string
	path           []string
	podSpec        bool
	preset, user   bool
	data           []string
	// read, if set, reads what the path leads to (instead of a leaf or a pod spec).
	read reader
}

// reader reads the fields of a shape at n, whose dotted path is path.
type reader func(w *Walker, r *results, n *yaml.Node, path string)

// splitPath splits an ImageField path as kustomize does: on "/", with `\/` kept inside a key, a
// leading "/" and "[]" suffixes dropped.
func splitPath(p string) []string {
	p = strings.TrimPrefix(p, "/")
	var out []string
	for _, s := range strings.Split(p, "/") {
		if n := len(out); n > 0 && strings.HasSuffix(out[n-1], `\`) {
			out[n-1] = strings.TrimSuffix(out[n-1], `\`) + "/" + s
			continue
		}
		out = append(out, s)
	}
	for i, s := range out {
		out[i] = strings.TrimSuffix(s, "[]")
	}
	return out
}

// group returns the group of an apiVersion: "" for "v1", "apps" for "apps/v1".
func group(apiVersion string) (g, version string) {
	if i := strings.LastIndex(apiVersion, "/"); i >= 0 {
		return apiVersion[:i], apiVersion[i+1:]
	}
	return "", apiVersion
}
