// Package filetx writes a set of files all or nothing: the command line's pins, across every file
// of a package.
//
// A Tx is filled one file at a time with Stage, which writes the file's new bytes to a temporary
// file beside it (with the file's owner, group and mode) and keeps only names and a Snapshot of
// what the file was when it was read, so that a caller may drop each file's bytes once staged.
// Commit then checks every file against its snapshot (size, modification time, SHA-256 of the
// bytes) and fails, replacing nothing, if any changed since it was read; otherwise it replaces
// them all, and if one replacement fails, puts back the ones already done. Until a commit ends,
// each original is kept beside its file: a hard link to it, or a copy.
//
// A file is replaced by renaming the temporary file over it, so that it is never seen half
// written. Two kinds are written in place instead, which keeps the inode: a file with more than one
// hard link (a rename would split the links), and a file whose owner a new file cannot be given
// (a run as another user). Symbolic links are followed: the link stays, its target is written.
// A file that did not exist is created, and Commit fails if something took its name meanwhile.
//
// Commit runs as an interrupt.Critical section: SIGINT and SIGTERM never end the process in the
// middle of one, and a context cancelled before it starts writes nothing. Files are not synced to
// disk: the guarantee is against failures of the run and of the file system calls, not power loss.
package filetx

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/digester/digester/internal/interrupt"
)

// Snapshot is what a file was when it was read. The zero Snapshot stands for a file that does not
// exist: Stage creates it.
type Snapshot struct {
	Size    int64
	ModTime time.Time
	Sum     [sha256.Size]byte
	exists  bool
}

// Read returns the bytes of the file at path (following symbolic links) and their snapshot.
func Read(path string) ([]byte, Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Snapshot{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, Snapshot{}, err
	}
	var b bytes.Buffer
	b.Grow(int(fi.Size()) + bytes.MinRead) // one read for the bytes, one for the end, as os.ReadFile
	if _, err := b.ReadFrom(f); err != nil {
		return nil, Snapshot{}, err
	}
	if fi, err = f.Stat(); err != nil { // the time after the read: a change while reading shows
		return nil, Snapshot{}, err
	}
	data := b.Bytes()
	return data, Snapshot{Size: fi.Size(), ModTime: fi.ModTime(), Sum: sha256.Sum256(data), exists: true}, nil
}

// Reread reads the file at path again, for a caller that dropped the bytes Read gave: it returns
// them if the file is still as snap says (size, modification time, SHA-256), a ChangedError if it
// was deleted or changed, or the error reading it.
func Reread(path string, snap Snapshot) ([]byte, error) {
	data, now, err := Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &ChangedError{Path: path, What: "was deleted or moved away"}
	case err != nil:
		return nil, err
	case now.Size != snap.Size || !now.ModTime.Equal(snap.ModTime) || now.Sum != snap.Sum:
		return nil, &ChangedError{Path: path, What: "changed"}
	}
	return data, nil
}

// ChangedError is a file that changed between its Read and the Commit; no file was written.
type ChangedError struct {
	Path string
	What string // "changed", "was deleted or moved away", "was created"
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("%s %s since digester read it, so it was not overwritten", e.Path, e.What)
}

// CommitError is a replacement that failed during a Commit, after which the files already
// replaced were put back (Restored); those that could not be are in Stuck, each with where its
// original is kept.
type CommitError struct {
	Path     string
	Err      error
	Restored int
	Stuck    []error
}

func (e *CommitError) Error() string {
	msg := fmt.Sprintf("write %s: %v", e.Path, e.Err)
	switch {
	case e.Restored == 1:
		msg += "; the file written before it was put back"
	case e.Restored > 1:
		msg += fmt.Sprintf("; the %d files written before it were put back", e.Restored)
	}
	for _, s := range e.Stuck {
		msg += "; " + s.Error()
	}
	return msg
}

func (e *CommitError) Unwrap() error { return e.Err }

// StageError is a file that could not be staged: no file was written.
type StageError struct {
	Path string
	Err  error
}

func (e *StageError) Error() string { return fmt.Sprintf("write %s: %v", e.Path, e.Err) }

func (e *StageError) Unwrap() error { return e.Err }

// how a staged file is written.
type how int

const (
	replace how = iota // rename the temporary file over the file
	inPlace            // copy the new bytes into the file itself
	create             // link the temporary file to the file's name, which must be free
)

// staged is one file of a Tx.
type staged struct {
	name   string // as given to Stage, for messages
	path   string // the file written: name with symbolic links resolved
	snap   Snapshot
	how    how
	tmp    string   // the new bytes
	backup string   // the original while the commit runs; in place: a copy made by Stage
	dirs   []string // directories Stage made for a new file, deepest first
	done   bool     // the file was (perhaps partly) written
	// refused is why the file cannot be written (Refuse): Commit fails with it.
	refused error
}

// Tx is a set of files to replace together. The zero Tx is empty and ready to use; a Tx is not
// safe for concurrent use.
type Tx struct {
	files []*staged
	// rename is os.Rename; tests make it fail.
	rename func(oldpath, newpath string) error
}

// Stage writes data to a temporary file beside the file at name, to replace it by Commit. snap is
// what the file was when it was read (the zero Snapshot: a new file). On error nothing is left
// behind by this call; earlier Stages stay until Commit or Abort.
func (tx *Tx) Stage(name string, snap Snapshot, data []byte) error {
	s := &staged{name: name, path: name, snap: snap}
	var err error
	if snap.exists {
		err = s.stageExisting(data)
	} else {
		err = s.stageNew(data)
	}
	if err != nil {
		s.clean(true)
		if _, ok := err.(*ChangedError); !ok {
			err = &StageError{Path: name, Err: err}
		}
		return err
	}
	tx.files = append(tx.files, s)
	return nil
}

// Refuse adds to the Tx a file that cannot be written as it was read (err: a ChangedError from
// Reread, or the error rereading it): Commit fails, with err among the errors of the files that
// changed, in the order the files were staged, and writes nothing.
func (tx *Tx) Refuse(name string, err error) {
	tx.files = append(tx.files, &staged{name: name, path: name, refused: err})
}

func (s *staged) stageExisting(data []byte) error {
	fi, err := os.Lstat(s.name)
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 { // write the link's target, not the link
		if s.path, err = filepath.EvalSymlinks(s.name); err == nil {
			fi, err = os.Stat(s.path)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return &ChangedError{Path: s.name, What: "was deleted or moved away"}
	}
	if err != nil {
		return err
	}
	real := s.path
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	st, _ := fi.Sys().(*syscall.Stat_t)
	if st != nil && st.Nlink > 1 {
		s.how = inPlace
	}
	if s.tmp, err = s.writeTemp(bytes.NewReader(data)); err != nil {
		return err
	}
	if s.how == replace {
		if err := setMeta(s.tmp, st, mode); errors.Is(err, fs.ErrPermission) {
			s.how = inPlace // this user cannot give a new file the owner: keep the file's own inode
		} else if err != nil {
			return err
		}
	}
	if s.how == inPlace {
		f, err := os.OpenFile(real, os.O_WRONLY, 0) // fail now, not half way through the commit
		if err != nil {
			return fmt.Errorf("cannot write it in place (it has other hard links, or an owner a new file cannot be given): %w", err)
		}
		f.Close()
		return s.copyOriginal()
	}
	return nil
}

// copyOriginal copies the file, as its snapshot says it is, to the backup a failed commit writes
// back in place.
func (s *staged) copyOriginal() error {
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if s.backup, err = s.writeTemp(io.TeeReader(f, h)); err != nil {
		return err
	}
	if [sha256.Size]byte(h.Sum(nil)) != s.snap.Sum {
		return &ChangedError{Path: s.name, What: "changed"}
	}
	return nil
}

func (s *staged) stageNew(data []byte) error {
	s.how = create
	if _, err := os.Lstat(s.name); err == nil {
		return &ChangedError{Path: s.name, What: "was created"}
	}
	dir, err := filepath.Abs(filepath.Dir(s.name))
	if err != nil {
		return err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		s.dirs = append(s.dirs, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if s.tmp, err = s.writeTemp(bytes.NewReader(data)); err != nil {
		return err
	}
	return os.Chmod(s.tmp, 0o644)
}

// writeTemp writes r to a new temporary file beside the file and returns its name.
func (s *staged) writeTemp(r io.Reader) (string, error) {
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(s.path)+".digester-*")
	if err != nil {
		return "", fmt.Errorf("cannot create a temporary file in %s: %w", dir, cause(err))
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("cannot write a temporary file in %s: %w", dir, cause(err))
	}
	return f.Name(), nil
}

// setMeta gives the file at path the owner, group and mode of the original (st, mode): the owner
// first, since a change of owner clears the set-user-ID and set-group-ID bits.
func setMeta(path string, st *syscall.Stat_t, mode fs.FileMode) error {
	if st != nil {
		fi, err := os.Stat(path)
		if err != nil {
			return err
		}
		if own, _ := fi.Sys().(*syscall.Stat_t); own == nil || own.Uid != st.Uid || own.Gid != st.Gid {
			if err := os.Chown(path, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
	}
	return os.Chmod(path, mode)
}

// Commit replaces every staged file, or none: see the package comment. It fails before writing
// anything if ctx is done or if a file changed since it was read (a ChangedError for each such
// file, joined). Temporary files and backups are gone when it returns, except a backup that
// could not be put back, which the CommitError names.
func (tx *Tx) Commit(ctx context.Context) (err error) {
	defer tx.Abort()
	interrupt.Critical(func() {
		if err = ctx.Err(); err != nil {
			err = fmt.Errorf("stopped before writing any file: %w", err)
			return
		}
		var changed []error
		buf := make([]byte, 32<<10)
		for _, s := range tx.files {
			if err := s.verify(buf); err != nil {
				changed = append(changed, err)
			}
		}
		if err = errors.Join(changed...); err != nil {
			return
		}
		for i, s := range tx.files {
			if werr := tx.write(s); werr != nil {
				err = tx.rollback(i, s, werr)
				return
			}
		}
	})
	return err
}

// verify checks that the file is as its snapshot says, reading it through buf.
func (s *staged) verify(buf []byte) error {
	if s.refused != nil {
		return s.refused
	}
	if !s.snap.exists {
		if _, err := os.Lstat(s.name); err == nil {
			return &ChangedError{Path: s.name, What: "was created"}
		}
		return nil
	}
	fi, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &ChangedError{Path: s.name, What: "was deleted or moved away"}
	}
	if err != nil {
		return err
	}
	if fi.Size() != s.snap.Size || !fi.ModTime().Equal(s.snap.ModTime) {
		return &ChangedError{Path: s.name, What: "changed"}
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil { // not f's WriteTo, which allocates a buffer per file
		return err
	}
	if [sha256.Size]byte(h.Sum(nil)) != s.snap.Sum {
		return &ChangedError{Path: s.name, What: "changed"}
	}
	return nil
}

func (tx *Tx) renameFile(oldpath, newpath string) error {
	if tx.rename != nil {
		return tx.rename(oldpath, newpath)
	}
	return os.Rename(oldpath, newpath)
}

// write writes one staged file.
func (tx *Tx) write(s *staged) error {
	switch s.how {
	case create:
		err := os.Link(s.tmp, s.path) // fails if the name was taken since verify
		if errors.Is(err, fs.ErrExist) {
			return &ChangedError{Path: s.name, What: "was created"}
		}
		if err != nil { // a file system without hard links
			if err = tx.renameFile(s.tmp, s.path); err != nil {
				return fmt.Errorf("cannot create it: %w", cause(err))
			}
			s.tmp = ""
		}
		s.done = true
		return nil
	case inPlace:
		s.done = true
		if err := copyInto(s.path, s.tmp); err != nil {
			return fmt.Errorf("cannot write it in place: %w", cause(err))
		}
		return nil
	}
	backup, err := s.keepOriginal()
	if err != nil {
		return fmt.Errorf("cannot keep a copy of it to put back on failure: %w", cause(err))
	}
	s.backup = backup
	if err := tx.renameFile(s.tmp, s.path); err != nil {
		return fmt.Errorf("cannot replace it: %w", cause(err))
	}
	s.tmp, s.done = "", true
	return nil
}

// cause is the system's error inside a path or link error: the message names the file anyway.
// A system call's name goes too: io.Copy's copy_file_range or sendfile is no news to the user,
// and a kernel that lacks them reports the same failure as a plain write.
func cause(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	var se *os.SyscallError
	switch {
	case errors.As(err, &le):
		err = le.Err
	case errors.As(err, &pe):
		err = pe.Err
	}
	if errors.As(err, &se) {
		err = se.Err
	}
	return err
}

// keepOriginal makes a hard link to the file beside it (a copy where links cannot be made),
// which puts it back if the commit fails.
func (s *staged) keepOriginal() (string, error) {
	var suffix [8]byte
	rand.Read(suffix[:])
	backup := filepath.Join(filepath.Dir(s.path), "."+filepath.Base(s.path)+".digester-backup-"+hex.EncodeToString(suffix[:]))
	if err := os.Link(s.path, backup); err == nil {
		return backup, nil
	}
	f, err := os.Open(s.path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	tmp, err := s.writeTemp(f)
	if err != nil {
		return "", err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if err := setMeta(tmp, st, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

// copyInto writes the bytes of the file src into the file dst, keeping dst's inode.
func copyInto(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Truncate(n)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// rollback puts back the files written before files[i] failed with err, and s itself if it was
// partly written, and returns the CommitError that says so.
func (tx *Tx) rollback(i int, failed *staged, err error) error {
	ce := &CommitError{Path: failed.name, Err: err}
	for j := i; j >= 0; j-- {
		s := tx.files[j]
		if !s.done {
			continue
		}
		if rerr := tx.restore(s); rerr != nil {
			ce.Stuck = append(ce.Stuck, rerr)
		} else if j < i {
			ce.Restored++
		}
	}
	return ce
}

// restore puts a written file back as it was.
func (tx *Tx) restore(s *staged) error {
	var err error
	switch s.how {
	case create:
		err = os.Remove(s.path)
		for _, d := range s.dirs {
			os.Remove(d) // only if empty: another file may have come
		}
	case inPlace:
		err = copyInto(s.path, s.backup)
	default:
		if err = tx.renameFile(s.backup, s.path); err == nil {
			s.backup = ""
		}
	}
	if err != nil {
		err = fmt.Errorf("%s could not be put back (%v): it holds the new bytes, and its original is kept in %s", s.name, err, s.backup)
		s.backup = "" // kept for the user
		return err
	}
	s.done = false
	return nil
}

// Abort removes the temporary files and backups of every staged file and empties the Tx. After
// a Commit it has nothing to do; before one, it writes nothing.
func (tx *Tx) Abort() {
	for _, s := range tx.files {
		s.clean(!s.done && s.how == create)
	}
	tx.files = nil
}

// clean removes the staged file's temporary file and backup, and the directories it made, if
// dirs.
func (s *staged) clean(dirs bool) {
	for _, p := range []string{s.tmp, s.backup} {
		if p != "" {
			os.Remove(p)
		}
	}
	s.tmp, s.backup = "", ""
	if dirs {
		for _, d := range s.dirs {
			os.Remove(d)
		}
	}
}
