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
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

	want        map[string][]string // item name → its image fields as digester must leave them
	pinnedItems []byte              // Input as digester pins it
	lockItem    []byte              // a DigestLock item naming every image
	// inAt and pinnedAt are where each item starts in Input and in pinnedItems.
	inAt, pinnedAt []int
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

	var b, pb bytes.Buffer // the package as generated, and as digester pins it
	b.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
	pb.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
	for i := range n {
		shape := shapes[i%len(shapes)]
		name := fmt.Sprintf("%s-%d", strings.ToLower(shape.kind), i)
		ns := fmt.Sprintf("team-%d", i%13)
		var spec strings.Builder // the pod spec, indented for its place, images marked \x00
		ind := strings.Repeat(" ", shape.indent)
		var ins, want []string
		if i%3 == 0 {
			in, out := pick()
			ins, want = append(ins, in), append(want, out)
			fmt.Fprintf(&spec, "%sinitContainers:\n%s- name: init\n%s  image: \x00\n%s  command: [\"sh\", \"-c\", \"echo init\"]\n", ind, ind, ind, ind)
		}
		fmt.Fprintf(&spec, "%scontainers:\n", ind)
		for c := range 1 + i%2 {
			in, out := pick()
			ins, want = append(ins, in), append(want, out)
			fmt.Fprintf(&spec, "%s- name: c%d\n%s  image: \x00\n%s  ports:\n%s  - containerPort: %d\n%s  env:\n%s  - name: LOG_LEVEL\n%s    value: info\n%s  resources:\n%s    requests: {cpu: 100m, memory: 128Mi}\n",
				ind, c, ind, ind, ind, 8080+c, ind, ind, ind, ind, ind)
		}
		p.want[name] = want
		item := fmt.Sprintf("- apiVersion: %s\n  kind: %s\n  metadata:\n    name: %s\n    namespace: %s\n    labels:\n      app: %s\n      tier: backend\n    annotations:\n      config.kubernetes.io/index: '0'\n      config.kubernetes.io/path: '%s/%s.yaml'\n      internal.config.kubernetes.io/index: '0'\n      internal.config.kubernetes.io/path: '%s/%s.yaml'\n  spec:\n%s",
			shape.apiVersion, shape.kind, name, ns, name, ns, name, ns, name, shape.prefix)
		p.inAt, p.pinnedAt = append(p.inAt, b.Len()), append(p.pinnedAt, pb.Len())
		b.WriteString(item)
		pb.WriteString(item)
		fill(&b, spec.String(), ins)
		fill(&pb, spec.String(), want)
	}
	p.Input = b.Bytes()
	p.pinnedItems = pb.Bytes()
	var lock strings.Builder
	lock.WriteString("- apiVersion: fn.kpt.dev/v1alpha1\n  kind: DigestLock\n  metadata:\n    name: digests\n    annotations:\n      config.kubernetes.io/local-config: \"true\"\n      internal.config.kubernetes.io/path: digests.lock.yaml\n  images:\n")
	for _, img := range imgs {
		fmt.Fprintf(&lock, "  - image: %s\n    digest: %s\n", img.Spellings[0], img.Digest)
	}
	p.lockItem = []byte(lock.String())
	return p
}

// fill writes text with each \x00 replaced by the next of images.
func fill(b *bytes.Buffer, text string, images []string) {
	for i, part := range strings.Split(text, "\x00") {
		if i > 0 {
			b.WriteString(images[i-1])
		}
		b.WriteString(part)
	}
}

// Mode is what a benchmark row asks of digester.
type Mode string

// The modes bench measures.
const (
	// Pin pins the generated package against the registry.
	Pin Mode = "pin"
	// Check checks the package as digester pinned it (mode: check): nothing to do, no request.
	Check Mode = "check"
	// Lock pins the generated package from a complete DigestLock (lock: frozen): no request.
	Lock Mode = "lock"
)

// InputFor returns the ResourceList digester is given in mode m.
func (p *Package) InputFor(m Mode) []byte {
	switch m {
	case Check:
		return slices.Concat(p.pinnedItems, []byte("functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: function-input\n  data:\n    mode: check\n"))
	case Lock:
		return slices.Concat(p.Input, p.lockItem, []byte("functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: function-input\n  data:\n    lock: frozen\n"))
	}
	return p.Input
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

// groupFields reads the field count of a result for a reference pinned in several fields.
var groupFields = regexp.MustCompile(`^pinned \S+ to \S+[^(]* \((\d+) image fields, in `)

// Check verifies out, digester's output for p: every item is there, every image field equals
// its original text followed by @ and the pushed digest, fields that were already pinned are
// unchanged, and the info results account for every pinned field and a summary counts them.
//
// In Check mode, it wants the pinned package back, a summary that says the check passed and no
// per-field result; in Lock mode, the pinned package and the lock, pinned with no lookup.
func (p *Package) Check(out []byte, m Mode) error {
	var rl struct {
		Items []struct {
			Kind     string `yaml:"kind"`
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
	wantItems := p.Resources
	if m == Lock {
		wantItems++
	}
	if len(rl.Items) != wantItems {
		return fmt.Errorf("output has %d items, want %d", len(rl.Items), wantItems)
	}
	seen := make(map[string]bool, len(rl.Items))
	for _, it := range rl.Items {
		name := it.Metadata.Name
		if m == Lock && it.Kind == "DigestLock" {
			continue
		}
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
	switch m {
	case Check:
		pinned, wantSummary = 0, "check passed: nothing to pin (0 distinct references, 0 registry requests)"
	case Lock:
		wantSummary = fmt.Sprintf("pinned %d image fields (%d distinct references, 0 registry requests); %d already pinned, 0 skipped by prefix; %d pinned from the lock", pinned, p.Distinct, p.Pinned, pinned)
	}
	for _, r := range rl.Results {
		switch {
		case r.Severity == "error" || r.Severity == "warning":
			return fmt.Errorf("unexpected %s result: %s", r.Severity, r.Message)
		case r.Field != nil && strings.HasPrefix(r.Message, "pinned "):
			perField++ // one result per reference, naming how many fields it pinned when more than one
			if m := groupFields.FindStringSubmatch(r.Message); m != nil {
				n, _ := strconv.Atoi(m[1])
				perField += n - 1
			}
		case strings.HasPrefix(r.Message, wantSummary):
			summary = true
		}
	}
	if perField != pinned {
		return fmt.Errorf("the results account for %d pinned fields, want %d", perField, pinned)
	}
	if !summary {
		return fmt.Errorf("no summary result starting %q", wantSummary)
	}
	return nil
}

// itemAnnotations are the lines of an item that only a ResourceList has: where kpt read it from.
var itemAnnotations = regexp.MustCompile(`(?m)^    annotations:\n(?:      (?:internal\.)?config\.kubernetes\.io/(?:index|path): .*\n)+`)

// Files is the package as a tree of YAML files, for the command line (digester pin DIR): the
// same resources as Input, each a document of its own with the ResourceList's annotations left
// out, in files of about equal numbers of documents, 50 files a directory.
type Files struct {
	// Names are the files' paths under the tree's directory, in the order digester reads them.
	Names []string
	// Input and Pinned are each file's bytes, as generated and as digester pins them.
	Input, Pinned [][]byte
}

// Files splits the package into n files (at most one per resource).
func (p *Package) Files(n int) *Files {
	n = max(min(n, p.Resources), 1)
	f := &Files{}
	doc := func(text []byte, at []int, i int) []byte {
		end := len(text)
		if i+1 < len(at) {
			end = at[i+1]
		}
		item := itemAnnotations.ReplaceAll(text[at[i]:end], nil)
		var b bytes.Buffer // the item dedented: "- " and "  " lines become documents' own
		for line := range bytes.Lines(item) {
			b.Write(line[2:])
		}
		return b.Bytes()
	}
	for k := range n {
		var in, pinned bytes.Buffer
		for i := k * p.Resources / n; i < (k+1)*p.Resources/n; i++ {
			if in.Len() > 0 {
				in.WriteString("---\n")
				pinned.WriteString("---\n")
			}
			in.Write(doc(p.Input, p.inAt, i))
			pinned.Write(doc(p.pinnedItems, p.pinnedAt, i))
		}
		f.Names = append(f.Names, fmt.Sprintf("d%03d/f%05d.yaml", k/50, k))
		f.Input, f.Pinned = append(f.Input, in.Bytes()), append(f.Pinned, pinned.Bytes())
	}
	return f
}

// Write writes the files under dir, as generated or, if pinned, as digester pins them, over
// whatever is there, and returns the bytes written.
func (f *Files) Write(dir string, pinned bool) (int, error) {
	data, total := f.Input, 0
	if pinned {
		data = f.Pinned
	}
	for i, name := range f.Names {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(p, data[i], 0o644); err != nil {
			return 0, err
		}
		total += len(data[i])
	}
	return total, nil
}

// Largest is the size of the largest file as generated.
func (f *Files) Largest() int {
	n := 0
	for _, b := range f.Input {
		n = max(n, len(b))
	}
	return n
}

// Check verifies that dir holds the files exactly as digester pins them: every image field its
// original text @ the pushed digest, every other byte as generated.
func (f *Files) Check(dir string) error {
	for i, name := range f.Names {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, f.Pinned[i]) {
			return fmt.Errorf("%s is not as digester pins it (%d bytes, want %d)", name, len(got), len(f.Pinned[i]))
		}
	}
	return nil
}
