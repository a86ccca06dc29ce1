package resolver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/digester/digester/imageref"
)

// knownOS and knownArch are the values the OCI image spec allows for os and architecture (Go's
// GOOS and GOARCH).
var (
	knownOS = []string{"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
		"linux", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows"}
	knownArch = []string{"386", "amd64", "arm", "arm64", "loong64", "mips", "mips64", "mips64le",
		"mipsle", "ppc64", "ppc64le", "riscv64", "s390x", "wasm"}
)

// ParsePlatform reads a platform written os/arch[/variant][:os.version], as in linux/amd64,
// linux/arm64/v8 or windows/amd64:10.0.20348.
func ParsePlatform(s string) (v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	switch {
	case err != nil:
		return v1.Platform{}, fmt.Errorf("platform %q: %w", s, err)
	case !slices.Contains(knownOS, p.OS):
		return v1.Platform{}, fmt.Errorf("platform %q: unknown operating system %q (known: %s)", s, p.OS, strings.Join(knownOS, ", "))
	case !slices.Contains(knownArch, p.Architecture):
		return v1.Platform{}, fmt.Errorf("platform %q: unknown architecture %q (known: %s)", s, p.Architecture, strings.Join(knownArch, ", "))
	}
	return *p, nil
}

// WithPlatform pins each multi-arch tag to the digest of its image for platform p instead of the
// index's, at the cost of one more request (the index) per such tag, and one per index nested in
// it that may hold p's image (see walk.read). A single-platform tag costs two more (its manifest
// and config, where an image names its platform) and resolves only if it is for p.
func WithPlatform(p v1.Platform) Option { return func(r *Resolver) { r.platform = &p } }

// platformString writes p as ParsePlatform reads it.
func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	if p.OSVersion != "" {
		s += ":" + p.OSVersion
	}
	return s
}

// defaultVariant is the variant a platform without one means.
func defaultVariant(arch string) string {
	switch arch {
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

// satisfies reports whether an image for got runs where want is asked for. An unset variant or
// OS version in want accepts any.
func satisfies(got, want v1.Platform) bool {
	if got.OS != want.OS || got.Architecture != want.Architecture {
		return false
	}
	variant := func(p v1.Platform) string {
		if p.Variant == "" {
			return defaultVariant(p.Architecture)
		}
		return p.Variant
	}
	if want.Variant != "" && variant(got) != variant(want) {
		return false
	}
	return want.OSVersion == "" || got.OSVersion == want.OSVersion
}

// maxNesting is how deep indexes listed in an index are followed: an index may list indexes
// (each, say, one platform's images), and those may list indexes once more, and no deeper.
const maxNesting = 2

// maxNested bounds the nested indexes fetched for one lookup, so that an index listing many
// cannot make one lookup cost many requests.
const maxNested = 8

// index is what digester reads of a manifest: the entries of an index, or the config of an image.
type index struct {
	Manifests []descriptor `json:"manifests"`
	Config    *struct {
		Digest string `json:"digest"`
	} `json:"config"`
}

// descriptor is one entry of an index.
type descriptor struct {
	MediaType string       `json:"mediaType"`
	Digest    string       `json:"digest"`
	Platform  *v1.Platform `json:"platform"`
}

// image is an image that an index lists, directly or through the indexes it lists.
type image struct {
	digest   string
	platform v1.Platform
}

// walk is one reading of an index and the indexes it lists.
type walk struct {
	g      *session
	repo   string
	where  string                    // what is read, in words, for errors
	follow func(p *v1.Platform) bool // whether a nested index listed for p (nil: none named) is read
	left   int                       // nested indexes that may still be fetched
	images []image
	have   []string // the platforms listed, for errors
}

// read adds the images idx lists to w.images, by one rule for choosing an image by platform and
// for listing an index's platforms: an entry is an image when its media type is an image
// manifest's and it names a platform that is not unknown/unknown (what build tools give
// attestations and other non-images) and a valid digest; an entry whose media type is an index's
// is read in turn, when w.follow accepts its platform, up to maxNesting deep; any other entry is
// not an image. An image is taken on the word of the index that lists it, which was fetched and
// checked against its digest, and is not fetched itself: a node pulling the tag picks it on that
// same word.
func (w *walk) read(ctx context.Context, idx index, depth int) error {
	for _, d := range idx.Manifests {
		unknown := d.Platform != nil && (d.Platform.OS == "unknown" || d.Platform.Architecture == "unknown")
		switch {
		case unknown:
		case isIndexType(d.MediaType) && !w.follow(d.Platform):
			w.have = append(w.have, platformString(*d.Platform)) // follow accepts every nil platform
		case isIndexType(d.MediaType):
			if depth >= maxNesting {
				return fail(Platform, w.g.name.RegistryStr(), "%s nests indexes in indexes more than %d deep: digester follows no deeper, so it pins none of them", w.where, maxNesting)
			}
			if w.left <= 0 {
				return fail(Platform, w.g.name.RegistryStr(), "%s lists more than %d nested indexes: digester reads no more of them, so it pins none of them", w.where, maxNested)
			}
			w.left--
			body, err := w.g.get(ctx, "manifests", w.repo, d.Digest, d.Digest)
			if err != nil {
				return err
			}
			var nested index
			if err := json.Unmarshal(body, &nested); err != nil || nested.Manifests == nil {
				return fail(BadResponse, w.g.name.RegistryStr(), "registry %s sent manifest %s, listed by %s as an index, that is not an index", w.g.name.RegistryStr(), d.Digest, w.where)
			}
			if err := w.read(ctx, nested, depth+1); err != nil {
				return err
			}
		case isImageType(d.MediaType) && d.Platform != nil:
			w.have = append(w.have, platformString(*d.Platform))
			if imageref.ValidDigest(d.Digest) {
				w.images = append(w.images, image{digest: d.Digest, platform: *d.Platform})
			}
		}
	}
	return nil
}

// forPlatform turns digest, what target resolved to, into the digest of the image for the
// Resolver's platform: the matching image of an index (see walk.read), or the digest itself for
// an image of that platform.
func (r *Resolver) forPlatform(ctx context.Context, g *session, target name.Reference, digest string) (string, error) {
	repo, tag := target.Context().RepositoryStr(), target.Identifier()
	host := g.name.RegistryStr()
	want := *r.platform
	body, err := g.get(ctx, "manifests", repo, tag, digest)
	if err != nil {
		return "", err
	}
	var m index
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fail(BadResponse, host, "registry %s sent manifest %s of repository %s that does not parse: %v", host, digest, repo, err)
	}
	where := fmt.Sprintf("tag %q of repository %s on registry %s", tag, repo, host)
	switch {
	case m.Manifests != nil:
		w := &walk{g: g, repo: repo, where: where, left: maxNested,
			follow: func(p *v1.Platform) bool { return p == nil || satisfies(*p, want) }}
		if err := w.read(ctx, m, 0); err != nil {
			return "", err
		}
		// The first image that satisfies want, unless a later one has the variant want means
		// without naming one (linux/arm: v7 before v6).
		best, bestDefault := "", false
		for _, im := range w.images {
			if !satisfies(im.platform, want) || bestDefault {
				continue
			}
			isDefault := im.platform.Variant == want.Variant || want.Variant == "" && im.platform.Variant == defaultVariant(want.Architecture)
			if best == "" || isDefault {
				best, bestDefault = im.digest, isDefault
			}
		}
		if best == "" {
			return "", fail(Platform, host, "%s is a multi-arch index with no image for platform %s (it has %s)", where, platformString(want), orNone(w.have))
		}
		return best, nil
	case m.Config != nil && imageref.ValidDigest(m.Config.Digest):
		cfg, err := g.get(ctx, "blobs", repo, tag, m.Config.Digest)
		if err != nil {
			return "", err
		}
		var c struct {
			OS           string `json:"os"`
			Architecture string `json:"architecture"`
			Variant      string `json:"variant"`
			OSVersion    string `json:"os.version"`
		}
		if err := json.Unmarshal(cfg, &c); err != nil {
			return "", fail(BadResponse, host, "registry %s sent an image config for %s that does not parse: %v", host, where, err)
		}
		got := v1.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant, OSVersion: c.OSVersion}
		switch {
		case got.OS == "" || got.Architecture == "":
			return "", fail(Platform, host, "%s is a single-platform image whose config names no platform (no os and architecture): digester cannot tell whether it is for platform %s", where, platformString(want))
		case !satisfies(got, want):
			return "", fail(Platform, host, "%s is a single-platform image for %s, not for platform %s", where, platformString(got), platformString(want))
		}
		return digest, nil
	}
	return "", fail(BadResponse, host, "registry %s sent manifest %s for %s that is neither an index nor an image", host, digest, where)
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "no platforms listed"
	}
	return strings.Join(ss, ", ")
}

// get GETs a manifest or blob by digest and checks that its content has that digest.
func (g *session) get(ctx context.Context, kind, repo, tag, digest string) ([]byte, error) {
	url := fmt.Sprintf("%s://%s/v2/%s/%s/%s", g.scheme, g.name.RegistryStr(), repo, kind, digest)
	resp, err := g.do(ctx, http.MethodGet, url)
	if err != nil {
		return nil, g.explain(err, repo, tag)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return nil, g.explain(&statusError{code: resp.StatusCode, status: resp.Status, header: resp.Header, body: body}, repo, tag)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestBytes+1))
	if err != nil {
		return nil, g.explain(err, repo, tag)
	}
	if len(body) > maxManifestBytes {
		return nil, fail(BadResponse, g.name.RegistryStr(), "registry %s sent more than %d MiB for %s %s of repository %s: refusing to read it", g.name.RegistryStr(), maxManifestBytes>>20, kind, digest, repo)
	}
	if !imageref.ValidDigest(digest) {
		return nil, fail(BadResponse, g.name.RegistryStr(), "registry %s: %s %s of repository %s is not a digest digester can check", g.name.RegistryStr(), kind, digest, repo)
	}
	algo, _, _ := strings.Cut(digest, ":")
	if got := digestOf(algo, body); got != digest {
		return nil, fail(Mismatch, g.name.RegistryStr(), "registry %s sent content hashing to %s for %s %s of repository %s: refusing to pin", g.name.RegistryStr(), got, kind, digest, repo)
	}
	return body, nil
}

// Platforms returns, for an index named by digest ("repo@sha256:…"), the platform of each image it
// lists (os/arch[/variant][:os.version]), by digest, by the rule platform selection uses (see
// walk.read: no unknown/unknown entries, nested indexes followed); for an image, an empty map. It
// costs one GET of the manifest (and one per nested index), from the first of the repository's
// sources (mirrors, then the registry if allowed) that serves it.
func (r *Resolver) Platforms(ctx context.Context, ref string) (map[string]string, error) {
	pr, err := Parse(ref)
	if err != nil {
		return nil, err
	}
	if !HasDigest(ref) {
		return nil, &Error{Cause: Invalid, msg: fmt.Sprintf("%s does not name a digest", ref)}
	}
	digest := pr.Identifier()
	for _, s := range r.sources(pr) {
		if err = s.err; err != nil {
			continue
		}
		var g *session
		if g, err = r.setup(ctx, r.registry(s.ref.Context().Registry, []string{s.ref.Context().RepositoryStr()})); err != nil {
			continue
		}
		repo := s.ref.Context().RepositoryStr()
		var body []byte
		if body, err = g.get(ctx, "manifests", repo, digest, digest); err != nil {
			continue
		}
		var m index
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fail(BadResponse, g.name.RegistryStr(), "registry %s sent manifest %s that does not parse: %v", g.name.RegistryStr(), digest, err)
		}
		w := &walk{g: g, repo: repo, left: maxNested, follow: func(*v1.Platform) bool { return true },
			where: fmt.Sprintf("manifest %s of repository %s on registry %s", digest, repo, g.name.RegistryStr())}
		if err := w.read(ctx, m, 0); err != nil {
			return nil, err
		}
		out := map[string]string{}
		for _, im := range w.images {
			out[im.digest] = platformString(im.platform)
		}
		return out, nil
	}
	return nil, err
}
