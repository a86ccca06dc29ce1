// Package pin is digester's pinning core. Given the objects of a package as YAML nodes, it finds
// their image fields (walker), decides what each needs, looks each distinct reference up once
// (resolver), sets the digests in place and reports what it found and did, as Findings.
//
// It speaks of objects, fields, references and digests, never of ResourceLists, files on disk or
// HTTP: each front end (the KRM function, the command line, the admission webhook) turns its input
// into Objects and the Report into its own output. Runs are all or nothing: unless the
// configuration says on-error: warn, no node is changed when any image cannot be pinned.
package pin

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/config"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

// Object is one resource to pin.
type Object struct {
	// Node is the resource, a mapping node (or a document node holding one). Pinned image values
	// are written into it in place, so comments, key order and quoting survive.
	Node *yaml.Node
	// File is where the object came from, for findings; empty if it came from no file.
	File string
	// Index is the object's position among the documents of File.
	Index int
}

// ID names a resource in findings: apiVersion, kind, namespace and name, read from its node.
type ID struct {
	APIVersion, Kind, Namespace, Name string
}

func (id ID) String() string {
	name := id.Name
	if id.Namespace != "" {
		name = id.Namespace + "/" + name
	}
	return id.Kind + " " + name
}

// Severity says how much a Finding matters.
type Severity int

// Severities, least first.
const (
	Info Severity = iota
	Warning
	Error
)

func (s Severity) String() string {
	switch s {
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "info"
}

// Finding is one thing a run found or did: a pinned field, a field that could not be pinned, a
// field that looks wrong. Object is nil for a finding about the run as a whole.
type Finding struct {
	Severity Severity
	Message  string
	// Object is the resource the finding is about, and ID its identity.
	Object *Object
	ID     ID
	// Path is the field's path from the object root ("spec.containers[0].image"), if any.
	Path string
	// Line and Column locate the field in its file (1-based; 0 when unknown).
	Line, Column int
	// Image is the field's value before the run; Pinned, its value after, when the run set it.
	Image, Pinned string
	// Entry is true when the field is a kustomize images: entry (Line and Column are the entry's):
	// pinning it adds a digest: key to the entry rather than changing a value.
	Entry bool
	// Node is the field's scalar node, when the finding is about an image field; front ends that
	// address fields by something other than Path (the webhook's JSON pointers) find them by it.
	Node *yaml.Node
}

// Summary counts what a run did.
type Summary struct {
	// Pinned image fields were set to a digest, FromLock of them from the package's DigestLock;
	// AlreadyPinned carried one; Skipped matched a skip prefix or were left alone by WithLeave.
	Pinned, FromLock, AlreadyPinned, Skipped int
	// Templated image fields hold a template variable (${IMAGE}, $(params.image)): left as they are, with a warning.
	Templated int
	// Verified pins were found current (pinned: verify or refresh); Refreshed were moved to their
	// tag's current digest.
	Verified, Refreshed int
	// Failed image fields could not be pinned, or, in check mode, would be changed by pin mode.
	Failed int
	// Distinct references were looked up (nginx and docker.io/library/nginx:latest count once).
	Distinct int
	// Requests is how many HTTP requests went to registries, retries included.
	Requests int64
	// Warn is true when the run was told on-error: warn; Check, when it was told mode: check.
	Warn, Check bool
}

// String is the summary in plain words.
func (s Summary) String() string {
	counts := fmt.Sprintf("%s, %s", plural(s.Distinct, "distinct reference"), plural(int(s.Requests), "registry request"))
	var msg string
	switch {
	case s.Check && s.Failed > 0:
		msg = fmt.Sprintf("check failed: pinning would make %s, each an error above (%s); %d already pinned, %d skipped by prefix",
			plural(s.Failed, "change"), counts, s.AlreadyPinned, s.Skipped)
	case s.Check:
		msg = fmt.Sprintf("check passed: nothing to pin (%s); %d already pinned, %d skipped by prefix",
			counts, s.AlreadyPinned, s.Skipped)
	case s.Failed > 0 && !s.Warn:
		return fmt.Sprintf("pinned nothing: %s could not be pinned, so the package is returned unchanged (%s)",
			plural(s.Failed, "image field"), counts)
	default:
		msg = fmt.Sprintf("pinned %s (%s); %d already pinned, %d skipped by prefix",
			plural(s.Pinned, "image field"), counts, s.AlreadyPinned, s.Skipped)
	}
	if s.FromLock > 0 {
		msg += fmt.Sprintf("; %d pinned from the lock", s.FromLock)
	}
	if s.Templated > 0 {
		msg += fmt.Sprintf("; %s with a template variable left as written", plural(s.Templated, "image field"))
	}
	if s.Verified > 0 {
		msg += fmt.Sprintf("; %s verified", plural(s.Verified, "pin"))
	}
	if s.Refreshed > 0 {
		msg += fmt.Sprintf("; %s refreshed", plural(s.Refreshed, "pin"))
	}
	if s.Failed > 0 && s.Warn {
		msg += fmt.Sprintf("; %d left unpinned (on-error: warn)", s.Failed)
	}
	return msg
}

// Report is the outcome of a run.
type Report struct {
	// Findings in the order they were met: per object, fields in walk order; lookup outcomes and
	// pinned fields after all objects were walked.
	Findings []Finding
	Summary  Summary
	// Created holds objects the run made that the front end must add to the package: a new
	// DigestLock (lock: update), named by its File.
	Created []*Object
}

// OK reports whether the run succeeded: every image pinned, or failures tolerated by on-error: warn.
func (r *Report) OK() bool { return r.Summary.Failed == 0 || r.Summary.Warn }

// Pinner runs the core with one configuration.
type Pinner struct {
	cfg       config.Config
	transport http.RoundTripper
	keychain  authn.Keychain
	lookup    Lookup
	leave     func(obj *Object, f walker.Field) bool
}

// Lookup resolves references to digests. *resolver.Resolver is one; a long-lived front end wraps
// one in a cache (package digestcache) and passes it to every run with WithLookup.
type Lookup interface {
	// Resolve returns a result for every reference in refs (see resolver.Resolver.Resolve).
	Resolve(ctx context.Context, refs []string) map[string]resolver.Result
	// Requests counts the HTTP requests sent to registries so far.
	Requests() int64
}

// Option configures a Pinner.
type Option func(*Pinner)

// WithTransport sets the HTTP transport to registries (default: the resolver's own).
func WithTransport(t http.RoundTripper) Option { return func(p *Pinner) { p.transport = t } }

// WithKeychain sets where registry credentials come from (default: the resolver's, docker's config).
func WithKeychain(k authn.Keychain) Option { return func(p *Pinner) { p.keychain = k } }

// WithLookup makes every run resolve through l, so that a long-lived process shares one resolver,
// its transport and tokens (and a cache) between runs. The configuration's concurrency, timeout,
// insecure registries and the WithTransport and WithKeychain options are then l's business.
func WithLookup(l Lookup) Option { return func(p *Pinner) { p.lookup = l } }

// WithLeave leaves alone, as a skip prefix would, every image field for which leave returns true:
// the webhook leaves the fields an UPDATE did not change, so they cost no lookup.
func WithLeave(leave func(obj *Object, f walker.Field) bool) Option {
	return func(p *Pinner) { p.leave = leave }
}

// New returns a Pinner for cfg.
func New(cfg config.Config, opts ...Option) *Pinner {
	p := &Pinner{cfg: cfg}
	for _, o := range opts {
		o(p)
	}
	return p
}

// use is one image field of one object.
type use struct {
	obj   *Object
	id    ID
	field walker.Field
}

// task is an image field that needs a lookup or a digest from the lock.
type task struct {
	use
	// tag is the reference without its digest, "" for a repo@digest pin; digest is the field's
	// pin, "" for an unpinned field; locked is the lock's digest for the reference, if any.
	tag, digest, locked string
	// lookup is the reference to resolve, "" when the lock answers; name is its normalised form,
	// which counts distinct references.
	lookup, name string
}

// run is the state of one Run.
type run struct {
	cfg  config.Config
	rep  *Report
	fail Severity // Error, or Warning under on-error: warn
}

func (r *run) add(sev Severity, u use, msg, pinned string) {
	r.rep.Findings = append(r.rep.Findings, Finding{
		Severity: sev, Message: msg, Object: u.obj, ID: u.id, Path: u.field.Path,
		Line: line(u.field.Node), Column: column(u.field.Node), Image: u.field.Image, Pinned: pinned,
		Entry: u.field.Kind == walker.KustomizeImage,
		Node:  u.field.Node,
	})
}

func (r *run) failed(u use, msg string) {
	r.rep.Summary.Failed++
	r.add(r.fail, u, msg, "")
}

// Run pins the image fields of objs, as the configuration says. Local-config objects
// (config.kubernetes.io/local-config) are left alone. Nodes change only if the report is OK and
// the mode is pin.
func (p *Pinner) Run(ctx context.Context, objs []*Object) *Report {
	cfg := p.cfg
	check := cfg.Mode == "check"
	strict := check || cfg.Pinned == "verify" // a moved pin is an error, not a change
	r := &run{cfg: cfg, rep: &Report{Summary: Summary{Warn: cfg.OnError == "warn" && !check, Check: check}}, fail: Error}
	if r.rep.Summary.Warn {
		r.fail = Warning
	}
	s := &r.rep.Summary

	// 0. The package's lock, if it has one.
	lk := r.readLock(objs)
	byName := map[string]string{} // normalised reference -> locked digest
	if lk != nil {
		for img, d := range lk.entries {
			byName[normalise(img)] = d
		}
	}

	// 1. Find every image field and classify it.
	wopts := []walker.Option{walker.WithImageFields(cfg.ImageFields...)}
	if !cfg.Presets {
		wopts = append(wopts, walker.WithoutPresets())
	}
	w := walker.New(wopts...)
	unlisted := map[string]bool{} // one warning per kind and place
	var tasks []*task
	used := map[string]string{} // reference as written -> digest, for the lock
	for _, obj := range objs {
		root := mapping(obj.Node)
		if root == nil || localConfig(root) {
			continue
		}
		id := identify(root)
		fields, problems := w.Walk(root)
		if id.Kind == "" && id.APIVersion == "" && kustomizationFile(obj.File) {
			f, pr := walker.KustomizeImages(root)
			fields, problems = append(fields, f...), append(problems, pr...)
		}
		for _, pr := range problems {
			u := use{obj: obj, id: itemID(id, pr.Item), field: walker.Field{Path: pr.Path}}
			switch pr.Kind {
			case walker.Ambiguous:
				r.failed(u, pr.Message)
			case walker.Unlisted:
				if _, err := resolver.Parse(pr.Image); err != nil || resolver.HasDigest(pr.Image) || unlisted[pr.Message] {
					continue // not a reference, or nothing lost by leaving it
				}
				unlisted[pr.Message] = true
				u.field.Image = pr.Image
				r.add(Warning, u, pr.Message, "")
			default:
				r.add(Warning, u, pr.Message, "")
			}
		}
		for _, f := range fields {
			u := use{obj, itemID(id, f.Item), f}
			if hasPrefix(f.Image, cfg.SkipPrefixes) || p.leave != nil && p.leave(obj, f) {
				s.Skipped++
				continue
			}
			if tv := resolver.Template(f.Image); tv != "" {
				s.Templated++
				r.add(Warning, u, fmt.Sprintf("not pinned: %q holds an unexpanded template variable, %s: pin the manifests once it is filled in", f.Image, tv), "")
				continue
			}
			ref, err := resolver.Parse(f.Image)
			if err != nil {
				r.failed(u, err.Error())
				continue
			}
			t := &task{use: u, tag: f.Image, name: ref.Name()}
			if resolver.HasDigest(f.Image) { // the tag's name is the lookup's only under verify or refresh
				t.tag, t.digest, _ = strings.Cut(f.Image, "@")
				if !explicitTag(t.tag) {
					t.tag = ""
				} else if cfg.Pinned != "keep" || lk != nil {
					t.name = normalise(t.tag)
				}
			}
			if t.tag != "" && lk != nil {
				t.locked = byName[t.name]
			}
			switch {
			case t.digest == "" && check:
				r.failed(u, fmt.Sprintf("not pinned: %s has no digest (digester would pin it)", f.Image))
				if t.locked != "" {
					used[f.Image] = t.locked // pin mode would pin it from the lock, which keeps the entry
				}
				continue
			case t.digest != "" && cfg.Pinned == "keep":
				s.AlreadyPinned++
				if t.tag != "" {
					used[t.tag] = t.digest
					if t.locked != "" && t.locked != t.digest {
						r.add(Warning, u, fmt.Sprintf("%s is pinned to %s here, but the lock says %s (pinned: refresh aligns them)", t.tag, t.digest, t.locked), "")
					}
				}
				continue
			case t.digest == "" && t.locked != "" && cfg.Pinned == "keep":
				// pinned from the lock, no request
			case t.digest == "" && cfg.Lock == "frozen":
				r.failed(u, fmt.Sprintf("not in the lock: %s has no entry in the package's DigestLock, and lock: frozen sends no registry request (run with lock: update to add it)", f.Image))
				continue
			case t.tag != "":
				t.lookup = t.tag
			default:
				t.lookup = f.Image // repo@digest: is it served?
			}
			tasks = append(tasks, t)
		}
	}

	// 2. Look each distinct reference up once; for pins whose tag moved, also ask whether the
	// repository still serves the pinned digest, to say so.
	var res Lookup = p.lookup
	if res == nil {
		res = resolver.New(p.resolverOptions()...)
	}
	requests := res.Requests()
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	var refs []string
	distinct := map[string]bool{}
	for _, t := range tasks {
		if t.lookup != "" {
			refs = append(refs, t.lookup)
			distinct[t.name] = true
		}
	}
	s.Distinct = len(distinct)
	resolved := map[string]resolver.Result{}
	if len(refs) > 0 {
		resolved = res.Resolve(ctx, refs)
	}
	var old []string
	for _, t := range tasks {
		if got := resolved[t.lookup]; t.digest != "" && t.tag != "" && got.Err == nil && got.Digest != t.digest {
			old = append(old, repository(t.tag)+"@"+t.digest)
		}
	}
	oldResolved := map[string]resolver.Result{}
	if len(old) > 0 {
		oldResolved = res.Resolve(ctx, old)
	}
	// A pin that verify or check would call stale may be one platform's image of the tag's index:
	// then it is not stale, but only nodes of that platform can run it. One GET per such index,
	// when the Lookup can ask (*resolver.Resolver can).
	children := map[string]map[string]string{} // index repo@digest -> image digest -> platform
	platforms, canAsk := res.(interface {
		Platforms(ctx context.Context, ref string) (map[string]string, error)
	})
	if canAsk && strict {
		for _, t := range tasks {
			got := resolved[t.lookup]
			idx := repository(t.tag) + "@" + got.Digest
			if _, done := children[idx]; done || t.digest == "" || t.tag == "" || got.Err != nil || got.Digest == t.digest {
				continue
			}
			children[idx], _ = platforms.Platforms(ctx, idx) // on failure, the pin is reported stale as before
		}
	}

	// 3. Decide each field. All or nothing: pin only when every field is fine, or when told to warn.
	type change struct {
		t    *task
		to   string
		msg  string
		lock bool
	}
	var changes []change
	for _, t := range tasks {
		got := resolved[t.lookup]
		img := t.field.Image
		switch {
		case t.lookup == "": // from the lock
			changes = append(changes, change{t, resolver.Pin(img, t.locked), fmt.Sprintf("pinned %s to %s from the lock", img, t.locked), true})
			used[img] = t.locked
		case got.Err != nil && t.digest == "":
			r.failed(t.use, fmt.Sprintf("cannot pin %s: %v", img, got.Err))
			if t.locked != "" {
				used[img] = t.locked
			}
		case got.Err != nil:
			r.failed(t.use, fmt.Sprintf("cannot verify %s: %v", img, got.Err))
			if t.tag != "" {
				used[t.tag] = t.digest
			}
		case t.digest == "" && t.locked != "" && got.Digest != t.locked && cfg.Pinned == "verify":
			r.failed(t.use, fmt.Sprintf("stale lock entry: the lock pins %s to %s, but the tag now points to %s", img, t.locked, got.Digest))
			used[img] = t.locked
		case t.digest == "":
			msg := fmt.Sprintf("pinned %s to %s", img, got.Digest)
			if t.locked != "" && t.locked != got.Digest {
				msg = fmt.Sprintf("pinned %s to %s, refreshing the lock's %s", img, got.Digest, t.locked)
			}
			if got.Mirror != "" {
				msg += " (answered by mirror " + got.Mirror + ")"
			}
			changes = append(changes, change{t: t, to: resolver.Pin(img, got.Digest), msg: msg})
			used[img] = got.Digest
		case t.tag == "": // repo@digest, served
			s.Verified++
			if cfg.Pinned == "refresh" {
				r.add(Info, t.use, fmt.Sprintf("%s has no tag to follow, so it is left as it is (its digest is served)", img), "")
			}
		case got.Digest == t.digest:
			s.Verified++
			used[t.tag] = t.digest
		default: // the tag moved
			why := fmt.Sprintf("%s is pinned to %s, but the tag now points to %s", t.tag, t.digest, got.Digest)
			if o := oldResolved[repository(t.tag)+"@"+t.digest]; o.Err != nil {
				why += fmt.Sprintf(" (and the repository does not serve %s)", t.digest)
			}
			if p, ok := children[repository(t.tag)+"@"+got.Digest][t.digest]; ok && strict {
				s.Verified++
				used[t.tag] = t.digest
				r.add(Warning, t.use, fmt.Sprintf("%s is pinned to %s, the %s image of the multi-arch tag (%s): nodes of other platforms cannot run it",
					t.tag, t.digest, p, got.Digest), "")
				continue
			}
			if strict {
				r.failed(t.use, "stale pin: "+why)
				used[t.tag] = t.digest
				continue
			}
			changes = append(changes, change{t: t, to: resolver.Pin(t.tag, got.Digest), msg: "refreshed: " + why})
			used[t.tag] = got.Digest
		}
	}
	s.Requests = res.Requests() - requests // a shared Lookup's other runs may add to this
	if check {
		if lk != nil {
			r.checkLock(lk, used)
		}
		return r.rep
	}
	if !r.rep.OK() {
		return r.rep
	}
	for _, c := range changes {
		c.t.field.Set(c.to)
		switch {
		case c.lock:
			s.FromLock++
			s.Pinned++
		case c.t.digest != "":
			s.Refreshed++
		default:
			s.Pinned++
		}
		r.add(Info, c.t.use, c.msg, c.to)
	}
	r.writeLock(lk, used)
	return r.rep
}

// readLock finds the package's DigestLock. A malformed lock, or two, fail the run: pinning from a
// lock read wrong would write wrong digests.
func (r *run) readLock(objs []*Object) *lock {
	var lk *lock
	for _, obj := range objs {
		m := mapping(obj.Node)
		if m == nil || !isLock(m) {
			continue
		}
		u := use{obj: obj, id: identify(m), field: walker.Field{Path: "images"}}
		if lk != nil {
			r.failed(u, fmt.Sprintf("a second DigestLock: the package may hold one (the first is in %s)", orNone(lk.obj.File)))
			continue
		}
		l, err := readLock(obj, m)
		if err != nil {
			r.failed(u, "the DigestLock cannot be read: "+err.Error())
			continue
		}
		lk = l
	}
	if lk == nil && r.cfg.Lock == "frozen" {
		r.failed(use{}, "lock: frozen, but the package has no DigestLock (run once with lock: update to create "+r.cfg.LockFile+")")
	}
	return lk
}

// writeLock brings the lock up to date with the references the package uses, creating it under
// lock: update, and reports what changed.
func (r *run) writeLock(lk *lock, used map[string]string) {
	if lk == nil && r.cfg.Lock != "update" || r.cfg.Lock == "frozen" {
		return
	}
	var before map[string]string
	if lk != nil {
		before = lk.entries
	}
	used = canonical(used, before)
	added, changed, dropped := lockDiff(before, used)
	switch {
	case lk == nil:
		obj := newLock(r.cfg.LockFile, used)
		r.rep.Created = append(r.rep.Created, obj)
		r.add(Info, use{obj: obj, id: identify(mapping(obj.Node))}, "created the lock with "+plural(len(used), "reference"), "")
	case added+changed+dropped > 0:
		lk.setImages(used)
		r.add(Info, use{obj: lk.obj, id: identify(mapping(lk.obj.Node)), field: walker.Field{Path: "images"}},
			fmt.Sprintf("updated the lock: %d added, %d changed, %d dropped", added, changed, dropped), "")
	}
}

// checkLock reports, in check mode, a lock that pin mode would change.
func (r *run) checkLock(lk *lock, used map[string]string) {
	added, changed, dropped := lockDiff(lk.entries, canonical(used, lk.entries))
	if added+changed+dropped > 0 {
		r.failed(use{obj: lk.obj, id: identify(mapping(lk.obj.Node)), field: walker.Field{Path: "images"}},
			fmt.Sprintf("the lock is out of date: pinning would add %d, change %d and drop %d entries", added, changed, dropped))
	}
}

// canonical keys used by one spelling per reference: the lock's own where it has one, else the
// shortest, so that nginx:1.27 and docker.io/library/nginx:1.27 make one entry and
// an existing lock keeps its spelling.
func canonical(used, locked map[string]string) map[string]string {
	keyOf := map[string]string{} // normalised reference -> key
	for _, k := range slices.Sorted(maps.Keys(locked)) {
		if n := normalise(k); keyOf[n] == "" {
			keyOf[n] = k
		}
	}
	out := make(map[string]string, len(used))
	keys := slices.SortedFunc(maps.Keys(used), func(a, b string) int { // shortest spelling first
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	for _, k := range keys {
		n := normalise(k)
		if keyOf[n] == "" {
			keyOf[n] = k
		}
		out[keyOf[n]] = used[k]
	}
	return out
}

// normalise is the reference's full name (docker.io/library/nginx:latest for nginx), or ref itself
// if it does not parse.
func normalise(ref string) string {
	if r, err := resolver.Parse(ref); err == nil {
		return r.Name()
	}
	return ref
}

func lockDiff(before, after map[string]string) (added, changed, dropped int) {
	for k, v := range after {
		switch b, ok := before[k]; {
		case !ok:
			added++
		case b != v:
			changed++
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			dropped++
		}
	}
	return added, changed, dropped
}

// explicitTag reports whether a reference without digest names a tag ("nginx:1.27", not "nginx"
// or "localhost:5000/app").
func explicitTag(ref string) bool {
	i := strings.LastIndex(ref, ":")
	return i > strings.LastIndex(ref, "/")
}

// repository is ref without its tag.
func repository(ref string) string {
	if explicitTag(ref) {
		return ref[:strings.LastIndex(ref, ":")]
	}
	return ref
}

func orNone(s string) string {
	if s == "" {
		return "no file"
	}
	return s
}

func (p *Pinner) resolverOptions() []resolver.Option {
	cfg := p.cfg
	opts := []resolver.Option{
		resolver.WithConcurrency(cfg.Concurrency),
		resolver.WithRegistryConcurrency(cfg.RegistryConcurrency),
		resolver.WithTimeout(cfg.Timeout),
		resolver.WithInsecureRegistries(cfg.InsecureRegistries...),
	}
	opts = append(opts, cfg.RegistryOptions()...)
	if p.transport != nil {
		opts = append(opts, resolver.WithTransport(p.transport))
	}
	if p.keychain != nil {
		opts = append(opts, resolver.WithKeychain(p.keychain))
	}
	return opts
}

// mapping returns the object's mapping node, looking through a document node; nil if there is none.
func mapping(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	return n
}

// identify reads apiVersion, kind, metadata.namespace and metadata.name (or, for a resource
// that has none, as Argo Workflows often are, metadata.generateName).
func identify(m *yaml.Node) ID {
	meta := value(m, "metadata")
	id := ID{
		APIVersion: scalar(value(m, "apiVersion")),
		Kind:       scalar(value(m, "kind")),
		Namespace:  scalar(value(meta, "namespace")),
		Name:       scalar(value(meta, "name")),
	}
	if id.Name == "" {
		id.Name = scalar(value(meta, "generateName"))
	}
	return id
}

// kustomizationFile reports whether a file is named as kustomize names a kustomization.
func kustomizationFile(file string) bool {
	switch path.Base(file) {
	case "kustomization.yaml", "kustomization.yml", "Kustomization":
		return true
	}
	return false
}

// itemID names the resource a field is in: the List item, if it is in one.
func itemID(id ID, it *walker.Item) ID {
	if it == nil {
		return id
	}
	return ID{APIVersion: it.APIVersion, Kind: it.Kind, Namespace: it.Namespace, Name: it.Name}
}

// localConfig reports whether the object carries the config.kubernetes.io/local-config
// annotation with any value but "false", as kpt reads it: configuration for tools, not the cluster.
func localConfig(m *yaml.Node) bool {
	v := scalar(value(value(value(m, "metadata"), "annotations"), "config.kubernetes.io/local-config"))
	return v != "" && v != "false"
}

// value returns the value of key in mapping m (the last, if repeated), or nil.
func value(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	var v *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v = m.Content[i+1]
		}
	}
	return v
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

func line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

func column(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Column
}

// plural is n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
