package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kptdev/krm-functions-sdk/go/fn"

	"github.com/digester/digester/internal/registrytest"
)

// TestImage builds the image as `make image` does, pushes it to a registry on loopback, pulls it
// back by digest and checks each platform's image as a container runtime would see it; then it
// runs the linux/amd64 entrypoint in a chroot of the unpacked filesystem, as the image's user and
// with the image's environment, and checks that it pins an image served by that registry.
func TestImage(t *testing.T) {
	ctx := context.Background()
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no host credentials for the push
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	created := time.Unix(1700000000, 0).UTC()

	out := filepath.Join(t.TempDir(), "layout")
	var stdout bytes.Buffer
	if err := run(ctx, []string{"-out", out, "-push", reg.Host + "/digester:test", "-version", "v9.9.9", "-revision", "abc123"}, &stdout); err != nil {
		t.Fatalf("mkimage: %v", err)
	}

	// The layout names one index; that index is what was pushed.
	lp, err := layout.FromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	topManifest, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(topManifest.Manifests) != 1 || topManifest.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("layout index.json = %+v; want one OCI image index", topManifest.Manifests)
	}
	digest := topManifest.Manifests[0].Digest
	wantOut := "wrote " + out + ": index " + digest.String() + "\npushed " + reg.Host + "/digester@" + digest.String() + "\n"
	if diff := cmp.Diff(wantOut, stdout.String()); diff != "" {
		t.Errorf("mkimage output (-want +got):\n%s", diff)
	}

	t.Run("reproducible", func(t *testing.T) {
		idx, err := build(ctx, options{pkg: "github.com/digester/digester", caBundle: caPath, created: created, version: "v9.9.9", revision: "abc123",
			platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}})
		if err != nil {
			t.Fatal(err)
		}
		if again, err := idx.Digest(); err != nil || again != digest {
			t.Errorf("second build: index %v, %v; want %v", again, err, digest)
		}
	})

	ref, err := name.ParseReference(reg.Host + "/digester@" + digest.String())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref, remote.WithTransport(reg.Transport()))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var gotPlatforms []string
	for _, m := range im.Manifests {
		gotPlatforms = append(gotPlatforms, string(m.MediaType)+" "+m.Platform.String())
	}
	wantPlatforms := []string{string(types.OCIManifestSchema1) + " linux/amd64", string(types.OCIManifestSchema1) + " linux/arm64"}
	if diff := cmp.Diff(wantPlatforms, gotPlatforms); diff != "" {
		t.Fatalf("index manifests (-want +got):\n%s", diff)
	}

	hostCA, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	roots := map[string]string{} // architecture → unpacked filesystem; outlives the subtests
	for _, arch := range []string{"amd64", "arm64"} {
		roots[arch] = t.TempDir()
	}
	for i, tc := range []struct {
		arch    string
		machine elf.Machine
	}{
		{"amd64", elf.EM_X86_64},
		{"arm64", elf.EM_AARCH64},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			img, err := idx.Image(im.Manifests[i].Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			mf, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			type summary struct {
				OS, Arch, User, ConfigType string
				Entrypoint, Env, Layers    []string
				Labels                     map[string]string
				Created                    time.Time
			}
			got := summary{OS: cf.OS, Arch: cf.Architecture, User: cf.Config.User, ConfigType: string(mf.Config.MediaType),
				Entrypoint: cf.Config.Entrypoint, Env: cf.Config.Env, Labels: cf.Config.Labels, Created: cf.Created.UTC()}
			for _, l := range mf.Layers {
				got.Layers = append(got.Layers, string(l.MediaType))
			}
			want := summary{OS: "linux", Arch: tc.arch, User: "65532:65532", ConfigType: string(types.OCIConfigJSON),
				Entrypoint: []string{"/usr/local/bin/digester"},
				Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
				Layers:     []string{string(types.OCILayer)}, Created: created,
				Labels: map[string]string{
					"org.opencontainers.image.title":       "digester",
					"org.opencontainers.image.description": "KRM function pinning container images to their digests",
					"org.opencontainers.image.source":      "https://github.com/digester/digester",
					"org.opencontainers.image.version":     "v9.9.9",
					"org.opencontainers.image.revision":    "abc123",
				}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("image config (-want +got):\n%s", diff)
			}

			root := roots[tc.arch]
			unpack(t, img, root)
			checkStatic(t, filepath.Join(root, cf.Config.Entrypoint[0]), tc.machine)

			ca, err := os.ReadFile(filepath.Join(root, caPath))
			if err != nil {
				t.Fatalf("CA bundle: %v", err)
			}
			if !bytes.Equal(ca, hostCA) || !x509.NewCertPool().AppendCertsFromPEM(ca) {
				t.Errorf("CA bundle in the image (%d bytes) is not the build machine's (%d bytes) or holds no certificate", len(ca), len(hostCA))
			}
			// kpt runs container functions as --user nobody; docker resolves it in the image's passwd.
			gotUsers := []string{passwdUser(t, root, "nobody"), passwdUser(t, root, "nonroot")}
			if diff := cmp.Diff([]string{"65534:65534", "65532:65532"}, gotUsers); diff != "" {
				t.Errorf("/etc/passwd nobody, nonroot (-want +got):\n%s", diff)
			}
			if fi, err := os.Stat(filepath.Join(root, "tmp")); err != nil {
				t.Errorf("/tmp: %v", err)
			} else if got, want := fi.Mode(), os.ModeDir|os.ModeSticky|0o777; got != want {
				t.Errorf("/tmp mode %v; want %v", got, want)
			}
		})
	}

	t.Run("runs", func(t *testing.T) {
		root := roots["amd64"]
		img, err := idx.Image(im.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		app, err := reg.PushImage("team/app", "v1", types.OCIManifestSchema1)
		if err != nil {
			t.Fatal(err)
		}
		image := reg.Host + "/team/app:v1"
		in := `apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: app
    annotations:
      config.kubernetes.io/path: app.yaml
  spec:
    template:
      spec:
        containers:
        - name: app
          image: ` + image + `
`
		for _, tc := range []struct{ name, user string }{
			{"as the image's user", cf.Config.User},
			{"as kpt's --user nobody", passwdUser(t, root, "nobody")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cmd := containerCommand(t, root, cf, tc.user)
				cmd.Stdin = strings.NewReader(in)
				var o, e bytes.Buffer
				cmd.Stdout, cmd.Stderr = &o, &e
				if err := cmd.Run(); err != nil {
					t.Fatalf("%s: %v\nstderr:\n%s", cf.Config.Entrypoint[0], err, e.String())
				}
				rl, err := fn.ParseResourceList(o.Bytes())
				if err != nil {
					t.Fatalf("output is not a ResourceList: %v\n%s", err, o.String())
				}
				containers, _, err := rl.Items[0].NestedSlice("spec", "template", "spec", "containers")
				if err != nil || len(containers) != 1 {
					t.Fatalf("containers: %v, %v\n%s", containers, err, o.String())
				}
				if diff := cmp.Diff(image+"@"+app.String(), containers[0].GetString("image")); diff != "" {
					t.Errorf("pinned image (-want +got):\n%s", diff)
				}
			})
		}
	})
}

// containerCommand returns a command running the image's entrypoint as a runtime would: as root
// (this machine's CI), in a chroot of the unpacked filesystem, as user ("uid:gid"), with only the
// config's environment. Without root it runs the unpacked binary directly, with SSL_CERT_FILE
// pointing into the unpacked filesystem.
func containerCommand(t *testing.T, root string, cf *v1.ConfigFile, user string) *exec.Cmd {
	t.Helper()
	uid, gid := parseUser(t, user)
	if uid == 0 {
		t.Fatalf("running as root (user %q)", user)
	}
	if os.Geteuid() != 0 {
		t.Logf("not root: running %s without chroot, as uid %d", cf.Config.Entrypoint[0], os.Geteuid())
		cmd := exec.Command(filepath.Join(root, cf.Config.Entrypoint[0]), cf.Config.Entrypoint[1:]...)
		cmd.Env = []string{"DOCKER_CONFIG=" + t.TempDir(), "SSL_CERT_FILE=" + filepath.Join(root, caPath)}
		return cmd
	}
	cmd := exec.Command(cf.Config.Entrypoint[0], cf.Config.Entrypoint[1:]...)
	cmd.Env = cf.Config.Env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Chroot:     root,
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
	}
	return cmd
}

// passwdUser looks name up in the image's /etc/passwd, as docker does for `--user name`, and
// returns "uid:gid".
func passwdUser(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Split(line, ":"); len(f) == 7 && f[0] == name {
			return f[2] + ":" + f[3]
		}
	}
	t.Fatalf("no user %q in the image's /etc/passwd:\n%s", name, b)
	return ""
}

// parseUser reads a numeric "uid:gid" user.
func parseUser(t *testing.T, user string) (uid, gid uint32) {
	t.Helper()
	u, g, ok := strings.Cut(user, ":")
	un, err1 := strconv.ParseUint(u, 10, 32)
	gn, err2 := strconv.ParseUint(g, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("user %q is not numeric uid:gid", user)
	}
	return uint32(un), uint32(gn)
}

// unpack writes the image's flattened filesystem (mutate.Extract) into root and lets any user
// traverse root, keeping each entry's permission bits.
func unpack(t *testing.T, img v1.Image, root string) {
	t.Helper()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("extract: %v", err)
		}
		if !filepath.IsLocal(h.Name) {
			t.Fatalf("extract: unsafe path %q", h.Name)
		}
		p := filepath.Join(root, h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.Create(p); err == nil {
				_, err = io.Copy(f, tr)
				err = errors.Join(err, f.Close())
			}
		default:
			t.Fatalf("extract: unexpected entry %q of type %c", h.Name, h.Typeflag)
		}
		if err == nil {
			err = os.Chmod(p, h.FileInfo().Mode()&(os.ModePerm|os.ModeSticky))
		}
		if err != nil {
			t.Fatalf("extract %s: %v", h.Name, err)
		}
	}
}

// checkStatic fails unless path is an ELF executable for machine that needs no dynamic loader or
// shared library, so that it runs in an image with nothing else in it.
func checkStatic(t *testing.T, path string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("entrypoint: %v", err)
	}
	defer f.Close()
	var interp []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp = append(interp, "PT_INTERP")
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if f.Machine != machine || f.Type != elf.ET_EXEC || len(interp) > 0 || len(libs) > 0 {
		t.Errorf("%s: %v %v, interpreter %v, needs %v; want a static %v ET_EXEC", path, f.Machine, f.Type, interp, libs, machine)
	}
}

// TestRootfs: -rootfs writes, for the Dockerfile, every file and directory of the image's layer
// but the binary and its directories, with the layer's modes and contents (docker build keeps
// modes and makes root the owner, as the layer does).
func TestRootfs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rootfs")
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"-rootfs", dir}, &stdout); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("wrote "+dir+"\n", stdout.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	ca, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := rootfs(binPath, []byte("binary"), ca, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(tb))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name == "usr" || strings.HasPrefix(name, "usr/") {
			continue // the binary, which the Dockerfile copies from bin/
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		want[name] = fmt.Sprintf("%v %d:%d %q", h.FileInfo().Mode(), h.Uid, h.Gid, b)
	}
	got := map[string]string{}
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		var b []byte
		if fi.Mode().IsRegular() {
			if b, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(dir, p)
		got[filepath.ToSlash(rel)] = fmt.Sprintf("%v %d:%d %q", fi.Mode(), 0, 0, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-rootfs files (-layer +rootfs):\n%s", diff)
	}
}
