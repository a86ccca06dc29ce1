package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kptdev/krm-functions-sdk/go/fn"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/walker"
)

// TestThousandWorkloads pins a package of 1,000 mixed workloads (every built-in workload kind and a
// custom one) in one run of the binary: every field must carry the digest the registry holds for
// it, and each distinct reference must cost exactly one manifest request.
func TestThousandWorkloads(t *testing.T) {
	const resources, distinct = 1000, 100
	bin := buildBinary(t)
	reg := registrytest.New()
	t.Cleanup(reg.Close)

	digests := map[string]string{} // reference → digest pushed
	refs := make([]string, distinct)
	for i := range refs {
		repo, tag := fmt.Sprintf("team%d/svc%d", i%7, i), fmt.Sprintf("v%d.%d", i%3, i)
		var d fmt.Stringer
		var err error
		switch i % 10 {
		case 0, 1, 2: // 30 % multi-arch
			d, err = reg.PushIndex(repo, tag, []types.MediaType{types.OCIImageIndex, types.DockerManifestList}[i%2])
		default:
			d, err = reg.PushImage(repo, tag, []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2}[i%2])
		}
		if err != nil {
			t.Fatal(err)
		}
		refs[i] = reg.Host + "/" + repo + ":" + tag
		digests[refs[i]] = d.String()
	}
	reg.Reset()

	var b strings.Builder
	b.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
	for i := 0; i < resources; i++ {
		img := func(k int) string { return refs[(i*3+k)%distinct] }
		containers := fmt.Sprintf("initContainers: [{name: init, image: %q}]\n%%[1]scontainers: [{name: a, image: %q}, {name: b, image: %q}]", img(0), img(1), img(2))
		pod := func(indent string) string { return indent + fmt.Sprintf(containers, indent) + "\n" }
		meta := fmt.Sprintf("  metadata: {name: w%d, namespace: ns%d, annotations: {internal.config.kubernetes.io/path: 'f%d.yaml'}}\n", i, i%5, i/10)
		switch i % 7 {
		case 0:
			b.WriteString("- apiVersion: v1\n  kind: Pod\n" + meta + "  spec:\n" + pod("    "))
		case 1, 2, 3:
			kind := []string{"Deployment", "StatefulSet", "DaemonSet"}[i%7-1]
			b.WriteString("- apiVersion: apps/v1\n  kind: " + kind + "\n" + meta + "  spec:\n    template:\n      spec:\n" + pod("        "))
		case 4:
			b.WriteString("- apiVersion: batch/v1\n  kind: Job\n" + meta + "  spec:\n    template:\n      spec:\n" + pod("        "))
		case 5:
			b.WriteString("- apiVersion: batch/v1\n  kind: CronJob\n" + meta + "  spec:\n    jobTemplate:\n      spec:\n        template:\n          spec:\n" + pod("            "))
		case 6:
			b.WriteString("- apiVersion: acme.example/v1\n  kind: Worker\n" + meta + "  spec:\n    template:\n      spec:\n" + pod("        "))
		}
	}

	stdout, stderr, code := run(t, bin, b.String())
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr)
	}
	rl, err := fn.ParseResourceList([]byte(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if len(rl.Items) != resources {
		t.Fatalf("got %d items back, want %d", len(rl.Items), resources)
	}
	fields, wrong := 0, 0
	for _, it := range rl.Items {
		found, problems := walker.New().Walk(it.MoveToResourceNode().YNode())
		if len(problems) > 0 {
			t.Fatalf("problems: %v", problems)
		}
		for _, f := range found {
			fields++
			ref, digest, _ := strings.Cut(f.Image, "@")
			if want := digests[ref]; digest != want {
				wrong++
				if wrong < 5 {
					t.Errorf("%s: got %s, want %s@%s", f.Path, f.Image, ref, want)
				}
			}
		}
	}
	if fields != resources*3 {
		t.Errorf("found %d image fields, want %d", fields, resources*3)
	}
	got := map[string]int{"HEAD manifest": reg.Count("HEAD", "manifest"), "GET manifest": reg.Count("GET", "manifest"), "ping": reg.Count("", "ping")}
	want := map[string]int{"HEAD manifest": distinct, "GET manifest": 0, "ping": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("registry requests (-want +got):\n%s", diff)
	}
	if summary := fmt.Sprintf("pinned %d image fields (%d distinct references, %d registry requests)", resources*3, distinct, distinct+1); !strings.Contains(stdout, summary) {
		t.Errorf("output lacks summary %q", summary)
	}
}
