package config

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/resolver"
)

// ResolverOptions returns the resolver's options: how many lookups at once, how long each may
// take, how registries are reached (insecure, mirrors, TLS) and what is pinned (platform). Every
// front end builds its resolver from them, so a setting means the same in each.
func (c Config) ResolverOptions() []resolver.Option {
	opts := []resolver.Option{
		resolver.WithConcurrency(c.Concurrency),
		resolver.WithRegistryConcurrency(c.RegistryConcurrency),
		resolver.WithTimeout(c.Timeout),
		resolver.WithInsecureRegistries(c.InsecureRegistries...),
	}
	if len(c.Mirrors) > 0 {
		opts = append(opts, resolver.WithMirrors(c.Mirrors, c.MirrorFallback))
	}
	if c.Platform != nil {
		opts = append(opts, resolver.WithPlatform(*c.Platform))
	}
	for _, host := range slices.Sorted(maps.Keys(c.Registries)) {
		opts = append(opts, resolver.WithRegistryTLS(host, c.Registries[host]))
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

// mirrorPairs adds registry=mirror pairs, comma-separated; a registry listed again gets further
// mirrors, in order.
func mirrorPairs(c *Config, s string) error {
	for _, p := range splitList(s, ",") {
		reg, m, ok := strings.Cut(p, "=")
		if !ok {
			return fmt.Errorf("%q is not registry=mirror (as in docker.io=mirror.example/dockerhub)", p)
		}
		if err := addMirror(c, strings.TrimSpace(reg), strings.TrimSpace(m)); err != nil {
			return err
		}
	}
	return nil
}

func addMirror(c *Config, reg, m string) error {
	if c.Mirrors == nil {
		c.Mirrors = resolver.Mirrors{}
	}
	return c.Mirrors.Add(reg, m)
}

// typedMirrors reads registryMirrors: a map from registry to a list of mirrors.
func typedMirrors(c *Config, v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("must be a map from registry to a list of mirrors, such as {docker.io: [mirror.example/dockerhub]}")
	}
	for _, kv := range pairs(v) {
		reg, list := kv[0], kv[1]
		if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
			return fmt.Errorf("registry %q (line %d) has no list of mirrors", reg.Value, reg.Line)
		}
		for _, m := range list.Content {
			if m.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: each mirror must be a string", m.Line)
			}
			if err := addMirror(c, reg.Value, m.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// typedRegistries reads registries: a map from registry host to {ca, cert, key}.
func typedRegistries(c *Config, v *yaml.Node) error {
	if v.Kind != yaml.MappingNode {
		return fmt.Errorf("must be a map from registry host to {ca, cert, key}")
	}
	for _, kv := range pairs(v) {
		host, fields := kv[0], kv[1]
		if fields.Kind != yaml.MappingNode {
			return fmt.Errorf("%s (line %d): must be a map with ca, cert or key", host.Value, host.Line)
		}
		for _, f := range pairs(fields) {
			name, val := f[0], f[1]
			if name.Value != "ca" && name.Value != "cert" && name.Value != "key" {
				return fmt.Errorf("%s: unknown field %q (line %d; known: ca, cert, key)", host.Value, name.Value, name.Line)
			}
			if val.Kind != yaml.ScalarNode {
				return fmt.Errorf("%s: %s (line %d): must be a file name or PEM", host.Value, name.Value, name.Line)
			}
			if err := setTLS(c, host.Value, name.Value, val.Value); err != nil {
				return fmt.Errorf("%s: %s: %w", host.Value, name.Value, err)
			}
		}
	}
	return nil
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
