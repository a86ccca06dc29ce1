package filetx

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tree returns every file and symbolic link under dir: content for files, "-> target" for links.
// Temporary files and backups left behind show up in it.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			out[rel] = "-> " + target
			return err
		case d.IsDir():
			out[rel+"/"] = ""
		default:
			b, err := os.ReadFile(p)
			out[rel] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, p string) Snapshot {
	t.Helper()
	_, snap, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// fixture is a directory with a file replaced by rename (a.yaml), one written in place for its
// second hard link (b.yaml, also hard/b.yaml), one behind a symbolic link (link.yaml ->
// c.yaml), and the name of a new file in a directory that does not exist yet (new/d.yaml).
type fixture struct {
	dir  string
	tx   *Tx
	want map[string]string // the tree after a successful commit
	orig map[string]string // the tree before
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"hard"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dir, "a.yaml"), "a\n")
	write(t, filepath.Join(dir, "b.yaml"), "b\n")
	write(t, filepath.Join(dir, "c.yaml"), "c\n")
	if err := os.Link(filepath.Join(dir, "b.yaml"), filepath.Join(dir, "hard", "b.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("c.yaml", filepath.Join(dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	f := &fixture{dir: dir, tx: &Tx{}, orig: tree(t, dir)}
	stage := func(name string, snap Snapshot, data string) {
		if err := f.tx.Stage(filepath.Join(dir, name), snap, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	stage("a.yaml", read(t, filepath.Join(dir, "a.yaml")), "a pinned\n")
	stage("b.yaml", read(t, filepath.Join(dir, "b.yaml")), "b pinned, longer\n")
	stage("link.yaml", read(t, filepath.Join(dir, "link.yaml")), "c pinned\n")
	stage("new/d.yaml", Snapshot{}, "d\n")
	f.want = map[string]string{
		"a.yaml": "a pinned\n", "b.yaml": "b pinned, longer\n", "hard/": "", "hard/b.yaml": "b pinned, longer\n",
		"c.yaml": "c pinned\n", "link.yaml": "-> c.yaml", "new/": "", "new/d.yaml": "d\n",
	}
	return f
}

// TestCommit: every staged file is written as its kind requires, and nothing else is left.
func TestCommit(t *testing.T) {
	f := newFixture(t)
	a, _ := os.Stat(filepath.Join(f.dir, "a.yaml"))
	if err := f.tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f.want, tree(t, f.dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	b1, _ := os.Stat(filepath.Join(f.dir, "b.yaml"))
	b2, _ := os.Stat(filepath.Join(f.dir, "hard", "b.yaml"))
	if !os.SameFile(b1, b2) {
		t.Error("b.yaml and hard/b.yaml are no longer one file")
	}
	if a2, _ := os.Stat(filepath.Join(f.dir, "a.yaml")); os.SameFile(a, a2) {
		t.Error("a.yaml was written in place, not replaced")
	}
}

// TestCommitKeepsOwnerAndMode: the replacement has the original's owner, group and mode,
// set-user-ID, set-group-ID and sticky bits included.
func TestCommitKeepsOwnerAndMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.yaml")
	write(t, p, "a\n")
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 1234, 5678
		if err := os.Chown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	const mode = fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky | 0o640
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	st := rewrite(t, p)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	type meta struct {
		Mode     fs.FileMode
		UID, GID int
	}
	if diff := cmp.Diff(meta{mode, uid, gid}, meta{fi.Mode(), int(st.Uid), int(st.Gid)}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestCommitRefusesChangedFiles: a file that changed since it was read, in any way, fails the
// commit with an error naming it, and no file is written.
func TestCommitRefusesChangedFiles(t *testing.T) {
	for _, tt := range []struct {
		name string
		file string
		act  func(t *testing.T, p string)
		what string
	}{
		{"appended", "a.yaml", func(t *testing.T, p string) {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("more\n")
			f.Close()
		}, "changed"},
		{"same size and time, other bytes", "a.yaml", func(t *testing.T, p string) {
			fi, _ := os.Stat(p)
			write(t, p, "A\n")
			os.Chtimes(p, fi.ModTime(), fi.ModTime())
		}, "changed"},
		{"touched", "b.yaml", func(t *testing.T, p string) {
			now := time.Now().Add(time.Hour)
			os.Chtimes(p, now, now)
		}, "changed"},
		{"through its link", "link.yaml", func(t *testing.T, p string) { write(t, p, "C\n") }, "changed"},
		{"deleted", "a.yaml", func(t *testing.T, p string) { os.Remove(p) }, "was deleted or moved away"},
		{"created", "new/d.yaml", func(t *testing.T, p string) { write(t, p, "mine\n") }, "was created"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			p := filepath.Join(f.dir, tt.file)
			tt.act(t, p)
			before := tree(t, f.dir)
			for k := range before { // the staged temporary files go with the failed commit
				if strings.Contains(k, ".digester-") {
					delete(before, k)
				}
			}
			if _, ok := before["new/d.yaml"]; !ok { // and the directory made for new/d.yaml
				delete(before, "new/")
			}
			err := f.tx.Commit(context.Background())
			var ce *ChangedError
			if !errors.As(err, &ce) || ce.Path != p || ce.What != tt.what {
				t.Fatalf("err = %v; want a ChangedError for %s: %s", err, p, tt.what)
			}
			if diff := cmp.Diff(before, tree(t, f.dir)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCommitRollsBack: when a replacement fails after others were done, those are put back —
// a renamed file as the very inode it was, a file written in place byte for byte, a new file
// and its new directory removed — and no temporary file or backup is left.
func TestCommitRollsBack(t *testing.T) {
	f := newFixture(t)
	p := filepath.Join(f.dir, "z.yaml") // staged last, after every other kind was written
	write(t, p, "z\n")
	if err := f.tx.Stage(p, read(t, p), []byte("z pinned\n")); err != nil {
		t.Fatal(err)
	}
	f.orig["z.yaml"] = "z\n"
	a, _ := os.Stat(filepath.Join(f.dir, "a.yaml"))
	f.tx.rename = func(oldpath, newpath string) error {
		if newpath == p {
			return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.ENOSPC}
		}
		return os.Rename(oldpath, newpath)
	}
	err := f.tx.Commit(context.Background())
	want := "write " + p + ": cannot replace it: no space left on device; the 4 files written before it were put back"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if diff := cmp.Diff(f.orig, tree(t, f.dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	if a2, _ := os.Stat(filepath.Join(f.dir, "a.yaml")); !os.SameFile(a, a2) {
		t.Error("a.yaml was put back as a copy, not as the file it was")
	}
}

// TestCommitCanceled: a commit whose context is done writes nothing.
func TestCommitCanceled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.tx.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff(f.orig, tree(t, f.dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

// TestStageFails: a file that cannot be staged is an error naming it; Abort then leaves the
// tree as it was, the earlier files' temporary files included.
func TestStageFails(t *testing.T) {
	f := newFixture(t)
	bad := filepath.Join(f.dir, "a.yaml", "x.yaml") // under a file
	err := f.tx.Stage(bad, Snapshot{}, []byte("x\n"))
	var se *StageError
	if !errors.As(err, &se) || se.Path != bad || !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("err = %v; want a StageError for %s: not a directory", err, bad)
	}
	f.tx.Abort()
	if diff := cmp.Diff(f.orig, tree(t, f.dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	if err := f.tx.Commit(context.Background()); err != nil { // an empty Tx commits nothing
		t.Error(err)
	}
	if diff := cmp.Diff(f.orig, tree(t, f.dir)); diff != "" {
		t.Errorf("tree after an empty commit (-want +got):\n%s", diff)
	}
}

// TestStageWritesOnlyTemporaryFiles: Stage writes nothing but its own hidden files (and the
// directory of a new file), which Abort removes.
func TestStageWritesOnlyTemporaryFiles(t *testing.T) {
	f := newFixture(t)
	got := tree(t, f.dir)
	var extra []string
	for k, v := range got {
		if o, ok := f.orig[k]; !ok || o != v {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		if base := filepath.Base(strings.TrimSuffix(k, "/")); !strings.HasPrefix(base, ".") || !strings.Contains(base, ".digester-") {
			if k != "new/" { // the new file's directory, made by Stage
				t.Errorf("Stage wrote %s", k)
			}
		}
	}
	f.tx.Abort()
	if diff := cmp.Diff(f.orig, tree(t, f.dir)); diff != "" {
		t.Errorf("tree after Abort (-want +got):\n%s", diff)
	}
}

// TestCommitKeepsOwner: a replacement gets the original's owner and group when only one of them
// differs from the user's own, as when both do (TestCommitKeepsOwnerAndMode). It needs root.
func TestCommitKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	for _, own := range []struct{ uid, gid int }{{1234, os.Getegid()}, {os.Geteuid(), 5678}} {
		dir := t.TempDir()
		p := filepath.Join(dir, "a.yaml")
		write(t, p, "a\n")
		if err := os.Chown(p, own.uid, own.gid); err != nil {
			t.Fatal(err)
		}
		st := rewrite(t, p)
		if int(st.Uid) != own.uid || int(st.Gid) != own.gid {
			t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, own.uid, own.gid)
		}
	}
}

// TestCommitErrorSaysWhatWasPutBack: the error of a failed commit says how many files written
// before the failing one were put back — none, one, several — and names each file that could not
// be put back, with where its original is kept; that copy is left for the user.
func TestCommitErrorSaysWhatWasPutBack(t *testing.T) {
	enospc := func(tx *Tx, fail func(oldpath, newpath string) bool) {
		tx.rename = func(oldpath, newpath string) error {
			if fail(oldpath, newpath) {
				return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.ENOSPC}
			}
			return os.Rename(oldpath, newpath)
		}
	}
	stage := func(t *testing.T, tx *Tx, dir string, names ...string) {
		t.Helper()
		for _, n := range names {
			p := filepath.Join(dir, n)
			write(t, p, n+" old\n")
			if err := tx.Stage(p, read(t, p), []byte(n+" new\n")); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, tt := range []struct {
		names []string // staged in this order; the last one fails
		put   string   // what the error says after the failure
	}{
		{[]string{"z.yaml"}, ""},
		{[]string{"a.yaml", "z.yaml"}, "; the file written before it was put back"},
		{[]string{"a.yaml", "b.yaml", "z.yaml"}, "; the 2 files written before it were put back"},
	} {
		dir := t.TempDir()
		tx := &Tx{}
		stage(t, tx, dir, tt.names...)
		z := filepath.Join(dir, "z.yaml")
		enospc(tx, func(_, newpath string) bool { return newpath == z })
		err := tx.Commit(context.Background())
		if want := "write " + z + ": cannot replace it: no space left on device" + tt.put; err == nil || err.Error() != want {
			t.Errorf("err = %v\nwant %s", err, want)
		}
		want := map[string]string{}
		for _, n := range tt.names {
			want[n] = n + " old\n"
		}
		if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
			t.Errorf("tree (-want +got):\n%s", diff)
		}
	}

	t.Run("a file that cannot be put back", func(t *testing.T) {
		dir := t.TempDir()
		tx := &Tx{}
		stage(t, tx, dir, "a.yaml", "b.yaml", "z.yaml")
		a, z := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "z.yaml")
		enospc(tx, func(oldpath, newpath string) bool {
			return newpath == z || newpath == a && strings.Contains(oldpath, ".digester-backup-")
		})
		err := tx.Commit(context.Background())
		got := tree(t, dir)
		var backup string
		for k := range got {
			if strings.HasPrefix(k, ".a.yaml.digester-backup-") {
				backup = filepath.Join(dir, k)
			}
		}
		if backup == "" {
			t.Fatalf("no backup of a.yaml kept: %v", got)
		}
		want := "write " + z + ": cannot replace it: no space left on device; the file written before it was put back; " +
			a + " could not be put back (rename " + backup + " " + a + ": no space left on device): it holds the new bytes, and its original is kept in " + backup
		if err == nil || err.Error() != want {
			t.Errorf("err = %v\nwant %s", err, want)
		}
		var ce *CommitError
		if !errors.As(err, &ce) || ce.Restored != 1 || len(ce.Stuck) != 1 {
			t.Errorf("err = %#v; want a CommitError with 1 restored, 1 stuck", err)
		}
		wantTree := map[string]string{"a.yaml": "a.yaml new\n", filepath.Base(backup): "a.yaml old\n", "b.yaml": "b.yaml old\n", "z.yaml": "z.yaml old\n"}
		if diff := cmp.Diff(wantTree, got); diff != "" {
			t.Errorf("tree (-want +got):\n%s", diff)
		}
	})
}

// TestCommitModes: a file written through a symbolic link keeps its own mode, not the link's
// (0777); a new file is created with mode 0644, not the 0600 of a temporary file.
func TestCommitModes(t *testing.T) {
	dir := t.TempDir()
	c, link, d := filepath.Join(dir, "c.yaml"), filepath.Join(dir, "link.yaml"), filepath.Join(dir, "new", "d.yaml")
	write(t, c, "c\n")
	if err := os.Chmod(c, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("c.yaml", link); err != nil {
		t.Fatal(err)
	}
	tx := &Tx{}
	if err := tx.Stage(link, read(t, link), []byte("c pinned\n")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Stage(d, Snapshot{}, []byte("d\n")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{c: 0o640, d: 0o644} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, want)
		}
	}
	if diff := cmp.Diff(map[string]string{"c.yaml": "c pinned\n", "link.yaml": "-> c.yaml", "new/": "", "new/d.yaml": "d\n"}, tree(t, dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

// TestStageRefusesChangedFile: a file written in place (it has a second hard link) is copied
// aside by Stage, to be put back if the commit fails; if it changed since it was read, Stage
// fails with a ChangedError and leaves no temporary file.
func TestStageRefusesChangedFile(t *testing.T) {
	dir := t.TempDir()
	b := filepath.Join(dir, "b.yaml")
	write(t, b, "b\n")
	if err := os.Link(b, filepath.Join(dir, "b2.yaml")); err != nil {
		t.Fatal(err)
	}
	snap := read(t, b)
	write(t, b, "B\n")
	tx := &Tx{}
	err := tx.Stage(b, snap, []byte("b pinned\n"))
	var ce *ChangedError
	if !errors.As(err, &ce) || ce.Path != b || ce.What != "changed" {
		t.Errorf("err = %v; want a ChangedError for %s: changed", err, b)
	}
	if diff := cmp.Diff(map[string]string{"b.yaml": "B\n", "b2.yaml": "B\n"}, tree(t, dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

// TestCommitRollsBackPartWrite: a file written in place that fails part way (here past the
// process's file size limit) is put back byte for byte with the files written before it, and
// the error counts only those as put back.
func TestCommitRollsBackPartWrite(t *testing.T) {
	if ranInChild(t) {
		return
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	write(t, a, "a\n")
	write(t, b, "b\n")
	if err := os.Link(b, filepath.Join(dir, "b2.yaml")); err != nil {
		t.Fatal(err)
	}
	orig := tree(t, dir)
	tx := &Tx{}
	if err := tx.Stage(a, read(t, a), []byte("a pinned\n")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Stage(b, read(t, b), []byte(strings.Repeat("b pinned\n", 100))); err != nil {
		t.Fatal(err)
	}
	var err error
	fileSizeLimit(t, 512, func() { err = tx.Commit(context.Background()) })
	want := "write " + b + ": cannot write it in place: file too large; the file written before it was put back"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if diff := cmp.Diff(orig, tree(t, dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

// fileSizeLimit runs f with the process's file size limit lowered to n bytes: a write past it
// fails with EFBIG (Go ignores SIGXFSZ). The tests of this package do not run in parallel.
// childEnv names, in a child process ranInChild starts, the test it runs.
const childEnv = "FILETX_TEST_CHILD"

// ranInChild runs the test t in a child process of the test binary, alone, and reports whether it
// did so (then the test has passed or failed with the child): a test that lowers the file size
// limit, which is the whole process's, must not do it where the test binary's own files (its log
// of the files a test opens, already past the limit) are written. In the child it returns false
// and the test runs.
func ranInChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return false
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in a child process: %v\n%s", t.Name(), err, out)
	}
	return true
}

func fileSizeLimit(t *testing.T, n uint64, f func()) {
	t.Helper()
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	low := limit
	low.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &low); err != nil {
		t.Skipf("cannot lower the file size limit: %v", err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
			t.Fatal(err)
		}
	}()
	f()
}

// TestStageFailsPartWrite: new bytes that cannot be written whole to the temporary file (here
// past the file size limit) fail the Stage, for a file that exists and for a new one, and leave
// no temporary file behind: a part of them is never committed.
func TestStageFailsPartWrite(t *testing.T) {
	if ranInChild(t) {
		return
	}
	dir := t.TempDir()
	a, n := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "n.yaml")
	write(t, a, "a\n")
	snap := read(t, a)
	data := []byte(strings.Repeat("pinned\n", 100))
	tx := &Tx{}
	var errA, errN error
	fileSizeLimit(t, 512, func() {
		errA = tx.Stage(a, snap, data)
		errN = tx.Stage(n, Snapshot{}, data)
	})
	for p, err := range map[string]error{a: errA, n: errN} {
		if want := "write " + p + ": cannot write a temporary file in " + dir + ": file too large"; err == nil || err.Error() != want {
			t.Errorf("err = %v\nwant %s", err, want)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"a.yaml": "a\n"}, tree(t, dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

// TestReread: a file read again is its bytes as Read gave them while it is as its snapshot says,
// and a ChangedError once it changed in any way or went (the command line drops a file's bytes
// once read, and reads it again to write it).
func TestReread(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.yaml")
	write(t, p, "a: 1\n")
	data, snap, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Reread(p, snap); err != nil || string(got) != string(data) {
		t.Fatalf("Reread of an unchanged file = %q, %v; want %q", got, err, data)
	}
	for _, tt := range []struct {
		name string
		act  func()
		what string
	}{
		{"touched", func() { later := snap.ModTime.Add(time.Hour); os.Chtimes(p, later, later) }, "changed"},
		{"same size and time, other bytes", func() { write(t, p, "a: 2\n"); os.Chtimes(p, snap.ModTime, snap.ModTime) }, "changed"},
		{"deleted", func() { os.Remove(p) }, "was deleted or moved away"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			write(t, p, "a: 1\n")
			os.Chtimes(p, snap.ModTime, snap.ModTime)
			tt.act()
			got, err := Reread(p, snap)
			var ce *ChangedError
			if !errors.As(err, &ce) || ce.Path != p || ce.What != tt.what || got != nil {
				t.Fatalf("Reread = %q, %v; want a ChangedError for %s: %s", got, err, p, tt.what)
			}
		})
	}
}

// TestRefuse: a file refused fails the commit with its error, among those of the staged files
// that changed and in their order, and nothing is written.
func TestRefuse(t *testing.T) {
	f := newFixture(t)
	a := filepath.Join(f.dir, "a.yaml")
	write(t, a, "a changed\n")
	refused := &ChangedError{Path: filepath.Join(f.dir, "e.yaml"), What: "changed"}
	f.tx.Refuse(refused.Path, refused)
	before := tree(t, f.dir)
	err := f.tx.Commit(context.Background())
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("err = %v, want the joined errors of a.yaml and e.yaml", err)
	}
	var got []string
	for _, e := range j.Unwrap() {
		got = append(got, e.Error())
	}
	want := []string{a + " changed since digester read it, so it was not overwritten", refused.Error()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	for k := range before { // the staged temporary files go with the failed commit
		if strings.Contains(k, ".digester-") || k == "new/" {
			delete(before, k)
		}
	}
	if diff := cmp.Diff(before, tree(t, f.dir)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

// rewrite replaces the file at p with "b\n" in a transaction of its own and returns its status
// after.
func rewrite(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	tx := &Tx{}
	if err := tx.Stage(p, read(t, p), []byte("b\n")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}
