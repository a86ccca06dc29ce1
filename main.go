// Command digester is a KRM function that pins every container image in Kubernetes manifests to
// its immutable digest: nginx:1.27 becomes nginx:1.27@sha256:…
//
// It reads a ResourceList on stdin and writes the pinned ResourceList on stdout, as kpt and
// kustomize expect of exec and container functions. main.go only wires the SDK; the work is in
// walker (finding image fields) and resolver (looking digests up).
package main

import (
	"context"
	_ "embed"
	"os"
	"os/signal"
	"syscall"

	"github.com/kptdev/krm-functions-sdk/go/fn"
)

//go:embed README.md
var readme []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p := &processor{ctx: ctx, getenv: os.Getenv, stderr: os.Stderr}
	if err := fn.AsMain(p, fn.WithDocs(readme, nil)); err != nil {
		os.Exit(1)
	}
}
