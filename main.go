// Command digester is a KRM function that pins every container image in Kubernetes manifests to
// its immutable digest: nginx:1.27 becomes nginx:1.27@sha256:…
//
// With no arguments it reads a ResourceList on stdin and writes the pinned ResourceList on stdout,
// as kpt and kustomize expect of exec and container functions; process.go adapts ResourceLists to
// the pinning core, package pin. With arguments it is a command line (digester pin PATH...,
// digester check PATH...), package cli. main.go only dispatches.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/digester/digester/cli"
	"github.com/digester/digester/internal/interrupt"
	"github.com/digester/digester/internal/krmio"
)

// version and commit are set at build time: go build -ldflags "-X main.version=… -X main.commit=…".
var version, commit = "dev", "unknown"

func main() {
	// SIGINT and SIGTERM cancel ctx; a run still busy 1.5 s later is ended with exit 1, but never
	// while the command line replaces files or the function writes its output.
	ctx, done := interrupt.Context(context.Background(), os.Stderr, os.Exit)
	var code int
	if len(os.Args) > 1 {
		code = cli.Main(ctx, os.Args[1:], cli.Env{
			Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: version, Commit: commit,
		})
	} else {
		code = runFunction(ctx, &processor{ctx: ctx, getenv: os.Getenv, stderr: os.Stderr}, os.Stdin, os.Stdout, os.Stderr)
	}
	done()
	os.Exit(code)
}

// runFunction runs p as a KRM function: a ResourceList on stdin, the pinned one on stdout, and
// the exit code. A panic (a bug) is exit 1 with a message that says where, and nothing on stdout.
func runFunction(ctx context.Context, p krmio.Processor, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "digester: internal error (a bug in digester: please report it, with the input): %v, at %s\n", r, cli.PanicSite())
			code = 1
		}
	}()
	// The function's heap is its input, its output and a little per image field; half the default
	// headroom over that keeps peak RSS near 5× the input for a few % more CPU (docs/performance.md).
	debug.SetGCPercent(50)
	// A ResourceList on stdin, as AsMain reads it; when the SDK cannot parse it, say which item is wrong.
	in, err := io.ReadAll(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "digester: read stdin:", err)
		return 1
	}
	out, err := krmio.Run(p, in) // the output from the input's own bytes (docs/performance.md)
	if out == nil && err != nil {
		if e := checkInput(in); e != nil {
			err = e
		}
	}
	// A run a signal stopped never reports success: one that failed for it returns the package
	// unchanged with its error results, as any failed run does; one that ended well anyway writes
	// nothing, since it was told to stop.
	if stop := interrupt.Stopped(ctx); stop != nil && err == nil {
		fmt.Fprintf(stderr, "digester: %v: nothing was written\n", stop)
		return 1
	}
	if out != nil {
		interrupt.Critical(func() { out.WriteTo(stdout) })
	}
	if err != nil {
		if out != nil {
			err = fmt.Errorf("failed: see the error results above; the package is returned unchanged")
		}
		fmt.Fprintln(stderr, "digester:", err)
		return 1
	}
	return 0
}
