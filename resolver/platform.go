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
// index's, at the cost of one more request (the index) per such tag. A single-platform tag costs
// two more (its manifest and config, where an image names its platform) and resolves only if it is
// for p.
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

// forPlatform turns digest, what target resolved to, into the digest of the image for the
// Resolver's platform: the matching entry of an index, or the digest itself for an image of that
// platform.
func (r *Resolver) forPlatform(ctx context.Context, g *session, target name.Reference, digest string) (string, error) {
	repo, tag := target.Context().RepositoryStr(), target.Identifier()
	want := *r.platform
	body, err := g.get(ctx, "manifests", repo, tag, digest)
	if err != nil {
		return "", err
	}
	var m struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			MediaType string       `json:"mediaType"`
			Digest    string       `json:"digest"`
			Platform  *v1.Platform `json:"platform"`
		} `json:"manifests"`
		Config *struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", fail(BadResponse, g.name.RegistryStr(), "registry %s sent manifest %s of repository %s that does not parse: %v", g.name.RegistryStr(), digest, repo, err)
	}
	where := fmt.Sprintf("tag %q of repository %s on registry %s", tag, repo, g.name.RegistryStr())
	switch {
	case m.Manifests != nil:
		// The first image that satisfies want, unless a later one has the variant want means
		// without naming one (linux/arm: v7 before v6).
		var have []string
		best, bestDefault := "", false
		for _, d := range m.Manifests {
			if d.Platform == nil || d.Platform.OS == "unknown" { // attestations and other non-images
				continue
			}
			have = append(have, platformString(*d.Platform))
			if !satisfies(*d.Platform, want) || !imageref.ValidDigest(d.Digest) || bestDefault {
				continue
			}
			isDefault := d.Platform.Variant == want.Variant || want.Variant == "" && d.Platform.Variant == defaultVariant(want.Architecture)
			if best == "" || isDefault {
				best, bestDefault = d.Digest, isDefault
			}
		}
		if best == "" {
			return "", fail(Platform, g.name.RegistryStr(), "%s is a multi-arch index with no image for platform %s (it has %s)", where, platformString(want), orNone(have))
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
			return "", fail(BadResponse, g.name.RegistryStr(), "registry %s sent an image config for %s that does not parse: %v", g.name.RegistryStr(), where, err)
		}
		got := v1.Platform{OS: c.OS, Architecture: c.Architecture, Variant: c.Variant, OSVersion: c.OSVersion}
		if !satisfies(got, want) {
			return "", fail(Platform, g.name.RegistryStr(), "%s is a single-platform image for %s, not for platform %s", where, platformString(got), platformString(want))
		}
		return digest, nil
	}
	return "", fail(BadResponse, g.name.RegistryStr(), "registry %s sent manifest %s for %s that is neither an index nor an image", g.name.RegistryStr(), digest, where)
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
// lists (os/arch[/variant][:os.version]), by digest; for an image, an empty map. It costs one GET of the manifest, from the first
// of the repository's sources (mirrors, then the registry if allowed) that serves it.
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
		var body []byte
		if body, err = g.get(ctx, "manifests", s.ref.Context().RepositoryStr(), digest, digest); err != nil {
			continue
		}
		var m struct {
			Manifests []struct {
				Digest   string       `json:"digest"`
				Platform *v1.Platform `json:"platform"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fail(BadResponse, g.name.RegistryStr(), "registry %s sent manifest %s that does not parse: %v", g.name.RegistryStr(), digest, err)
		}
		out := map[string]string{}
		for _, d := range m.Manifests {
			if d.Platform != nil {
				out[d.Digest] = platformString(*d.Platform)
			}
		}
		return out, nil
	}
	return nil, err
}
