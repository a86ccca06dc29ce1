package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/internal/testfiles"
)

// TestLockKeyNotWritable: a DigestLock whose images: key digester cannot find in the text as the
// parser read it (here a quoted key) is not updated: exit 1, an error at the lock's own line (not
// the line of its document's "---"), and no file written.
func TestLockKeyNotWritable(t *testing.T) {
	reg, _ := testRegistry(t, "nginx:1.27")
	old := "sha256:" + strings.Repeat("0", 64)
	lock := "# the package's lock\n---\n" + strings.Replace(lockYAML("nginx:1.27", old), "\nimages:", "\n\"images\":", 1)
	for name, files := range map[string]map[string]string{
		"a file of its own": {"app.yaml": nginxPod, "digests.lock.yaml": lock},
		// the lock's edit comes after the image's among the file's edits
		"a file shared with a pinned image": {"digests.lock.yaml": lock + "---\n" + nginxPod},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, files)
			got := runCLI(t, reg, "", "pin", "--pinned=refresh", "--lock=update", dir)
			want := result{1, filepath.Join(dir, "digests.lock.yaml") + ": error: the DigestLock at line 5 has its images: key where digester cannot write it (is not where the YAML parser put it), " +
				"so digester cannot update its images: in place; write it in block style, or delete it and run pin --lock update to write a new one\n",
				"digester: pinned nothing: no file was written, for the error above (1 distinct reference, 2 registry requests)\n"}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(files, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckLocks: the new bytes of a file whose lock was updated are parsed again and must hold
// what the run made, resource for resource, comments aside; anything else, which only a bug in
// the lock's edit could make, fails the run with an error that says so instead of being written.
func TestCheckLocks(t *testing.T) {
	const made = "kind: Pod\nmetadata: {name: a}\n---\napiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nimages:\n- image: a:1\n  digest: sha256:1\n"
	const bug = "all.yaml: updating the DigestLock in place would not give the lock the run made (%s); this is a bug in digester, please report it"
	for _, tt := range []struct {
		name, pinned string
		err          string // "" for none
	}{
		{"the same, with comments elsewhere", "# pods\nkind: Pod # a\nmetadata: {name: a}\n---\napiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\n# new images\nimages:\n- image: a:1\n  digest: sha256:1 # d\n", ""},
		{"a resource more", made + "---\nkind: ConfigMap\n", strings.Replace(bug, "%s", "3 resources, not 2", 1)},
		{"a resource fewer", "kind: Pod\nmetadata: {name: a}\n", strings.Replace(bug, "%s", "1 resources, not 2", 1)},
		{"the first differs", strings.Replace(made, "name: a", "name: b", 1), strings.Replace(bug, "%s", "resource 1 differs", 1)},
		{"the lock differs deep inside", strings.Replace(made, "sha256:1", "sha256:2", 1), strings.Replace(bug, "%s", "resource 2 differs", 1)},
		{"not YAML", made + "- [\n", strings.Replace(bug, "%s", "all.yaml: not valid YAML: yaml: line 9: did not find expected node content", 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fl := &input{file: &file{name: "all.yaml", data: []byte(made)}, pinned: []byte(tt.pinned)}
			if err := fl.parse(); err != nil {
				t.Fatal(err)
			}
			got := ""
			if err := checkLocks(fl); err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Errorf("got %q\nwant %q", got, tt.err)
			}
		})
	}
}

// TestSameNodes: two trees are alike when they hold the same values written alike — style, tag,
// anchor, an alias's name — wherever their comments are; an empty list or mapping is alike in
// flow and block style, a non-empty one is not.
func TestSameNodes(t *testing.T) {
	node := func(s string) *yaml.Node {
		t.Helper()
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(s), &n); err != nil {
			t.Fatal(err)
		}
		return &n
	}
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"a: [x, 'y'] # c\nb: {c: d}\n", "# head\na: [x, 'y']\nb: {c: d} # c\n", true},
		{"a: []\n", "a:\n", false}, // a null is no list
		{"a: b\n", "a: 'b'\n", false},
		{"a: 1\n", "a: !!str 1\n", false},
		{"a: &x b\n", "a: &y b\n", false},
		{"a: &x b\nc: *x\n", "a: &x b\nc: *x\n", true},
		{"a: &x b\nd: &y b\nc: *x\n", "a: &x b\nd: &y b\nc: *y\n", false},
		{"a: [b]\n", "a: [b, c]\n", false},
		{"a: {b: {c: [d]}}\n", "a: {b: {c: [e]}}\n", false},
		{"a: {b: {c: [d]}}\n", "a: {b: {c: [d]}}\n", true},
		{"a: [b]\n", "a:\n- b\n", false},
		{"a: {b: c}\n", "a:\n  b: c\n", false},
	} {
		if got := sameNodes(node(tt.a), node(tt.b)); got != tt.same {
			t.Errorf("sameNodes(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}

	// An empty list or mapping, as written "[]" or "{}", reads back in flow style; the run's own
	// node for it may be in block style.
	for _, s := range []string{"a: []\n", "a: {}\n"} {
		flow, block := node(s), node(s)
		block.Content[0].Content[1].Style = 0
		if !sameNodes(flow, block) || !sameNodes(block, flow) {
			t.Errorf("%q in flow and block style differ", s)
		}
	}
}
