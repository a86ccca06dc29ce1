package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testfiles"
	"github.com/digester/digester/resolver"
)

// testRegistry serves images under their everyday names (nginx:1.27, gcr.io/x/y:1) over TLS; its
// Transport routes every registry host to it. It returns the digest of each reference pushed.
func testRegistry(t *testing.T, refs ...string) (*registrytest.Registry, map[string]string) {
	t.Helper()
	return testRegistryWith(t, nil, refs...)
}

// testRegistryWith is testRegistry with more options, such as a middleware.
func testRegistryWith(t *testing.T, opts []registrytest.Option, refs ...string) (*registrytest.Registry, map[string]string) {
	t.Helper()
	reg := registrytest.New(append([]registrytest.Option{registrytest.WithTLS()}, opts...)...)
	t.Cleanup(reg.Close)
	digests := map[string]string{}
	for n, ref := range refs {
		i := strings.LastIndex(ref, ":")
		repo, tag := ref[:i], ref[i+1:]
		var d interface{ String() string }
		var err error
		if n%2 == 0 {
			d, err = reg.PushIndex(repo, tag, types.OCIImageIndex)
		} else {
			d, err = reg.PushImage(repo, tag, types.DockerManifestSchema2)
		}
		if err != nil {
			t.Fatal(err)
		}
		digests[ref] = d.String()
	}
	reg.Reset()
	return reg, digests
}

type result struct {
	code           int
	stdout, stderr string
}

// runCLI runs the command line in-process against reg, with no credentials.
func runCLI(t *testing.T, reg *registrytest.Registry, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := Env{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Version: "v1.2.3", Commit: "abc1234",
	}
	if reg != nil {
		env.Resolver = []resolver.Option{resolver.WithTransport(reg.Transport()), resolver.WithKeychain(authn.NewMultiKeychain())}
	}
	code := Main(context.Background(), args, env)
	return result{code, stdout.String(), stderr.String()}
}

// TestHelp checks --help against testdata/help.golden (WRITE_GOLDEN_OUTPUT=1 rewrites it).
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"pin", "--help"}} {
		got := runCLI(t, nil, "", args...)
		if got.code != 0 || got.stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, got.code, got.stderr)
		}
		if os.Getenv("WRITE_GOLDEN_OUTPUT") != "" {
			if err := os.WriteFile("testdata/help.golden", []byte(got.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile("testdata/help.golden")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(want), got.stdout); diff != "" {
			t.Errorf("%v (-want +got):\n%s", args, diff)
		}
	}
}

// TestUsageErrors: whatever cannot be run as typed is exit 2, a message saying what is wrong and
// the usage; nothing is read from stdin and nothing is written.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{"deploy.yaml": "kind: Pod\n"})
	tests := []struct {
		args []string
		want string // the first line of stderr
	}{
		{[]string{"--foo"}, "digester: unknown flag --foo: flags come after the command (digester pin --foo PATH)"},
		{[]string{"on-error=warn"}, `digester: unknown command "on-error=warn": settings are flags: digester pin --on-error=warn PATH`},
		{[]string{filepath.Join(dir, "deploy.yaml")}, `digester: unknown command "` + filepath.Join(dir, "deploy.yaml") + `": to pin it, run digester pin ` + filepath.Join(dir, "deploy.yaml") + ` (digester check ` + filepath.Join(dir, "deploy.yaml") + ` only reports)`},
		{[]string{"pin"}, "digester: pin: no PATH given (a file, a directory, or - for stdin)"},
		{[]string{"check", "--on-error=warn"}, "digester: check: no PATH given (a file, a directory, or - for stdin)"},
		{[]string{"pin", filepath.Join(dir, "missing")}, "digester: pin: " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{[]string{"pin", "--foo", dir}, "digester: pin: unknown flag --foo"},
		{[]string{"pin", "--timeout", dir}, `digester: pin: --timeout: "` + dir + `" is not a positive duration such as 10s or 2m`},
		{[]string{"pin", "--timeout"}, `digester: pin: --timeout needs a value`},
		{[]string{"pin", "--output", "xml", dir}, `digester: pin: --output "xml": want text, json or github`},
		{[]string{"pin", dir, "--concurrency", "0"}, `digester: pin: --concurrency: "0" is not a whole number of at least 1`},
		{[]string{"pin", "--insecure-registries=http://foo", dir}, `digester: pin: --insecure-registries: "http://foo" is not a registry: give its host or host:port, with no scheme or path (such as registry.example or registry.example:5000)`},
		{[]string{"pin", "--config", filepath.Join(dir, "nope.yaml"), dir}, "digester: pin: --config: open " + filepath.Join(dir, "nope.yaml") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got := runCLI(t, nil, "", tt.args...)
			if got.code != ExitUsage {
				t.Errorf("exit %d, want 2", got.code)
			}
			first, rest, _ := strings.Cut(got.stderr, "\n")
			if diff := cmp.Diff(tt.want, first); diff != "" {
				t.Errorf("stderr (-want +got):\n%s", diff)
			}
			if !strings.Contains(rest, synopsis) {
				t.Errorf("stderr lacks the usage:\n%s", got.stderr)
			}
			if got.stdout != "" {
				t.Errorf("stdout = %q, want nothing", got.stdout)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	got := runCLI(t, nil, "", "--version")
	if diff := cmp.Diff(result{0, "digester v1.2.3 (commit abc1234)\n", ""}, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestConfigFile: --config reads a functionConfig; flags override it; a bad one names the file, the
// key and the line.
func TestConfigFile(t *testing.T) {
	reg, digests := testRegistry(t, "nginx:1.27")
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{
		"pkg/app.yaml": "kind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n  - {name: a, image: nginx:1.27}\n  - {name: b, image: registry.internal.example/app:1}\n",
		"skip.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: digester}\ndata:\n  skip-prefixes: registry.internal.example/\n  on-error: warn\n",
		"typo.yaml":    "apiVersion: fn.kpt.dev/v1alpha1\nkind: Digester\nmetadata: {name: d}\nonErorr: warn\n",
	})
	got := runCLI(t, reg, "", "pin", "--config", filepath.Join(dir, "skip.yaml"), "--on-error=fail", filepath.Join(dir, "pkg"))
	if got.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", got.code, got.stderr)
	}
	app := testfiles.Read(t, filepath.Join(dir, "pkg"))["app.yaml"]
	if want := "image: nginx:1.27@" + digests["nginx:1.27"] + "}"; !strings.Contains(app, want) {
		t.Errorf("app.yaml lacks %q:\n%s", want, app)
	}
	if want := "digester: pinned 1 image field (1 distinct reference, 2 registry requests); 0 already pinned, 1 skipped by prefix\n"; got.stderr != want {
		t.Errorf("stderr = %q, want %q", got.stderr, want)
	}

	got = runCLI(t, reg, "", "pin", "--config", filepath.Join(dir, "typo.yaml"), filepath.Join(dir, "pkg"))
	first, _, _ := strings.Cut(got.stderr, "\n")
	want := `digester: pin: --config ` + filepath.Join(dir, "typo.yaml") + `: functionConfig Digester: unknown field "onErorr" (line 4; known: skipPrefixes, concurrency, registryConcurrency, timeout, deadline, insecureRegistries, registryMirrors, mirrorFallback, platform, registries, onError, mode, pinned, lock, lockFile, report, presets, kptImagePrefix, additionalImageFields)`
	if got.code != ExitUsage || first != want {
		t.Errorf("exit %d, stderr starts %q; want 2 and %q", got.code, first, want)
	}
}

// TestPinFiles pins a package whose files use every common way of writing YAML and checks every
// file byte for byte: only "@sha256:…" is inserted after each image value.
func TestPinFiles(t *testing.T) {
	reg, digests := testRegistry(t, "nginx:1.27", "busybox:1.36", "gcr.io/distroless/static:nonroot", "ghcr.io/acme/app:2.1", "redis:7.4")
	pinned := func(ref string) string { return ref + "@" + digests[ref] }
	files := map[string]string{
		// comments, plain, single- and double-quoted values, a flow sequence, 4-space indent
		"apps/web.yaml": `# The web tier.
apiVersion: apps/v1
kind: Deployment
metadata:
    name: web   # aligned comment
spec:
    template:
        spec:
            initContainers:
            -   name: init
                image: 'busybox:1.36'   # single quotes
            containers:
            -   name: web
                image: "nginx:1.27"
            -   {name: side, image: ghcr.io/acme/app:2.1, args: [a, b]}
`,
		// CRLF line endings, two documents, an already pinned image, a document separator with a comment
		"crlf.yaml": "apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: a\r\nspec:\r\n  containers:\r\n  - name: a\r\n    image: redis:7.4\r\n" +
			"--- # second\r\napiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: b\r\nspec:\r\n  containers:\r\n  - name: b\r\n    image: " + pinned("nginx:1.27") + "\r\n",
		// kind: List
		"list.yml": `apiVersion: v1
kind: List
items:
- apiVersion: batch/v1
  kind: Job
  metadata: {name: j}
  spec:
    template:
      spec:
        containers:
        - name: j
          image: gcr.io/distroless/static:nonroot
`,
		// what is not a manifest, or not read
		"notes.txt":          "image: nginx:1.27\n",
		"ignored/skip.yaml":  "kind: Pod\nspec: {containers: [{name: a, image: nginx:1.27}]}\n",
		".krmignore":         "ignored/\n",
		"empty.yaml":         "",
		"values/values.yaml": "replicas: 3\nimage: nginx:1.27\n",
		"local.yaml":         "apiVersion: v1\nkind: Pod\nmetadata:\n  name: local\n  annotations: {config.kubernetes.io/local-config: \"true\"}\nspec: {containers: [{name: a, image: nginx:1.27}]}\n",
	}
	dir := t.TempDir()
	testfiles.Write(t, dir, files)

	got := runCLI(t, reg, "", "pin", dir)
	if got.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", got.code, got.stderr)
	}
	want := map[string]string{}
	for k, v := range files {
		want[k] = v
	}
	for name, refs := range map[string][]string{
		"apps/web.yaml": {"busybox:1.36", "nginx:1.27", "ghcr.io/acme/app:2.1"},
		"crlf.yaml":     {"redis:7.4"},
		"list.yml":      {"gcr.io/distroless/static:nonroot"},
	} {
		for _, ref := range refs {
			want[name] = strings.Replace(want[name], ref, pinned(ref), 1)
		}
	}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	wantOut := strings.Join([]string{
		filepath.Join(dir, "apps/web.yaml") + ":14:24: info: pinned nginx:1.27 to " + digests["nginx:1.27"],
		filepath.Join(dir, "apps/web.yaml") + ":15:37: info: pinned ghcr.io/acme/app:2.1 to " + digests["ghcr.io/acme/app:2.1"],
		filepath.Join(dir, "apps/web.yaml") + ":11:24: info: pinned busybox:1.36 to " + digests["busybox:1.36"],
		filepath.Join(dir, "crlf.yaml") + ":8:12: info: pinned redis:7.4 to " + digests["redis:7.4"],
		filepath.Join(dir, "list.yml") + ":12:18: info: pinned gcr.io/distroless/static:nonroot to " + digests["gcr.io/distroless/static:nonroot"],
	}, "\n") + "\n"
	if diff := cmp.Diff(wantOut, got.stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}

	// A second run finds everything pinned and changes nothing.
	again := runCLI(t, reg, "", "pin", dir)
	if again.code != 0 || again.stdout != "" {
		t.Errorf("second run: exit %d, stdout %q", again.code, again.stdout)
	}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("second run changed files (-want +got):\n%s", diff)
	}
}

// TestPinStdin: "-" reads YAML documents on stdin and writes them pinned on stdout, findings on
// stderr; on failure the input comes back unchanged.
func TestPinStdin(t *testing.T) {
	reg, digests := testRegistry(t, "nginx:1.27")
	in := "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27 # web\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
	got := runCLI(t, reg, in, "pin", "-")
	want := result{
		code:   0,
		stdout: strings.Replace(in, "nginx:1.27", "nginx:1.27@"+digests["nginx:1.27"], 1),
		stderr: "<stdin>:7:12: info: pinned nginx:1.27 to " + digests["nginx:1.27"] + "\n" +
			"digester: pinned 1 image field (1 distinct reference, 2 registry requests); 0 already pinned, 0 skipped by prefix\n",
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	bad := strings.Replace(in, "nginx:1.27", "nginx:1.277", 1)
	got = runCLI(t, reg, bad, "pin", "-")
	want = result{
		code:   1,
		stdout: bad,
		stderr: `<stdin>:7:12: error: cannot pin nginx:1.277: tag not found: "1.277" in repository library/nginx on registry index.docker.io` + "\n" +
			"digester: pinned nothing: 1 image field could not be pinned, so the package is returned unchanged (1 distinct reference, 3 registry requests)\n",
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestPinFailure: when one image cannot be pinned no file is written, and the output says where,
// in each format.
func TestPinFailure(t *testing.T) {
	reg, digests := testRegistry(t, "nginx:1.27")
	files := map[string]string{
		"a.yaml": "kind: Pod\nmetadata: {name: a, namespace: ns}\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27\n  - name: b\n    image: nginx:1.277\n",
		"b.yaml": "kind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: b\n    image: nginx:1.277\n",
	}
	_ = digests
	notFound := `cannot pin nginx:1.277: tag not found: "1.277" in repository library/nginx on registry index.docker.io`
	for _, tt := range []struct {
		output string
		want   func(dir string) string
	}{
		{"text", func(dir string) string {
			return filepath.Join(dir, "a.yaml") + ":8:12: error: " + notFound + " (2 fields: Pod ns/a spec.containers[1].image in " +
				filepath.Join(dir, "a.yaml") + ":8, Pod b spec.containers[0].image in " + filepath.Join(dir, "b.yaml") + ":6)\n"
		}},
		{"github", func(dir string) string {
			return "::error file=" + strings.ReplaceAll(filepath.Join(dir, "a.yaml"), ":", "%3A") + ",line=8,col=12,title=digester::" + notFound +
				" (2 fields: Pod ns/a spec.containers[1].image in " + filepath.Join(dir, "a.yaml") + ":8, Pod b spec.containers[0].image in " + filepath.Join(dir, "b.yaml") + ":6)\n"
		}},
	} {
		t.Run(tt.output, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, files)
			got := runCLI(t, reg, "", "pin", "--output", tt.output, dir)
			if got.code != 1 {
				t.Errorf("exit %d, want 1", got.code)
			}
			if diff := cmp.Diff(tt.want(dir), got.stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(files, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files changed (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, files)
		got := runCLI(t, reg, "", "pin", "--output=json", dir)
		var out struct {
			OK       bool
			Summary  struct{ Failed int }
			Findings []jsonFinding
		}
		if err := json.Unmarshal([]byte(got.stdout), &out); err != nil {
			t.Fatalf("%v:\n%s", err, got.stdout)
		}
		want := []jsonFinding{
			{Severity: "error", Message: notFound, File: filepath.Join(dir, "a.yaml"), Line: 8, Column: 12, Path: "spec.containers[1].image", Image: "nginx:1.277"},
			{Severity: "error", Message: notFound, File: filepath.Join(dir, "b.yaml"), Line: 6, Column: 12, Path: "spec.containers[0].image", Image: "nginx:1.277"},
		}
		want[0].Resource = &struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Namespace  string `json:"namespace,omitempty"`
			Name       string `json:"name,omitempty"`
		}{Kind: "Pod", Namespace: "ns", Name: "a"}
		want[1].Resource = &struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Namespace  string `json:"namespace,omitempty"`
			Name       string `json:"name,omitempty"`
		}{Kind: "Pod", Name: "b"}
		if got.code != 1 || out.OK || out.Summary.Failed != 2 {
			t.Errorf("exit %d, ok %v, failed %d; want 1, false, 2", got.code, out.OK, out.Summary.Failed)
		}
		if diff := cmp.Diff(want, out.Findings); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
	})

	// A value that cannot be edited in place: no file is written, and no output says "pinned".
	block := map[string]string{
		"a.yaml": "kind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27\n",
		"b.yaml": "kind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: b\n    image: >-\n      nginx:1.27\n",
	}
	const blockMsg = `the value "nginx:1.27" is a block scalar (>), so digester cannot pin it in place; write it as a plain or quoted string on one line`
	const unwritten = "digester: pinned nothing: no file was written, for the error above (1 distinct reference, 2 registry requests)\n"
	for _, tt := range []struct {
		output string
		want   func(dir string) result
	}{
		{"text", func(dir string) result {
			return result{1, filepath.Join(dir, "b.yaml") + ":6:12: error: " + blockMsg + "\n", unwritten}
		}},
		{"github", func(dir string) result {
			return result{1, "::error file=" + strings.ReplaceAll(filepath.Join(dir, "b.yaml"), ":", "%3A") + ",line=6,col=12,title=digester::" + blockMsg + "\n", unwritten}
		}},
		{"json", func(dir string) result {
			return result{1, `{
  "ok": false,
  "summary": {
    "message": "pinned nothing: no file was written, for the error above (1 distinct reference, 2 registry requests)",
    "pinned": 0,
    "fromLock": 0,
    "alreadyPinned": 0,
    "skipped": 0,
    "templated": 0,
    "verified": 0,
    "refreshed": 0,
    "failed": 1,
    "unpinned": 0,
    "stale": 0,
    "distinctReferences": 1,
    "registryRequests": 2,
    "onErrorWarn": false,
    "check": false
  },
  "findings": [
    {
      "severity": "error",
      "message": "` + strings.ReplaceAll(blockMsg, `"`, `\"`) + `",
      "file": "` + filepath.Join(dir, "b.yaml") + `",
      "line": 6,
      "column": 12,
      "resource": {
        "kind": "Pod",
        "name": "b"
      },
      "path": "spec.containers[0].image",
      "image": "nginx:1.27"
    }
  ]
}
`, unwritten}
		}},
	} {
		t.Run("unedited-"+tt.output, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, block)
			got := runCLI(t, reg, "", "pin", "--output", tt.output, dir)
			if diff := cmp.Diff(tt.want(dir), got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(block, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files changed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheck: check changes nothing, prints one file:line:col per unpinned field, exits 1 if any,
// and sends no registry request.
func TestCheck(t *testing.T) {
	reg, digests := testRegistry(t, "nginx:1.27")
	files := map[string]string{
		"a.yaml": "kind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27\n  - name: b\n    image: nginx:1.27\n",
		"b.yaml": "kind: Pod\nmetadata: {name: b}\nspec:\n  containers:\n  - name: b\n    image: nginx:1.27@" + digests["nginx:1.27"] + "\n",
	}
	dir := t.TempDir()
	testfiles.Write(t, dir, files)
	got := runCLI(t, reg, "", "check", dir)
	a := filepath.Join(dir, "a.yaml")
	want := result{
		code: 1,
		stdout: a + ":6:12: error: not pinned: nginx:1.27 has no digest (digester would pin it)\n" +
			a + ":8:12: error: not pinned: nginx:1.27 has no digest (digester would pin it)\n",
		stderr: "digester: check failed: pinning would make 2 changes (0 distinct references, 0 registry requests); 1 already pinned, 0 skipped by prefix\n",
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(files, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("check changed files (-want +got):\n%s", diff)
	}
	if n := len(reg.Requests()); n != 0 {
		t.Errorf("check sent %d registry requests, want none", n)
	}

	// Once pinned, check passes.
	if got := runCLI(t, reg, "", "pin", dir); got.code != 0 {
		t.Fatalf("pin: exit %d\n%s", got.code, got.stderr)
	}
	if got := runCLI(t, reg, "", "check", dir); got.code != 0 || got.stdout != "" {
		t.Errorf("check after pin: exit %d, stdout %q", got.code, got.stdout)
	}
}

// TestRefreshAndLock: pinned: refresh rewrites a stale digest in place; lock: update writes a
// DigestLock into the directory, which a later lock: frozen run pins from without a request.
func TestRefreshAndLock(t *testing.T) {
	reg, digests := testRegistry(t, "nginx:1.27", "redis:7.4")
	stale := "sha256:" + strings.Repeat("0", 64)
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{
		"web.yaml": "kind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27@" + stale + " # stale\n  - name: b\n    image: redis:7.4\n",
	})
	got := runCLI(t, reg, "", "pin", "--pinned=refresh", "--lock=update", dir)
	if got.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", got.code, got.stderr)
	}
	tree := testfiles.Read(t, dir)
	wantWeb := "kind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: a\n    image: nginx:1.27@" + digests["nginx:1.27"] + " # stale\n  - name: b\n    image: redis:7.4@" + digests["redis:7.4"] + "\n"
	if diff := cmp.Diff(wantWeb, tree["web.yaml"]); diff != "" {
		t.Errorf("web.yaml (-want +got):\n%s", diff)
	}
	lock := tree["digests.lock.yaml"]
	for _, want := range []string{"kind: DigestLock\n", "- image: nginx:1.27\n  digest: " + digests["nginx:1.27"] + "\n", "- image: redis:7.4\n  digest: " + digests["redis:7.4"] + "\n"} {
		if !strings.Contains(lock, want) {
			t.Errorf("digests.lock.yaml lacks %q:\n%s", want, lock)
		}
	}

	// A fresh copy of the unpinned source pins from the lock alone.
	src := t.TempDir()
	testfiles.Write(t, src, map[string]string{"web.yaml": "kind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: b\n    image: redis:7.4\n", "digests.lock.yaml": lock})
	reg.Reset()
	got = runCLI(t, reg, "", "pin", "--lock=frozen", src)
	if got.code != 0 {
		t.Fatalf("frozen: exit %d; stderr:\n%s", got.code, got.stderr)
	}
	if want := "kind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - name: b\n    image: redis:7.4@" + digests["redis:7.4"] + "\n"; testfiles.Read(t, src)["web.yaml"] != want {
		t.Errorf("frozen: web.yaml = %q, want %q", testfiles.Read(t, src)["web.yaml"], want)
	}
	if n := len(reg.Requests()); n != 0 {
		t.Errorf("lock: frozen sent %d requests, want none", n)
	}
}

// TestPinKustomizeImages: digester pin adds digest: to kustomize images: entries in place — a
// line of its own after newTag in a block entry (keeping CRLF), ", digest: '…'" in a flow entry —
// and changes nothing else in the file.
func TestPinKustomizeImages(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27", "ghcr.io/acme/app:2")
	in := "resources: [base]\r\nimages:\r\n- name: web # the storefront\r\n  newName: nginx\r\n  newTag: \"1.27\"\r\n  # kept\r\n- {name: app, newName: 'ghcr.io/acme/app:2'}\r\n"
	want := "resources: [base]\r\nimages:\r\n- name: web # the storefront\r\n  newName: nginx\r\n  newTag: \"1.27\"\r\n  digest: " + d["nginx:1.27"] +
		"\r\n  # kept\r\n- {name: app, newName: 'ghcr.io/acme/app:2', digest: '" + d["ghcr.io/acme/app:2"] + "'}\r\n"
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{"kustomization.yaml": in})
	got := runCLI(t, reg, "", "pin", dir)
	if got.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", got.code, got.stderr)
	}
	if diff := cmp.Diff(map[string]string{"kustomization.yaml": want}, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if again := runCLI(t, reg, "", "check", dir); again.code != 0 {
		t.Errorf("check after pin: exit %d:\n%s", again.code, again.stdout)
	}
}
