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
// written. "-" reads YAML documents on stdin and writes them, pinned, on stdout.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/digester/digester/config"
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

// Main runs the command line args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, env Env) int {
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

	// Read every file before anything is pinned: a file that does not parse fails the run.
	files, stdin, err := readAll(f.paths, env.Stdin)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && errors.Is(err, os.ErrNotExist) {
			return usageError(env, fmt.Sprintf("%s: %s: no such file or directory", cmd, pe.Path))
		}
		fmt.Fprintf(env.Stderr, "digester: %v\n", err)
		return ExitFail
	}
	var objs []*pin.Object
	for _, fl := range files {
		objs = append(objs, fl.objs...)
	}
	locks := snapshotLocks(files)

	lookup := resolver.New(append(cfg.ResolverOptions(), env.Resolver...)...)
	rep := pin.New(lookup, cfg.Options).Run(ctx, objs)

	out := env.Stdout
	if stdin != nil { // stdout carries the YAML
		out = env.Stderr
	}
	code := ExitOK
	if !rep.OK() {
		code = ExitFail
	}
	if !check && rep.OK() {
		if err := writeAll(files, rep, locks, f.paths); err != nil {
			fmt.Fprintf(env.Stderr, "digester: %v\n", err)
			code = ExitFail
		}
	}
	if stdin != nil && !check {
		data := stdin.data
		if stdin.pinned != nil {
			data = stdin.pinned
		}
		env.Stdout.Write(data)
	}
	if err := printReport(out, f.output, rep, cfg.Report == config.ReportFields); err != nil {
		fmt.Fprintf(env.Stderr, "digester: %v\n", err)
		return ExitFail
	}
	fmt.Fprintf(env.Stderr, "digester: %s\n", rep.Summary)
	return code
}

// input is a file with, once computed, its pinned bytes.
type input struct {
	*file
	pinned []byte
}

// readAll reads every file under paths, each once; "-" is stdin, returned also as stdin.
func readAll(paths []string, stdinReader io.Reader) (files []*input, stdin *input, err error) {
	seen := map[string]bool{}
	for _, p := range paths {
		if p == "-" {
			if stdin != nil {
				continue
			}
			data, err := io.ReadAll(stdinReader)
			if err != nil {
				return nil, nil, fmt.Errorf("read stdin: %w", err)
			}
			stdin = &input{file: &file{name: "<stdin>", data: data}}
			if err := stdin.parse(); err != nil {
				return nil, nil, err
			}
			files = append(files, stdin)
			continue
		}
		names, err := yamlFiles(p)
		if err != nil {
			return nil, nil, err
		}
		for _, name := range names {
			abs, err := filepath.Abs(name)
			if err != nil {
				return nil, nil, err
			}
			if seen[abs] {
				continue
			}
			seen[abs] = true
			fi, err := os.Stat(abs)
			if err != nil {
				return nil, nil, err
			}
			data, err := os.ReadFile(abs)
			if err != nil {
				return nil, nil, err
			}
			fl := &input{file: &file{name: name, path: abs, mode: fi.Mode().Perm(), data: data}}
			if err := fl.parse(); err != nil {
				return nil, nil, err
			}
			markValues(fl.file)
			files = append(files, fl)
		}
	}
	return files, stdin, nil
}

// snapshotLocks records each DigestLock object as YAML before the run, to see which the run changed.
func snapshotLocks(files []*input) map[*pin.Object]string {
	locks := map[*pin.Object]string{}
	for _, fl := range files {
		for _, o := range fl.objs {
			if isLock(o.Node) {
				locks[o] = encode(o.Node)
			}
		}
	}
	return locks
}

// writeAll works out every file's new bytes first, and only then writes the files that changed.
// A value that cannot be edited in place fails the run with no file written. A file holding a
// DigestLock that the run changed is written out whole from its nodes (the lock is digester's own
// file); a lock the run created goes to the first directory given, or after the documents on
// stdout.
func writeAll(files []*input, rep *pin.Report, locks map[*pin.Object]string, paths []string) error {
	byFile := map[string][]pin.Finding{}
	for _, f := range rep.Findings {
		if f.Object != nil && f.Pinned != "" {
			byFile[f.Object.File] = append(byFile[f.Object.File], f)
		}
	}
	changedLock := map[string]bool{}
	for o, before := range locks {
		if encode(o.Node) != before {
			changedLock[o.File] = true
		}
	}
	var stdin *input
	for _, fl := range files {
		if fl.path == "" {
			stdin = fl
		}
		if changedLock[fl.name] {
			fl.pinned = fl.encode()
			continue
		}
		edits, err := fl.edits(byFile[fl.name])
		if err != nil {
			return fmt.Errorf("%w; no file was written", err)
		}
		if len(edits) > 0 {
			fl.pinned = fl.apply(edits)
		}
	}
	var created []*input
	for _, o := range rep.Created {
		dir := ""
		for _, p := range paths {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				dir = p
				break
			}
		}
		doc := []byte(encode(o.Node))
		switch {
		case dir != "":
			name := filepath.Join(dir, filepath.FromSlash(o.File))
			created = append(created, &input{file: &file{name: name, path: name, mode: 0o644}, pinned: doc})
		case stdin != nil:
			base := stdin.data
			if stdin.pinned != nil {
				base = stdin.pinned
			}
			stdin.pinned = append(append(append([]byte{}, base...), []byte("---\n")...), doc...)
		default:
			return fmt.Errorf("cannot write the new DigestLock %s: name a directory (the package) or -; no file was written", o.File)
		}
	}
	for _, fl := range append(files, created...) {
		if fl.pinned == nil || fl.path == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(fl.path), 0o755); err != nil {
			return err
		}
		if err := fl.write(fl.pinned); err != nil {
			return fmt.Errorf("write %s: %w", fl.name, err)
		}
	}
	return nil
}
