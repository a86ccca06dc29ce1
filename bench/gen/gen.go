// Package gen generates the packages digester is benchmarked on, pushes the images they name to
// an in-process registry, and checks that an output ResourceList is correctly pinned.
//
// A package mixes Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, Pods and a custom kind
// shaped like a Deployment, with containers and initContainers. Images are heavily reused (about
// one distinct reference per 25 resources), 30 % of the distinct references are multi-arch
// indexes, some fields are already pinned, and some references are written two ways
// ("repo" and "repo:latest") that are one reference to a registry.
package gen

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	yaml "go.yaml.in/yaml/v3"

	"github.com/digester/digester/internal/registrytest"
)

// MaxDistinct caps the distinct references of a package: a large monorepo still names only a few
// hundred images.
const MaxDistinct = 800

// Distinct is the number of distinct references a package of n resources names.
func Distinct(n int) int { return min(max(n/25, 4), MaxDistinct) }

// Image is one image pushed to the registry.
type Image struct {
	// Spellings are the ways manifests write it; all name the same manifest.
	Spellings []string
	// Digest is the digest of what was pushed (the index digest for a multi-arch image).
	Digest string
	// Multi says whether it is a multi-arch index.
	Multi bool
}

// Push pushes n images to reg and returns them. Image i is the same on every call.
func Push(reg *registrytest.Registry, n int) ([]Image, error) {
	imgs := make([]Image, n)
	for i := range imgs {
		repo := fmt.Sprintf("team%d/svc%d", i%7, i)
		tag := "v1." + strconv.Itoa(i%5)
		if i%10 == 9 {
			tag = "latest"
		}
		var mt types.MediaType
		multi := i%10 == 0 || i%10 == 3 || i%10 == 6
		switch {
		case multi && i%2 == 0:
			mt = types.OCIImageIndex
		case multi:
			mt = types.DockerManifestList
		case i%2 == 0:
			mt = types.OCIManifestSchema1
		default:
			mt = types.DockerManifestSchema2
		}
		push := reg.PushImage
		if multi {
			push = reg.PushIndex
		}
		d, err := push(repo, tag, mt)
		if err != nil {
			return nil, fmt.Errorf("push image %d: %w", i, err)
		}
		ref := reg.Host + "/" + repo
		img := Image{Spellings: []string{ref + ":" + tag}, Digest: d.String(), Multi: multi}
		if tag == "latest" {
			img.Spellings = append(img.Spellings, ref) // the same reference, written without a tag
		}
		imgs[i] = img
	}
	return imgs, nil
}

// Package is a generated ResourceList and what digester must make of it.
type Package struct {
	// Input is the ResourceList, as kpt would send it on stdin.
	Input []byte
	// Resources, Fields and Pinned count items, image fields and fields that are already pinned.
	Resources, Fields, Pinned int
	// Distinct and Multi count the distinct references to resolve, and those that are indexes.
	Distinct, Multi int

	want map[string][]string // item name → its image fields as digester must leave them
}

// Generate builds a package of n resources naming every image in imgs. The same arguments give
// the same package.
func Generate(imgs []Image, n int) *Package {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	p := &Package{Resources: n, Distinct: len(imgs), want: make(map[string][]string, n)}
	for _, img := range imgs {
		if img.Multi {
			p.Multi++
		}
	}
	next := 0 // the first fields name every image once, unpinned, so every image is looked up
	pick := func() (in, out string) {
		var img Image
		if next < len(imgs) {
			img = imgs[next]
			next++
		} else {
			img = imgs[rng.IntN(len(imgs))]
			if rng.IntN(10) == 0 { // already pinned: left exactly as written
				s := img.Spellings[0] + "@" + img.Digest
				p.Pinned++
				p.Fields++
				return s, s
			}
		}
		s := img.Spellings[rng.IntN(len(img.Spellings))]
		p.Fields++
		return s, s + "@" + img.Digest
	}

	var b bytes.Buffer
	b.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
	for i := range n {
		shape := shapes[i%len(shapes)]
		name := fmt.Sprintf("%s-%d", strings.ToLower(shape.kind), i)
		ns := fmt.Sprintf("team-%d", i%13)
		var spec strings.Builder // the pod spec, indented for its place
		ind := strings.Repeat(" ", shape.indent)
		var want []string
		if i%3 == 0 {
			in, out := pick()
			want = append(want, out)
			fmt.Fprintf(&spec, "%sinitContainers:\n%s- name: init\n%s  image: %s\n%s  command: [\"sh\", \"-c\", \"echo init\"]\n", ind, ind, ind, in, ind)
		}
		fmt.Fprintf(&spec, "%scontainers:\n", ind)
		for c := range 1 + i%2 {
			in, out := pick()
			want = append(want, out)
			fmt.Fprintf(&spec, "%s- name: c%d\n%s  image: %s\n%s  ports:\n%s  - containerPort: %d\n%s  env:\n%s  - name: LOG_LEVEL\n%s    value: info\n%s  resources:\n%s    requests: {cpu: 100m, memory: 128Mi}\n",
				ind, c, ind, in, ind, ind, 8080+c, ind, ind, ind, ind, ind)
		}
		p.want[name] = want
		fmt.Fprintf(&b, "- apiVersion: %s\n  kind: %s\n  metadata:\n    name: %s\n    namespace: %s\n    labels:\n      app: %s\n      tier: backend\n    annotations:\n      config.kubernetes.io/index: '0'\n      config.kubernetes.io/path: '%s/%s.yaml'\n      internal.config.kubernetes.io/index: '0'\n      internal.config.kubernetes.io/path: '%s/%s.yaml'\n  spec:\n%s",
			shape.apiVersion, shape.kind, name, ns, name, ns, name, ns, name, shape.prefix)
		b.WriteString(spec.String())
	}
	p.Input = b.Bytes()
	return p
}

// shape is where a kind keeps its pod spec.
type shape struct {
	apiVersion, kind string
	prefix           string // YAML from spec: down to the pod spec, indented as in an item
	indent           int    // indent of the pod spec's keys
}

var shapes = []shape{
	{"apps/v1", "Deployment", "    replicas: 2\n    selector:\n      matchLabels: {app: web}\n    template:\n      metadata:\n        labels: {app: web}\n      spec:\n", 8},
	{"apps/v1", "StatefulSet", "    serviceName: db\n    template:\n      spec:\n", 8},
	{"apps/v1", "DaemonSet", "    template:\n      spec:\n", 8},
	{"batch/v1", "Job", "    backoffLimit: 2\n    template:\n      spec:\n        restartPolicy: Never\n", 8},
	{"batch/v1", "CronJob", "    schedule: '*/5 * * * *'\n    jobTemplate:\n      spec:\n        template:\n          spec:\n            restartPolicy: OnFailure\n", 12},
	{"v1", "Pod", "    restartPolicy: Always\n", 4},
	{"example.com/v1", "Worker", "    queue: default\n    template:\n      spec:\n", 8},
}

type container struct {
	Image string `yaml:"image"`
}

type podSpec struct {
	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
}

func (s podSpec) images() []string {
	var out []string
	for _, c := range append(s.InitContainers, s.Containers...) {
		out = append(out, c.Image)
	}
	return out
}

// Check verifies out, digester's output for p: every item is there, every image field equals
// its original text followed by @ and the pushed digest, fields that were already pinned are
// unchanged, and there is one info result per pinned field and a summary that counts them.
func (p *Package) Check(out []byte) error {
	var rl struct {
		Items []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				podSpec  `yaml:",inline"`
				Template struct {
					Spec podSpec `yaml:"spec"`
				} `yaml:"template"`
				JobTemplate struct {
					Spec struct {
						Template struct {
							Spec podSpec `yaml:"spec"`
						} `yaml:"template"`
					} `yaml:"spec"`
				} `yaml:"jobTemplate"`
			} `yaml:"spec"`
		} `yaml:"items"`
		Results []struct {
			Message  string `yaml:"message"`
			Severity string `yaml:"severity"`
			Field    *struct {
				Path string `yaml:"path"`
			} `yaml:"field"`
		} `yaml:"results"`
	}
	if err := yaml.Unmarshal(out, &rl); err != nil {
		return fmt.Errorf("output is not a ResourceList: %w", err)
	}
	if len(rl.Items) != p.Resources {
		return fmt.Errorf("output has %d items, want %d", len(rl.Items), p.Resources)
	}
	seen := make(map[string]bool, len(rl.Items))
	for _, it := range rl.Items {
		name := it.Metadata.Name
		want, ok := p.want[name]
		if !ok || seen[name] {
			return fmt.Errorf("output has an unexpected or repeated item %q", name)
		}
		seen[name] = true
		s := it.Spec
		got := append(append(s.images(), s.Template.Spec.images()...), s.JobTemplate.Spec.Template.Spec.images()...)
		if len(got) != len(want) {
			return fmt.Errorf("item %s: %d image fields, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				return fmt.Errorf("item %s: image field %d is %q, want %q", name, i, got[i], want[i])
			}
		}
	}
	pinned := p.Fields - p.Pinned
	perField, summary := 0, false
	wantSummary := fmt.Sprintf("pinned %d image fields (%d distinct references,", pinned, p.Distinct)
	for _, r := range rl.Results {
		switch {
		case r.Severity == "error" || r.Severity == "warning":
			return fmt.Errorf("unexpected %s result: %s", r.Severity, r.Message)
		case r.Field != nil && strings.HasPrefix(r.Message, "pinned "):
			perField++
		case strings.HasPrefix(r.Message, wantSummary):
			summary = true
		}
	}
	if perField != pinned {
		return fmt.Errorf("%d per-field results, want one per pinned field (%d)", perField, pinned)
	}
	if !summary {
		return fmt.Errorf("no summary result starting %q", wantSummary)
	}
	return nil
}
