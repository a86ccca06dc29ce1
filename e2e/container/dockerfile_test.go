package container_test

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestDockerfile builds the Dockerfile with `docker build` from what `make image-docker` gives it
// (the binary of `make build`, the files of `mkimage -rootfs`) and checks that the image has the
// same files, entrypoint, user, environment and labels as the one mkimage built and TestMain
// loaded; and that `docker load` kept mkimage's image as it was (same image ID).
func TestDockerfile(t *testing.T) {
	needDocker(t)
	built := mkimageImage(t)

	t.Run("loaded", func(t *testing.T) {
		want, err := built.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("docker", "image", "inspect", "--format", "{{.Id}}", tag).CombinedOutput()
		if err != nil {
			t.Fatalf("docker image inspect %s: %v\n%s", tag, err, out)
		}
		if diff := cmp.Diff(want.String(), strings.TrimSpace(string(out))); diff != "" {
			t.Errorf("image ID of %s (-want +got):\n%s", tag, diff)
		}
	})

	t.Run("docker build", func(t *testing.T) {
		ctx := t.TempDir()
		for _, f := range []string{"Dockerfile", ".dockerignore"} {
			b, err := os.ReadFile(filepath.Join(repoRoot, f))
			if err != nil {
				t.Fatal(err)
			}
			writeFiles(t, ctx, map[string]string{f: string(b)})
		}
		// What `make image-docker` runs, with the build context in ctx instead of the repository.
		for _, args := range [][]string{
			{"make", "--no-print-directory", "build", "BIN=" + filepath.Join(ctx, "bin/digester"), "VERSION=e2e", "REVISION=test"},
			{"go", "run", "./cmd/mkimage", "-rootfs", filepath.Join(ctx, "out/rootfs")},
		} {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		dockerTag := tag + "-dockerfile"
		out, err := exec.Command("docker", "build", "--build-arg", "VERSION=e2e", "--build-arg", "REVISION=test",
			"-t", dockerTag, ctx).CombinedOutput()
		if err != nil {
			t.Fatalf("docker build: %v\n%s", err, out)
		}
		t.Cleanup(func() { removeImage(dockerTag) })
		saved := filepath.Join(t.TempDir(), "image.tar")
		if out, err := exec.Command("docker", "save", "-o", saved, dockerTag).CombinedOutput(); err != nil {
			t.Fatalf("docker save: %v\n%s", err, out)
		}
		ref, err := name.NewTag(dockerTag)
		if err != nil {
			t.Fatal(err)
		}
		fromDocker, err := tarball.ImageFromPath(saved, &ref)
		if err != nil {
			t.Fatal(err)
		}

		if diff := cmp.Diff(summarize(t, built), summarize(t, fromDocker)); diff != "" {
			t.Errorf("docker build image (-mkimage +docker build):\n%s", diff)
		}
	})
}

// image is what the tests compare of two images.
type image struct {
	Platform             string
	Entrypoint, Cmd, Env []string
	User, WorkingDir     string
	Labels               map[string]string
	Files                map[string]string // path → type, mode, owner, size and SHA-256
}

// summarize reads what TestDockerfile compares of img.
func summarize(t *testing.T, img v1.Image) image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	s := image{
		Platform:   cf.OS + "/" + cf.Architecture,
		Entrypoint: cf.Config.Entrypoint, Cmd: cf.Config.Cmd, Env: cf.Config.Env,
		User: cf.Config.User, WorkingDir: cf.Config.WorkingDir, Labels: cf.Config.Labels,
		Files: map[string]string{},
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("extract: %v", err)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.Trim(strings.TrimPrefix(h.Name, "./"), "/")
		s.Files[p] = fmt.Sprintf("%c %v %d:%d %d bytes sha256:%x", h.Typeflag, h.FileInfo().Mode(), h.Uid, h.Gid, h.Size, sum.Sum(nil)[:8])
	}
	return s
}

// mkimageImage is the image for the daemon's platform in the layout mkimage wrote.
func mkimageImage(t *testing.T) v1.Image {
	t.Helper()
	lp, err := layout.FromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil || len(tm.Manifests) != 1 {
		t.Fatalf("layout index.json: %v, %v; want one index", tm, err)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.OS+"/"+m.Platform.Architecture == platform {
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("the layout has no image for %s: %+v", platform, im.Manifests)
	return nil
}
