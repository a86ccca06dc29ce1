package walker_test

import (
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/walker"
)

// BenchmarkWalk walks a large list of objects of every workload shape, as a 5,000-resource
// package gives the walker; -benchmem shows what the walk allocates besides its results.
func BenchmarkWalk(b *testing.B) {
	shapes := []string{
		"kind: Deployment\nspec:\n  replicas: 2\n  template:\n    metadata: {labels: {app: a}}\n    spec:\n      initContainers:\n      - {name: init, image: 'busybox:1.36'}\n      containers:\n      - name: app\n        image: registry.example.com/team/app:v%d\n        env: [{name: A, value: b}]\n      - {name: side, image: envoy:1.30}\n",
		"kind: CronJob\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: c, image: 'job:%d'}]\n",
		"kind: Pod\nspec:\n  containers:\n  - {name: c, image: nginx:1.%d}\n",
		"kind: ConfigMap\ndata:\n  key: value-%d\n",
		"apiVersion: example.com/v1\nkind: Worker\nspec:\n  template:\n    spec:\n      containers: [{name: w, image: 'worker:%d@sha256:0000000000000000000000000000000000000000000000000000000000000000'}]\n",
	}
	const n = 5000
	objs := make([]*yaml.Node, n)
	for i := range objs {
		rn, err := yaml.Parse(fmt.Sprintf(shapes[i%len(shapes)], i))
		if err != nil {
			b.Fatal(err)
		}
		objs[i] = rn.YNode()
	}
	w := walker.New()
	var fields int
	for _, o := range objs {
		f, _ := w.Walk(o)
		fields += len(f)
	}
	if want := n / len(shapes) * 6; fields != want {
		b.Fatalf("walker found %d image fields, want %d", fields, want)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, o := range objs {
			f, _ := w.Walk(o)
			if len(f) > 0 && !strings.Contains(f[0].Path, "image") {
				b.Fatal(f[0].Path)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/object")
}

// BenchmarkAliasBomb walks the alias bombs of issue 23 (ten-way aliases nested N deep under a
// Prometheus resource's containers): refused after one pass over what is written, in
// microseconds, where N=5 took 26 s and N=6 more than 10 minutes.
func BenchmarkAliasBomb(b *testing.B) {
	for _, n := range []int{5, 6} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			rn, err := yaml.Parse(AliasBomb(n))
			if err != nil {
				b.Fatal(err)
			}
			w := walker.New()
			b.ReportAllocs()
			for b.Loop() {
				if fields, problems := w.Walk(rn.YNode()); len(fields) != 0 || len(problems) != 1 || problems[0].Kind != walker.Expansion {
					b.Fatalf("fields %d, problems %v", len(fields), problems)
				}
			}
		})
	}
}

// BenchmarkManyDuplicates walks Pods of 1,000 and 8,000 containers, each with a duplicate key and
// an image key at a place digester does not pin: the check is linear in the resource (ns/container
// stays flat as the Pod grows; it grew with the Pod when each report searched the whole resource
// for its path and each image key was compared with every field).
func BenchmarkManyDuplicates(b *testing.B) {
	for _, n := range []int{1000, 8000} {
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			var doc strings.Builder
			doc.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n")
			for i := range n {
				fmt.Fprintf(&doc, "  - {name: a%d, name: b%d, image: 'app:%d', extra: {image: 'x:%d'}}\n", i, i, i, i)
			}
			rn, err := yaml.Parse(doc.String())
			if err != nil {
				b.Fatal(err)
			}
			w := walker.New()
			b.ReportAllocs()
			for b.Loop() {
				if fields, problems := w.Walk(rn.YNode()); len(fields) != n || len(problems) != 2*n {
					b.Fatalf("fields %d, problems %d", len(fields), len(problems))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/container")
		})
	}
}
