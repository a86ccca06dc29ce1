package krmio

import (
	"fmt"
	"testing"

	"github.com/kptdev/krm-functions-sdk/go/fn"
)

// BenchmarkResults writes a 5,000-resource package's worth of digester's results (one per pinned field),
// the SDK's way and Run's way, on a ResourceList without items.
func BenchmarkResults(b *testing.B) {
	var results fn.Results
	for i := range 8250 {
		img := fmt.Sprintf("registry.example.com/team%d/svc%d:v1.%d", i%7, i%200, i%5)
		pinned := fmt.Sprintf("%s@sha256:%064x", img, i)
		results = append(results, &fn.Result{
			Message: "pinned " + img + " to " + pinned[len(img)+1:], Severity: fn.Info,
			ResourceRef: &fn.ResourceRef{APIVersion: "apps/v1", Kind: "Deployment", Name: fmt.Sprintf("web-%d", i), Namespace: "shop"},
			Field:       &fn.Field{Path: "spec.template.spec.containers[0].image", CurrentValue: img, ProposedValue: pinned},
			File:        &fn.File{Path: fmt.Sprintf("apps/web-%d.yaml", i)},
		})
	}
	empty := []byte("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n")
	for _, c := range []struct {
		name string
		run  func(fn.ResourceListProcessor, []byte) ([]byte, error)
	}{{"sdk", fn.Run}, {"krmio", Run}} {
		b.Run(fmt.Sprintf("%s/%d", c.name, len(results)), func(b *testing.B) {
			p := fn.ResourceListProcessorFunc(func(rl *fn.ResourceList) (bool, error) {
				rl.Results = results
				return true, nil
			})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.run(p, empty); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
