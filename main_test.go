package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kptdev/krm-functions-sdk/go/fn"
	"github.com/kptdev/krm-functions-sdk/go/fn/testhelpers"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/internal/krmio"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// goldenImages are served to the golden cases under their everyday names.
var goldenImages = []struct {
	repo, tag string
	mt        types.MediaType
}{
	{"nginx", "1.27", types.DockerManifestSchema2},
	{"busybox", "1.36", types.OCIManifestSchema1},
	{"redis", "7.4", types.OCIImageIndex},
	{"quay.io/prometheus/node-exporter", "v1.8.2", types.DockerManifestList},
	{"gcr.io/distroless/static", "nonroot", types.OCIManifestSchema1},
	{"ghcr.io/acme/seeder", "2.1", types.DockerManifestSchema2},
	{"registry.k8s.io/pause", "3.10", types.DockerManifestList},
	{"ghcr.io/acme/worker", "2.1", types.OCIImageIndex},
	// Kptfile functions, Helm values, a Flux OCI artifact, an operator's related images.
	{"ghcr.io/kptdev/krm-functions-catalog/set-labels", "v0.1.5", types.OCIImageIndex},
	{"gcr.io/kpt-fn/apply-setters", "v0.2.0", types.DockerManifestList},
	{"gcr.io/kpt-fn/set-namespace", "v0.4.1", types.DockerManifestSchema2},
	{"bitnami/nginx", "1.27", types.OCIImageIndex},
	{"bitnami/redis-exporter", "1.62.0", types.OCIManifestSchema1},
	{"ghcr.io/acme/manifests", "v1.2", types.OCIManifestSchema1},
	{"quay.io/acme/db", "15", types.OCIManifestSchema1},
}

// goldenRegistry serves goldenImages over TLS; its Transport routes every registry host to it.
func goldenRegistry(t *testing.T) *registrytest.Registry {
	t.Helper()
	reg := registrytest.New(registrytest.WithTLS())
	t.Cleanup(reg.Close)
	for _, img := range goldenImages {
		var err error
		if strings.HasSuffix(string(img.mt), "index.v1+json") || strings.HasSuffix(string(img.mt), "list.v2+json") {
			_, err = reg.PushIndex(img.repo, img.tag, img.mt)
		} else {
			_, err = reg.PushImage(img.repo, img.tag, img.mt)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	reg.Reset()
	return reg
}

// runList runs the function as runFunction does, on input, and returns its output (nil if there is
// none) and error.
func runList(p *processor, input []byte) ([]byte, error) {
	out, err := krmio.Run(p, input)
	if out == nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, werr := out.WriteTo(&b); werr != nil {
		return nil, werr
	}
	return b.Bytes(), err
}

func testProcessor(reg *registrytest.Registry) *processor {
	return &processor{
		ctx:      context.Background(),
		getenv:   func(string) string { return "" },
		resolver: []resolver.Option{resolver.WithTransport(reg.Transport()), resolver.WithKeychain(authn.NewMultiKeychain())}, // no host credentials in tests
	}
}

// TestGolden runs every case in testdata/golden: the objects of its YAML files and _fnconfig.yaml
// as a ResourceList (as testhelpers.RunGoldenTests builds it), through krmio.Run as main runs the
// function, the whole output compared with _expected.yaml. WRITE_GOLDEN_OUTPUT=1 rewrites.
func TestGolden(t *testing.T) {
	reg := goldenRegistry(t)
	dirs, err := os.ReadDir("testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		dir := filepath.Join("testdata/golden", d.Name())
		t.Run(d.Name(), func(t *testing.T) {
			out, err := runList(testProcessor(reg), goldenInput(t, dir))
			if out == nil {
				t.Fatalf("no output: %v", err)
			}
			testhelpers.CompareGoldenFile(t, filepath.Join(dir, "_expected.yaml"), out)
		})
	}
}

// goldenInput is a golden case's input ResourceList: the objects of its YAML files (but those
// whose name starts with _) in the order of the files, and _fnconfig.yaml as the functionConfig,
// written as the SDK writes a ResourceList, without sorting the items.
func goldenInput(t *testing.T, dir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }
	items := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	rl := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
		str("apiVersion"), str("config.kubernetes.io/v1"), str("kind"), str("ResourceList"), str("items"), items}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := fn.ParseKubeObjects(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, o := range objs {
			switch {
			case filepath.Base(f) == "_fnconfig.yaml":
				rl.Content = append(rl.Content, str("functionConfig"), o.MoveToResourceNode().YNode())
			case strings.HasPrefix(filepath.Base(f), "_"):
			default:
				items.Content = append(items.Content, o.MoveToResourceNode().YNode())
			}
		}
	}
	out, err := yaml.Marshal(rl)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOneRequestPerDistinctReference checks the lookups behind the workloads case: every distinct
// reference (nginx:1.27 and docker.io/library/nginx:1.27 are one) costs one manifest HEAD, no GET,
// and each registry one ping.
func TestOneRequestPerDistinctReference(t *testing.T) {
	reg := goldenRegistry(t)
	if _, err := runList(testProcessor(reg), goldenInput(t, "testdata/golden/workloads")); err != nil {
		t.Fatalf("Run: %v; want success", err)
	}
	got := map[string]int{
		"HEAD manifest": reg.Count("HEAD", "manifest"),
		"GET manifest":  reg.Count("GET", "manifest"),
		"ping":          reg.Count("", "ping"),
	}
	want := map[string]int{"HEAD manifest": 8, "GET manifest": 0, "ping": 5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestRunFailure: a failed lookup is an error (exit 1) and the items come back byte for byte as
// they went in.
func TestRunFailure(t *testing.T) {
	reg := goldenRegistry(t)
	in := resourceList(t, "testdata/golden/missing-tag/resources.yaml")
	out, err := runList(testProcessor(reg), in)
	if err == nil {
		t.Fatal("Run succeeded; want an error for the missing tags")
	}
	gotItems, _, _ := strings.Cut(string(out), "results:\n")
	if diff := cmp.Diff(string(in), gotItems); diff != "" {
		t.Errorf("items changed on failure (-want +got):\n%s", diff)
	}
}

// TestBinary builds digester and runs it as kpt would: a ResourceList on stdin, against a
// registry on loopback, with no credentials.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	app, err := reg.PushImage("team/app", "v1", types.DockerManifestSchema2)
	if err != nil {
		t.Fatal(err)
	}
	multi, err := reg.PushIndex("team/multi", "v2", types.OCIImageIndex)
	if err != nil {
		t.Fatal(err)
	}
	doc := func(image2 string) string {
		return `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: app
    namespace: prod
    annotations:
      config.kubernetes.io/path: app.yaml
      internal.config.kubernetes.io/path: app.yaml
  spec:
    template:
      spec:
        containers:
        - name: app
          image: ` + reg.Host + `/team/app:v1 # the app
        - name: sidecar
          image: "` + image2 + `"
`
	}

	t.Run("pins", func(t *testing.T) {
		stdout, stderr, code := run(t, bin, doc(reg.Host+"/team/multi:v2"))
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		for _, want := range []string{
			"image: " + reg.Host + "/team/app:v1@" + app.String() + " # the app",
			`image: "` + reg.Host + "/team/multi:v2@" + multi.String() + `"`,
			"pinned 2 image fields (2 distinct references, 3 registry requests)",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("same input, same output", func(t *testing.T) {
		in := doc(reg.Host + "/team/multi:v2")
		first, _, code1 := run(t, bin, in)
		second, _, code2 := run(t, bin, in)
		if code1 != 0 || code2 != 0 {
			t.Fatalf("exit codes %d, %d", code1, code2)
		}
		if diff := cmp.Diff(first, second); diff != "" {
			t.Errorf("two runs differ (-first +second):\n%s", diff)
		}
	})

	t.Run("missing tag", func(t *testing.T) {
		in := doc(reg.Host + "/team/multi:gone")
		stdout, stderr, code := run(t, bin, in)
		if code != 1 {
			t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
		}
		if diff := cmp.Diff(itemsYAML(t, []byte(in)), itemsYAML(t, []byte(stdout))); diff != "" {
			t.Errorf("items changed on failure (-want +got):\n%s", diff)
		}
		wantErr := `[error] apps/v1/Deployment/prod/app spec.template.spec.containers[1].image: cannot pin ` +
			reg.Host + `/team/multi:gone: tag not found: "gone" in repository team/multi on registry ` + reg.Host + ` (app.yaml)`
		if !strings.Contains(stderr, wantErr) {
			t.Errorf("stderr lacks\n%s\ngot:\n%s", wantErr, stderr)
		}
	})

	// Settings that change what is looked up and how: SKIP_PREFIXES from the environment, and
	// insecure-registries from the functionConfig.
	appRef, skipRef := reg.Host+"/team/app:v1", reg.Host+"/internal/tool:v1"

	t.Run("SKIP_PREFIXES", func(t *testing.T) {
		t.Setenv("SKIP_PREFIXES", reg.Host+"/internal/")
		stdout, stderr, code := run(t, bin, imageList(appRef, skipRef))
		if code != 0 {
			t.Fatalf("exit %d, want 0 (the skipped image does not exist); stderr:\n%s", code, stderr)
		}
		for _, want := range []string{"image: " + appRef + "@" + app.String() + "\n", "image: " + skipRef + "\n", "1 skipped by prefix"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, stdout)
			}
		}
	})

	t.Run("insecure-registries", func(t *testing.T) {
		tlsReg := registrytest.New(registrytest.WithTLS()) // a certificate nobody vouches for
		t.Cleanup(tlsReg.Close)
		secure, err := tlsReg.PushImage("team/secure", "v1", types.DockerManifestSchema2)
		if err != nil {
			t.Fatal(err)
		}
		secureRef := tlsReg.Host + "/team/secure:v1"
		in := imageList(secureRef)
		_, stderr, code := run(t, bin, in)
		if want := "presents a certificate signed by an unknown authority"; code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("without insecure-registries: exit %d, want 1 and %q; stderr:\n%s", code, want, stderr)
		}
		in += "functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: digester\n  data:\n    insecure-registries: " + tlsReg.Host + "\n"
		stdout, stderr, code := run(t, bin, in)
		if code != 0 {
			t.Fatalf("with insecure-registries: exit %d, want 0; stderr:\n%s", code, stderr)
		}
		if want := "image: " + secureRef + "@" + secure.String() + "\n"; !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	})
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// buildBinary builds digester once per test run and returns its path.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "digester-test-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "digester")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// run runs the binary on stdin with an empty docker config: no host credentials.
func run(t *testing.T, bin, stdin string) (stdout, stderr string, code int) {
	t.Helper()
	return runWithConfig(t, bin, stdin, t.TempDir())
}

// resourceList wraps the objects of a YAML file in a ResourceList.
func resourceList(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	items, err := fn.ParseKubeObjects(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := (&fn.ResourceList{Items: items}).ToYAML()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// itemsYAML returns the items of a ResourceList, each as YAML.
func itemsYAML(t *testing.T, rl []byte) []string {
	t.Helper()
	parsed, err := fn.ParseResourceList(rl)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range parsed.Items {
		out = append(out, it.String())
	}
	return out
}

// TestCommandLine runs the binary as a CI job does: with arguments it is the command line (package
// cli, tested there in depth); --version prints what the build stamped in, as make build does.
func TestCommandLine(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "digester")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7 -X main.commit=0123abc", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, tt := range []struct {
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string // first line
	}{
		{[]string{"--version"}, 0, "digester v9.8.7 (commit 0123abc)\n", ""},
		{[]string{"--foo"}, 2, "", "digester: unknown flag --foo: flags come after the command (digester pin --foo PATH)"},
		{[]string{"pin"}, 2, "", "digester: pin: no PATH given (a file, a directory, or - for stdin)"},
	} {
		cmd := exec.Command(bin, tt.args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(stderr.String(), "\n")
		got := []any{code, stdout.String(), first}
		if diff := cmp.Diff([]any{tt.wantCode, tt.wantStdout, tt.wantStderr}, got); diff != "" {
			t.Errorf("%v: (-want +got):\n%s", tt.args, diff)
		}
	}
}
