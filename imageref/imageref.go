// Package imageref reads the syntax of container image references as written, in the spirit of
// go-containerregistry's pkg/name: whether a reference has a tag or a digest, its parts, its
// repository, whether a string is a digest, and a reference with a digest appended. It does no
// I/O, knows no registry and normalises nothing but registry host names (CanonicalRegistry):
// every other function works on the user's own text, so output built from it keeps that text.
//
// A reference is [host[:port]/]path[:tag][@digest]. As in go-containerregistry, the first path
// component is a registry host when it holds a '.' or a ':' or is "localhost" (IPv6 hosts are
// written in brackets, "[::1]:5000/app"). A ':' names a tag only after the last '/', so a port is
// never taken for a tag.
package imageref

import "strings"

// DockerHub is the registry host that every spelling of Docker Hub stands for, as
// go-containerregistry names it.
const DockerHub = "index.docker.io"

// Split returns the parts of ref as written: name (host and path), tag ("" if none) and digest
// ("" if none), without their ':' and '@' separators. "localhost:5000/app:1@sha256:…" gives
// "localhost:5000/app", "1" and "sha256:…". Nothing is checked: see ValidDigest.
func Split(ref string) (name, tag, digest string) {
	name, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	return name, tag, digest
}

// HasTag reports whether ref names a tag explicitly: "nginx:1.27" and "localhost:5000/app:1" do;
// "nginx", "localhost:5000/app" and "nginx@sha256:…" do not.
func HasTag(ref string) bool {
	_, tag, _ := Split(ref)
	return tag != ""
}

// HasDigest reports whether ref names a digest, as written ("repo@…" or "repo:tag@…"), whether
// that digest is valid or not (see ValidDigest).
func HasDigest(ref string) bool {
	return strings.Contains(ref, "@")
}

// Repository returns ref without its tag and digest: "nginx:1.27@sha256:…" gives "nginx",
// "localhost:5000/app:1" gives "localhost:5000/app".
func Repository(ref string) string {
	name, _, _ := Split(ref)
	return name
}

// WithDigest returns ref with digest in place of any digest it names, keeping the tag and
// everything else as written: "nginx:1.27" and "sha256:abc…" give "nginx:1.27@sha256:abc…".
func WithDigest(ref, digest string) string {
	name, _, _ := strings.Cut(ref, "@")
	return name + "@" + digest
}

// hexDigits is the length of a digest's hex part by algorithm, for the algorithms the OCI image
// spec registers.
var hexDigits = map[string]int{"sha256": 64, "sha512": 128}

// ValidDigest reports whether s is a digest written as the OCI image spec registers them:
// "sha256:" and 64 lowercase hex digits, or "sha512:" and 128. It is the one rule for digest
// syntax in digester, for references, registry answers and the lock alike.
func ValidDigest(s string) bool {
	algo, hex, _ := strings.Cut(s, ":")
	if n, ok := hexDigits[algo]; !ok || len(hex) != n {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SplitHost returns the registry host of ref and the rest after its '/', or "" and ref when the
// first path component is not a host (it holds no '.' or ':' and is not "localhost"):
// "Registry.Example:5000/app:1" gives "Registry.Example:5000" and "app:1"; "library/nginx" gives
// "" and "library/nginx".
func SplitHost(ref string) (host, rest string) {
	first, after, ok := strings.Cut(ref, "/")
	if !ok || !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "", ref
	}
	return first, after
}

// CanonicalRegistry returns the name that host, a registry host[:port], is known by: host names
// are case-insensitive and a trailing dot names the same host, so both are dropped
// ("Quay.IO." is "quay.io"), and every spelling of Docker Hub (docker.io, index.docker.io,
// registry-1.docker.io) is DockerHub. The port is kept as written.
func CanonicalRegistry(host string) string {
	h, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i > strings.LastIndexByte(host, ']') {
		h, port = host[:i], host[i:]
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if port == "" && (h == "docker.io" || h == DockerHub || h == "registry-1.docker.io") {
		return DockerHub
	}
	return h + port
}
