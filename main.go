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
	"os/signal"
	"syscall"

	"github.com/digester/digester/cli"
	"github.com/digester/digester/internal/krmio"
)

// version and commit are set at build time: go build -ldflags "-X main.version=… -X main.commit=…".
var version, commit = "dev", "unknown"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &processor{ctx: ctx, getenv: os.Getenv, stderr: os.Stderr}
	if len(os.Args) > 1 {
		code := cli.Main(ctx, os.Args[1:], cli.Env{
			Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Version: version, Commit: commit,
		})
		stop()
		os.Exit(code)
	}
	// A ResourceList on stdin, as AsMain reads it; when the SDK cannot parse it, say which item is wrong.
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "digester: read stdin:", err)
		os.Exit(1)
	}
	out, err := krmio.Run(p, in) // fn.Run, with results written cheaply (docs/performance.md)
	if out == nil && err != nil {
		if e := checkInput(in); e != nil {
			err = e
		}
	}
	os.Stdout.Write(out)
	if err != nil {
		if out != nil {
			err = fmt.Errorf("failed: see the error results above; the package is returned unchanged")
		}
		fmt.Fprintln(os.Stderr, "digester:", err)
		os.Exit(1)
	}
}
