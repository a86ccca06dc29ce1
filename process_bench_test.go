package main

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/kptdev/krm-functions-sdk/go/fn"

	"github.com/digester/digester/bench/gen"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// BenchmarkRun runs the whole function in process as main does (parse, process, write) on the
// generated packages of `make bench`, next to a no-op processor through fn.Run, the floor. It
// is the way to profile digester (docs/performance.md):
//
//	go test -run '^$' -bench 'Run/digester/5000' -benchtime 3x -cpuprofile cpu.out -memprofile mem.out .
func BenchmarkRun(b *testing.B) {
	reg := registrytest.New()
	defer reg.Close()
	noop := fn.ResourceListProcessorFunc(func(*fn.ResourceList) (bool, error) { return true, nil })
	for _, n := range []int{100, 1000, 5000} {
		imgs, err := gen.Push(reg, gen.Distinct(n))
		if err != nil {
			b.Fatal(err)
		}
		pkg := gen.Generate(imgs, n)
		p := &processor{ctx: context.Background(), getenv: func(string) string { return "" },
			resolver: []resolver.Option{resolver.WithTransport(reg.Transport()), resolver.WithKeychain(authn.NewMultiKeychain())}}
		b.Run(fmt.Sprintf("noop/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fn.Run(noop, pkg.Input); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("digester/%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := runList(p, pkg.Input)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := pkg.Check(out, gen.Pin); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
