package e2e_test

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// shopImages are pushed for the shop fixture: both manifest and both index media types.
var shopImages = map[string]types.MediaType{
	"shop/web:1.0":       types.DockerManifestSchema2,
	"shop/api:2.1":       types.OCIManifestSchema1,
	"library/redis:7.4":  types.OCIImageIndex,
	"library/nginx:1.27": types.DockerManifestList,
}

// shopTemplate is a package in the styles users write: comments, quotes, flow mappings, image
// references in places that are not image fields, and an image under a prefix the tests tell
// digester to skip (vendor.example/, which does not exist, so a lookup of it would fail).
// kpt re-serialises what it writes, so the fixture keeps to what it round-trips unchanged: one
// space before a line comment, none added inside flow collections.
var shopTemplate = map[string]string{
	"Kptfile": `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: shop
  annotations:
    config.kubernetes.io/local-config: "true"
`,
	"deploy.yaml": `# The shop's web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    shop.example/previous: "HOST/shop/web:0.9"
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
      - name: migrate
        image: 'HOST/shop/api:2.1{pin}' # the api image runs the migrations
      containers:
      - name: web
        image: HOST/shop/web:1.0{pin} # the app
        ports:
        - containerPort: 8080
      - name: cache
        image: "HOST/library/redis:7.4{pin}"
      - name: agent
        image: vendor.example/agent:0.1
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`,
	"jobs/report.yaml": `apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
  namespace: shop
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - name: report
            image: HOST/library/nginx:1.27{pin}
          - name: export
            image: HOST/shop/web:1.0{pin}
`,
}

// shopPackage pushes shopImages, writes the shop fixture under dir/pkg and returns the package
// directory, the files digester must leave there and the pushed digests by repo:tag.
func (s space) shopPackage(t *testing.T, dir string) (pkg string, want, digests map[string]string) {
	t.Helper()
	digests = s.push(t, shopImages)
	pkg = filepath.Join(dir, "pkg")
	in, want := map[string]string{}, map[string]string{}
	for name, tmpl := range shopTemplate {
		in[name], want[name] = s.fixture(t, tmpl, digests)
	}
	writeFiles(t, pkg, in)
	return pkg, want, digests
}

// result is one structured result, flattened for comparison.
type result struct {
	Severity, Message, Kind, Name, File, Path, Current, Proposed string
}

// requestCount hides the number of registry requests in the summary, which depends on the
// resolver's strategy rather than on what the user asked for.
var requestCount = regexp.MustCompile(`\d+ registry requests`)

// readResults parses the results.yaml kpt wrote in dir and returns its exit code and results.
func readResults(t *testing.T, dir string) (int, []result) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.yaml"))
	if err != nil {
		t.Fatalf("kpt wrote no results: %v", err)
	}
	var list struct {
		Kind     string `yaml:"kind"`
		ExitCode int    `yaml:"exitCode"`
		Items    []struct {
			Results []struct {
				Message     string `yaml:"message"`
				Severity    string `yaml:"severity"`
				ResourceRef *struct {
					Kind string `yaml:"kind"`
					Name string `yaml:"name"`
				} `yaml:"resourceRef"`
				File *struct {
					Path string `yaml:"path"`
				} `yaml:"file"`
				Field *struct {
					Path          string `yaml:"path"`
					CurrentValue  string `yaml:"currentValue"`
					ProposedValue string `yaml:"proposedValue"`
				} `yaml:"field"`
			} `yaml:"results"`
		} `yaml:"items"`
	}
	if err := yaml.Unmarshal(b, &list); err != nil {
		t.Fatalf("parsing results.yaml: %v\n%s", err, b)
	}
	if list.Kind != "FunctionResultList" || len(list.Items) != 1 {
		t.Fatalf("results.yaml is not one function's FunctionResultList:\n%s", b)
	}
	var got []result
	for _, r := range list.Items[0].Results {
		g := result{Severity: r.Severity, Message: requestCount.ReplaceAllString(r.Message, "N registry requests")}
		if r.ResourceRef != nil {
			g.Kind, g.Name = r.ResourceRef.Kind, r.ResourceRef.Name
		}
		if r.File != nil {
			g.File = r.File.Path
		}
		if r.Field != nil {
			g.Path, g.Current, g.Proposed = r.Field.Path, r.Field.CurrentValue, r.Field.ProposedValue
		}
		got = append(got, g)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].File+got[i].Path < got[j].File+got[j].Path })
	return list.ExitCode, got
}

// pinnedResult is the info result for one pinned field.
func (s space) pinnedResult(kind, name, file, path, repoTag string, digests map[string]string) result {
	image := s.image(repoTag)
	return result{
		Severity: "info", Message: "pinned " + image + " to " + digests[repoTag],
		Kind: kind, Name: name, File: file, Path: path,
		Current: image, Proposed: image + "@" + digests[repoTag],
	}
}

// TestKptEval pins the shop package with kpt fn eval --exec, given its config in each way kpt
// takes one, and checks the files, the structured results and kpt's report.
func TestKptEval(t *testing.T) {
	kpt := tool(t, "kpt")
	const skip = "vendor.example/"
	for _, tc := range []struct {
		name   string
		config map[string]string // files written next to the package
		args   []string
	}{
		{name: "key=value", args: []string{"--", "skip-prefixes=" + skip}},
		{
			name: "fn-config ConfigMap",
			config: map[string]string{"cfg.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: pin-images
data:
  skip-prefixes: ` + skip + `
  timeout: 10s
`},
			args: []string{"--fn-config", "cfg.yaml"},
		},
		{
			name: "fn-config Digester",
			config: map[string]string{"cfg.yaml": `apiVersion: fn.kpt.dev/v1alpha1
kind: Digester
metadata:
  name: pin-images
skipPrefixes:
- ` + skip + `
onError: fail
`},
			args: []string{"--fn-config", "cfg.yaml"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := newSpace(t)
			pkg, want, digests := s.shopPackage(t, dir)
			writeFiles(t, dir, tc.config)
			args := append([]string{"fn", "eval", "pkg", "--exec", digester, "--results-dir", "results"}, tc.args...)
			out := run(t, env{}, nil, dir, kpt, args...)
			if out.code != 0 {
				t.Fatalf("kpt fn eval exited %d:\n%s%s", out.code, out.stdout, out.stderr)
			}
			checkFiles(t, pkg, want)

			code, got := readResults(t, filepath.Join(dir, "results"))
			wantResults := []result{
				{Severity: "info", Message: "pinned 5 image fields (4 distinct references, N registry requests); 0 already pinned, 1 skipped by prefix"},
				s.pinnedResult("Deployment", "web", "deploy.yaml", "spec.template.spec.containers[0].image", "shop/web:1.0", digests),
				s.pinnedResult("Deployment", "web", "deploy.yaml", "spec.template.spec.containers[1].image", "library/redis:7.4", digests),
				s.pinnedResult("Deployment", "web", "deploy.yaml", "spec.template.spec.initContainers[0].image", "shop/api:2.1", digests),
				s.pinnedResult("CronJob", "report", "jobs/report.yaml", "spec.jobTemplate.spec.template.spec.containers[0].image", "library/nginx:1.27", digests),
				s.pinnedResult("CronJob", "report", "jobs/report.yaml", "spec.jobTemplate.spec.template.spec.containers[1].image", "shop/web:1.0", digests),
			}
			if code != 0 {
				t.Errorf("results.yaml exitCode = %d, want 0", code)
			}
			if diff := cmp.Diff(wantResults, got); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if !strings.Contains(out.stderr, "[PASS] \""+digester+"\"") {
				t.Errorf("kpt does not report the function passed:\n%s", out.stderr)
			}
		})
	}
}
