package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/internal/testfiles"
)

// TestFlagsAndPathsInAnyOrder: flags may come before, between and after the paths; after "--"
// every argument is a path, one that starts with "-" or looks like a flag included.
func TestFlagsAndPathsInAnyOrder(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27", "redis:7.4")
	notice := func(file string, line, col int, ref string) string {
		return "::notice file=" + file + ",line=" + itoa(line) + ",col=" + itoa(col) + ",title=digester::pinned " + ref + " to " + d[ref] + "\n"
	}

	t.Run("a flag, a path, -- and a path that starts with a dash", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, map[string]string{"a/pod.yaml": nginxPod, "-b.yaml": redisPod})
		t.Chdir(dir)
		got := runCLI(t, reg, "", "pin", "--output", "github", "a", "--", "-b.yaml")
		want := result{0, notice("a/pod.yaml", 6, 12, "nginx:1.27") + notice("-b.yaml", 6, 12, "redis:7.4"),
			"digester: pinned 2 image fields (2 distinct references, 3 registry requests); 0 already pinned, 0 skipped by prefix\n"}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		wantFiles := map[string]string{
			"a/pod.yaml": strings.Replace(nginxPod, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1),
			"-b.yaml":    strings.Replace(redisPod, "redis:7.4", "redis:7.4@"+d["redis:7.4"], 1),
		}
		if diff := cmp.Diff(wantFiles, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})

	t.Run("a flag between paths and one after them", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, map[string]string{"a/pod.yaml": nginxPod, "b/pod.yaml": redisPod})
		got := runCLI(t, reg, "", "check", filepath.Join(dir, "a"), "--output", "github", filepath.Join(dir, "b"), "--report=fields")
		a, b := filepath.Join(dir, "a", "pod.yaml"), filepath.Join(dir, "b", "pod.yaml")
		want := result{1,
			"::error file=" + escapeProperty(a) + ",line=6,col=12,title=digester::not pinned: nginx:1.27 has no digest (digester would pin it)\n" +
				"::error file=" + escapeProperty(b) + ",line=6,col=12,title=digester::not pinned: redis:7.4 has no digest (digester would pin it)\n",
			"digester: check failed: pinning would make 2 changes (0 distinct references, 0 registry requests); 0 already pinned, 0 skipped by prefix\n"}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("after --, a flag is a path", func(t *testing.T) {
		dir := t.TempDir()
		testfiles.Write(t, dir, map[string]string{"a/pod.yaml": nginxPod})
		t.Chdir(dir)
		got := runCLI(t, reg, "", "pin", "--", "a", "--output=json")
		if got.code != ExitUsage || !strings.HasPrefix(got.stderr, "digester: pin: --output=json: no such file or directory\n") || got.stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant 2, nothing, and --output=json: no such file or directory", got.code, got.stdout, got.stderr)
		}
		if diff := cmp.Diff(map[string]string{"a/pod.yaml": nginxPod}, testfiles.Read(t, dir)); diff != "" {
			t.Errorf("files (-want +got):\n%s", diff)
		}
	})
}

// TestListItemsAreResources: each item of a kind: List is a resource of its own, as kpt reads it:
// findings name the item, and paths start at the item, not at the List.
func TestListItemsAreResources(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27", "redis:7.4")
	in := "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a, namespace: ns}\n  spec:\n    containers:\n    - {name: a, image: nginx:1.27}\n" +
		"- kind: Pod\n  metadata: {name: b}\n  spec: {containers: [{name: b, image: redis:7.4}]}\n"
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{"list.yaml": in})
	got := runCLI(t, reg, "", "pin", "--output", "json", dir)
	if got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	var out struct{ Findings []jsonFinding }
	if err := json.Unmarshal([]byte(got.stdout), &out); err != nil {
		t.Fatalf("%v:\n%s", err, got.stdout)
	}
	type finding struct{ Resource, Path, Image string }
	var findings []finding
	for _, f := range out.Findings {
		fd := finding{Path: f.Path, Image: f.Image}
		if r := f.Resource; r != nil {
			fd.Resource = strings.Join([]string{r.APIVersion, r.Kind, r.Namespace, r.Name}, "/")
		}
		findings = append(findings, fd)
	}
	want := []finding{
		{"v1/Pod/ns/a", "spec.containers[0].image", "nginx:1.27"},
		{"/Pod//b", "spec.containers[0].image", "redis:7.4"},
	}
	if diff := cmp.Diff(want, findings); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	pinned := strings.Replace(strings.Replace(in, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1), "redis:7.4", "redis:7.4@"+d["redis:7.4"], 1)
	if diff := cmp.Diff(map[string]string{"list.yaml": pinned}, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}
