package resolver

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/digester/digester/imageref"
)

// Mirror is a registry that serves another registry's repositories, under an optional path
// prefix: the mirror "mirror.corp.example/dockerhub" serves docker.io/library/nginx:1.27 as
// mirror.corp.example/dockerhub/library/nginx:1.27. A pull-through cache (the distribution
// registry's proxy mode) is a mirror without a prefix; a Harbor proxy project is one with.
type Mirror struct {
	// Host is the mirror's registry, host or host:port.
	Host string
	// Prefix is the path put in front of each repository, "" for none.
	Prefix string
}

// String is the mirror as configured: host[/prefix].
func (m Mirror) String() string {
	if m.Prefix == "" {
		return m.Host
	}
	return m.Host + "/" + m.Prefix
}

// ParseMirror reads a mirror written as host[:port][/path/prefix], without a scheme.
func ParseMirror(s string) (Mirror, error) {
	bad := func(why string) (Mirror, error) {
		return Mirror{}, fmt.Errorf("mirror %q is not a registry: %s", s, why)
	}
	if strings.Contains(s, "://") {
		return bad("write host[:port][/path] without a scheme")
	}
	host, prefix, _ := strings.Cut(strings.TrimSuffix(s, "/"), "/")
	if !looksLikeHost(host) {
		return bad("its first part must be a host name with a dot or a port, or localhost (as in mirror.example or mirror:5000)")
	}
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil {
		return bad(err.Error())
	}
	if prefix != "" {
		if _, err := name.NewRepository(host+"/"+prefix+"/x", name.StrictValidation); err != nil {
			return bad("its path must be lowercase letters, digits and separators (. _ - /)")
		}
	}
	return Mirror{Host: host, Prefix: prefix}, nil
}

// ParseRegistry reads a registry host as the key of a mirror list and returns its canonical name
// (imageref.CanonicalRegistry): "docker.io", "Docker.io", "docker.io." and "registry-1.docker.io"
// are all "index.docker.io", "Quay.IO" is "quay.io".
func ParseRegistry(s string) (string, error) {
	if strings.Contains(s, "/") || !looksLikeHost(s) {
		return "", fmt.Errorf("%q is not a registry host (write host or host:port, as in docker.io or registry.example:5000)", s)
	}
	if _, err := name.NewRegistry(s, name.StrictValidation); err != nil {
		return "", fmt.Errorf("%q is not a registry host: %w", s, err)
	}
	return imageref.CanonicalRegistry(s), nil
}

// looksLikeHost reports whether s would be read as a registry host at the start of a reference.
func looksLikeHost(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t") {
		return false
	}
	h := s
	if hh, _, err := net.SplitHostPort(s); err == nil {
		h = hh
	}
	return strings.ContainsAny(s, ".:") || h == "localhost"
}

// Mirrors maps a registry's canonical name ("index.docker.io", see ParseRegistry) to its mirrors,
// in the order they are tried. A reference's registry is matched by its canonical name too, so
// that every spelling of a registry goes to its mirrors.
type Mirrors map[string][]Mirror

// Add parses registry and mirror and appends the mirror to the registry's list, unless it is
// listed already.
func (ms Mirrors) Add(registry, mirror string) error {
	reg, err := ParseRegistry(registry)
	if err != nil {
		return err
	}
	m, err := ParseMirror(mirror)
	if err != nil {
		return err
	}
	for _, have := range ms[reg] {
		if have == m {
			return nil
		}
	}
	ms[reg] = append(ms[reg], m)
	return nil
}

// WithMirrors sends the lookups of each listed registry to its mirrors, in order: a mirror that
// answers 404 or fails passes the lookup to the next. The registry itself is asked only when
// fallback is true (air-gapped networks must not leak lookups). The digest found is pinned to the
// reference as written: a mirror serves the same content.
func WithMirrors(ms Mirrors, fallback bool) Option {
	return func(r *Resolver) {
		r.mirrors, r.mirrorFallback = Mirrors{}, fallback
		for reg, list := range ms {
			key := imageref.CanonicalRegistry(reg)
			r.mirrors[key] = append(r.mirrors[key], list...)
		}
	}
}

// source is one place a reference may be looked up: its own registry, or a mirror.
type source struct {
	ref    name.Reference
	mirror string // as configured; "" for the reference's own registry
	err    error  // why ref cannot be asked at this mirror (a repository name too long with its prefix)
}

// sources lists where ref is looked up, in order.
func (r *Resolver) sources(ref name.Reference) []source {
	ms := r.mirrors[imageref.CanonicalRegistry(ref.Context().RegistryStr())]
	if len(ms) == 0 {
		return []source{{ref: ref}}
	}
	out := make([]source, 0, len(ms)+1)
	for _, m := range ms {
		repo := ref.Context().RepositoryStr()
		if m.Prefix != "" {
			repo = m.Prefix + "/" + repo
		}
		sep := ":"
		if HasDigest(ref.String()) {
			sep = "@"
		}
		var serr error
		mref, err := name.ParseReference(m.Host+"/"+repo+sep+ref.Identifier(), name.WeakValidation)
		if err != nil {
			serr = &Error{Cause: Invalid, Registry: m.Host, msg: err.Error()}
		}
		out = append(out, source{ref: mref, mirror: m.String(), err: serr})
	}
	if r.mirrorFallback {
		out = append(out, source{ref: ref})
	}
	return out
}

// mirrorsFailed is a lookup that no mirror could answer.
type mirrorsFailed struct {
	registry string   // the reference's own registry
	tried    []string // mirrors, in order
	errs     []error  // one per mirror
	upstream error    // the registry's own answer; nil if it was not asked
}

func (e *mirrorsFailed) Error() string {
	var b strings.Builder
	for i, m := range e.tried {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "mirror %s: %v", m, e.errs[i])
	}
	if e.upstream != nil {
		return fmt.Sprintf("%v (mirrors tried first: %s)", e.upstream, b.String())
	}
	return fmt.Sprintf("no mirror of registry %s could resolve it, and %s itself was not asked (mirror-fallback is off): %s",
		e.registry, e.registry, b.String())
}

// Unwrap gives the last answer, so that callers can inspect its status.
func (e *mirrorsFailed) Unwrap() error {
	if e.upstream != nil {
		return e.upstream
	}
	return e.errs[len(e.errs)-1]
}

// resolveFrom looks a reference up at each of its sources in turn until one answers, and returns
// the digest and the mirror that answered ("" for the registry itself).
func (r *Resolver) resolveFrom(ctx context.Context, ref name.Reference, srcs []source, global chan struct{}, repos map[string][]string) (string, string, error) {
	fail := &mirrorsFailed{registry: ref.Context().RegistryStr()}
	for _, s := range srcs {
		d, err := "", s.err
		if err == nil {
			reg := r.registry(s.ref.Context().Registry, repos[s.ref.Context().RegistryStr()])
			reg.sem <- struct{}{}
			global <- struct{}{}
			d, err = r.lookup(ctx, reg, s.ref)
			<-global
			<-reg.sem
		}
		switch {
		case err == nil:
			return d, s.mirror, nil
		case len(srcs) == 1 && s.mirror == "":
			return "", "", err // no mirrors: the registry's own answer, as it is
		case s.mirror == "":
			fail.upstream = err
		default:
			fail.tried, fail.errs = append(fail.tried, s.mirror), append(fail.errs, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return "", "", &Error{Cause: CauseOf(fail.Unwrap()), Registry: fail.registry, msg: fail.Error(), wrapped: fail}
}
