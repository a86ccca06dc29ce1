package container_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kptdev/krm-functions-sdk/go/fn"
)

// kptfile is the package's Kptfile; pipeline, if not empty, is its pipeline section.
func kptfile(pipeline string) string {
	return `apiVersion: kpt.dev/v1
kind: Kptfile
metadata:
  name: shop
  annotations:
    config.kubernetes.io/local-config: "true"
` + pipeline
}

// deployment is a package file naming web (an image) and cache (a multi-arch index).
func deployment(web, cache string) string {
	return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      containers:
      - name: web
        image: ` + web + ` # the app
      - name: cache
        image: "` + cache + `"
`
}

// publicImages pushes the package's images to the public registry and returns their references
// and digests.
func publicImages(t *testing.T) (web, webDigest, cache, cacheDigest string) {
	t.Helper()
	wd, err := public.PushImage("shop/web", "1.0", types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	cd, err := public.PushIndex("library/redis", "7.4", types.OCIImageIndex)
	if err != nil {
		t.Fatal(err)
	}
	return public.Host + "/shop/web:1.0", wd.String(), public.Host + "/library/redis:7.4", cd.String()
}

// TestKpt runs the image as kpt runs container functions, with `kpt fn eval --image` and as a
// Kptfile mutator with `kpt fn render`, against a registry on the host's loopback, with and
// without network, and checks the files, kpt's exit code and report, and what kpt asked docker for.
func TestKpt(t *testing.T) {
	needDocker(t)
	kpt := kptPath(t)
	web, webDigest, cache, cacheDigest := publicImages(t)
	in := deployment(web, cache)
	pinned := deployment(web+"@"+webDigest, cache+"@"+cacheDigest)
	// The image under test is only in the Docker daemon, which no registry serves: digester, which
	// pins the Kptfile's function images too, is told to leave it alone.
	mutator := "pipeline:\n  mutators:\n    - image: " + tag + "\n      configMap: {skip-prefixes: localhost/}\n"
	// kpt gives a container function the host's network (--network host) or none; the registry
	// listens on the host's loopback, reachable only through the host's network.
	withNetwork := "--rm -i --network host --user nobody --security-opt=no-new-privileges --pull never " + tag
	noNetwork := "--rm -i --network none --user nobody --security-opt=no-new-privileges --pull never " + tag
	webHost := strings.Split(web, "/")[0]
	bare := strings.TrimPrefix(tag, "localhost/")
	// The registry cannot be reached at all: one error for it, naming its references.
	offline := fmt.Sprintf("[error]: cannot connect to registry %s: connection refused (digester sees no network but loopback: "+
		"a container function needs `kpt fn eval --network` or `kpt fn render --allow-network`): "+
		"2 references cannot be pinned (2 image fields): %s, %s", webHost, web, cache)

	for _, tc := range []struct {
		name       string
		pipeline   string
		args       []string // after kpt; PKG is the package
		wantCode   int
		wantApp    string
		wantRuns   []string
		wantStderr []string // lines kpt prints, each found in its stderr
	}{
		{
			name:     "eval with --network",
			args:     []string{"fn", "eval", "PKG", "--image", tag, "--image-pull-policy", "never", "--network"},
			wantApp:  pinned,
			wantRuns: []string{withNetwork},
			wantStderr: []string{
				`[PASS] "` + tag + `"`,
				"[info] apps/v1/Deployment/shop/web spec.template.spec.containers[0].image: pinned " + web + " to " + webDigest,
			},
		},
		{
			name:     "render with --allow-network",
			pipeline: mutator,
			args:     []string{"fn", "render", "PKG", "--allow-network", "--image-pull-policy", "never"},
			wantApp:  pinned,
			wantRuns: []string{withNetwork},
			wantStderr: []string{
				`[PASS] "` + tag + `"`,
				"Successfully executed 1 function(s) in 1 package(s).",
			},
		},
		{
			// kpt puts gcr.io/kpt-fn/ in front of a name without "/", so a loaded image needs one.
			name:       "eval of a bare name",
			args:       []string{"fn", "eval", "PKG", "--image", bare, "--image-pull-policy", "never", "--network"},
			wantCode:   1,
			wantApp:    in,
			wantRuns:   []string{"--rm -i --network host --user nobody --security-opt=no-new-privileges --pull never gcr.io/kpt-fn/" + bare},
			wantStderr: []string{"No such image: gcr.io/kpt-fn/" + bare},
		},
		{
			name:       "eval without network",
			args:       []string{"fn", "eval", "PKG", "--image", tag, "--image-pull-policy", "never"},
			wantCode:   1,
			wantApp:    in,
			wantRuns:   []string{noNetwork},
			wantStderr: []string{`[FAIL] "` + tag + `"`, offline, "Exit code: 1"},
		},
		{
			name:       "render without --allow-network",
			pipeline:   mutator,
			args:       []string{"fn", "render", "PKG", "--image-pull-policy", "never"},
			wantCode:   1,
			wantApp:    in,
			wantRuns:   []string{noNetwork},
			wantStderr: []string{`[FAIL] "` + tag + `"`, offline, "Exit code: 1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pkg := filepath.Join(dir, "shop")
			writeFiles(t, pkg, map[string]string{"Kptfile": kptfile(tc.pipeline), "app.yaml": in})
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				if a == "PKG" {
					args[i] = pkg
				}
			}
			out, runs := command{dir: dir}.run(t, kpt, args...)
			if out.code != tc.wantCode {
				t.Errorf("kpt exit code %d; want %d\nstderr:\n%s", out.code, tc.wantCode, out.stderr)
			}
			checkFiles(t, pkg, map[string]string{"Kptfile": kptfile(tc.pipeline), "app.yaml": tc.wantApp})
			if diff := cmp.Diff(tc.wantRuns, runs); diff != "" {
				t.Errorf("docker run calls (-want +got):\n%s", diff)
			}
			for _, line := range tc.wantStderr {
				if !strings.Contains(out.stderr, line) {
					t.Errorf("kpt stderr lacks %q:\n%s", line, out.stderr)
				}
			}
		})
	}
}

// TestPrivateRegistry pins an image on a registry with TLS from a private CA and basic auth,
// giving the container the credentials the way the README says: the docker config mounted,
// DOCKER_CONFIG pointing at it, --as-current-user so that the function may read it, and the CA
// mounted with SSL_CERT_FILE. kpt runs as a user that is not root (the tests' own, or uid 4242
// in the docker group when the tests run as root), so the function does too.
func TestPrivateRegistry(t *testing.T) {
	needDocker(t)
	kpt := kptPath(t)
	d, err := private.Push(context.Background(), "team/api", "2.1", types.DockerManifestSchema2)
	if err != nil {
		t.Fatal(err)
	}
	api := private.Host + "/team/api:2.1"
	user, uid, gid, asUser := kptUser(t)
	base := sharedTempDir(t)
	home := filepath.Join(base, "home")
	config, err := os.ReadFile(filepath.Join(private.DockerConfig, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(private.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, base, map[string]string{"home/.docker/config.json": string(config)})
	for p, mode := range map[string]os.FileMode{"home": 0o700, "home/.docker": 0o700, "home/.docker/config.json": 0o600} {
		if err := os.Chmod(filepath.Join(base, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	chownAll(t, home, uid, gid)
	in := deployment(api, api)
	pinned := deployment(api+"@"+d, api+"@"+d)

	for _, tc := range []struct {
		name       string
		extra      []string
		wantCode   int
		wantApp    string
		wantRun    string // before the mounts
		wantStderr string
	}{
		{
			name:       "as the current user",
			extra:      []string{"--as-current-user"},
			wantApp:    pinned,
			wantRun:    fmt.Sprintf("--rm -i --network host --user %d:%d --security-opt=no-new-privileges --pull never", uid, gid),
			wantStderr: "[info] apps/v1/Deployment/shop/web spec.template.spec.containers[0].image: pinned " + api + " to " + d,
		},
		{
			// As nobody the function cannot open the user's 0700 ~/.docker, so it has no credentials.
			name:     "as nobody",
			wantCode: 1,
			wantApp:  in,
			wantRun:  "--rm -i --network host --user nobody --security-opt=no-new-privileges --pull never",
			wantStderr: "[error] apps/v1/Deployment/shop/web spec.template.spec.containers[0].image: cannot pin " + api +
				": unauthorized: registry " + private.Host + " wants credentials for repository team/api, tag \"2.1\" and digester has none for it " +
				"(add them to the docker config or a credential helper); uid 65534 cannot read /docker-config/config.json " +
				"(as a kpt container function it runs as nobody unless kpt is given --as-current-user)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sharedTempDir(t) // $PWD
			writeFiles(t, dir, map[string]string{"shop/Kptfile": kptfile(""), "shop/app.yaml": in, "ca.pem": string(ca)})
			chownAll(t, dir, uid, gid)
			// The README's command, with $HOME and $PWD expanded.
			args := []string{"fn", "eval", "shop", "--image", tag, "--image-pull-policy", "never", "--network",
				"--mount", "type=bind,src=" + home + "/.docker,dst=/docker-config", "--env", "DOCKER_CONFIG=/docker-config",
				"--mount", "type=bind,src=" + dir + "/ca.pem,dst=/certs/ca.pem", "--env", "SSL_CERT_FILE=/certs/ca.pem"}
			args = append(append(args, tc.extra...), "--results-dir", filepath.Join(dir, "results"))
			out, runs := command{dir: dir, env: []string{"HOME=" + home, "USER=" + user}, prepare: asUser}.run(t, kpt, args...)
			mounts := "--mount type=bind,source=" + home + "/.docker,target=/docker-config,readonly " +
				"--mount type=bind,source=" + dir + "/ca.pem,target=/certs/ca.pem,readonly " +
				"-e DOCKER_CONFIG=/docker-config -e SSL_CERT_FILE=/certs/ca.pem " + tag
			if out.code != tc.wantCode {
				t.Errorf("kpt exit code %d; want %d\nstderr:\n%s", out.code, tc.wantCode, out.stderr)
			}
			if diff := cmp.Diff([]string{tc.wantRun + " " + mounts}, runs); diff != "" {
				t.Errorf("docker run calls (-want +got):\n%s", diff)
			}
			if !strings.Contains(out.stderr, tc.wantStderr) {
				t.Errorf("kpt stderr lacks %q:\n%s", tc.wantStderr, out.stderr)
			}
			checkFiles(t, dir, map[string]string{"shop/Kptfile": kptfile(""), "shop/app.yaml": tc.wantApp, "ca.pem": string(ca),
				"results/results.yaml": readFiles(t, dir)["results/results.yaml"]}) // results: checked for secrets only
		})
	}
}

// TestDockerRun runs the image as `docker run` can and kpt cannot (kpt has no flag for it): with
// a read-only root filesystem and no capabilities, as kpt's user nobody and as the image's own
// user, reading a ResourceList on stdin.
func TestDockerRun(t *testing.T) {
	needDocker(t)
	web, webDigest, cache, cacheDigest := publicImages(t)
	rl := `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: app
  spec:
    containers:
    - name: web
      image: ` + web + `
    - name: cache
      image: ` + cache + `
`
	for _, tc := range []struct {
		name string
		user []string
	}{
		{"as nobody", []string{"--user", "nobody"}},
		{"as the image's user", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--rm", "-i", "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
				"--network", "host"}, tc.user...)
			out, _ := command{stdin: []byte(rl)}.run(t, "docker", append(args, tag)...)
			if out.code != 0 {
				t.Fatalf("docker run exit code %d\nstderr:\n%s", out.code, out.stderr)
			}
			got, err := fn.ParseResourceList([]byte(out.stdout))
			if err != nil {
				t.Fatalf("output is not a ResourceList: %v\n%s", err, out.stdout)
			}
			containers, _, err := got.Items[0].NestedSlice("spec", "containers")
			if err != nil {
				t.Fatal(err)
			}
			var images []string
			for _, c := range containers {
				images = append(images, c.GetString("image"))
			}
			if diff := cmp.Diff([]string{web + "@" + webDigest, cache + "@" + cacheDigest}, images); diff != "" {
				t.Errorf("images (-want +got):\n%s", diff)
			}
		})
	}
}

// kptUser returns the user kpt runs as in TestPrivateRegistry (its $USER, which kpt needs for
// --as-current-user, uid and gid), and a function that makes a command run as that user. When
// the tests run as root it is uid and gid 4242, with the docker socket's group so that kpt may run
// docker.
func kptUser(t *testing.T) (user string, uid, gid int, prepare func(*exec.Cmd)) {
	t.Helper()
	if os.Geteuid() != 0 {
		u := os.Getenv("USER")
		if u == "" {
			u = "digester-e2e"
		}
		return u, os.Geteuid(), os.Getegid(), nil
	}
	sock := "/var/run/docker.sock"
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		sock = h
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("the Docker socket: %v", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode().Perm()&0o060 != 0o060 || st.Gid == 0 {
		t.Fatalf("the Docker socket %s (%v) is not read-writable by a group other than root's: the tests run kpt as "+
			"uid 4242 in that group, so that the function runs as a user that is not root", sock, fi.Mode())
	}
	const id = 4242
	return "digester-e2e", id, id, func(c *exec.Cmd) {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: id, Gid: id, Groups: []uint32{st.Gid}}}
	}
}

// sharedTempDir returns a temporary directory that every user may enter, removed after the test.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "digester-container-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// chownAll gives dir and everything under it to uid:gid, when the tests run as root.
func chownAll(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}
