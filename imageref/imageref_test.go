package imageref_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/imageref"
)

var (
	sha256Digest = "sha256:" + strings.Repeat("0123456789abcdef", 4)
	sha512Digest = "sha512:" + strings.Repeat("0123456789abcdef", 8)
)

// parts is everything imageref reads of one reference.
type parts struct {
	Name, Tag, Digest string
	HasTag, HasDigest bool
	Repository        string
	Host, Rest        string
}

func read(ref string) parts {
	var p parts
	p.Name, p.Tag, p.Digest = imageref.Split(ref)
	p.HasTag, p.HasDigest, p.Repository = imageref.HasTag(ref), imageref.HasDigest(ref), imageref.Repository(ref)
	p.Host, p.Rest = imageref.SplitHost(ref)
	return p
}

// TestSplit: the parts of references as written, a port never taken for a tag.
func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		ref  string
		want parts
	}{
		{"nginx", parts{Name: "nginx", Repository: "nginx", Rest: "nginx"}},
		{"nginx:1.27", parts{Name: "nginx", Tag: "1.27", HasTag: true, Repository: "nginx", Rest: "nginx:1.27"}},
		{"library/nginx:1.27", parts{Name: "library/nginx", Tag: "1.27", HasTag: true, Repository: "library/nginx", Rest: "library/nginx:1.27"}},
		{"nginx@" + sha256Digest, parts{Name: "nginx", Digest: sha256Digest, HasDigest: true, Repository: "nginx", Rest: "nginx@" + sha256Digest}},
		{"nginx:1.27@" + sha512Digest, parts{Name: "nginx", Tag: "1.27", Digest: sha512Digest, HasTag: true, HasDigest: true, Repository: "nginx", Rest: "nginx:1.27@" + sha512Digest}},
		{"docker.io/library/nginx:1.27", parts{Name: "docker.io/library/nginx", Tag: "1.27", HasTag: true, Repository: "docker.io/library/nginx", Host: "docker.io", Rest: "library/nginx:1.27"}},
		// A port is not a tag.
		{"localhost:5000/app", parts{Name: "localhost:5000/app", Repository: "localhost:5000/app", Host: "localhost:5000", Rest: "app"}},
		{"localhost:5000/app:1", parts{Name: "localhost:5000/app", Tag: "1", HasTag: true, Repository: "localhost:5000/app", Host: "localhost:5000", Rest: "app:1"}},
		{"localhost:5000/team/app@" + sha256Digest, parts{Name: "localhost:5000/team/app", Digest: sha256Digest, HasDigest: true, Repository: "localhost:5000/team/app", Host: "localhost:5000", Rest: "team/app@" + sha256Digest}},
		{"localhost/app:1", parts{Name: "localhost/app", Tag: "1", HasTag: true, Repository: "localhost/app", Host: "localhost", Rest: "app:1"}},
		{"registry.example.com:443/a/b/c:v1", parts{Name: "registry.example.com:443/a/b/c", Tag: "v1", HasTag: true, Repository: "registry.example.com:443/a/b/c", Host: "registry.example.com:443", Rest: "a/b/c:v1"}},
		// IPv6 hosts, in brackets, with and without a port.
		{"[::1]:5000/app:1", parts{Name: "[::1]:5000/app", Tag: "1", HasTag: true, Repository: "[::1]:5000/app", Host: "[::1]:5000", Rest: "app:1"}},
		{"[::1]:5000/app", parts{Name: "[::1]:5000/app", Repository: "[::1]:5000/app", Host: "[::1]:5000", Rest: "app"}},
		{"[fe80::1]/app:v2@" + sha256Digest, parts{Name: "[fe80::1]/app", Tag: "v2", Digest: sha256Digest, HasTag: true, HasDigest: true, Repository: "[fe80::1]/app", Host: "[fe80::1]", Rest: "app:v2@" + sha256Digest}},
		// Upper-case hosts are hosts, kept as written.
		{"Registry.Example.COM:5000/app:1", parts{Name: "Registry.Example.COM:5000/app", Tag: "1", HasTag: true, Repository: "Registry.Example.COM:5000/app", Host: "Registry.Example.COM:5000", Rest: "app:1"}},
		{"Docker.io/nginx", parts{Name: "Docker.io/nginx", Repository: "Docker.io/nginx", Host: "Docker.io", Rest: "nginx"}},
		// Not a host: no dot, no port, not localhost.
		{"team/app:1", parts{Name: "team/app", Tag: "1", HasTag: true, Repository: "team/app", Rest: "team/app:1"}},
		{"Localhost/app", parts{Name: "Localhost/app", Repository: "Localhost/app", Rest: "Localhost/app"}},
		// As written, however malformed: checking is ValidDigest's and the resolver's.
		{"nginx:", parts{Name: "nginx", Repository: "nginx", Rest: "nginx:"}},
		{"nginx@", parts{Name: "nginx", HasDigest: true, Repository: "nginx", Rest: "nginx@"}},
		{"nginx@sha256:abc", parts{Name: "nginx", Digest: "sha256:abc", HasDigest: true, Repository: "nginx", Rest: "nginx@sha256:abc"}},
		{"", parts{}},
	} {
		if diff := cmp.Diff(tc.want, read(tc.ref)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.ref, diff)
		}
	}
}

// TestValidDigest: sha256 with 64 and sha512 with 128 lowercase hex digits, and nothing else.
func TestValidDigest(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{sha256Digest, true},
		{sha512Digest, true},
		{"sha256:" + strings.Repeat("a", 63), false},
		{"sha256:" + strings.Repeat("a", 65), false},
		{"sha256:" + strings.Repeat("a", 128), false},
		{"sha512:" + strings.Repeat("a", 64), false},
		{"sha512:" + strings.Repeat("a", 127), false},
		{"sha256:" + strings.Repeat("A", 64), false},
		{"sha256:" + strings.Repeat("g", 64), false},
		{"sha256:" + strings.Repeat("a", 63) + "/", false}, // '0'-1
		{"sha256:" + strings.Repeat("a", 63) + ":", false}, // '9'+1
		{"sha256:" + strings.Repeat("a", 63) + "`", false}, // 'a'-1
		{"sha256:" + strings.Repeat("0", 63) + "9", true},
		{"sha256:" + strings.Repeat("f", 64), true},
		{"SHA256:" + strings.Repeat("a", 64), false},
		{"sha384:" + strings.Repeat("a", 96), false},
		{"md5:" + strings.Repeat("a", 32), false},
		{strings.Repeat("a", 64), false},
		{"sha256:", false},
		{"sha256" + strings.Repeat("a", 65), false},
		{"", false},
	} {
		if got := imageref.ValidDigest(tc.s); got != tc.want {
			t.Errorf("ValidDigest(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestWithDigest: the digest is appended to the text as written, or replaces the one there.
func TestWithDigest(t *testing.T) {
	for _, tc := range []struct{ ref, digest, want string }{
		{"nginx:1.27", sha256Digest, "nginx:1.27@" + sha256Digest},
		{"nginx", sha512Digest, "nginx@" + sha512Digest},
		{"Registry.Example:5000/app:1", sha256Digest, "Registry.Example:5000/app:1@" + sha256Digest},
		{"[::1]:5000/app", sha256Digest, "[::1]:5000/app@" + sha256Digest},
		{"nginx:1.27@" + sha512Digest, sha256Digest, "nginx:1.27@" + sha256Digest},
	} {
		if got := imageref.WithDigest(tc.ref, tc.digest); got != tc.want {
			t.Errorf("WithDigest(%q, %q) = %q, want %q", tc.ref, tc.digest, got, tc.want)
		}
	}
}

// TestCanonicalRegistry: one name for every spelling of a registry host.
func TestCanonicalRegistry(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"docker.io", "index.docker.io"},
		{"index.docker.io", "index.docker.io"},
		{"registry-1.docker.io", "index.docker.io"},
		{"Docker.io", "index.docker.io"},
		{"DOCKER.IO.", "index.docker.io"},
		{"docker.io.", "index.docker.io"},
		{"Index.Docker.IO", "index.docker.io"},
		{"registry-1.docker.io.", "index.docker.io"},
		{"docker.io:443", "docker.io:443"}, // another address than Docker Hub's, as go-containerregistry reads it
		{"docker.io.:5000", "docker.io:5000"},
		{"hub.docker.io", "hub.docker.io"},
		{"Quay.IO", "quay.io"},
		{"quay.io.", "quay.io"},
		{"Registry.Example:5000", "registry.example:5000"},
		{"localhost:5000", "localhost:5000"},
		{"LOCALHOST", "localhost"},
		{"[::1]:5000", "[::1]:5000"},
		{"[FE80::1]", "[fe80::1]"},
		{"[fe80::1]:5000", "[fe80::1]:5000"},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
	} {
		if got := imageref.CanonicalRegistry(tc.host); got != tc.want {
			t.Errorf("CanonicalRegistry(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}
