package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"weak"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testfiles"
	"github.com/digester/digester/pin"
)

// TestOneFileAtATime: by the time digester asks the registry, it holds the bytes, the tree and
// the image fields' nodes of no file it read, but of a file it must compare whole with its text
// when it writes (a Kptfile, whose function images are pinned with their tag in a comment):
// memory follows the largest file, not the package (issue 20, item 2). The files are pinned as
// before.
func TestOneFileAtATime(t *testing.T) {
	const pods = 20
	files := map[string]string{"Kptfile": "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: p\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\npipeline:\n  mutators:\n  - image: ghcr.io/acme/fn:v1\n"}
	for i := range pods {
		files[fmt.Sprintf("pods/%02d.yaml", i)] = strings.Replace(nginxPod, "web", fmt.Sprintf("web-%d", i), -1) + "---\n" + strings.Replace(redisPod, "cache", fmt.Sprintf("cache-%d", i), -1)
	}
	type held struct {
		tree, image weak.Pointer[yaml.Node]
		data        weak.Pointer[byte]
	}
	var mu sync.Mutex
	read := map[string]held{}
	parsed = func(f *file) {
		mu.Lock()
		defer mu.Unlock()
		read[strings.TrimPrefix(f.name, dirOf(f.name, "Kptfile", "pods/"))] = held{weak.Make(f.docs[0]), weak.Make(firstImage(f.docs[0])), weak.Make(&f.data[0])}
	}
	t.Cleanup(func() { parsed = nil })

	var arm atomic.Bool
	var kept []string // the files whose bytes or tree are still reachable while the registry is asked
	reg, d := testRegistryWith(t, []registrytest.Option{onFirstManifest(&arm, func() {
		runtime.GC()
		runtime.GC()
		mu.Lock()
		defer mu.Unlock()
		for name, h := range read {
			if h.tree.Value() != nil || h.image.Value() != nil || h.data.Value() != nil {
				kept = append(kept, name)
			}
		}
	})}, "nginx:1.27", "redis:7.4", "ghcr.io/acme/fn:v1")
	arm.Store(true)
	dir := t.TempDir()
	testfiles.Write(t, dir, files)
	got := runCLI(t, reg, "", "pin", dir)
	if got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	if len(read) != pods+1 {
		t.Fatalf("%d files read, want %d", len(read), pods+1)
	}
	slices.Sort(kept)
	if diff := cmp.Diff([]string{"Kptfile"}, kept); diff != "" {
		t.Errorf("files held while the registry was asked (-want +got):\n%s", diff)
	}
	want := map[string]string{"Kptfile": strings.Replace(files["Kptfile"], "ghcr.io/acme/fn:v1", "ghcr.io/acme/fn@"+d["ghcr.io/acme/fn:v1"]+" # v1", 1)}
	for name, text := range files {
		if name != "Kptfile" {
			want[name] = strings.NewReplacer("nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], "redis:7.4", "redis:7.4@"+d["redis:7.4"]).Replace(text)
		}
	}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

// firstImage returns the value of the first image: key in n's tree.
func firstImage(n *yaml.Node) *yaml.Node {
	for i, c := range n.Content {
		if n.Kind == yaml.MappingNode && i%2 == 0 && c.Value == "image" {
			return n.Content[i+1]
		}
		if found := firstImage(c); found != nil {
			return found
		}
	}
	return nil
}

// dirOf returns the part of name before the first of parts it holds: the test's directory.
func dirOf(name string, parts ...string) string {
	for _, p := range parts {
		if i := strings.Index(name, p); i >= 0 {
			return name[:i]
		}
	}
	return ""
}

// TestEditsDuringRunToSeveralFiles: every file that changed between digester's read and its write
// is named, in the order digester read them, and no file is written: the files digester reads
// again to write them are checked as those it kept.
func TestEditsDuringRunToSeveralFiles(t *testing.T) {
	files := map[string]string{"a.yaml": nginxPod, "b.yaml": redisPod, "c.yaml": strings.Replace(nginxPod, "web", "c", -1)}
	dir := t.TempDir()
	testfiles.Write(t, dir, files)
	var arm atomic.Bool
	var actErr error
	reg, _ := testRegistryWith(t, []registrytest.Option{onFirstManifest(&arm, func() {
		for _, name := range []string{"c.yaml", "a.yaml"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(files[name]+"# mine\n"), 0o644); err != nil {
				actErr = err
			}
		}
	})}, "nginx:1.27", "redis:7.4")
	arm.Store(true)
	got := runCLI(t, reg, "", "pin", "--report", "fields", dir)
	if actErr != nil {
		t.Fatal(actErr)
	}
	what := ": error: changed since digester read it, so it was not overwritten: run digester again\n"
	want := result{
		code:   1,
		stdout: filepath.Join(dir, "a.yaml") + what + filepath.Join(dir, "c.yaml") + what,
		stderr: "digester: pinned nothing: no file was written, for the 2 errors above (2 distinct references, 3 registry requests)\n",
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	wantFiles := map[string]string{"a.yaml": nginxPod + "# mine\n", "b.yaml": redisPod, "c.yaml": files["c.yaml"] + "# mine\n"}
	if diff := cmp.Diff(wantFiles, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

// TestDecidedObjectsGo: while digester reads the package, the objects of files whose image
// fields were all pinned already are gone, not only their trees: the core decides each field as
// it reads it (pin.Batches.Locks, once the DigestLock, in the last file, was read first), and
// what grows with the package is what waits for a lookup or a write. The run pins from the lock
// as before.
func TestDecidedObjectsGo(t *testing.T) {
	const pinned = 10
	reg, d := testRegistry(t, "nginx:1.27", "redis:7.4")
	files := map[string]string{
		"new.yaml":     redisPod,
		"zz-lock.yaml": "apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nimages:\n- image: nginx:1.27\n  digest: " + d["nginx:1.27"] + "\n",
	}
	for i := range pinned {
		files[fmt.Sprintf("pinned-%02d.yaml", i)] = strings.Replace(nginxPod, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1)
	}
	files["from-lock.yaml"] = strings.Replace(nginxPod, "web", "from-lock", -1)
	objs := map[string]weak.Pointer[pin.Object]{}
	var held []string // the objects read before the last file that are still reachable once it is read
	parsed = func(f *file) {
		name := filepath.Base(f.name)
		if name == "zz-lock.yaml" {
			runtime.GC()
			runtime.GC()
			for n, o := range objs {
				if o.Value() != nil {
					held = append(held, n)
				}
			}
		}
		objs[name] = weak.Make(f.objs[0])
	}
	t.Cleanup(func() { parsed = nil })
	dir := t.TempDir()
	testfiles.Write(t, dir, files)
	got := runCLI(t, reg, "", "pin", dir)
	if got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	slices.Sort(held)
	// from-lock.yaml is to be pinned from the lock, new.yaml waits for its lookup, and
	// pinned-09.yaml, the last file added, is decided when the next one is.
	if diff := cmp.Diff([]string{"from-lock.yaml", "new.yaml", "pinned-09.yaml"}, held); diff != "" {
		t.Errorf("objects held once the last file is read (-want +got):\n%s", diff)
	}
	after := testfiles.Read(t, dir)
	if want := strings.Replace(files["from-lock.yaml"], "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1); after["from-lock.yaml"] != want {
		t.Errorf("from-lock.yaml:\n%s\nwant\n%s", after["from-lock.yaml"], want)
	}
	if want := strings.Replace(redisPod, "redis:7.4", "redis:7.4@"+d["redis:7.4"], 1); after["new.yaml"] != want {
		t.Errorf("new.yaml:\n%s\nwant\n%s", after["new.yaml"], want)
	}
}

// TestLockSpelledWithAnEscape: a DigestLock whose kind is written with an escape, which a search
// of the file's bytes for the kind does not find, is read before the fields it pins, as any other.
func TestLockSpelledWithAnEscape(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27")
	files := map[string]string{
		"a.yaml":    nginxPod,
		"lock.yaml": "apiVersion: fn.kpt.dev/v1alpha1\nkind: \"Digest\\x4cock\"\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nimages:\n- image: nginx:1.27\n  digest: " + d["nginx:1.27"] + "\n",
	}
	dir := t.TempDir()
	testfiles.Write(t, dir, files)
	got := runCLI(t, reg, "", "pin", "--lock", "frozen", dir)
	if got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	want := map[string]string{"a.yaml": strings.Replace(nginxPod, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1), "lock.yaml": files["lock.yaml"]}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

// TestLockInUTF16: a DigestLock in a UTF-16 file, whose bytes do not spell the kind as UTF-8 does,
// is read before the fields it pins, as any other.
func TestLockInUTF16(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27")
	lock := "apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nimages:\n- image: nginx:1.27\n  digest: " + d["nginx:1.27"] + "\n"
	utf16 := []byte{0xff, 0xfe} // little-endian, with its byte order mark
	for _, r := range lock {
		utf16 = append(utf16, byte(r), 0)
	}
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{"a.yaml": nginxPod, "lock.yaml": string(utf16)})
	got := runCLI(t, reg, "", "pin", "--lock", "frozen", dir)
	if got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	want := map[string]string{"a.yaml": strings.Replace(nginxPod, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1), "lock.yaml": string(utf16)}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

// TestLockAppearsWhileReading: a file that holds no DigestLock when digester first reads the
// package, and one when it reads the file again in its turn, fails the run naming the file, and
// nothing is written: the fields before it were decided without that lock.
func TestLockAppearsWhileReading(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27")
	lock := "apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nimages:\n- image: nginx:1.27\n  digest: " + d["nginx:1.27"] + "\n"
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{"a.yaml": nginxPod, "b.yaml": "# the lock comes later\n"})
	var actErr error
	parsed = func(f *file) {
		if filepath.Base(f.name) == "a.yaml" {
			actErr = os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(lock), 0o644)
		}
	}
	t.Cleanup(func() { parsed = nil })
	got := runCLI(t, reg, "", "pin", dir)
	if actErr != nil {
		t.Fatal(actErr)
	}
	want := result{
		code:   1,
		stdout: filepath.Join(dir, "b.yaml") + ": error: a DigestLock digester did not find when it first read the package: was the file changed while digester read it? Run digester again\n",
		stderr: "digester: pinned nothing: 1 image field could not be pinned, so the package is returned unchanged (1 distinct reference, 2 registry requests)\n",
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(result{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"a.yaml": nginxPod, "b.yaml": lock}, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

// TestFileReadInItsTurn: a file that may hold a DigestLock but holds none (it has a backslash) is
// read again in its turn, like any file: an edit made to it before digester reaches it is what
// digester reads, pins and writes, and no file is reported changed.
func TestFileReadInItsTurn(t *testing.T) {
	reg, d := testRegistry(t, "nginx:1.27", "redis:7.4")
	escaped := strings.Replace(redisPod, "metadata: {name: cache}", "metadata: {name: cache, annotations: {note: \"a\\\\b\"}}", 1)
	dir := t.TempDir()
	testfiles.Write(t, dir, map[string]string{"a.yaml": nginxPod, "b.yaml": escaped})
	var actErr error
	parsed = func(f *file) {
		if filepath.Base(f.name) == "a.yaml" {
			actErr = os.WriteFile(filepath.Join(dir, "b.yaml"), []byte(escaped+"# mine\n"), 0o644)
		}
	}
	t.Cleanup(func() { parsed = nil })
	got := runCLI(t, reg, "", "pin", dir)
	if actErr != nil {
		t.Fatal(actErr)
	}
	if got.code != 0 {
		t.Fatalf("exit %d\n%s%s", got.code, got.stdout, got.stderr)
	}
	want := map[string]string{
		"a.yaml": strings.Replace(nginxPod, "nginx:1.27", "nginx:1.27@"+d["nginx:1.27"], 1),
		"b.yaml": strings.Replace(escaped, "redis:7.4", "redis:7.4@"+d["redis:7.4"], 1) + "# mine\n",
	}
	if diff := cmp.Diff(want, testfiles.Read(t, dir)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}
