// Command demo shows digester at work with no internet: it serves the example package's images
// from an in-process registry on loopback, pins a copy of example/ with the digester binary (run
// as an exec KRM function, as kpt and kustomize run it), and prints the diff and the results. The
// package names its images on localhost:5000, as written; the in-process registry answers for
// localhost:5000 as its mirror (registry-mirrors), so the diff shows the package's own names.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/types"
	fnexec "sigs.k8s.io/kustomize/kyaml/fn/runtime/exec"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/internal/registrytest"
)

// images are the example package's images, as they are named on localhost:5000.
var images = []struct {
	repo, tag string
	mt        types.MediaType
}{
	{"shop/migrate", "1.4", types.OCIManifestSchema1},
	{"library/nginx", "1.27", types.DockerManifestSchema2},
	{"prometheus/nginx-exporter", "1.3", types.DockerManifestSchema2},
	{"library/redis", "7.4", types.OCIImageIndex},
	{"shop/report", "2.0", types.DockerManifestList},
	{"shop/worker", "2.1", types.OCIImageIndex},
}

func main() {
	bin := flag.String("digester", "bin/digester", "the digester binary")
	pkg := flag.String("example", "example", "the example package; its images are on localhost:5000")
	flag.Parse()
	if err := run(os.Stdout, *bin, *pkg); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, bin, pkg string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	reg := registrytest.New()
	defer reg.Close()
	fmt.Fprintf(w, "registry: in-process on %s, the mirror of localhost:5000, where the example's images are\n", reg.Host)
	for _, img := range images {
		push := reg.PushImage
		if img.mt == types.OCIImageIndex || img.mt == types.DockerManifestList {
			push = reg.PushIndex
		}
		d, err := push(img.repo, img.tag, img.mt)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  pushed %s:%s  %s  (%s)\n", img.repo, img.tag, d, img.mt)
	}

	tmp, err := os.MkdirTemp("", "digester-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	before, after := filepath.Join(tmp, "before"), filepath.Join(tmp, "after")
	for _, dir := range []string{before, after} {
		if err := copyPackage(pkg, dir); err != nil {
			return err
		}
	}

	// Run digester as an exec KRM function over the package, as kustomize and kpt do, with
	// localhost:5000's lookups sent to the in-process registry.
	rw := &kio.LocalPackageReadWriter{PackagePath: after, PreserveSeqIndent: true}
	config, err := yaml.Parse("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: digester}\ndata:\n  registry-mirrors: localhost:5000=" + reg.Host + "\n")
	if err != nil {
		return err
	}
	fnRun := &fnexec.Filter{Path: bin}
	fnRun.FunctionConfig = config
	fnRun.Env = []string{"DOCKER_CONFIG=" + tmp} // no host credentials: the demo registry needs none
	fnRun.WorkingDir = tmp
	if err := (kio.Pipeline{Inputs: []kio.Reader{rw}, Filters: []kio.Filter{fnRun}, Outputs: []kio.Writer{rw}}).Execute(); err != nil {
		return fmt.Errorf("digester failed: %w", err)
	}

	fmt.Fprintf(w, "\npinned a copy of example/, as `kpt fn eval example --exec %s` would; the diff:\n\n", bin)
	diff := exec.Command("diff", "-ru", "before", "after")
	diff.Dir = tmp
	var out bytes.Buffer
	diff.Stdout = &out
	if err := diff.Run(); err != nil && diff.ProcessState.ExitCode() != 1 {
		return fmt.Errorf("diff: %w", err)
	}
	if out.Len() == 0 {
		return fmt.Errorf("digester changed nothing")
	}
	fmt.Fprint(w, out.String())
	if s := summary(fnRun.Results); s != "" {
		fmt.Fprintf(w, "\nsummary: %s\n", s)
	}
	return nil
}

// summary is the message of the run's summary: the one result about no resource.
func summary(results *yaml.RNode) string {
	if results == nil {
		return ""
	}
	for _, r := range results.YNode().Content {
		rn := yaml.NewRNode(r)
		if rn.Field("resourceRef") == nil && rn.Field("field") == nil && rn.Field("file") == nil {
			return yaml.GetValue(rn.Field("message").Value)
		}
	}
	return ""
}

// copyPackage copies the files of src into dst, but its DigestLock: the demo asks the registry.
func copyPackage(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if d.Name() == "digests.lock.yaml" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
