package e2e_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	noSecrets(t, "results.yaml", string(b))
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
			t.Logf("kpt fn eval prints:\n%s", out.stderr)
			checkFiles(t, pkg, want)

			code, got := readResults(t, filepath.Join(dir, "results"))
			wantResults := []result{
				{Severity: "info", Message: "pinned 5 image fields (4 distinct references, N registry requests); 0 already pinned, 1 skipped by prefix"},
				// One result per reference: shop/web:1.0 is used twice, so its result says so.
				s.pinnedResult("Deployment", "web", "deploy.yaml", "spec.template.spec.containers[0].image", "shop/web:1.0", digests),
				s.pinnedResult("Deployment", "web", "deploy.yaml", "spec.template.spec.containers[1].image", "library/redis:7.4", digests),
				s.pinnedResult("Deployment", "web", "deploy.yaml", "spec.template.spec.initContainers[0].image", "shop/api:2.1", digests),
				s.pinnedResult("CronJob", "report", "jobs/report.yaml", "spec.jobTemplate.spec.template.spec.containers[0].image", "library/nginx:1.27", digests),
			}
			wantResults[1].Message += " (2 image fields, in deploy.yaml, jobs/report.yaml)"
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

// examplePackage copies the repository's example package (example/, but its lock, whose digests
// are not the test registry's) to dir/example, moving its images from localhost:5000 to the test
// registry, and puts the binary where its Kptfile's exec path, resolved against dir, points. It
// pushes every image but those in unpushed, and returns the files digester must leave when every
// lookup succeeds.
func (s space) examplePackage(t *testing.T, dir string, unpushed ...string) (want map[string]string) {
	t.Helper()
	files := map[string]string{}
	for name, content := range readFiles(t, filepath.Join(repoRoot, "example")) {
		if name != "digests.lock.yaml" {
			files[filepath.Join("example", name)] = strings.ReplaceAll(content, "localhost:5000/", s.image(""))
		}
	}

	// Every image field on the test registry, pushed with the four media types in turn.
	images := map[string]types.MediaType{}
	kinds := []types.MediaType{types.DockerManifestSchema2, types.OCIManifestSchema1, types.OCIImageIndex, types.DockerManifestList}
	var refs []string
	for _, content := range files {
		for _, m := range imageLine.FindAllStringSubmatch(content, -1) {
			if rest, ok := strings.CutPrefix(m[2], s.image("")); ok && !slices.Contains(refs, rest) {
				refs = append(refs, rest)
			}
		}
	}
	if len(refs) < 4 {
		t.Fatalf("example/ has %d images on localhost:5000, want at least 4 to cover every media type", len(refs))
	}
	sort.Strings(refs)
	for i, ref := range refs {
		if !slices.Contains(unpushed, ref) {
			images[ref] = kinds[i%len(kinds)]
		}
	}
	digests := s.push(t, images)

	want = map[string]string{}
	for name, content := range files {
		want[name] = imageLine.ReplaceAllStringFunc(content, func(line string) string {
			m := imageLine.FindStringSubmatch(line)
			rest, ok := strings.CutPrefix(m[2], s.image(""))
			if !ok {
				return line
			}
			return m[1] + m[2] + "@" + digests[rest] + m[3]
		})
	}
	writeFiles(t, dir, files)

	kptfile, err := yaml.Parse(files["example/Kptfile"])
	if err != nil {
		t.Fatal(err)
	}
	mutators, err := kptfile.Pipe(yaml.Lookup("pipeline", "mutators"))
	if err != nil || mutators == nil {
		t.Fatalf("example/Kptfile has no pipeline mutators: %v", err)
	}
	execs, err := mutators.ElementValues("exec")
	if err != nil || len(execs) != 1 || filepath.IsAbs(execs[0]) {
		t.Fatalf("example/Kptfile should run one mutator with a relative exec path, has %q (%v)", execs, err)
	}
	bin := filepath.Join(dir, execs[0])
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(digester, bin); err != nil {
		t.Fatal(err)
	}
	return want
}

// imageLine is an image field on a line of its own: indentation and key, the reference (quoted or
// not), and the rest of the line.
var imageLine = regexp.MustCompile(`(?m)^([ \t]*(?:- )?image: ["']?)([^\s"'#]+)(.*)$`)

// TestKptRender runs example/'s Kptfile pipeline on a copy of it, as a user runs it from the
// repository root.
func TestKptRender(t *testing.T) {
	t.Parallel()
	kpt := tool(t, "kpt")
	dir := t.TempDir()
	want := newSpace(t).examplePackage(t, dir)
	out := run(t, env{}, nil, dir, kpt, "fn", "render", "example", "--allow-exec")
	if out.code != 0 {
		t.Fatalf("kpt fn render exited %d:\n%s%s", out.code, out.stdout, out.stderr)
	}
	t.Logf("kpt fn render prints:\n%s", out.stderr)
	checkFiles(t, dir, want)
	if !strings.Contains(out.stderr, "[PASS] \"./bin/digester\"") || !strings.Contains(out.stderr, "Successfully executed 1 function(s)") {
		t.Errorf("kpt does not report the pipeline passed:\n%s", out.stderr)
	}
}

// TestKptFailingLookup runs kpt on packages with an image whose tag does not exist: kpt must
// fail, show digester's error, and leave every file as it was.
func TestKptFailingLookup(t *testing.T) {
	kpt := tool(t, "kpt")

	t.Run("eval", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := newSpace(t)
		pkg, _, _ := s.shopPackage(t, dir)
		typo := s.image("shop/web:1.O")
		writeFiles(t, pkg, map[string]string{"typo.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\nspec:\n  containers:\n  - name: web\n    image: " + typo + "\n"})
		before := readFiles(t, dir)

		out := run(t, env{}, nil, dir, kpt, "fn", "eval", "pkg", "--exec", digester, "--results-dir", "results", "--", "skip-prefixes=vendor.example/")
		if out.code == 0 {
			t.Fatalf("kpt fn eval succeeded on a missing tag:\n%s", out.stderr)
		}
		t.Logf("kpt fn eval prints:\n%s", out.stderr)
		msg := "cannot pin " + typo + `: tag not found: "1.O" in repository ` + s.ns + "/shop/web on registry " + reg.Host
		// kpt prints the function's results (the quotes unescaped, unlike in its copy of stderr).
		if line := "[error] v1/Pod/typo spec.containers[0].image: " + msg; !strings.Contains(out.stderr, line) {
			t.Errorf("kpt's output does not show %q:\n%s", line, out.stderr)
		}
		delete(before, "results/results.yaml")
		got := readFiles(t, dir)
		delete(got, "results/results.yaml")
		if diff := cmp.Diff(before, got); diff != "" {
			t.Errorf("files changed (-before +after):\n%s", diff)
		}
		code, results := readResults(t, filepath.Join(dir, "results"))
		wantResults := []result{
			{Severity: "info", Message: "pinned nothing: 1 image field could not be pinned, so the package is returned unchanged (5 distinct references, N registry requests)"},
			{Severity: "error", Message: msg, Kind: "Pod", Name: "typo", File: "typo.yaml", Path: "spec.containers[0].image", Current: typo},
		}
		if code == 0 {
			t.Errorf("results.yaml exitCode = 0, want non-zero")
		}
		if diff := cmp.Diff(wantResults, results); diff != "" {
			t.Errorf("results (-want +got):\n%s", diff)
		}
	})

	t.Run("render", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		s := newSpace(t)
		s.examplePackage(t, dir, "shop/report:2.0")
		before := readFiles(t, dir)
		out := run(t, env{}, nil, dir, kpt, "fn", "render", "example", "--allow-exec")
		if out.code == 0 {
			t.Fatalf("kpt fn render succeeded on a missing image:\n%s", out.stderr)
		}
		t.Logf("kpt fn render prints:\n%s", out.stderr)
		msg := "cannot pin " + s.image("shop/report:2.0") + ": repository not found: registry " + reg.Host + " has no repository " + s.ns + "/shop/report"
		if line := "[error] batch/v1/CronJob/shop/nightly-report spec.jobTemplate.spec.template.spec.containers[0].image: " + msg; !strings.Contains(out.stderr, line) {
			t.Errorf("kpt's output does not show %q:\n%s", line, out.stderr)
		}
		if diff := cmp.Diff(before, readFiles(t, dir)); diff != "" {
			t.Errorf("files changed (-before +after):\n%s", diff)
		}
	})
}

// TestFreshCloneOffline runs the README's claim as it words it: on a fresh clone (git clone of this
// repository's HEAD), the README's command builds digester and pins example/ from its lock, with
// no network: Go may download nothing (GOPROXY=off), every HTTP request goes to a proxy that does
// not exist, and nothing serves localhost:5000. Every image is pinned from the lock, the lock stays
// as it is, and kpt reports no registry request.
func TestFreshCloneOffline(t *testing.T) {
	t.Parallel()
	kpt := tool(t, "kpt")
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("on a fresh clone\\s+`([^`]+)` pins it from the lock, offline").FindSubmatch(readme)
	if m == nil {
		t.Fatal("the README no longer says which command pins example/ on a fresh clone")
	}
	command := string(m[1])
	dir := filepath.Join(t.TempDir(), "digester")
	if out, err := exec.Command("git", "clone", "-q", repoRoot, dir).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	files := readFiles(t, filepath.Join(dir, "example"))

	// What the lock says, applied to every image field of example/.
	lock, err := yaml.Parse(files["digests.lock.yaml"])
	if err != nil {
		t.Fatal(err)
	}
	entries, err := lock.Pipe(yaml.Lookup("images"))
	if err != nil || entries == nil {
		t.Fatalf("digests.lock.yaml has no images: %v", err)
	}
	locked := map[string]string{}
	for _, e := range entries.Content() {
		locked[yaml.NewRNode(e).Field("image").Value.YNode().Value] = yaml.NewRNode(e).Field("digest").Value.YNode().Value
	}
	want := map[string]string{}
	fields, distinct := 0, map[string]bool{} // example/ writes each reference one way
	for name, content := range files {
		want[name] = content
		if name == "digests.lock.yaml" || name == "Kptfile" {
			continue
		}
		want[name] = imageLine.ReplaceAllStringFunc(content, func(line string) string {
			m := imageLine.FindStringSubmatch(line)
			d, ok := locked[m[2]]
			if !ok {
				t.Errorf("%s: %s is not in digests.lock.yaml", name, m[2])
				return line
			}
			fields++
			distinct[m[2]] = true
			return m[1] + m[2] + "@" + d + m[3]
		})
	}
	if fields == 0 {
		t.Fatal("example/ has no image fields")
	}

	results := filepath.Join(t.TempDir(), "results")
	sh := exec.Command("bash", "-e", "-c", command+" --results-dir "+results)
	sh.Dir = dir
	sh.Env = append(os.Environ(), "PATH="+filepath.Dir(kpt)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOPROXY=off", "GOFLAGS=-mod=readonly", "HTTPS_PROXY=http://127.0.0.1:1", "HTTP_PROXY=http://127.0.0.1:1", "NO_PROXY=", "no_proxy=")
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	summary := readFiles(t, results)["results.yaml"]
	if want := fmt.Sprintf("pinned %d image fields (%d distinct references, 0 registry requests); 0 already pinned, 0 skipped by prefix; %d pinned from the lock", fields, len(distinct), fields); !strings.Contains(summary, want) {
		t.Errorf("results lack %q:\n%s", want, summary)
	}
	checkFiles(t, filepath.Join(dir, "example"), want)
}
