package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// Flags are settings given on a command line: --config FILE (a functionConfig) and one flag per
// setting of Keys, named as its ConfigMap key and read with the same syntax. Every front end with a
// command line (digester pin|check, digester-webhook) registers them, so that a setting has one
// name, syntax and meaning everywhere. Flags override the file; list settings add to it.
type Flags struct {
	// File is the --config file, "" for none.
	File string
	set  [][2]string // key, value, in the order given
	err  error       // the first bad value, in words
}

// Register adds --config and a flag for every setting to fs. A bad value fails fs.Parse with an
// error naming the flag (see Err).
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.File, "config", "", "read settings from a functionConfig file (a ConfigMap or an "+APIVersion+" "+Kind+"); flags given as well override it")
	for _, k := range Keys {
		usage := strings.ReplaceAll(k.Doc, "`", "")
		if k.Default != `""` {
			usage += " (default " + k.Default + ")"
		}
		fs.Func(k.Key, usage, func(v string) error {
			scratch := Default() // values are checked as they come, applied after --config
			if err := scratch.Set(k.Key, v); err != nil {
				f.err = fmt.Errorf("--%s: %w", k.Key, unwrapKey(err))
				return f.err
			}
			f.set = append(f.set, [2]string{k.Key, v})
			return nil
		})
	}
}

// Err is the error of the first flag whose value was wrong, nil if there was none: fs.Parse's own
// error for it is worded for Go programmers.
func (f *Flags) Err() error { return f.err }

// Config reads the --config file over base, then SKIP_PREFIXES (through getenv), then the flags,
// which win, and validates the result.
func (f *Flags) Config(base Config, getenv func(string) string) (Config, error) {
	var fnConfig []byte
	if f.File != "" {
		b, err := os.ReadFile(f.File)
		if err != nil {
			return Config{}, fmt.Errorf("--config: %w", err)
		}
		fnConfig = b
	}
	cfg, err := ParseOver(base, fnConfig, getenv("SKIP_PREFIXES"))
	if err != nil {
		return cfg, fmt.Errorf("--config %s: %w", f.File, err)
	}
	for _, s := range f.set {
		if err := cfg.Set(s[0], s[1]); err != nil {
			return cfg, fmt.Errorf("--%s: %w", s[0], unwrapKey(err))
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, errors.New(strings.TrimPrefix(err.Error(), "functionConfig: "))
	}
	return cfg, nil
}

// Given reports whether the setting key was given as a flag.
func (f *Flags) Given(key string) bool {
	for _, s := range f.set {
		if s[0] == key {
			return true
		}
	}
	return false
}
