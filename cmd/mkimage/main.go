// Command mkimage builds digester's container image without a docker engine: it cross-compiles
// the function for linux/amd64 and linux/arm64 (static, CGO_ENABLED=0, -trimpath), puts each
// binary in a one-layer image built from scratch (the binary, the build machine's CA bundle,
// /etc/passwd and /etc/group with root, nobody and nonroot, /tmp), and writes the multi-arch
// index as an OCI image layout. With -push it also pushes the index to a registry; with -load it
// also loads the image of the local Docker daemon's platform into that daemon under a tag, with
// `docker load`, so that kpt finds it without a registry.
//
// The result is reproducible: file times and the image creation time come from
// SOURCE_DATE_EPOCH (0 when unset), so the same source, Go toolchain, CA bundle and labels always
// give the same index digest.
//
// With -image webhook it builds the admission webhook's image instead (cmd/webhook, entrypoint
// /usr/local/bin/digester-webhook), the same way; see `make image-webhook`.
//
// With -rootfs it only writes the files other than the binary to a directory, for the
// Dockerfile, which builds the same image with `docker build` (see `make image-docker`).
//
//	go run ./cmd/mkimage -out out/image [-push registry.example.com/digester:v1] [-load localhost/digester:dev]
//	go run ./cmd/mkimage -rootfs out/rootfs
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// binPath is where the function lives in the image; it is the entrypoint.
	binPath = "/usr/local/bin/digester"
	// caPath is where Go (and most TLS stacks) look for the CA bundle on Linux.
	caPath = "/etc/ssl/certs/ca-certificates.crt"
	// nonroot is the uid and gid the image runs as, as in distroless's :nonroot images.
	nonroot = 65532
	// source is the org.opencontainers.image.source label.
	source = "https://github.com/digester/digester"
)

// passwd and group name the users a runtime may be asked for: kpt runs container functions
// with `--user nobody` unless --as-current-user is given, and docker refuses a user name the
// image's /etc/passwd lacks.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n"
	group = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
)

// options say what to build.
type options struct {
	pkg       string        // Go package of the function
	caBundle  string        // CA bundle copied into the image
	platforms []v1.Platform // one image per platform
	created   time.Time     // every file time and the image creation time
	version   string        // org.opencontainers.image.version label
	revision  string        // org.opencontainers.image.revision label: the source's commit
	kind      imageKind     // the function (the zero value) or the webhook
}

// imageKind is what an image runs: the function or the admission webhook.
type imageKind struct {
	bin, title, description string
}

// kinds are the images mkimage builds, by -image.
var kinds = map[string]struct {
	pkg  string
	kind imageKind
}{
	"function": {"github.com/digester/digester", imageKind{binPath, "digester", "KRM function pinning container images to their digests"}},
	"webhook": {"github.com/digester/digester/cmd/webhook", imageKind{"/usr/local/bin/digester-webhook", "digester-webhook",
		"Mutating admission webhook pinning container images to their digests"}},
}

// or returns k, or the function's when k is the zero value.
func (k imageKind) or() imageKind {
	if k.bin == "" {
		return kinds["function"].kind
	}
	return k
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

// run is main with its arguments and output passed in, for tests.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mkimage", flag.ContinueOnError)
	out := fs.String("out", "out/image", "directory to write the OCI image layout to (replaced)")
	push := fs.String("push", "", "also push the index to this reference, e.g. ghcr.io/acme/digester:v1")
	kind := fs.String("image", "function", "`function` (the KRM function) or webhook (cmd/webhook, the admission webhook)")
	pkg := fs.String("pkg", "", "Go package to build (default: -image's)")
	ca := fs.String("ca-bundle", caPath, "CA bundle to copy into the image")
	plats := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch[/variant] list")
	load := fs.String("load", "", "also `docker load` the image of the Docker daemon's platform under this tag, e.g. localhost/digester:dev")
	rootfsDir := fs.String("rootfs", "", "only write the image's files other than the binary to this directory (replaced), for the Dockerfile")
	version := fs.String("version", "dev", "org.opencontainers.image.version label, e.g. v1.2.0")
	revision := fs.String("revision", "unknown", "org.opencontainers.image.revision label: the source's commit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *rootfsDir != "" {
		if err := writeRootfs(*rootfsDir, *ca); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *rootfsDir)
		return nil
	}
	created, err := sourceDateEpoch(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	k, ok := kinds[*kind]
	if !ok {
		return fmt.Errorf("-image %q: want function or webhook", *kind)
	}
	if *pkg == "" {
		*pkg = k.pkg
	}
	opts := options{pkg: *pkg, caBundle: *ca, created: created, version: *version, revision: *revision, kind: k.kind}
	for _, s := range strings.Split(*plats, ",") {
		p, err := v1.ParsePlatform(s)
		if err != nil {
			return fmt.Errorf("platform %q: %w", s, err)
		}
		opts.platforms = append(opts.platforms, *p)
	}

	idx, err := build(ctx, opts)
	if err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	if err := writeLayout(*out, idx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: index %s\n", *out, digest)
	if *push != "" {
		ref, err := name.ParseReference(*push)
		if err != nil {
			return fmt.Errorf("-push: %w", err)
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("push %s: %w", ref, err)
		}
		fmt.Fprintf(stdout, "pushed %s@%s\n", ref.Context(), digest)
	}
	if *load != "" {
		if err := dockerLoad(ctx, idx, *load, stdout); err != nil {
			return fmt.Errorf("-load %s: %w", *load, err)
		}
	}
	return nil
}

// dockerLoad loads the image of idx for the local Docker daemon's platform into the daemon as tag:
// it writes the image as a `docker save` tarball into `docker load`.
func dockerLoad(ctx context.Context, idx v1.ImageIndex, tag string, stdout io.Writer) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}").CombinedOutput()
	if err != nil {
		return fmt.Errorf("no Docker daemon answers `docker version` (%w): %s", err, bytes.TrimSpace(out))
	}
	p, err := v1.ParsePlatform(strings.TrimSpace(string(out)))
	if err != nil {
		return fmt.Errorf("the Docker daemon's platform: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	var img v1.Image
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.Satisfies(*p) {
			if img, err = idx.Image(m.Digest); err != nil {
				return err
			}
			break
		}
	}
	if img == nil {
		return fmt.Errorf("no image was built for the Docker daemon's platform %s (see -platforms)", p)
	}
	id, err := img.ConfigName()
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarball.Write(ref, img, pw)) }()
	cmd := exec.CommandContext(ctx, "docker", "load")
	cmd.Stdin = pr
	out, err = cmd.CombinedOutput()
	pr.CloseWithError(io.ErrClosedPipe) // stops the writer if docker load quit early
	if err != nil {
		return fmt.Errorf("docker load: %w: %s", err, bytes.TrimSpace(out))
	}
	fmt.Fprintf(stdout, "loaded %s (%s, image ID %s)\n", tag, p, id)
	return nil
}

// sourceDateEpoch parses SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/source-date-epoch/).
func sourceDateEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: %w", s, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// build compiles the function for every platform and returns the multi-arch OCI index.
func build(ctx context.Context, o options) (v1.ImageIndex, error) {
	ca, err := os.ReadFile(o.caBundle)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w", err)
	}
	tmp, err := os.MkdirTemp("", "mkimage-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.platforms {
		bin, err := compile(ctx, o.pkg, filepath.Join(tmp, p.OS+"-"+p.Architecture), p, o.version, o.revision)
		if err != nil {
			return nil, err
		}
		img, err := image(bin, ca, p, o)
		if err != nil {
			return nil, fmt.Errorf("image for %s: %w", p, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{MediaType: types.OCIManifestSchema1, Platform: &p},
		})
	}
	return idx, nil
}

// compile builds a static binary of pkg for p, as `make build` does, and returns its bytes.
// GOAMD64 and GOARM64 are fixed to the baseline the platform names, whatever the environment says.
// The binary's --version prints version and revision, as `make build` stamps them.
func compile(ctx context.Context, pkg, out string, p v1.Platform, version, revision string) ([]byte, error) {
	ldflags := "-s -w -X main.version=" + version + " -X main.commit=" + revision
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags="+ldflags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture,
		"GOAMD64=v1", "GOARM64=v8.0", "GOTOOLCHAIN=local")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for %s: %w\n%s", pkg, p, err, stderr.Bytes())
	}
	return os.ReadFile(out)
}

// image makes the one-layer image for platform p.
func image(bin, ca []byte, p v1.Platform, o options) (v1.Image, error) {
	tb, err := rootfs(o.kind.or().bin, bin, ca, o.created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		Variant:      p.Variant,
		OS:           p.OS,
		Created:      v1.Time{Time: o.created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Entrypoint: []string{o.kind.or().bin},
			User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
			WorkingDir: "/",
			// Go reads caPath by default; SSL_CERT_FILE says so to anyone reading the config.
			Env:    []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + caPath},
			Labels: labels(o),
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: o.created},
		CreatedBy: "cmd/mkimage: " + o.kind.or().title + ", CA bundle, passwd, group, /tmp",
	}})
}

// labels are the image's labels (OCI annotation keys); the Dockerfile sets the same ones.
func labels(o options) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       o.kind.or().title,
		"org.opencontainers.image.description": o.kind.or().description,
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.revision":    o.revision,
	}
}

// entry is a file or directory of the image, owned by root.
type entry struct {
	name     string
	mode     int64
	contents []byte // nil for a directory
}

// files are the image's entries other than the binary and its directories, parents first.
func files(ca []byte) []entry {
	return []entry{
		{"etc/", 0o755, nil},
		{"etc/group", 0o644, []byte(group)},
		{"etc/passwd", 0o644, []byte(passwd)},
		{"etc/ssl/", 0o755, nil},
		{"etc/ssl/certs/", 0o755, nil},
		{strings.TrimPrefix(caPath, "/"), 0o644, ca},
		{"tmp/", 0o1777, nil},
	}
}

// writeRootfs replaces dir with the image's files other than the binary, which the Dockerfile
// copies: `docker build` keeps their modes and makes root their owner.
func writeRootfs(dir, caBundle string) error {
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return fmt.Errorf("CA bundle: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, e := range files(ca) {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if e.contents == nil {
			err = os.Mkdir(p, 0o700)
		} else {
			err = os.WriteFile(p, e.contents, 0o600)
		}
		if err == nil { // Chmod, unlike Mkdir and WriteFile, ignores the umask and sets the sticky bit
			mode := os.FileMode(e.mode & 0o777)
			if e.mode&0o1000 != 0 {
				mode |= os.ModeSticky
			}
			err = os.Chmod(p, mode)
		}
		if err != nil {
			return fmt.Errorf("-rootfs: %w", err)
		}
	}
	return nil
}

// rootfs returns the image's whole filesystem as an uncompressed tar, every entry dated created.
func rootfs(binPath string, bin, ca []byte, created time.Time) ([]byte, error) {
	entries := append(files(ca),
		entry{"usr/", 0o755, nil},
		entry{"usr/local/", 0o755, nil},
		entry{"usr/local/bin/", 0o755, nil},
		entry{strings.TrimPrefix(binPath, "/"), 0o755, bin},
	)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: created}
		if e.contents == nil {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.contents))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.contents); err != nil {
			return nil, fmt.Errorf("tar %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeLayout replaces dir with an OCI image layout whose index.json points at idx.
func writeLayout(dir string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx); err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return nil
}
