package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/internal/filetx"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/splice"
)

// writeAll works out every file's new bytes, stages each in a filetx.Tx and commits them: all
// files or none. A value that cannot be edited in place, a file outside the paths given behind a
// symbolic link, a new lock whose file exists, or a file that changed during the run fails the
// run with no file written. A DigestLock the run changed gets new images: and nothing else of
// its file changes; a lock the run created goes to the first directory given, or after the
// documents on stdout. Pinned stdin is left in stdin.pinned for the caller to print.
//
// It holds one file at a time: a file whose bytes were dropped once read (input.add) is read
// again, and must be as it was (filetx.Reread), and its bytes go once staged. Errors are
// reported as if every file's new bytes were worked out first and staged after: an edit that
// cannot be made first, then a lock that cannot be created, then the first file that cannot be
// staged, then every file that changed (Commit).
func writeAll(ctx context.Context, files []*input, rep *pin.Report, locks map[*pin.Object]string, paths, roots []string) error {
	byFile := map[string][]int32{} // indices in rep.Findings: a file's findings are copied when it is written
	for i, f := range rep.Findings {
		if f.Object != nil && f.Pinned != "" {
			byFile[f.Object.File] = append(byFile[f.Object.File], int32(i))
		}
	}
	changedLocks := map[string][]*pin.Object{}
	for o, before := range locks {
		if encode(o.Node) != before {
			changedLocks[o.File] = append(changedLocks[o.File], o)
		}
	}
	var tx filetx.Tx
	defer tx.Abort()
	var stdin *input
	var staging error // the first file that cannot be staged
	for _, fl := range files {
		if fl.path == "" {
			stdin = fl
		}
		at, changed := byFile[fl.name], changedLocks[fl.name]
		if len(at) == 0 && len(changed) == 0 {
			continue
		}
		if fl.data == nil { // dropped once read
			if staging == nil {
				staging = fl.outside(roots) // said before a change during the run, which may be a race
			}
			data, err := filetx.Reread(fl.name, fl.snap)
			var ce *filetx.ChangedError
			switch {
			case err != nil && staging == nil && errors.As(err, &ce) && ce.What != "changed":
				staging = err // gone: Stage says so
			case err != nil && staging == nil:
				tx.Refuse(fl.name, err) // Commit says so, with any other file that changed
			}
			if err != nil {
				continue
			}
			fl.data = data
		}
		findings := make([]pin.Finding, len(at))
		for i, j := range at {
			findings[i] = rep.Findings[j]
		}
		if err := fl.render(findings, changed); err != nil {
			return err
		}
		if staging == nil {
			staging = fl.stage(&tx, roots)
		}
		if fl != stdin {
			fl.data, fl.pristine, fl.pinned = nil, nil, nil
		}
	}
	created, err := createdLocks(rep, files, stdin, paths)
	if err != nil {
		return err
	}
	if staging != nil {
		return staging
	}
	for _, fl := range created {
		if err := fl.stage(&tx, roots); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// stage stages the file's pinned bytes in tx, if the run changed the file and it is no stdin.
func (fl *input) stage(tx *filetx.Tx, roots []string) error {
	if fl.pinned == nil || fl.path == "" {
		return nil
	}
	if err := fl.outside(roots); err != nil {
		return err
	}
	return tx.Stage(fl.name, fl.snap, fl.pinned)
}

// outside says that the file is a symbolic link to a file outside roots, which digester does not
// write; nil if it is not.
func (fl *input) outside(roots []string) error {
	if fl.real != "" && !within(fl.real, roots) {
		return &fileError{fl.name, fmt.Sprintf("is a symbolic link to %s, outside the paths given, and digester writes only under them: give %s (or its directory) as a PATH too, or replace the link by the file",
			fl.real, fl.real)}
	}
	return nil
}

// render sets the file's pinned bytes, if the run changed it: its bytes with the values that
// findings pinned edited in place, and the images: of each changed lock written anew (package
// splice).
func (fl *input) render(findings []pin.Finding, locks []*pin.Object) error {
	edits, by, err := fl.pinEdits(findings)
	if err != nil {
		return err
	}
	for _, o := range locks {
		e, err := fl.lockEdit(o)
		if err != nil {
			return err
		}
		edits = append(edits, e)
	}
	if len(edits) == 0 {
		return nil
	}
	if fl.pinned, err = splice.Apply(fl.data, edits); err != nil {
		var se *splice.Error
		switch {
		case !errors.As(err, &se):
			return err
		case se.Index < len(by):
			return pinError(by[se.Index], se)
		}
		return fl.lockError(locks[se.Index-len(by)].Node, "has its images: key where digester cannot write it ("+se.How+")")
	}
	if len(locks) > 0 {
		return checkLocks(fl)
	}
	return nil
}

// fileError is a file that cannot be written, and why.
type fileError struct{ name, msg string }

func (e *fileError) Error() string { return e.name + ": " + e.msg }

// within reports whether the file at real (symbolic links resolved) is under one of roots.
func within(real string, roots []string) bool {
	for _, r := range roots {
		if real == r || strings.HasPrefix(real, r+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// createdLocks returns the files of the DigestLocks the run created: in the first directory
// given, which must not hold a file of that name already; or appended to stdin's documents.
func createdLocks(rep *pin.Report, files []*input, stdin *input, paths []string) ([]*input, error) {
	var created []*input
	for _, o := range rep.Created {
		dir := ""
		for _, p := range paths {
			if fi, err := os.Stat(p); p != "-" && err == nil && fi.IsDir() {
				dir = p
				break
			}
		}
		doc := []byte(encode(o.Node))
		switch {
		case dir != "":
			name := filepath.Join(dir, filepath.FromSlash(o.File))
			if _, err := os.Lstat(name); err == nil {
				return nil, &fileError{name, "exists and " + holds(name, files) + ", so the new DigestLock is not written over it: digester writes a lock only over a DigestLock or as a new file; name another file with --lock-file, or move this one"}
			}
			created = append(created, &input{file: &file{name: name, path: name}, pinned: doc})
		case stdin != nil:
			base := stdin.data
			if stdin.pinned != nil {
				base = stdin.pinned
			}
			stdin.pinned = append(append(append([]byte{}, base...), []byte("---\n")...), doc...)
		default:
			return nil, fmt.Errorf("cannot write the new DigestLock %s: name a directory (the package) or -", o.File)
		}
	}
	return created, nil
}

// holds says what the file at name holds, as read in files.
func holds(name string, files []*input) string {
	real, err := resolve(name) // absolute, as each file's real path is
	if err != nil {
		return "is not a file digester read"
	}
	for _, fl := range files {
		if fl.real != real {
			continue
		}
		objs := fl.objs
		if objs == nil && fl.path != "" { // dropped once read (input.add): read again
			again := &file{name: fl.name, path: fl.path}
			if data, _, err := filetx.Read(fl.path); err == nil {
				again.data = data
				if again.parse() == nil {
					objs = again.objs
				}
			}
		}
		var kinds []string
		for _, o := range objs {
			id := pin.ID{}
			if m := o.Node; m != nil {
				id = identity(m)
			}
			what := strings.TrimSpace(id.String())
			if what == "" { // a scalar or a list as a document, or a mapping with no kind or name
				what = "a document that names no resource"
			}
			kinds = append(kinds, what)
		}
		if len(kinds) == 0 {
			return "holds no resource"
		}
		return "holds " + strings.Join(kinds, ", ")
	}
	return "is not among the files digester read"
}

// identity reads the kind and name of a resource node.
func identity(n *yaml.Node) pin.ID {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	var id pin.ID
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		switch k, v := n.Content[i].Value, n.Content[i+1]; k {
		case "kind":
			id.Kind = v.Value
		case "metadata":
			for j := 0; v.Kind == yaml.MappingNode && j+1 < len(v.Content); j += 2 {
				switch v.Content[j].Value {
				case "name":
					id.Name = v.Content[j+1].Value
				case "namespace":
					id.Namespace = v.Content[j+1].Value
				}
			}
		}
	}
	return id
}

// unwritten makes the report say that no file was written, and why: the findings that said a
// field was pinned or a lock written go, an error finding for each reason comes, and the counts
// of pins are zero. It returns the summary to print; the run has failed, on-error: warn or not.
func unwritten(rep *pin.Report, err error, locks map[*pin.Object]string) string {
	isLock := func(o *pin.Object) bool {
		_, ok := locks[o]
		return ok || slices.Contains(rep.Created, o)
	}
	rep.Findings = slices.DeleteFunc(rep.Findings, func(f pin.Finding) bool {
		return f.Severity == pin.Info && (f.Pinned != "" || f.Object != nil && isLock(f.Object))
	})
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		rep.Findings = append(rep.Findings, errorFinding(e))
	}
	s := &rep.Summary
	s.Failed += len(errs)
	s.Pinned, s.FromLock, s.Refreshed = 0, 0, 0
	why := "the error above"
	if len(errs) > 1 {
		why = fmt.Sprintf("the %d errors above", len(errs))
	}
	return fmt.Sprintf("pinned nothing: no file was written, for %s (%s, %s)", why,
		plural(s.Distinct, "distinct reference"), plural(int(s.Requests), "registry request"))
}

// errorFinding is a write error as a finding, located at its field or file where it names one.
func errorFinding(err error) pin.Finding {
	var fe *fieldError
	if errors.As(err, &fe) {
		f := fe.fd
		return pin.Finding{Severity: pin.Error, Message: fe.msg, Object: f.Object, ID: f.ID, Path: f.Path,
			Line: f.Line, Column: f.Column, Image: f.Image, Node: f.Node}
	}
	var name, msg string
	var file *fileError
	var changed *filetx.ChangedError
	var stage *filetx.StageError
	var commit *filetx.CommitError
	switch {
	case errors.As(err, &file):
		name, msg = file.name, file.msg
	case errors.As(err, &stage):
		name, msg = stage.Path, stage.Err.Error()
	case errors.As(err, &commit):
		name, msg = commit.Path, strings.TrimPrefix(commit.Error(), "write "+commit.Path+": ")
	case errors.As(err, &changed):
		name, msg = changed.Path, strings.TrimPrefix(changed.Error(), changed.Path+" ")+": run digester again"
	default:
		return pin.Finding{Severity: pin.Error, Message: err.Error()}
	}
	return pin.Finding{Severity: pin.Error, Message: msg, Object: &pin.Object{File: name}}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
