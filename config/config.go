// Package config reads digester's settings from a functionConfig: a ConfigMap (what
// `kpt fn eval -- key=value` sends) or a typed `apiVersion: fn.kpt.dev/v1alpha1, kind: Digester`
// object. Both are decoded strictly: an unknown key is an error naming it.
package config

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/resolver"
)

// Kind and APIVersion of the typed functionConfig.
const (
	Kind       = "Digester"
	APIVersion = "fn.kpt.dev/v1alpha1"
)

// Config is what a run is told to do.
type Config struct {
	// SkipPrefixes: images starting with any of these are left alone.
	SkipPrefixes []string
	// Concurrency bounds lookups in flight; RegistryConcurrency bounds them per registry.
	Concurrency, RegistryConcurrency int
	// Timeout bounds each registry request; Deadline bounds the whole run.
	Timeout, Deadline time.Duration
	// InsecureRegistries may be reached over plain HTTP or unverified TLS.
	InsecureRegistries []string
	// Mirrors sends each listed registry's lookups to its mirrors, in order; MirrorFallback lets
	// a lookup no mirror could answer go to the registry itself.
	Mirrors        resolver.Mirrors
	MirrorFallback bool
	// Platform, if set, pins each multi-arch tag to its image for this platform.
	Platform *v1.Platform
	// Registries holds, by registry host, the CA trusted for it and the client certificate
	// shown to it, read from their files.
	Registries map[string]resolver.TLS
	// OnError is "fail" (any unresolved image fails the run and nothing is pinned) or "warn"
	// (pin what resolved, leave the rest and warn).
	OnError string
	// Mode is "pin" (set digests) or "check" (change nothing; report every field pin would change).
	Mode string
	// Pinned says what to do with references that already carry a digest: "keep" them as they
	// are, "verify" them against their registries, or "refresh" them to their tag's digest.
	Pinned string
	// Lock is how a DigestLock in the package is used: "" (use it and keep it current when the
	// package has one), "update" (also create one) or "frozen" (pin from it alone, no request).
	Lock string
	// LockFile is the file a new lock is written to.
	LockFile string
}

// Default returns the settings used when nothing is configured.
func Default() Config {
	return Config{
		Concurrency:         resolver.DefaultConcurrency,
		RegistryConcurrency: resolver.DefaultRegistryConcurrency,
		Timeout:             resolver.DefaultTimeout,
		Deadline:            5 * time.Minute,
		OnError:             "fail",
		Mode:                "pin",
		Pinned:              "keep",
		LockFile:            DefaultLockFile,
	}
}

// DefaultLockFile is where a new DigestLock is written, relative to the package.
const DefaultLockFile = "digests.lock.yaml"

// Keys documents every ConfigMap key, its typed field and default, in README order.
var Keys = []struct{ Key, Field, Default, Doc string }{
	{"skip-prefixes", "skipPrefixes", `""`, "colon- or comma-separated (ConfigMap) or list (typed) of image prefixes to leave alone; the SKIP_PREFIXES variable adds to it"},
	{"concurrency", "concurrency", strconv.Itoa(resolver.DefaultConcurrency), "lookups in flight at once, all registries together"},
	{"registry-concurrency", "registryConcurrency", strconv.Itoa(resolver.DefaultRegistryConcurrency), "lookups in flight at once against one registry"},
	{"timeout", "timeout", resolver.DefaultTimeout.String(), "bound on each registry request, body included"},
	{"deadline", "deadline", "5m0s", "bound on all lookups of the run"},
	{"insecure-registries", "insecureRegistries", `""`, "comma-separated (ConfigMap) or list (typed) of registries allowed plain HTTP or unverified TLS; loopback always may use plain HTTP"},
	{"registry-mirrors", "registryMirrors", `""`, "registries looked up through mirrors: ConfigMap `docker.io=mirror.example/dockerhub,quay.io=mirror.example:5000`, a registry listed again getting further mirrors in order; typed: a map from registry to a list of mirrors"},
	{"mirror-fallback", "mirrorFallback", "false", "`true`: a reference no mirror could resolve is looked up at its own registry; `false` keeps lookups on the mirrors"},
	{"platform", "platform", `""`, "`os/arch[/variant][:os.version]`: pin each multi-arch tag to the digest of its image for this platform instead of the index's; a single-platform tag of another platform is an error"},
	{"registry-ca-files", "registries.HOST.ca", `""`, "CA bundles trusted for one registry each, on top of the system store: ConfigMap `registry.example=/etc/certs/ca.pem,...`; typed: a file or the PEM itself"},
	{"registry-client-cert-files", "registries.HOST.cert", `""`, "client certificates (mutual TLS) shown to one registry each: ConfigMap `registry.example=/etc/certs/client.pem,...`; typed: a file or the PEM itself"},
	{"registry-client-key-files", "registries.HOST.key", `""`, "the private keys of those client certificates: ConfigMap `registry.example=/etc/certs/client-key.pem,...`; typed: a file or the PEM itself"},
	{"on-error", "onError", "fail", "`fail`: an unresolved image fails the run and nothing is pinned; `warn`: pin what resolved, warn about the rest"},
	{"mode", "mode", "pin", "`pin`: set digests; `check`: change nothing, report each field pin would change, exit 1 if any"},
	{"pinned", "pinned", "keep", "references that already carry a digest: `keep` as they are; `verify` against the registry; `refresh` to the tag's current digest"},
	{"lock", "lock", `""`, "the package's DigestLock: unset, use it and keep it current if there is one; `update`, also create one; `frozen`, pin from it alone and send no request"},
	{"lock-file", "lockFile", DefaultLockFile, "the file a new DigestLock is written to, relative to the package"},
}

// Parse reads a functionConfig given as YAML (empty for none) and merges in skipPrefixesEnv, the
// value of SKIP_PREFIXES. Errors name the offending key.
func Parse(functionConfig []byte, skipPrefixesEnv string) (Config, error) {
	c := Default()
	c.SkipPrefixes = splitPrefixes(skipPrefixesEnv)
	if len(bytes.TrimSpace(functionConfig)) == 0 {
		return c, nil
	}
	var head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	err := yaml.Unmarshal(functionConfig, &head)
	switch {
	case err != nil:
		err = fmt.Errorf("functionConfig: %w", err)
	case head.Kind == "" && head.APIVersion == "":
		return c, nil
	case head.Kind == "ConfigMap":
		err = parseConfigMap(functionConfig, &c)
	case head.Kind == Kind && head.APIVersion != APIVersion:
		err = fmt.Errorf("functionConfig: apiVersion %q for kind %s, want %s", head.APIVersion, Kind, APIVersion)
	case head.Kind == Kind:
		err = parseTyped(functionConfig, &c)
	default:
		err = fmt.Errorf("functionConfig: kind %q is not supported: use a ConfigMap or %s %s", head.Kind, APIVersion, Kind)
	}
	c.SkipPrefixes = uniq(c.SkipPrefixes)
	if err == nil && c.Lock == "frozen" && c.Pinned != "keep" {
		err = fmt.Errorf("functionConfig: lock: frozen sends no registry request, so it cannot go with pinned: %s, which asks the registries", c.Pinned)
	}
	return c, err
}

func parseConfigMap(b []byte, c *Config) error {
	var cm struct {
		APIVersion string         `yaml:"apiVersion"`
		Kind       string         `yaml:"kind"`
		Metadata   map[string]any `yaml:"metadata"`
		Data       map[string]any `yaml:"data"`
	}
	if err := strict(b, &cm); err != nil {
		return fmt.Errorf("functionConfig ConfigMap: %w", err)
	}
	keys := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(cm.Data[k])
		var err error
		switch k {
		case "skip-prefixes":
			c.SkipPrefixes = append(c.SkipPrefixes, splitPrefixes(v)...)
		case "concurrency":
			c.Concurrency, err = positive(v)
		case "registry-concurrency":
			c.RegistryConcurrency, err = positive(v)
		case "timeout":
			c.Timeout, err = duration(v)
		case "deadline":
			c.Deadline, err = duration(v)
		case "insecure-registries":
			c.InsecureRegistries = splitList(v, ",")
		case "registry-mirrors":
			c.Mirrors, err = mirrorPairs(v)
		case "mirror-fallback":
			c.MirrorFallback, err = boolean(v)
		case "platform":
			c.Platform, err = platform(v)
		case "registry-ca-files", "registry-client-cert-files", "registry-client-key-files":
			err = tlsFiles(c, k, v)
		case "on-error":
			c.OnError, err = onError(v)
		case "mode":
			c.Mode, err = oneOf(v, "pin", "check")
		case "pinned":
			c.Pinned, err = oneOf(v, "keep", "verify", "refresh")
		case "lock":
			c.Lock, err = oneOf(v, "", "update", "frozen")
		case "lock-file":
			c.LockFile, err = lockFile(v)
		default:
			return fmt.Errorf("functionConfig ConfigMap: unknown key %q (known: %s)", k, known(func(k struct{ Key, Field, Default, Doc string }) string { return k.Key }))
		}
		if err != nil {
			return fmt.Errorf("functionConfig ConfigMap: key %q: %w", k, err)
		}
	}
	return checkTLS(c)
}

func parseTyped(b []byte, c *Config) error {
	var d struct {
		APIVersion          string              `yaml:"apiVersion"`
		Kind                string              `yaml:"kind"`
		Metadata            map[string]any      `yaml:"metadata"`
		SkipPrefixes        []string            `yaml:"skipPrefixes"`
		Concurrency         *int                `yaml:"concurrency"`
		RegistryConcurrency *int                `yaml:"registryConcurrency"`
		Timeout             *string             `yaml:"timeout"`
		Deadline            *string             `yaml:"deadline"`
		InsecureRegistries  []string            `yaml:"insecureRegistries"`
		OnError             *string             `yaml:"onError"`
		Mode                *string             `yaml:"mode"`
		Pinned              *string             `yaml:"pinned"`
		Lock                *string             `yaml:"lock"`
		LockFile            *string             `yaml:"lockFile"`
		RegistryMirrors     map[string][]string `yaml:"registryMirrors"`
		MirrorFallback      *bool               `yaml:"mirrorFallback"`
		Platform            *string             `yaml:"platform"`
		Registries          map[string]struct {
			CA   string `yaml:"ca"`
			Cert string `yaml:"cert"`
			Key  string `yaml:"key"`
		} `yaml:"registries"`
	}
	if err := strict(b, &d); err != nil {
		return fmt.Errorf("functionConfig %s: %w", Kind, err)
	}
	field := func(name string, err error) error {
		if err != nil {
			return fmt.Errorf("functionConfig %s: field %q: %w", Kind, name, err)
		}
		return nil
	}
	c.SkipPrefixes = append(c.SkipPrefixes, d.SkipPrefixes...)
	c.InsecureRegistries = d.InsecureRegistries
	var err error
	if d.Concurrency != nil {
		if c.Concurrency, err = positive(strconv.Itoa(*d.Concurrency)); err != nil {
			return field("concurrency", err)
		}
	}
	if d.RegistryConcurrency != nil {
		if c.RegistryConcurrency, err = positive(strconv.Itoa(*d.RegistryConcurrency)); err != nil {
			return field("registryConcurrency", err)
		}
	}
	if d.Timeout != nil {
		if c.Timeout, err = duration(*d.Timeout); err != nil {
			return field("timeout", err)
		}
	}
	if d.Deadline != nil {
		if c.Deadline, err = duration(*d.Deadline); err != nil {
			return field("deadline", err)
		}
	}
	if d.OnError != nil {
		if c.OnError, err = onError(*d.OnError); err != nil {
			return field("onError", err)
		}
	}
	if d.Mode != nil {
		if c.Mode, err = oneOf(*d.Mode, "pin", "check"); err != nil {
			return field("mode", err)
		}
	}
	if d.Pinned != nil {
		if c.Pinned, err = oneOf(*d.Pinned, "keep", "verify", "refresh"); err != nil {
			return field("pinned", err)
		}
	}
	if d.Lock != nil {
		if c.Lock, err = oneOf(*d.Lock, "", "update", "frozen"); err != nil {
			return field("lock", err)
		}
	}
	if d.LockFile != nil {
		if c.LockFile, err = lockFile(*d.LockFile); err != nil {
			return field("lockFile", err)
		}
	}
	if len(d.RegistryMirrors) > 0 {
		c.Mirrors = resolver.Mirrors{}
		for _, reg := range slices.Sorted(maps.Keys(d.RegistryMirrors)) {
			if len(d.RegistryMirrors[reg]) == 0 {
				return field("registryMirrors", fmt.Errorf("registry %q has no mirrors listed", reg))
			}
			for _, m := range d.RegistryMirrors[reg] {
				if err := c.Mirrors.Add(reg, m); err != nil {
					return field("registryMirrors", err)
				}
			}
		}
	}
	if d.MirrorFallback != nil {
		c.MirrorFallback = *d.MirrorFallback
	}
	if d.Platform != nil {
		if c.Platform, err = platform(*d.Platform); err != nil {
			return field("platform", err)
		}
	}
	for _, host := range slices.Sorted(maps.Keys(d.Registries)) {
		reg := d.Registries[host]
		for _, f := range []struct{ name, v string }{{"ca", reg.CA}, {"cert", reg.Cert}, {"key", reg.Key}} {
			if f.v == "" {
				continue
			}
			if err := setTLS(c, host, f.name, f.v); err != nil {
				return field("registries", fmt.Errorf("%s: %s: %w", host, f.name, err))
			}
		}
	}
	return checkTLS(c)
}

// checkTLS checks each registry's TLS settings once all are read: a certificate needs its key.
func checkTLS(c *Config) error {
	for _, host := range slices.Sorted(maps.Keys(c.Registries)) {
		if err := c.Registries[host].Check(); err != nil {
			return fmt.Errorf("functionConfig: TLS settings of registry %s: %w", host, err)
		}
	}
	return nil
}

// tlsFiles reads a registry-*-files ConfigMap value: host=file pairs, comma-separated.
func tlsFiles(c *Config, key, v string) error {
	what := map[string]string{"registry-ca-files": "ca", "registry-client-cert-files": "cert", "registry-client-key-files": "key"}[key]
	for _, p := range splitList(v, ",") {
		host, file, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(file) == "" {
			return fmt.Errorf("%q is not registry=file (as in registry.example=/etc/certs/ca.pem)", p)
		}
		if strings.Contains(file, "-----BEGIN") {
			return fmt.Errorf("registry %s: give a file name here; PEM itself goes in the typed form's registries field", strings.TrimSpace(host))
		}
		if err := setTLS(c, strings.TrimSpace(host), what, strings.TrimSpace(file)); err != nil {
			return fmt.Errorf("registry %s: %w", strings.TrimSpace(host), err)
		}
	}
	return nil
}

// setTLS sets one TLS field (ca, cert or key) of a registry from v, PEM or the name of a file
// holding it.
func setTLS(c *Config, host, what, v string) error {
	reg, err := resolver.ParseRegistry(host)
	if err != nil {
		return err
	}
	pem := []byte(v)
	if !strings.Contains(v, "-----BEGIN") {
		if pem, err = os.ReadFile(v); err != nil {
			return fmt.Errorf("cannot read %s file: %w", what, err)
		}
		if !bytes.Contains(pem, []byte("-----BEGIN")) {
			return fmt.Errorf("%s holds no PEM block", v)
		}
	}
	if c.Registries == nil {
		c.Registries = map[string]resolver.TLS{}
	}
	t := c.Registries[reg]
	switch what {
	case "ca":
		t.CA = pem
	case "cert":
		t.Cert = pem
	case "key":
		t.Key = pem
	}
	c.Registries[reg] = t
	return nil
}

// RegistryOptions returns the resolver options for how registries are reached (mirrors, TLS)
// and what is pinned (platform).
func (c Config) RegistryOptions() []resolver.Option {
	var opts []resolver.Option
	if len(c.Mirrors) > 0 {
		opts = append(opts, resolver.WithMirrors(c.Mirrors, c.MirrorFallback))
	}
	if c.Platform != nil {
		opts = append(opts, resolver.WithPlatform(*c.Platform))
	}
	for host, t := range c.Registries {
		opts = append(opts, resolver.WithRegistryTLS(host, t))
	}
	return opts
}

// platform reads a platform; "" is none.
func platform(s string) (*v1.Platform, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p, err := resolver.ParsePlatform(strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// mirrorPairs reads registry=mirror pairs, comma-separated; a registry listed again gets further
// mirrors, in order.
func mirrorPairs(s string) (resolver.Mirrors, error) {
	ms := resolver.Mirrors{}
	for _, p := range splitList(s, ",") {
		reg, m, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not registry=mirror (as in docker.io=mirror.example/dockerhub)", p)
		}
		if err := ms.Add(strings.TrimSpace(reg), strings.TrimSpace(m)); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

func boolean(s string) (bool, error) {
	switch strings.TrimSpace(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is neither true nor false", s)
}

// strict decodes b into v, failing on unknown fields with the YAML decoder's message, which names them.
func strict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s", strings.ReplaceAll(err.Error(), "yaml: unmarshal errors:\n  ", ""))
	}
	return nil
}

func known(f func(struct{ Key, Field, Default, Doc string }) string) string {
	var ks []string
	for _, k := range Keys {
		ks = append(ks, f(k))
	}
	return strings.Join(ks, ", ")
}

// splitPrefixes splits a skip-prefixes value on colons, as google/k8s-digester does, and on commas.
// A piece that starts with a port number ("5000/team/") belongs to the piece before it, so
// "registry.example:5000/team/:other.example/" is two prefixes, not three.
func splitPrefixes(s string) []string {
	var out []string
	for _, p := range strings.Split(strings.ReplaceAll(s, ",", ":"), ":") {
		p = strings.TrimSpace(p)
		rest := strings.TrimLeft(p, "0123456789")
		if len(out) > 0 && rest != p && (rest == "" || rest[0] == '/') && !strings.Contains(out[len(out)-1], "/") {
			out[len(out)-1] += ":" + p
			continue
		}
		if p != "" {
			out = append(out, p)
		}
	}
	return uniq(out)
}

func splitList(s, sep string) []string {
	var out []string
	for _, p := range strings.Split(s, sep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return uniq(out)
}

// uniq drops repeated entries, keeping the first of each.
func uniq(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a whole number of at least 1", s)
	}
	return n, nil
}

func duration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration such as 10s or 2m", s)
	}
	return d, nil
}

func onError(s string) (string, error) {
	if s != "fail" && s != "warn" {
		return "", fmt.Errorf("%q is neither fail nor warn", s)
	}
	return s, nil
}

// oneOf returns s if it is one of the allowed values.
func oneOf(s string, allowed ...string) (string, error) {
	s = strings.TrimSpace(s)
	if slices.Contains(allowed, s) {
		return s, nil
	}
	var quoted []string
	for _, a := range allowed {
		if a != "" {
			quoted = append(quoted, a)
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(quoted, ", "))
}

// lockFile checks that s is a relative path inside the package.
func lockFile(s string) (string, error) {
	s = strings.TrimSpace(s)
	clean := path.Clean(s)
	if s == "" || path.IsAbs(s) || clean == ".." || strings.HasPrefix(clean, "../") || !strings.HasSuffix(clean, ".yaml") && !strings.HasSuffix(clean, ".yml") {
		return "", fmt.Errorf("%q is not a .yaml file inside the package", s)
	}
	return clean, nil
}
