package resolver_test

import (
	"context"
	"net"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// TestMirrors resolves references of an upstream registry through mirrors (in-process registries
// on loopback, one serving under a path prefix) and checks which source answered, what each
// registry was asked, and that the upstream is asked only when mirror-fallback allows it.
func TestMirrors(t *testing.T) {
	upstream, prefixed, plain := registrytest.New(), registrytest.New(), registrytest.New()
	defer upstream.Close()
	defer prefixed.Close()
	defer plain.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String() // nothing listens here
	l.Close()

	// Each registry serves its own content for a repository, so a digest says who answered.
	digest := map[string]string{}
	push := func(reg *registrytest.Registry, repo string) {
		t.Helper()
		d, err := reg.PushImage(repo, "1", types.OCIManifestSchema1)
		if err != nil {
			t.Fatal(err)
		}
		digest[reg.Host+"/"+repo] = d.String()
	}
	push(upstream, "team/app")     // everywhere
	push(prefixed, "hub/team/app") // the prefixed mirror serves team/app under hub/
	push(plain, "team/app")
	push(upstream, "team/only-upstream")
	push(plain, "team/only-plain")
	push(upstream, "team/only-plain")

	ref := func(repo string) string { return upstream.Host + "/" + repo + ":1" }
	type got struct{ Digest, Mirror, Err string }
	notFound := func(reg *registrytest.Registry, repo string) string {
		return "repository not found: registry " + reg.Host + " has no repository " + repo + " (or it is private: digester asked without credentials)"
	}
	for _, tc := range []struct {
		name     string
		mirrors  []string // mirrors of upstream, in order
		fallback bool
		refs     []string
		want     map[string]got
		// manifest requests each registry must see, by host
		wantManifests map[string]int
	}{
		{
			name:    "the first mirror answers; a reference used twice is one lookup",
			mirrors: []string{prefixed.Host + "/hub", plain.Host},
			refs:    []string{ref("team/app"), ref("team/app")},
			want: map[string]got{
				ref("team/app"): {Digest: digest[prefixed.Host+"/hub/team/app"], Mirror: prefixed.Host + "/hub"},
			},
			wantManifests: map[string]int{prefixed.Host: 1, plain.Host: 0, upstream.Host: 0},
		},
		{
			name:    "a 404 falls through to the next mirror",
			mirrors: []string{prefixed.Host + "/hub", plain.Host},
			refs:    []string{ref("team/only-plain")},
			want: map[string]got{
				ref("team/only-plain"): {Digest: digest[plain.Host+"/team/only-plain"], Mirror: plain.Host},
			},
			wantManifests: map[string]int{prefixed.Host: 1, plain.Host: 1, upstream.Host: 0},
		},
		{
			name:    "a mirror that cannot be reached falls through to the next",
			mirrors: []string{refused, plain.Host},
			refs:    []string{ref("team/app")},
			want: map[string]got{
				ref("team/app"): {Digest: digest[plain.Host+"/team/app"], Mirror: plain.Host},
			},
			wantManifests: map[string]int{plain.Host: 1, upstream.Host: 0},
		},
		{
			name:    "no mirror has it and fallback is off: the upstream is not asked",
			mirrors: []string{prefixed.Host + "/hub", plain.Host},
			refs:    []string{ref("team/only-upstream")},
			want: map[string]got{
				ref("team/only-upstream"): {Err: "no mirror of registry " + upstream.Host + " could resolve it, and " + upstream.Host +
					" itself was not asked (mirror-fallback is off): mirror " + prefixed.Host + "/hub: " + notFound(prefixed, "hub/team/only-upstream") +
					"; mirror " + plain.Host + ": " + notFound(plain, "team/only-upstream")},
			},
			wantManifests: map[string]int{prefixed.Host: 1, plain.Host: 1, upstream.Host: 0},
		},
		{
			name:     "no mirror has it and fallback is on: the upstream answers",
			mirrors:  []string{prefixed.Host + "/hub", refused},
			fallback: true,
			refs:     []string{ref("team/only-upstream")},
			want: map[string]got{
				ref("team/only-upstream"): {Digest: digest[upstream.Host+"/team/only-upstream"]},
			},
			wantManifests: map[string]int{prefixed.Host: 1, upstream.Host: 1},
		},
		{
			name:     "nobody has it, fallback on: the upstream's answer, then the mirrors'",
			mirrors:  []string{plain.Host},
			fallback: true,
			refs:     []string{ref("team/nowhere")},
			want: map[string]got{
				ref("team/nowhere"): {Err: notFound(upstream, "team/nowhere") + " (mirrors tried first: mirror " + plain.Host + ": " + notFound(plain, "team/nowhere") + ")"},
			},
			wantManifests: map[string]int{plain.Host: 1, upstream.Host: 1},
		},
		{
			name:    "a reference by digest is checked at the mirror",
			mirrors: []string{prefixed.Host + "/hub", plain.Host},
			refs:    []string{upstream.Host + "/team/only-plain@" + digest[plain.Host+"/team/only-plain"]},
			want: map[string]got{
				upstream.Host + "/team/only-plain@" + digest[plain.Host+"/team/only-plain"]: {Digest: digest[plain.Host+"/team/only-plain"], Mirror: plain.Host},
			},
			wantManifests: map[string]int{prefixed.Host: 1, plain.Host: 1, upstream.Host: 0},
		},
		{
			name:          "a registry without mirrors is asked directly",
			refs:          []string{ref("team/app")},
			want:          map[string]got{ref("team/app"): {Digest: digest[upstream.Host+"/team/app"]}},
			wantManifests: map[string]int{upstream.Host: 1, prefixed.Host: 0, plain.Host: 0},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, reg := range []*registrytest.Registry{upstream, prefixed, plain} {
				reg.Reset()
			}
			ms := resolver.Mirrors{}
			for _, m := range tc.mirrors {
				if err := ms.Add(upstream.Host, m); err != nil {
					t.Fatal(err)
				}
			}
			r := newResolver(resolver.WithMirrors(ms, tc.fallback))
			res := r.Resolve(context.Background(), tc.refs)
			gotRes := map[string]got{}
			for ref, rr := range res {
				g := got{Digest: rr.Digest, Mirror: rr.Mirror}
				if rr.Err != nil {
					g.Err = rr.Err.Error()
				}
				gotRes[ref] = g
			}
			if diff := cmp.Diff(tc.want, gotRes); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			gotN := map[string]int{}
			for host := range tc.wantManifests {
				for _, reg := range []*registrytest.Registry{upstream, prefixed, plain} {
					if reg.Host == host {
						gotN[host] = reg.Count("", "manifest")
					}
				}
			}
			if diff := cmp.Diff(tc.wantManifests, gotN); diff != "" {
				t.Errorf("manifest requests by registry (-want +got):\n%s", diff)
			}
			if n := upstream.Count(http.MethodGet, "manifest"); n != 0 {
				t.Errorf("upstream got %d manifest GETs, want none", n)
			}
		})
	}
}

func TestParseMirror(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "mirror.corp.example/dockerhub", want: "mirror.corp.example/dockerhub"},
		{in: "mirror.corp.example:5000", want: "mirror.corp.example:5000"},
		{in: "localhost:5000/a/b/", want: "localhost:5000/a/b"},
		{in: "localhost/cache", want: "localhost/cache"}, // localhost needs no dot or port, as in a reference
		{in: "https://mirror.corp.example", err: `mirror "https://mirror.corp.example" is not a registry: write host[:port][/path] without a scheme`},
		{in: "mirror/dockerhub", err: `mirror "mirror/dockerhub" is not a registry: its first part must be a host name with a dot or a port, or localhost (as in mirror.example or mirror:5000)`},
		{in: "mirror.example/DockerHub", err: `mirror "mirror.example/DockerHub" is not a registry: its path must be lowercase letters, digits and separators (. _ - /)`},
		{in: "", err: `mirror "" is not a registry: its first part must be a host name with a dot or a port, or localhost (as in mirror.example or mirror:5000)`},
	} {
		m, err := resolver.ParseMirror(tc.in)
		got, gotErr := m.String(), ""
		if err != nil {
			got, gotErr = "", err.Error()
		}
		if diff := cmp.Diff([]string{tc.want, tc.err}, []string{got, gotErr}); diff != "" {
			t.Errorf("ParseMirror(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "docker.io", want: "index.docker.io"},
		{in: "index.docker.io", want: "index.docker.io"},
		{in: "registry-1.docker.io", want: "index.docker.io"},
		{in: "Docker.io", want: "index.docker.io"},
		{in: "docker.io.", want: "index.docker.io"},
		{in: "Quay.IO", want: "quay.io"},
		{in: "quay.io", want: "quay.io"},
		{in: "localhost:5000", want: "localhost:5000"},
		{in: "docker.io/library", err: `"docker.io/library" is not a registry host (write host or host:port, as in docker.io or registry.example:5000)`},
		{in: "dockerhub", err: `"dockerhub" is not a registry host (write host or host:port, as in docker.io or registry.example:5000)`},
	} {
		got, err := resolver.ParseRegistry(tc.in)
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if diff := cmp.Diff([]string{tc.want, tc.err}, []string{got, gotErr}); diff != "" {
			t.Errorf("ParseRegistry(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestMirrorsEverySpelling: with mirrors for docker.io and registry.example and fallback off,
// every spelling of those registries (Docker Hub's three host names, capitals, a trailing dot)
// goes to the mirror, as the repository the mirror serves (Docker Hub's library/ namespace
// included), and the upstream registry gets no request at all.
func TestMirrorsEverySpelling(t *testing.T) {
	upstream, mirror := registrytest.New(registrytest.WithTLS()), registrytest.New()
	defer upstream.Close()
	defer mirror.Close()
	// Each serves its own content, so a digest says who answered.
	d, err := mirror.PushImages(types.OCIManifestSchema1, "library/nginx:1.27", "team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upstream.PushImages(types.OCIManifestSchema1, "docker.io/library/nginx:1.27", "registry.example/team/app:1"); err != nil {
		t.Fatal(err)
	}
	// Every host but the mirror's is the upstream registry, over TLS it trusts.
	rt := upstream.Transport()
	rt.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != mirror.Host {
			addr = upstream.Host
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	ms := resolver.Mirrors{}
	for _, reg := range []string{"docker.io", "registry.example"} {
		if err := ms.Add(reg, mirror.Host); err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(refs ...string) map[string]resolver.Result {
		return newResolver(resolver.WithTransport(rt), resolver.WithMirrors(ms, false)).Resolve(context.Background(), refs)
	}
	nginx := []string{
		"nginx:1.27", "library/nginx:1.27", "docker.io/nginx:1.27", "docker.io/library/nginx:1.27",
		"index.docker.io/library/nginx:1.27", "registry-1.docker.io/library/nginx:1.27", "registry-1.docker.io/nginx:1.27",
		"Docker.io/library/nginx:1.27", "DOCKER.IO/nginx:1.27", "docker.io./library/nginx:1.27", "docker.io./nginx:1.27",
		"Index.Docker.IO./library/nginx:1.27", "Registry-1.Docker.io./nginx:1.27",
	}
	app := []string{"registry.example/team/app:1", "Registry.EXAMPLE/team/app:1", "registry.example./team/app:1"}
	want := func(ref string) resolver.Result {
		if slices.Contains(app, ref) {
			return resolver.Result{Digest: d["team/app:1"], Mirror: mirror.Host}
		}
		return resolver.Result{Digest: d["library/nginx:1.27"], Mirror: mirror.Host}
	}
	for _, ref := range append(slices.Clone(nginx), app...) {
		t.Run(ref, func(t *testing.T) {
			upstream.Reset()
			mirror.Reset()
			if diff := cmp.Diff(want(ref), resolve(ref)[ref]); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if n := upstream.Count("", ""); n != 0 {
				t.Errorf("the upstream registry got %d requests, want none: %v", n, upstream.Requests())
			}
			if n := mirror.Count(http.MethodHead, "manifest"); n != 1 {
				t.Errorf("the mirror got %d manifest HEADs, want 1: %v", n, mirror.Requests())
			}
		})
	}
	t.Run("Docker Hub's spellings at once are one lookup", func(t *testing.T) {
		upstream.Reset()
		mirror.Reset()
		res := resolve(append(slices.Clone(nginx), app...)...)
		for ref, got := range res {
			if diff := cmp.Diff(want(ref), got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", ref, diff)
			}
		}
		if n := upstream.Count("", ""); n != 0 {
			t.Errorf("the upstream registry got %d requests, want none", n)
		}
		n := 0
		for _, q := range mirror.Requests() {
			if q.Method == http.MethodHead && q.Path == "/v2/library/nginx/manifests/1.27" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the mirror got %d HEADs of library/nginx:1.27, want 1: %v", n, mirror.Requests())
		}
	})
}
