package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/internal/registrytest"
)

// ciJobs reads the README's CI jobs: for GitHub Actions and GitLab CI, the shell each of the
// check, pin and refresh jobs runs. Steps that install digester or use an action cannot run here
// (no network); they are returned apart so that the test can say what it left out.
func ciJobs(t *testing.T) (jobs map[string]map[string]string, notRun []string) {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := func(first string) []byte {
		m := regexp.MustCompile("(?s)```yaml\n(" + regexp.QuoteMeta(first) + "\n.*?)```").FindSubmatch(readme)
		if m == nil {
			t.Fatalf("README has no yaml block starting %q", first)
		}
		return m[1]
	}
	jobs = map[string]map[string]string{"github": {}, "gitlab": {}}

	var gh struct {
		Jobs map[string]struct {
			Steps []struct{ Name, Run, Uses string }
		}
	}
	if err := yaml.Unmarshal(block("# .github/workflows/image-digests.yaml"), &gh); err != nil {
		t.Fatal(err)
	}
	for name, job := range gh.Jobs {
		var script []string
		for _, st := range job.Steps {
			switch {
			case st.Uses != "":
				notRun = append(notRun, "github "+name+": uses "+st.Uses)
			case strings.HasPrefix(st.Run, "go install "):
				notRun = append(notRun, "github "+name+": "+st.Run)
			default:
				script = append(script, st.Run)
			}
		}
		jobs["github"][name] = strings.Join(script, "\n")
	}

	var gl map[string]struct {
		Script       []string
		BeforeScript []string `yaml:"before_script"`
	}
	if err := yaml.Unmarshal(block("# .gitlab-ci.yml"), &gl); err != nil {
		t.Fatal(err)
	}
	for name, job := range gl {
		for _, s := range job.BeforeScript {
			notRun = append(notRun, "gitlab "+name+": "+s)
		}
		if len(job.Script) > 0 {
			jobs["gitlab"][strings.TrimSuffix(name, "-digests")] = strings.Join(job.Script, "\n")
		}
	}
	return jobs, notRun
}

// TestREADMECIJobs runs the shell of the README's CI jobs, as GitHub Actions (bash -e) and GitLab
// (bash -eo pipefail) run them, with the built binary on PATH, a registry on loopback and a bare
// repository as the git remote: the check fails on unpinned images and passes once they are
// pinned, the pin job commits pinned manifests and a lock to main, and the refresh job pushes a
// branch that moves a stale pin to its tag's new digest.
func TestREADMECIJobs(t *testing.T) {
	jobs, notRun := ciJobs(t)
	// Each GitHub job's checkout, setup-go and go install; GitLab's default before_script.
	if want := 10; len(notRun) != want {
		t.Errorf("%d steps not run, want %d: %q", len(notRun), want, notRun)
	}
	for _, step := range notRun {
		if !strings.Contains(step, "go install github.com/digester/digester@latest") && !strings.Contains(step, "uses actions/") {
			t.Errorf("a step the test cannot run: %s", step)
		}
	}
	bin := buildBinary(t)

	for _, ci := range []string{"github", "gitlab"} {
		t.Run(ci, func(t *testing.T) {
			reg := registrytest.New()
			t.Cleanup(reg.Close)
			app, err := reg.PushImage("team/app", "v1", types.OCIManifestSchema1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := reg.PushImage("team/web", "v2", types.DockerManifestSchema2); err != nil {
				t.Fatal(err)
			}
			manifest := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n" +
				"      - name: app\n        image: " + reg.Host + "/team/app:v1 # the app\n      - name: web\n        image: " + reg.Host + "/team/web:v2\n"

			for _, job := range []string{"check", "pin", "refresh"} {
				if jobs[ci][job] == "" {
					t.Fatalf("the README's %s jobs have no %s job with a script", ci, job)
				}
			}
			root := t.TempDir()
			origin := filepath.Join(root, "origin.git")
			env := append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
				"HOME="+root, "DOCKER_CONFIG="+filepath.Join(root, "docker"), "GIT_CONFIG_NOSYSTEM=1",
				"GIT_AUTHOR_NAME=dev", "GIT_AUTHOR_EMAIL=dev@example.invalid", "GIT_COMMITTER_NAME=dev", "GIT_COMMITTER_EMAIL=dev@example.invalid",
				// GitLab's push URL, sent to the bare repository.
				"CI_SERVER_HOST=gitlab.example", "CI_PROJECT_PATH=group/app", "PUSH_TOKEN=token", "CI_COMMIT_BRANCH=main", "CI_PIPELINE_ID=42",
				"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=url."+origin+".insteadOf", "GIT_CONFIG_VALUE_0=https://oauth2:token@gitlab.example/group/app.git")
			sh := func(dir, script string) (string, int) {
				t.Helper()
				cmd := exec.Command("bash", "-eo", "pipefail", "-c", script)
				cmd.Dir, cmd.Env = dir, env
				out, err := cmd.CombinedOutput()
				if ee, ok := err.(*exec.ExitError); ok {
					return string(out), ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				return string(out), 0
			}
			must := func(dir, script string) string {
				t.Helper()
				out, code := sh(dir, script)
				if code != 0 {
					t.Fatalf("%s: exit %d:\n%s", script, code, out)
				}
				return out
			}
			// A checkout of main, as the CI runner makes it (GitLab: a detached HEAD).
			checkout := func(name string) string {
				dir := filepath.Join(root, name)
				must(root, "git clone -q "+origin+" "+dir)
				if ci == "gitlab" {
					must(dir, "git checkout -q --detach")
				}
				return dir
			}
			must(root, "git init -q --bare -b main origin.git && git -C origin.git config receive.advertisePushOptions true")
			seed := filepath.Join(root, "seed")
			must(root, "git clone -q "+origin+" seed")
			if err := os.MkdirAll(filepath.Join(seed, "deploy"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(seed, "deploy", "app.yaml"), []byte(manifest), 0o644); err != nil {
				t.Fatal(err)
			}
			must(seed, "git checkout -q -b main && git add . && git commit -qm 'the app' && git push -q origin main")

			// The pull-request check fails on the unpinned images and says where.
			out, code := sh(checkout("pr"), jobs[ci]["check"])
			if code != 1 {
				t.Errorf("check on unpinned images: exit %d, want 1:\n%s", code, out)
			}
			wantLine := "deploy/app.yaml:10:16: error: not pinned: " + reg.Host + "/team/app:v1 has no digest"
			if ci == "github" {
				wantLine = "::error file=deploy/app.yaml,line=10,col=16,title=digester::not pinned: " + reg.Host + "/team/app:v1 has no digest"
			}
			if !strings.Contains(out, wantLine) {
				t.Errorf("check output lacks %q:\n%s", wantLine, out)
			}

			// The pin job commits pinned manifests and a lock to main.
			must(checkout("pin"), jobs[ci]["pin"])
			pinned := must(origin, "git show main:deploy/app.yaml")
			if want := "image: " + reg.Host + "/team/app:v1@" + app.String() + " # the app\n"; !strings.Contains(pinned, want) {
				t.Errorf("main's deploy/app.yaml lacks %q:\n%s", want, pinned)
			}
			if lock := must(origin, "git show main:deploy/digests.lock.yaml"); !strings.Contains(lock, "- image: "+reg.Host+"/team/app:v1\n  digest: "+app.String()) {
				t.Errorf("main's lock lacks team/app:v1:\n%s", lock)
			}
			if out, code := sh(checkout("pr2"), jobs[ci]["check"]); code != 0 {
				t.Errorf("check after the pin job: exit %d:\n%s", code, out)
			}
			// Run again with nothing to pin: no commit, success.
			before := must(origin, "git rev-parse main")
			must(checkout("pin2"), jobs[ci]["pin"])
			if after := must(origin, "git rev-parse main"); after != before {
				t.Errorf("the pin job committed with nothing to pin")
			}

			// The tag moves; the scheduled refresh pushes a branch with the new digest.
			moved, err := reg.PushIndex("team/app", "v1", types.OCIImageIndex)
			if err != nil {
				t.Fatal(err)
			}
			must(checkout("refresh"), jobs[ci]["refresh"])
			branches := strings.Fields(must(origin, "git for-each-ref --format='%(refname:short)' 'refs/heads/refresh-digests-*'"))
			if len(branches) != 1 {
				t.Fatalf("refresh branches on the remote: %q, want one", branches)
			}
			refreshed := must(origin, "git show "+branches[0]+":deploy/app.yaml")
			if want := "image: " + reg.Host + "/team/app:v1@" + moved.String() + " # the app\n"; !strings.Contains(refreshed, want) {
				t.Errorf("%s's deploy/app.yaml lacks %q:\n%s", branches[0], want, refreshed)
			}
			if main := must(origin, "git show main:deploy/app.yaml"); main != pinned {
				t.Errorf("the refresh job changed main")
			}
		})
	}
}
