// Command digester is a KRM function that pins every container image in Kubernetes manifests to
// its immutable digest: nginx:1.27 becomes nginx:1.27@sha256:…
//
// It reads a ResourceList on stdin and writes the pinned ResourceList on stdout, as kpt and
// kustomize expect of exec and container functions. main.go only wires the SDK and process.go
// adapts ResourceLists to the pinning core, package pin.
package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kptdev/krm-functions-sdk/go/fn"

	"github.com/digester/digester/internal/krmio"
)

//go:embed README.md
var readme []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &processor{ctx: ctx, getenv: os.Getenv, stderr: os.Stderr}
	if len(os.Args) > 1 { // --help, --doc, or files named on the command line
		if err := fn.AsMain(p, fn.WithDocs(readme, nil)); err != nil {
			os.Exit(1)
		}
		return
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
