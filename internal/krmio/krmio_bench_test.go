package krmio

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/yaml"
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

// BenchmarkItems writes 1,000 Deployments (no results) through yaml.v3, as the SDK does item by
// item, and through appendItem.
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
	rl, err := fn.ParseResourceList([]byte(in.String()))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		write func(*yaml.Node) ([]byte, bool)
	}{
		{"yaml.v3", func(n *yaml.Node) ([]byte, bool) { return []byte(encode(b, n)), true }},
		{"appendItem", func(n *yaml.Node) ([]byte, bool) { return appendItem(nil, n) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for i, it := range rl.Items {
					if _, ok := c.write(node(&rl.Items[i], it)); !ok {
						b.Fatalf("appendItem left item %d to yaml.v3", i)
					}
				}
			}
		})
	}
}
