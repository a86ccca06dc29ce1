// Package e2e_test runs the built digester binary through the clients users run it with — kpt
// (fn eval, fn render), kustomize (build with an exec transformer, fn run) and plain stdin/stdout —
// against a real registry (docker-registry with TLS and htpasswd auth, see realregistry), and
// checks what a user sees: the files on disk, the structured results, the exit code and the
// error text.
//
// It needs kpt on PATH (https://github.com/kptdev/kpt/releases), and docker-registry, htpasswd,
// tinyproxy and bin/kustomize, which `make deps` installs. A missing tool fails the tests that need it and
// says how to get it.
package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/e2e/realregistry"
	"github.com/digester/digester/internal/testfiles"
)

var (
	// repoRoot is the repository's root directory.
	repoRoot string
	// digester is the binary under test, built once by TestMain.
	digester string
	// reg is the registry every test pushes to and pins from.
	reg *realregistry.Registry
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "digester-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if repoRoot, err = filepath.Abs(".."); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	digester = filepath.Join(dir, "digester")
	build := exec.Command("go", "build", "-o", digester, ".")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building digester: %v\n%s", err, out)
		return 1
	}
	if err := os.Mkdir(filepath.Join(dir, "registry"), 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	reg, err = realregistry.Start(filepath.Join(dir, "registry"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting the test registry:", err)
		return 1
	}
	defer reg.Close()
	return m.Run()
}

// tool returns the path of a client the tests run, failing the test with how to get it when it
// is missing.
func tool(t *testing.T, name string) string {
	t.Helper()
	switch name {
	case "kpt":
		p, err := exec.LookPath("kpt")
		if err != nil {
			t.Fatal("kpt is not on PATH: install kpt 1.0.0-beta.56 or later from https://github.com/kptdev/kpt/releases")
		}
		return p
	case "kustomize":
		p := filepath.Join(repoRoot, "bin", "kustomize")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: run `make deps` (it builds kustomize pinned in tools/go.mod)", p)
		}
		return p
	}
	t.Fatalf("unknown tool %q", name)
	return ""
}

// env is the environment a client runs digester in.
type env struct {
	// dockerConfig is DOCKER_CONFIG; "" means the registry's credentials.
	dockerConfig string
	// caFile is SSL_CERT_FILE; "" means the registry's CA.
	caFile string
	// path, if set, is put in front of PATH (where credential helpers are found).
	path string
	// extra are more KEY=value variables.
	extra []string
}

func (e env) vars() []string {
	vars := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{"DOCKER_CONFIG=", "SSL_CERT_FILE=", "SSL_CERT_DIR=", "SKIP_PREFIXES=", "REGISTRY_AUTH_FILE=",
			"HTTPS_PROXY=", "https_proxy=", "HTTP_PROXY=", "http_proxy=", "NO_PROXY=", "no_proxy="} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	})
	dc, ca := e.dockerConfig, e.caFile
	if dc == "" {
		dc = reg.DockerConfig
	}
	if ca == "" {
		ca = reg.CAFile
	}
	if e.path != "" {
		vars = append(vars, "PATH="+e.path+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return append(append(vars, "DOCKER_CONFIG="+dc, "SSL_CERT_FILE="+ca), e.extra...)
}

// output is what a command printed and how it exited.
type output struct {
	stdout, stderr string
	code           int
}

// run runs name with args in dir and returns its output. It fails the test if the command could
// not run, or if the output holds the registry's password in any form.
func run(t *testing.T, e env, stdin []byte, dir, name string, args ...string) output {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = e.vars()
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := output{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		out.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s %s: %v", name, strings.Join(args, " "), err)
	}
	noSecrets(t, name+" stdout", out.stdout)
	noSecrets(t, name+" stderr", out.stderr)
	return out
}

// noSecrets fails the test if text holds the registry's password or encoded credentials.
func noSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range reg.Secrets() {
		if strings.Contains(text, s) {
			t.Errorf("%s contains the registry credentials", what)
		}
	}
}

// space is a test's own part of the registry, so that parallel tests never push the same
// repository: its repositories are under Host/<test name>/.
type space struct {
	ns string
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

func newSpace(t *testing.T) space {
	return space{ns: strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")}
}

// image is how a package names repoTag ("shop/web:1.0") of this space.
func (s space) image(repoTag string) string { return reg.Host + "/" + s.ns + "/" + repoTag }

// push pushes each repo:tag with the media type given and returns their digests by repo:tag.
func (s space) push(t *testing.T, images map[string]types.MediaType) map[string]string {
	t.Helper()
	digests := map[string]string{}
	for ref, mt := range images {
		repo, tag, _ := strings.Cut(ref, ":")
		d, err := reg.Push(context.Background(), s.ns+"/"+repo, tag, mt)
		if err != nil {
			t.Fatal(err)
		}
		digests[ref] = d
	}
	return digests
}

// pinMark marks, in a fixture template, an image that digester must pin: "HOST/shop/web:1.0{pin}".
var pinMark = regexp.MustCompile(`HOST/([^\s"'{]+)\{pin\}`)

// fixture turns a template into the file a test starts from (HOST/x is s.image(x), marks
// removed) and the file digester must turn it into (each marked image followed by @ and its digest).
func (s space) fixture(t *testing.T, template string, digests map[string]string) (in, want string) {
	t.Helper()
	want = pinMark.ReplaceAllStringFunc(template, func(m string) string {
		ref := pinMark.FindStringSubmatch(m)[1]
		d, ok := digests[ref]
		if !ok {
			t.Fatalf("fixture pins %s, which was not pushed", ref)
		}
		return "HOST/" + ref + "@" + d
	})
	in = pinMark.ReplaceAllString(template, "HOST/$1")
	host := reg.Host + "/" + s.ns
	return strings.ReplaceAll(in, "HOST", host), strings.ReplaceAll(want, "HOST", host)
}

// writeFiles and readFiles write and read a package's files.
var writeFiles, readFiles = testfiles.Write, testfiles.Read

// checkFiles compares the files under dir with want, byte for byte.
func checkFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	if diff := cmp.Diff(want, readFiles(t, dir)); diff != "" {
		t.Errorf("files under %s (-want +got):\n%s", dir, diff)
	}
}
