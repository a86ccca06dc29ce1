package krmio

import (
	"fmt"
	"strings"
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
	p := processor{results: results, ok: true}
	for _, c := range []struct {
		name string
		run  func([]byte) ([]byte, error)
	}{
		{"sdk", func(in []byte) ([]byte, error) { return fn.Run(p.sdk(), in) }},
		{"krmio", func(in []byte) ([]byte, error) { return run(p, in) }},
	} {
		b.Run(fmt.Sprintf("%s/%d", c.name, len(results)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.run(empty); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkItems reads and writes 1,000 Deployments (no results) as the SDK does, parsing the
// whole list and writing every item with yaml.v3, and as Run does, parsing each item on its own
// and writing its text.
func BenchmarkItems(b *testing.B) {
	var in strings.Builder
	in.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
	for i := range 1000 {
		fmt.Fprintf(&in, `- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web-%d
    namespace: shop
    labels: {app: web-%d, tier: backend}
    annotations:
      config.kubernetes.io/path: 'shop/web-%d.yaml'
  spec:
    replicas: 2
    template:
      spec:
        initContainers:
        - name: init
          image: registry.example.com/init:v1@sha256:%064x
          command: ["sh", "-c", "echo ready"]
        containers:
        - name: app
          image: registry.example.com/team/web:v1.%d@sha256:%064x
          ports:
          - containerPort: 8080
          resources:
            limits: {cpu: 500m, memory: 128Mi}
`, i, i, i, i, i%5, i)
	}
	input := []byte(in.String())
	p := processor{ok: true}
	for _, c := range []struct {
		name string
		run  func([]byte) ([]byte, error)
	}{
		{"sdk", func(in []byte) ([]byte, error) { return fn.Run(p.sdk(), in) }},
		{"krmio", func(in []byte) ([]byte, error) { return run(p, in) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.run(input); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
