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
