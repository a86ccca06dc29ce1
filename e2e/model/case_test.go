package model_test

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// lockOrigin says where the package's lock came from, which decides how strictly a run from it
// is judged.
type lockOrigin int

const (
	noLock      lockOrigin = iota
	earlierLock            // written by an earlier run (platform: earlierPlatform)
	handLock               // written by hand
)

// kase is one scenario being run: its world, its package as analysed, and what it found.
type kase struct {
	t  *testing.T
	w  *world
	sc *scenario

	layouts         []*layout
	lockBefore      map[string]string // the package's lock entries before the run, nil if none
	origin          lockOrigin
	earlierPlatform string
	earlierNote     string

	problems []string
	cliRun   *result    // the command line's run, for MODEL_VERBOSE
	krmRun   *krmResult // the KRM function's run
}

// newCase builds the world and the package: symbols resolved, the earlier run made, the
// hand-made lock written, the tags moved.
func newCase(t *testing.T, sc *scenario) *kase {
	t.Helper()
	prefixed := strings.Contains(sc.settings.Mirrors, "/") || sc.earlier != nil && strings.Contains(sc.earlier.Mirrors, "/")
	c := &kase{t: t, w: newWorld(t, prefixed), sc: sc}
	files := make([]pkgFile, len(sc.files))
	for i, f := range sc.files {
		files[i] = pkgFile{name: f.name, template: resolveSymbols(t, c.w, f.template), lock: f.lock}
	}
	if sc.earlier != nil {
		files = c.earlierRun(files)
	}
	if sc.hand != nil {
		var entries [][2]string
		for _, e := range sc.hand {
			entries = append(entries, [2]string{e[0], resolveSymbols(t, c.w, e[1])})
		}
		lock := lockText(entries)
		i := slices.IndexFunc(files, func(f pkgFile) bool { return f.name == sc.handFile })
		if i < 0 {
			files = append(files, pkgFile{name: lockFile, template: "«LOCK»", lock: lock})
		} else {
			files[i].template += "---\n«LOCK»"
			files[i].lock = lock
		}
		c.origin = handLock
	}
	for _, k := range sc.moves {
		c.w.move(k)
	}
	c.layouts = c.analyze(files)
	for _, l := range c.layouts {
		if l.lockGroup > 0 {
			c.lockBefore = parseLock(t, l.file.lock)
		}
	}
	return c
}

// analyze analyses every file, failing the test on a template that does not parse.
func (c *kase) analyze(files []pkgFile) []*layout {
	c.t.Helper()
	var out []*layout
	for _, f := range files {
		l, err := analyze(f)
		if err != nil {
			c.t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

// earlierRun runs `digester pin --lock update` with the earlier settings and returns the package
// the case starts from: the earlier run's lock, with its pinned files or the original ones.
func (c *kase) earlierRun(files []pkgFile) []pkgFile {
	c.t.Helper()
	s := *c.sc.earlier
	r := runCLI(c.t, c.w, c.analyze(files), s)
	text, ok := r.files[lockFile]
	if !ok {
		c.earlierNote = fmt.Sprintf("the earlier run wrote no lock (exit %d: %s)", r.exit, firstLine(r.stderr))
		return files
	}
	c.origin, c.earlierPlatform = earlierLock, s.Platform
	out := files
	if c.sc.keepEarlier {
		out = nil
		for _, l := range c.analyze(files) {
			nf, ok := l.rebase(r.files[l.file.name])
			if !ok {
				c.t.Fatalf("the earlier run changed %s outside image values:\n%s", l.file.name, r.files[l.file.name])
			}
			out = append(out, nf)
		}
	}
	return append(slices.Clone(out), pkgFile{name: lockFile, template: "«LOCK»", lock: text})
}

// firstLine is the first line of s, for one-line messages.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// fields are every image field of the package.
func (c *kase) fields() []*field {
	var out []*field
	for _, l := range c.layouts {
		out = append(out, l.fields...)
	}
	return out
}

// fail records a broken promise.
func (c *kase) fail(property, format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf("[%s] %s", property, fmt.Sprintf(format, args...)))
}

// describe is the case in words: the scenario, then the package as the run got it.
func (c *kase) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "settings: %s\n", c.sc.settings)
	if c.sc.earlier != nil {
		what := "its lock"
		if c.sc.keepEarlier {
			what = "its output (pinned files and lock)"
		}
		fmt.Fprintf(&b, "the package is %s of an earlier `%s --lock update`", what, *c.sc.earlier)
		if c.earlierNote != "" {
			fmt.Fprintf(&b, "; %s", c.earlierNote)
		}
		b.WriteString("\n")
	}
	if c.sc.hand != nil {
		fmt.Fprintf(&b, "hand-made lock in %s\n", cmp.Or(c.sc.handFile, lockFile))
	}
	if len(c.sc.moves) > 0 {
		fmt.Fprintf(&b, "tags moved after the package was made: %s\n", strings.Join(c.sc.moves, ", "))
	}
	b.WriteString("registry (tag: versions, oldest first; index [platform=image] or image (platform)):\n")
	for _, k := range slices.Sorted(maps.Keys(c.w.history)) {
		fmt.Fprintf(&b, "  %s:", k)
		for _, v := range c.w.versions(k) {
			if v.index != "" {
				fmt.Fprintf(&b, " %s [", short(v.index))
				for _, p := range slices.Sorted(maps.Keys(v.children)) {
					fmt.Fprintf(&b, " %s=%s", p, short(v.children[p]))
				}
				b.WriteString(" ];")
			} else {
				fmt.Fprintf(&b, " %s (%s);", short(v.image), v.platform)
			}
		}
		b.WriteString("\n")
	}
	if os.Getenv("MODEL_VERBOSE") != "" && c.cliRun != nil {
		fmt.Fprintf(&b, "command line: exit %d\n  %s\n%s", c.cliRun.exit, strings.Join(c.cliRun.messages(), "\n  "), c.cliRun.stderr)
		fmt.Fprintf(&b, "KRM function: exit %d\n%s%s", c.krmRun.exit, c.krmRun.stderr, c.krmRun.stdout)
	}
	for _, l := range sortedLayouts(c.layouts) {
		fmt.Fprintf(&b, "--- file %s\n%s", l.file.name, l.input)
		if !strings.HasSuffix(l.input, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// short is a digest's first 12 hex digits, as messages print it.
func short(d string) string {
	if h, ok := strings.CutPrefix(d, "sha256:"); ok && len(h) >= 12 {
		return h[:12]
	}
	return d
}

// withoutLock is the package without its lock: a fresh run's input.
func (c *kase) withoutLock() []*layout {
	var files []pkgFile
	for _, l := range c.layouts {
		if l.file.template == "«LOCK»" {
			continue
		}
		f := l.file
		if l.lockGroup > 0 {
			f.template = strings.TrimSuffix(f.template, "---\n«LOCK»")
			f.lock = ""
		}
		files = append(files, f)
	}
	return c.analyze(files)
}

// after is the package a command line run left, analysed again: its files, and the lock it
// created.
func (c *kase) after(r *result) []*layout {
	var files []pkgFile
	for _, l := range c.layouts {
		nf, ok := l.rebase(r.files[l.file.name])
		if !ok {
			return nil
		}
		files = append(files, nf)
	}
	if text, ok := r.files[lockFile]; ok && !slices.ContainsFunc(files, func(f pkgFile) bool { return f.name == lockFile }) {
		files = append(files, pkgFile{name: lockFile, template: "«LOCK»", lock: text})
	}
	return c.analyze(files)
}

// pods are the package's top-level Pod documents, decoded, for the webhook, with their fields.
func (c *kase) pods() []podDoc {
	var out []podDoc
	for _, l := range c.layouts {
		dec := yaml.NewDecoder(strings.NewReader(l.input))
		for i := 0; ; i++ {
			var doc map[string]any
			if err := dec.Decode(&doc); err != nil {
				break
			}
			if i >= len(l.docs) || l.docs[i].kind != "Pod" {
				continue
			}
			p := podDoc{doc: doc, name: itemKey(l.file.name, i)}
			for _, fd := range l.fields {
				if fd.doc == i {
					p.fields = append(p.fields, fd)
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// podDoc is one Pod of the package.
type podDoc struct {
	name   string
	doc    map[string]any
	fields []*field
}
