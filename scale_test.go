package main

import (
	"fmt"
	"net"
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

// TestTenThousandResourcesReport checks that results grow with references, not fields: a clean run
// over 10,000 resources reports one result per distinct reference, and with one of the two
// registries down, one error names that registry and its references.
func TestTenThousandResourcesReport(t *testing.T) {
	const resources, distinct = 10000, 100
	bin := buildBinary(t)
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	var refs []string
	for i := range distinct {
		repo, tag := fmt.Sprintf("team/svc%d", i), "v1"
		if _, err := reg.PushImage(repo, tag, types.OCIManifestSchema1); err != nil {
			t.Fatal(err)
		}
		refs = append(refs, reg.Host+"/"+repo+":"+tag)
	}
	down := closedPort(t) // nothing listens here: connection refused
	var downRefs []string
	for i := range 7 {
		downRefs = append(downRefs, fmt.Sprintf("%s/team/down%d:v1", down, i))
	}
	pkg := func(images []string) string {
		var b strings.Builder
		b.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n")
		for i := range resources {
			fmt.Fprintf(&b, "- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d%d, annotations: {internal.config.kubernetes.io/path: 'f%d.yaml'}}\n"+
				"  spec: {template: {spec: {containers: [{name: a, image: %q}, {name: b, image: %q}]}}}\n",
				i, i/100, images[i%len(images)], images[(i+1)%len(images)])
		}
		return b.String()
	}
	results := func(stdout string) []string {
		_, res, _ := strings.Cut(stdout, "\nresults:\n")
		return strings.Split(strings.TrimSuffix(res, "\n"), "\n")
	}

	t.Run("clean run", func(t *testing.T) {
		stdout, stderr, code := run(t, bin, pkg(refs))
		if code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr)
		}
		lines := results(stdout)
		t.Logf("clean run over %d resources: %d lines of results, %d bytes of output, %d lines on stderr", resources, len(lines), len(stdout), strings.Count(stderr, "\n"))
		if len(lines) >= 2000 {
			t.Errorf("results are %d lines, want fewer than 2,000", len(lines))
		}
		if got, want := strings.Count(stdout, "\n  severity: info\n"), distinct+1; got != want {
			t.Errorf("%d info results, want %d (one per reference and the summary)", got, want)
		}
		want := fmt.Sprintf("message: pinned %s to ", refs[0])
		if !strings.Contains(stdout, want) || !strings.Contains(stdout, "(200 image fields, in f0.yaml, f1.yaml, f2.yaml, f3.yaml, f4.yaml, and 95 more)") {
			t.Errorf("results lack %q with its field and file counts:\n%s", want, strings.Join(lines[:min(len(lines), 40)], "\n"))
		}
	})

	t.Run("one registry down", func(t *testing.T) {
		images := append(refs[:50:50], downRefs...)
		failing := 0 // image fields that use the registry that is down
		for i := range resources {
			for _, img := range []string{images[i%len(images)], images[(i+1)%len(images)]} {
				if strings.HasPrefix(img, down) {
					failing++
				}
			}
		}
		stdout, stderr, code := run(t, bin, pkg(images))
		if code != 1 {
			t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
		}
		lines := results(stdout)
		t.Logf("one registry down, %d resources: %d lines of results, %d lines on stderr", resources, len(lines), strings.Count(stderr, "\n"))
		if len(lines) >= 20 {
			t.Errorf("results are %d lines, want fewer than 20:\n%s", len(lines), strings.Join(lines[:min(len(lines), 40)], "\n"))
		}
		stderrLines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(stderrLines) >= 20 {
			t.Errorf("stderr is %d lines, want fewer than 20", len(stderrLines))
		}
		want := fmt.Sprintf("[error]: cannot connect to registry %s: connection refused: 7 references cannot be pinned (%d image fields): %s, %s, %s, %s, %s, and 2 more",
			down, failing, downRefs[0], downRefs[1], downRefs[2], downRefs[3], downRefs[4])
		if stderrLines[0] != want {
			t.Errorf("stderr starts\n%s\nwant\n%s", stderrLines[0], want)
		}
	})
}

// closedPort returns a loopback host:port on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
