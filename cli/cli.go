// Package cli is digester's command line, for CI runners and shells without kpt:
//
//	digester pin [flags] PATH...    pin the manifests under each file or directory, in place
//	digester check [flags] PATH...  report every image field that pin would change
//
// It is a front end over the pinning core (package pin), as the KRM function is. Files are found
// as kpt finds a package's (kyaml's package reader: *.yaml and *.yml, .krmignore honoured), each
// YAML document becomes a pin.Object (the items of a kind: List each become one), and a pinned
// value is written back by inserting "@sha256:…" after the value's own bytes: everything else in a
// file, comments, quoting, indentation, line endings, stays byte for byte. Runs are all or
// nothing: when an image cannot be pinned, or a value cannot be edited in place, no file is
// written, and the files are replaced together or not at all (package filetx: a file changed since
// it was read is not overwritten, a failure part way puts back what was done). "-" reads YAML
// documents on stdin and writes them, pinned, on stdout.
package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/digester/digester/config"
	"github.com/digester/digester/internal/filetx"
	"github.com/digester/digester/internal/interrupt"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
)

// Env is what a run sees of its surroundings.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Getenv reads the environment (SKIP_PREFIXES).
	Getenv func(string) string
	// Version and Commit are printed by --version.
	Version, Commit string
	// Resolver options are added to the configuration's; tests set a transport and keychain.
	Resolver []resolver.Option
}

// Exit codes.
const (
	ExitOK    = 0 // done: everything pinned (pin), nothing to change (check)
	ExitFail  = 1 // an image could not be pinned (pin), a field is not pinned (check)
	ExitUsage = 2 // the command line or its configuration is wrong
)

// Main runs the command line args (without the program name) and returns the exit code. A panic
// (a bug) is an error: exit 1, and a message that says where it happened.
func Main(ctx context.Context, args []string, env Env) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(env.Stderr, "digester: internal error (a bug in digester: please report it, with the input): %v, at %s\n", r, PanicSite())
			code = ExitFail
		}
	}()
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	switch cmd := args[0]; cmd {
	case "pin", "check":
		return run(ctx, cmd, args[1:], env)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(env.Stdout, Usage())
		return ExitOK
	case "-version", "--version", "version":
		fmt.Fprintf(env.Stdout, "digester %s (commit %s)\n", env.Version, env.Commit)
		return ExitOK
	default:
		return usageError(env, hint(cmd))
	}
}

// PanicSite names the function and line a panic being recovered came from: the first frame
// below the runtime's panic machinery. Call it from the deferred function that recovers.
func PanicSite() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	inPanic := false
	for {
		fr, more := frames.Next()
		switch {
		case fr.Function == "runtime.gopanic" || strings.HasPrefix(fr.Function, "runtime.panic"):
			inPanic = true
		case inPanic && !strings.HasPrefix(fr.Function, "runtime."):
			return fmt.Sprintf("%s (%s:%d)", fr.Function[strings.LastIndex(fr.Function, "/")+1:], filepath.Base(fr.File), fr.Line)
		}
		if !more {
			return "an unknown place"
		}
	}
}

// hint says what was probably meant by an unknown first argument.
func hint(arg string) string {
	switch {
	case strings.HasPrefix(arg, "-"):
		return fmt.Sprintf("unknown flag %s: flags come after the command (digester pin %s PATH)", arg, arg)
	case strings.Contains(arg, "="):
		key, value, _ := strings.Cut(arg, "=")
		return fmt.Sprintf("unknown command %q: settings are flags: digester pin --%s=%s PATH", arg, key, value)
	}
	if _, err := os.Stat(arg); err == nil {
		return fmt.Sprintf("unknown command %q: to pin it, run digester pin %s (digester check %s only reports)", arg, arg, arg)
	}
	return fmt.Sprintf("unknown command %q", arg)
}

func usageError(env Env, msg string) int {
	fmt.Fprintf(env.Stderr, "digester: %s\n\n%sRun digester --help for the flags.\n", msg, synopsis)
	return ExitUsage
}

// flags is a parsed command line of pin or check.
type flags struct {
	settings config.Flags
	output   string
	paths    []string
	help     bool
}

func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("digester", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported with the whole usage, below
	f.settings.Register(fs)
	fs.StringVar(&f.output, "output", "text", "")
	fs.BoolVar(&f.help, "help", false, "")
	fs.BoolVar(&f.help, "h", false, "")
	return fs
}

// parseFlags parses flags and paths in any order; "--" ends the flags.
func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := newFlagSet(f)
	for {
		if err := fs.Parse(args); err != nil {
			if e := f.settings.Err(); e != nil {
				return nil, e
			}
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return f, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			f.paths = append(f.paths, rest...)
			return f, nil
		}
		f.paths = append(f.paths, rest[0])
		args = rest[1:]
	}
}

func run(ctx context.Context, cmd string, args []string, env Env) int {
	f, err := parseFlags(args)
	if err != nil {
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = "unknown flag --" + strings.TrimPrefix(name, "-")
		} else if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
			msg = "--" + strings.TrimPrefix(name, "-") + " needs a value"
		}
		return usageError(env, fmt.Sprintf("%s: %s", cmd, msg))
	}
	if f.help {
		fmt.Fprint(env.Stdout, Usage())
		return ExitOK
	}
	if len(f.paths) == 0 {
		return usageError(env, fmt.Sprintf("%s: no PATH given (a file, a directory, or - for stdin)", cmd))
	}
	if f.output != "text" && f.output != "json" && f.output != "github" {
		return usageError(env, fmt.Sprintf("%s: --output %q: want text, json or github", cmd, f.output))
	}
	cfg, err := f.settings.Config(config.Default(), env.Getenv)
	if err != nil {
		return usageError(env, fmt.Sprintf("%s: %v", cmd, err))
	}
	if cmd == "check" {
		cfg.Mode = pin.ModeCheck
	}
	check := cfg.Mode == pin.ModeCheck
	if check {
		cfg.Report = config.ReportFields // one line per field that pin would change
	}

	// Each file is read, parsed and handed to the core in turn, and dropped unless the run needs
	// it whole: a file that does not parse fails the run before any lookup. Writing reads again
	// each file that has something to write (writeAll).
	pacer := startPacing()
	defer pacer.stop()
	lookup := resolver.New(append(cfg.ResolverOptions(), env.Resolver...)...)
	batches := pin.New(lookup, cfg.Options).Start()
	files, stdin, roots, locks, err := readAll(f.paths, env.Stdin, batches, pacer.pace)
	if err != nil {
		var missing *missingPath
		if errors.As(err, &missing) {
			return usageError(env, fmt.Sprintf("%s: %s: no such file or directory", cmd, missing.path))
		}
		fmt.Fprintf(env.Stderr, "digester: %v\n", err)
		return ExitFail
	}
	rep := batches.Finish(ctx)
	if err := interrupt.Stopped(ctx); err != nil { // what the run found is moot: nothing is written
		fmt.Fprintf(env.Stderr, "digester: %v: nothing was written\n", err)
		return ExitFail
	}
	summary, ok := rep.Summary.String(), rep.OK()

	out := env.Stdout
	if stdin != nil { // stdout carries the YAML
		out = env.Stderr
	}
	if !check && ok {
		if err := writeAll(ctx, files, rep, locks, f.paths, roots); err != nil {
			summary, ok = unwritten(rep, err, locks), false
			if stdin != nil {
				stdin.pinned = nil
			}
		}
	}
	if stdin != nil && !check {
		data := stdin.data
		if stdin.pinned != nil {
			data = stdin.pinned
		}
		interrupt.Critical(func() { env.Stdout.Write(data) })
	}
	if err := printReport(out, f.output, rep, summary, ok, cfg.Report == config.ReportFields); err != nil {
		fmt.Fprintf(env.Stderr, "digester: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(env.Stderr, "digester: %s\n", summary)
	if !ok {
		return ExitFail
	}
	return ExitOK
}

// input is a file with, once computed, its pinned bytes.
type input struct {
	*file
	pinned []byte
}

// readAll reads every file under paths, each once however many names lead to it, and adds its
// objects to b as it goes (input.add); "-" is stdin, returned also as stdin. roots are the paths
// given, their symbolic links resolved: digester writes only under them. locks holds each
// DigestLock as YAML before the run, to see which the run changed.
//
// The package's DigestLocks go to b first (pin.Batches.Locks), so that the core decides each image
// field as it reads it and keeps only those waiting for a lookup. Finding them takes a first read
// of every file, which parses only a file whose bytes may spell a DigestLock (mayHoldLock) and
// keeps only a file that holds one; the others are read again in turn. Errors are reported in the
// order of the files, as if each file were read once. pace is called after each file.
func readAll(paths []string, stdinReader io.Reader, b *pin.Batches, pace func()) (files []*input, stdin *input, roots []string, locks map[*pin.Object]string, err error) {
	srcs, roots := sources(paths)
	early := make([]*input, len(srcs)) // stdin, and the files that hold a DigestLock, read once
	var stdinErr error                 // stdin can be read once only: its error waits for its turn
	var lockObjs []*pin.Object
	for i, src := range srcs {
		if src.err != nil {
			break // reported in its turn
		}
		if !src.stdin { // a look at its bytes, with no snapshot to take: most files hold no lock
			data, err := os.ReadFile(src.name)
			if err != nil || !mayHoldLock(data) {
				continue // read again, or its error reported, in its turn
			}
		}
		fl, err := src.read(stdinReader)
		if err == nil {
			err = fl.parse()
		}
		if src.stdin {
			early[i], stdinErr = fl, err
		}
		if err != nil {
			continue // a file is read again in its turn, and says so then
		}
		if held := heldLocks(fl); src.stdin || len(held) > 0 {
			early[i], lockObjs = fl, append(lockObjs, held...)
		}
	}
	b.Locks(lockObjs...)
	locks = map[*pin.Object]string{}
	for i, src := range srcs {
		if src.err != nil {
			return nil, nil, nil, nil, src.err
		}
		if src.stdin && stdinErr != nil {
			return nil, nil, nil, nil, stdinErr
		}
		fl := early[i]
		if fl == nil {
			if fl, err = src.read(stdinReader); err != nil {
				return nil, nil, nil, nil, err
			}
			if err := fl.parse(); err != nil {
				return nil, nil, nil, nil, err
			}
		}
		if src.stdin {
			stdin = fl
		} else {
			markValues(fl.file)
			if parsed != nil {
				parsed(fl.file)
			}
		}
		fl.add(b, locks)
		files = append(files, fl)
		pace()
	}
	return files, stdin, roots, locks, nil
}

// source is a file to read: one found under a PATH, or stdin; or why the PATHs cannot be listed
// further, in the place it stops them.
type source struct {
	name, real string
	stdin      bool
	err        error
}

// sources lists the files under paths, each once however many names lead to it, stdin ("-") once,
// and the paths' real paths. An error ends the list.
func sources(paths []string) ([]source, []string) {
	var srcs []source
	var roots []string
	seen := map[string]bool{}
	stdin := false
	for _, p := range paths {
		if p == "-" {
			if !stdin {
				stdin = true
				srcs = append(srcs, source{name: "<stdin>", stdin: true})
			}
			continue
		}
		root, err := resolve(p)
		if err != nil {
			return append(srcs, source{err: err}), roots
		}
		roots = append(roots, root)
		names, err := yamlFiles(p)
		if err != nil {
			return append(srcs, source{err: err}), roots
		}
		for _, name := range names {
			real, err := realPath(name, p, root)
			var missing *missingPath
			if errors.As(err, &missing) {
				err = fmt.Errorf("%s: deleted while digester read the package", name)
			}
			if err != nil {
				return append(srcs, source{err: err}), roots
			}
			if !seen[real] {
				seen[real] = true
				srcs = append(srcs, source{name: name, real: real})
			}
		}
	}
	return srcs, roots
}

// read reads the source's bytes.
func (src source) read(stdinReader io.Reader) (*input, error) {
	if src.stdin {
		data, err := io.ReadAll(stdinReader)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return &input{file: &file{name: src.name, data: data}}, nil
	}
	data, snap, err := filetx.Read(src.name)
	if err != nil {
		return nil, err
	}
	return &input{file: &file{name: src.name, path: src.name, real: src.real, snap: snap, data: data}}, nil
}

// mayHoldLock reports whether data may hold a DigestLock: it spells the kind, or it may spell it
// in a way a byte search does not see (an escape in a double-quoted string; UTF-16, which has NUL
// bytes).
func mayHoldLock(data []byte) bool {
	return bytes.Contains(data, []byte(pin.LockKind)) || bytes.IndexByte(data, '\\') >= 0 || bytes.IndexByte(data, 0) >= 0
}

// heldLocks returns the file's DigestLocks, as the core tells them.
func heldLocks(fl *input) []*pin.Object {
	var out []*pin.Object
	for _, o := range fl.objs {
		if pin.IsLock(o.Node) {
			out = append(out, o)
		}
	}
	return out
}

// realPath returns the real path of name, a file found under the PATH p whose real path is root:
// root joined with name's path under p, unless name itself is a symbolic link (the walk of a
// directory does not follow links to directories, so only the file's own name can be one).
func realPath(name, p, root string) (string, error) {
	fi, err := os.Lstat(name)
	if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		if name == p {
			return root, nil
		}
		if rel, err := filepath.Rel(p, name); err == nil && filepath.IsLocal(rel) {
			return filepath.Join(root, rel), nil
		}
	}
	return resolve(name)
}

// missingPath is a PATH given on the command line that does not exist: a usage error.
type missingPath struct{ path string }

func (e *missingPath) Error() string { return e.path + ": no such file or directory" }

// resolve returns the absolute path of the file at name with its symbolic links resolved. A name
// that does not exist is a missingPath; a symbolic link to nothing is an error naming both.
func resolve(name string) (string, error) {
	real, err := filepath.EvalSymlinks(name)
	if err == nil {
		return filepath.Abs(real)
	}
	if _, lerr := os.Lstat(name); errors.Is(lerr, fs.ErrNotExist) {
		return "", &missingPath{name}
	}
	target, lerr := os.Readlink(name)
	switch {
	case lerr == nil && errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%s is a symbolic link to %s, which does not exist", name, target)
	case lerr == nil:
		return "", fmt.Errorf("%s is a symbolic link to %s, which cannot be followed: %w", name, target, err)
	}
	return "", err
}

// parsed, if set, sees each file read from disk once it is parsed: tests watch what is kept.
var parsed func(*file)

// add hands the file's objects to b and notes its DigestLocks in locks. Then, unless b keeps one
// of the objects whole (a DigestLock; a field pinned in its kind's syntax, which writeAll finds
// by comparing the tree with the text) or the file is stdin, it drops the file's bytes and trees:
// the core keeps only the image fields it found, and writeAll reads the file again if the run
// pins any of them. So the run holds one file at a time, not the package.
func (fl *input) add(b *pin.Batches, locks map[*pin.Object]string) {
	for o, before := range snapshotLocks([]*input{fl}) {
		locks[o] = before
	}
	b.Add(fl.objs...)
	if fl.path == "" || slices.ContainsFunc(fl.objs, b.Keeps) {
		return
	}
	b.Drop(fl.objs...) // the findings keep the objects, for their file: not their trees
	fl.data, fl.docs, fl.objs = nil, nil, nil
}

// snapshotLocks records each DigestLock object as YAML before the run, to see which the run changed.
func snapshotLocks(files []*input) map[*pin.Object]string {
	locks := map[*pin.Object]string{}
	for _, fl := range files {
		for _, o := range fl.objs {
			if pin.IsLock(o.Node) {
				locks[o] = encode(o.Node)
			}
		}
	}
	return locks
}
