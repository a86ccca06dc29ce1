// Command demo shows digester at work with no internet: it serves the example package's images
// from an in-process registry on loopback, pins a copy of example/ with the digester binary (run
// as an exec KRM function, as kpt and kustomize run it), and prints the diff and the results.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	fnexec "sigs.k8s.io/kustomize/kyaml/fn/runtime/exec"
	"sigs.k8s.io/kustomize/kyaml/kio"

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
	if err := run(*bin, *pkg); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin, pkg string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	reg := registrytest.New()
	defer reg.Close()
	fmt.Printf("registry: in-process on %s, serving the example's localhost:5000 images\n", reg.Host)
	for _, img := range images {
		push := reg.PushImage
		if img.mt == types.OCIImageIndex || img.mt == types.DockerManifestList {
			push = reg.PushIndex
		}
		d, err := push(img.repo, img.tag, img.mt)
		if err != nil {
			return err
		}
		fmt.Printf("  pushed %s:%s  %s  (%s)\n", img.repo, img.tag, d, img.mt)
	}

	tmp, err := os.MkdirTemp("", "digester-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	before, after := filepath.Join(tmp, "before"), filepath.Join(tmp, "after")
	for _, dir := range []string{before, after} {
		if err := copyPackage(pkg, dir, "localhost:5000", reg.Host); err != nil {
			return err
		}
	}

	// Run digester as an exec KRM function over the package, as kustomize and kpt do.
	rw := &kio.LocalPackageReadWriter{PackagePath: after, PreserveSeqIndent: true}
	fnRun := &fnexec.Filter{Path: bin}
	fnRun.Env = []string{"DOCKER_CONFIG=" + tmp} // no host credentials: the demo registry needs none
	fnRun.WorkingDir = tmp
	if err := (kio.Pipeline{Inputs: []kio.Reader{rw}, Filters: []kio.Filter{fnRun}, Outputs: []kio.Writer{rw}}).Execute(); err != nil {
		return fmt.Errorf("digester failed: %w", err)
	}

	fmt.Printf("\npinned a copy of example/, as `kpt fn eval example --exec %s` would; the diff:\n\n", bin)
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
	fmt.Print(strings.ReplaceAll(out.String(), reg.Host, "localhost:5000"))
	if fnRun.Results != nil {
		for _, r := range fnRun.Results.YNode().Content {
			for i := 0; i+1 < len(r.Content); i += 2 {
				if m := r.Content[i+1].Value; r.Content[i].Value == "message" && strings.Contains(m, "image fields") {
					fmt.Printf("\nsummary: %s\n", m)
				}
			}
		}
	}
	return nil
}

// copyPackage copies the YAML files of src into dst, replacing from with to in their text.
func copyPackage(src, dst, from, to string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, []byte(strings.ReplaceAll(string(b), from, to)), 0o644)
	})
}
