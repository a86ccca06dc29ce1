// Package config reads digester's settings from a functionConfig: a ConfigMap (what
// `kpt fn eval -- key=value` sends) or a typed `apiVersion: fn.kpt.dev/v1alpha1, kind: Digester`
// object. Both are decoded strictly: an unknown key is an error naming it.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

// Kind and APIVersion of the typed functionConfig.
const (
	Kind       = "Digester"
	APIVersion = "fn.kpt.dev/v1alpha1"
)

// Config is what a run is told to do: the core's options (pin.Options) and how registries are
// reached and findings reported.
type Config struct {
	pin.Options
	// Concurrency bounds lookups in flight; RegistryConcurrency bounds them per registry.
	Concurrency, RegistryConcurrency int
	// Timeout bounds each registry request.
	Timeout time.Duration
	// InsecureRegistries may be reached over plain HTTP or unverified TLS.
	InsecureRegistries []string
	// Report says how front ends report findings: one per distinct reference, or one per field.
	Report Report
	// Mirrors sends each listed registry's lookups to its mirrors, in order; MirrorFallback lets
	// a lookup no mirror could answer go to the registry itself.
	Mirrors        resolver.Mirrors
	MirrorFallback bool
	// Registries holds, by registry host, the CA trusted for it and the client certificate
	// shown to it, read from their files.
	Registries map[string]resolver.TLS
}

// Report says how front ends report findings.
type Report int

const (
	// ReportReferences: one result per distinct reference and one per registry that is down.
	ReportReferences Report = iota
	// ReportFields: one result per image field.
	ReportFields
)

// String is the setting's word for r: references, fields.
func (r Report) String() string {
	if r == ReportFields {
		return "fields"
	}
	return "references"
}

// Default returns the settings used when nothing is configured.
func Default() Config {
	return Config{
		Options:             pin.Options{Deadline: 5 * time.Minute, LockFile: DefaultLockFile, KptImagePrefix: walker.DefaultKptImagePrefix},
		Concurrency:         resolver.DefaultConcurrency,
		RegistryConcurrency: resolver.DefaultRegistryConcurrency,
		Timeout:             resolver.DefaultTimeout,
	}
}

// DefaultLockFile is where a new DigestLock is written, relative to the package.
const DefaultLockFile = pin.DefaultLockFile

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
	{"report", "report", "references", "`references`: one result per distinct reference and one per registry that is down; `fields`: one result per image field"},
	{"presets", "presets", "true", "`false` turns off the built-in places: Argo Workflows, Tekton, Prometheus Operator, KEDA, Kptfile functions, Flux, Argo CD, Helm values and RELATED_IMAGE_* variables"},
	{"kpt-image-prefix", "kptImagePrefix", walker.DefaultKptImagePrefix, "what kpt puts in front of a Kptfile function image named without `/` (`set-labels:v0.1`): kpt 1.0.0-beta.59 and later use the default, earlier ones `gcr.io/kpt-fn`; the pin writes the full name"},
	{"additional-image-fields", "additionalImageFields", "[]", "more places that hold images, as kpt set-image's additionalImageFields: a list of {group, version, kind, path}, written as YAML in a ConfigMap or a flag"},
}

// Parse reads a functionConfig given as YAML (empty for none) and merges in skipPrefixesEnv, the
// value of SKIP_PREFIXES. Errors name the offending key.
func Parse(functionConfig []byte, skipPrefixesEnv string) (Config, error) {
	return ParseOver(Default(), functionConfig, skipPrefixesEnv)
}

// ParseOver is Parse with base in place of Default: the settings a front end uses when nothing
// is configured (the webhook's timeouts are shorter than a CI run's).
func ParseOver(base Config, functionConfig []byte, skipPrefixesEnv string) (Config, error) {
	c := base
	c.SkipPrefixes = uniq(append(slices.Clone(c.SkipPrefixes), splitPrefixes(skipPrefixesEnv)...))
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
	if err == nil {
		err = c.Validate()
	}

	return c, err
}

// Validate checks settings that depend on each other, and each registry's TLS settings as a whole
// (a client certificate needs its key).
func (c Config) Validate() error {
	if c.Lock == pin.LockFrozen && c.Pinned != pin.PinnedKeep {
		return fmt.Errorf("functionConfig: lock: frozen sends no registry request, so it cannot go with pinned: %s, which asks the registries", c.Pinned)
	}
	return checkTLS(&c)
}

func parseConfigMap(b []byte, c *Config) error {
	m, err := object(b)
	if err != nil {
		return fmt.Errorf("functionConfig ConfigMap: %w", err)
	}
	for _, kv := range pairs(m) {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "apiVersion", "kind", "metadata":
			continue
		case "data":
		case "binaryData", "immutable":
			return fmt.Errorf("functionConfig ConfigMap: field %q (line %d) is not read: put settings under data", k.Value, k.Line)
		default:
			return fmt.Errorf("functionConfig ConfigMap: unknown field %q (line %d): settings go under data", k.Value, k.Line)
		}
		if v.Kind != yaml.MappingNode {
			if v.Tag == "!!null" {
				continue
			}
			return fmt.Errorf("functionConfig ConfigMap: data (line %d) is not a map of settings", v.Line)
		}
		for _, d := range pairs(v) {
			if d[1].Kind != yaml.ScalarNode {
				return fmt.Errorf("functionConfig ConfigMap: key %q (line %d): the value must be a string", d[0].Value, d[0].Line)
			}
			if !isKey(d[0].Value) {
				return fmt.Errorf("functionConfig ConfigMap: unknown key %q (line %d; known: %s)", d[0].Value, d[0].Line,
					known(func(k struct{ Key, Field, Default, Doc string }) string { return k.Key }))
			}
			if err := c.Set(d[0].Value, d[1].Value); err != nil {
				return fmt.Errorf("functionConfig ConfigMap: key %q (line %d): %w", d[0].Value, d[0].Line, unwrapKey(err))
			}
		}
	}
	return nil
}

// Set sets the setting named by a ConfigMap key (a key of Keys) from its text, as the ConfigMap
// form and command-line flags give it. List settings (skip-prefixes, insecure-registries) add to
// what is already set. An error names the key and says what is wrong with the value.
func (c *Config) Set(key, v string) error {
	var err error
	switch key {
	case "skip-prefixes":
		c.SkipPrefixes = uniq(append(c.SkipPrefixes, splitPrefixes(v)...))
	case "concurrency":
		c.Concurrency, err = positive(v)
	case "registry-concurrency":
		c.RegistryConcurrency, err = positive(v)
	case "timeout":
		c.Timeout, err = duration(v)
	case "deadline":
		c.Deadline, err = duration(v)
	case "insecure-registries":
		var hosts []string
		if hosts, err = registryHosts(v); err == nil {
			c.InsecureRegistries = uniq(append(c.InsecureRegistries, hosts...))
		}
	case "on-error":
		c.OnError, err = oneOf(v, pin.OnErrorFail, pin.OnErrorWarn)
	case "mode":
		c.Mode, err = oneOf(v, pin.ModePin, pin.ModeCheck)
	case "pinned":
		c.Pinned, err = oneOf(v, pin.PinnedKeep, pin.PinnedVerify, pin.PinnedRefresh)
	case "lock":
		c.Lock, err = oneOf(v, pin.LockAuto, pin.LockUpdate, pin.LockFrozen)
	case "lock-file":
		c.LockFile, err = lockFile(v)
	case "report":
		c.Report, err = oneOf(v, ReportReferences, ReportFields)
	case "registry-mirrors":
		err = mirrorPairs(c, v)
	case "mirror-fallback":
		c.MirrorFallback, err = boolean(v)
	case "platform":
		c.Platform, err = platform(v)
	case "registry-ca-files", "registry-client-cert-files", "registry-client-key-files":
		err = tlsFiles(c, key, v)
	case "presets":
		var on bool
		on, err = boolean(v)
		c.NoPresets = !on
	case "kpt-image-prefix":
		c.KptImagePrefix, err = imagePrefix(v)
	case "additional-image-fields":
		var fs []walker.ImageField
		if fs, err = imageFields([]byte(v)); err == nil {
			c.ImageFields = append(c.ImageFields, fs...)
		}
	default:
		return fmt.Errorf("unknown key %q (known: %s)", key, known(func(k struct{ Key, Field, Default, Doc string }) string { return k.Key }))
	}
	if err != nil {
		return fmt.Errorf("key %q: %w", key, err)
	}
	return nil
}

// parseTyped reads the typed form: the same settings as the ConfigMap, in camelCase, lists as lists.
func parseTyped(b []byte, c *Config) error {
	m, err := object(b)
	if err != nil {
		return fmt.Errorf("functionConfig %s: %w", Kind, err)
	}
	for _, kv := range pairs(m) {
		k, v := kv[0], kv[1]
		if k.Value == "apiVersion" || k.Value == "kind" || k.Value == "metadata" {
			continue
		}
		key := ""
		for _, known := range Keys {
			if known.Field == k.Value {
				key = known.Key
			}
		}
		where := fmt.Sprintf("functionConfig %s: field %q (line %d)", Kind, k.Value, k.Line)
		switch k.Value {
		case "registryMirrors":
			if err := typedMirrors(c, v); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			continue
		case "registries":
			if err := typedRegistries(c, v); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			continue
		}
		if key == "" {
			return fmt.Errorf("functionConfig %s: unknown field %q (line %d; known: %s)", Kind, k.Value, k.Line,
				known(func(k struct{ Key, Field, Default, Doc string }) string {
					f, _, _ := strings.Cut(k.Field, ".")
					return f
				}))
		}
		if key == "skip-prefixes" || key == "insecure-registries" {
			if v.Kind != yaml.SequenceNode {
				return fmt.Errorf("%s: must be a list, such as [a.example/, b.example/]", where)
			}
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					return fmt.Errorf("%s: line %d: each item must be a string", where, item.Line)
				}
				if key == "skip-prefixes" {
					c.SkipPrefixes = append(c.SkipPrefixes, strings.TrimSpace(item.Value))
					continue
				}
				if err := c.Set(key, item.Value); err != nil {
					return fmt.Errorf("%s: %w", where, unwrapKey(err))
				}
			}
			continue
		}
		if key == "additional-image-fields" {
			b, err := yaml.Marshal(v)
			if err == nil {
				var fs []walker.ImageField
				if fs, err = imageFields(b); err == nil {
					c.ImageFields = append(c.ImageFields, fs...)
					continue
				}
			}
			return fmt.Errorf("%s: %w", where, err)
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: must be a single value", where)
		}
		if err := c.Set(key, v.Value); err != nil {
			return fmt.Errorf("%s: %w", where, unwrapKey(err))
		}
	}
	return nil
}

// imageFields reads a list of {group, version, kind, path}, strictly: an unknown key is an error.
// Lines are those of b.
func imageFields(b []byte) ([]walker.ImageField, error) {
	const want = "want a list of {group, version, kind, path}"
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", want, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s", want)
	}
	var fs []walker.ImageField
	for i, e := range doc.Content[0].Content {
		if e.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s: entry %d is not a mapping", want, i)
		}
		var f walker.ImageField
		for _, kv := range pairs(e) {
			if kv[1].Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("entry %d: %q must be a string", i, kv[0].Value)
			}
			switch v := strings.TrimSpace(kv[1].Value); kv[0].Value {
			case "group":
				f.Group = v
			case "version":
				f.Version = v
			case "kind":
				f.Kind = v
			case "path":
				f.Path = v
			default:
				return nil, fmt.Errorf("entry %d: unknown key %q (known: group, version, kind, path)", i, kv[0].Value)
			}
		}
		if strings.Trim(f.Path, "/") == "" {
			return nil, fmt.Errorf("entry %d has no path", i)
		}
		fs = append(fs, f)
	}
	return fs, nil
}

func isKey(key string) bool {
	return slices.ContainsFunc(Keys, func(k struct{ Key, Field, Default, Doc string }) bool { return k.Key == key })
}

// unwrapKey drops Set's `key "x": ` prefix, for callers that name the field themselves.
func unwrapKey(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// object parses b as one YAML document holding a mapping.
func object(b []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a YAML object")
	}
	return doc.Content[0], nil
}

// pairs returns the key and value nodes of mapping m.
func pairs(m *yaml.Node) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		out = append(out, [2]*yaml.Node{m.Content[i], m.Content[i+1]})
	}
	return out
}

func known(f func(struct{ Key, Field, Default, Doc string }) string) string {
	var ks []string
	for _, k := range Keys {
		if !slices.Contains(ks, f(k)) {
			ks = append(ks, f(k))
		}
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

// oneOf returns the value among values whose name (String) is s.
func oneOf[T fmt.Stringer](s string, values ...T) (T, error) {
	var names []string
	for _, v := range values {
		if v.String() == strings.TrimSpace(s) {
			return v, nil
		}
		if v.String() != "" {
			names = append(names, v.String())
		}
	}
	var zero T
	return zero, fmt.Errorf("%q is not one of %s", s, strings.Join(names, ", "))
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

// imagePrefix checks a registry path to put in front of image names, as kpt checks its own
// --image-prefix: no scheme, query or fragment, a host first.
func imagePrefix(s string) (string, error) {
	p := strings.TrimRight(strings.TrimSpace(s), "/")
	u, err := url.Parse("https://" + p)
	if p == "" || strings.Contains(p, "://") || strings.ContainsAny(p, "?#@ ") || err != nil || u.Host == "" {
		return "", fmt.Errorf("%q is not a registry path such as gcr.io/kpt-fn (a host, then a path, with no scheme)", s)
	}
	return p, nil
}

// registryHosts splits a comma-separated list of registries, each a host or host:port.
func registryHosts(s string) ([]string, error) {
	hosts := splitList(s, ",")
	for _, h := range hosts {
		if strings.Contains(h, "://") || strings.ContainsAny(h, "/ @") {
			return nil, fmt.Errorf("%q is not a registry: give its host or host:port, with no scheme or path (such as registry.example or registry.example:5000)", h)
		}
	}
	return hosts, nil
}
