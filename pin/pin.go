// Package pin is digester's pinning core. Given the objects of a package as YAML nodes, it finds
// their image fields (walker), decides what each needs, looks each distinct reference up once
// through a Lookup (a resolver.Resolver, or a cache in front of one), sets the digests in place and
// reports what it found and did, as Findings and one Summary.
//
// It speaks of objects, fields, references and digests, never of ResourceLists, files on disk or
// HTTP, and it reads no configuration: each front end (the KRM function, the command line, the
// admission webhook) gets Options from package config, turns its input into Objects and the Report
// into its own output. Runs are all or nothing: unless the options say OnErrorWarn, no node is
// changed when any image cannot be pinned.
//
// A run has five stages, each a method of run: collect (walk the objects, classify each image
// field), lookUp (resolve each distinct reference once), decide (what each field becomes), apply
// (set the nodes) and the lock's update or check. Run takes all objects at once; Start takes them
// in batches (Batches.Add walks each batch and keeps only what it found), for a front end that
// reads a large package one object at a time and keeps none of its trees (Batches.Drop). Given the
// package's DigestLocks first (Batches.Locks), such a run decides each field as it comes and keeps
// only what waits for a lookup.
package pin

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/digester/digester/imageref"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

// use is one image field of one object.
type use struct {
	obj   *Object
	id    *ID // shared by the fields of an object; nil for none
	field field
}

// field is an image field as a run keeps it from Add to Finish: the walker's, and its place in
// its file, which stays when the run lets its node go (Batches.Drop).
type field struct {
	walker.Field
	place
}

// place is where a node is in its file (1-based; 0 when unknown).
type place struct{ line, column int32 }

// task is an image field that needs a lookup or a digest from the lock.
type task struct {
	use
	// tag is the reference without its digest, "" for a repo@digest pin; digest is the field's
	// pin, "" for an unpinned field; locked is the lock's digest for the reference, if it has one
	// for the run's platform, and lockedFor the platform of an entry it has for another.
	tag, digest, locked, lockedFor string
	// lookup is the reference to resolve, "" when the lock answers; name is its normalised form,
	// which counts distinct references.
	lookup, name string
}

// change is what decide makes of a task: the field's new value and the message that says so.
type change struct {
	t    *task
	to   string
	msg  string
	lock bool
}

// run is the state of one Run, stage by stage.
type run struct {
	*Pinner
	rep  *Report
	fail Severity // Error, or Warning under on-error: warn

	lock   *lock
	byName map[string]LockEntry // normalised reference -> the lock's entry
	// locks and walked are what Add found, for collect: the DigestLocks, and each object's fields.
	// Once Locks has read the lock, walked holds only the last Add's objects, and late any other
	// DigestLock Add was given.
	locks    []*Object
	walked   []walked
	eager    bool
	late     []*Object
	unlisted map[string]bool  // the unlisted image keys warned of: one warning per kind and place
	keep     map[*Object]bool // the objects whose trees the run needs whole (Keeps)
	tasks    []*task
	// inUse holds the normalised references (with a tag) of every image field, whatever becomes
	// of it; resolvedLock, what this run resolved or verified, by reference as written: the lock
	// to be is made of both (see entries).
	inUse        map[string]bool
	resolvedLock map[string]LockEntry

	// texts and names hold what classify reads of each distinct image text: a package names a
	// few hundred references in tens of thousands of fields, and parsing one costs ~20 µs.
	texts map[string]refText
	names map[string]string
	// interned holds one copy of each path, image, kind, namespace and message, which thousands of
	// fields share.
	interned map[string]string

	resolved, old map[string]resolver.Result
	children      map[string]map[string]string // index repo@digest -> image digest -> platform
	changes       []change
}

// Run pins the image fields of objs as the options say. Local-config objects
// (config.kubernetes.io/local-config) are left alone, but for the function images of a Kptfile,
// which kpt runs. Nodes change only if the report is OK and the mode is pin.
func (p *Pinner) Run(ctx context.Context, objs []*Object) *Report {
	b := p.Start()
	b.Add(objs...)
	return b.Finish(ctx)
}

// Batches is a run whose objects come in batches: Add walks each batch as it comes, and Finish
// does what Run does with all of them. The report is the one Run gives for the same objects in
// the same order.
type Batches struct{ r *run }

// Start begins a run whose objects are given to Add, in batches.
func (p *Pinner) Start() *Batches {
	check := p.opts.Mode == ModeCheck
	r := &run{Pinner: p, rep: &Report{Summary: Summary{Warn: p.opts.OnError == OnErrorWarn && !check, Check: check}},
		fail: Error, inUse: map[string]bool{}, resolvedLock: map[string]LockEntry{}, keep: map[*Object]bool{},
		texts: map[string]refText{}, names: map[string]string{}, interned: map[string]string{}, unlisted: map[string]bool{}}
	if r.rep.Summary.Warn {
		r.fail = Warning
	}
	return &Batches{r}
}

// Add walks objs and keeps what it found: each image field with its node (the scalar, or a
// mapping such as a kustomize images: entry), and every DigestLock whole. It keeps no other part
// of an object's tree, so a front end may drop the tree of any object that Keeps does not name
// once Add returns (Drop); the objects themselves are kept, for the findings, but after Locks only
// while a finding or a field waiting for a lookup names them.
func (b *Batches) Add(objs ...*Object) {
	if b.r.eager {
		b.r.collect() // the last Add's objects, dropped or not
	}
	for _, obj := range objs {
		b.r.walk(obj)
	}
}

// Locks gives the run every DigestLock of the package (none, if it has none) before any other
// object is added. The run reads the lock at once, and then decides what each image field needs
// as soon as the next Add (or Finish) comes: it keeps a field only while it waits for a lookup,
// and an object only while a finding or a field names it, rather than every field until Finish.
// Add may be given these DigestLocks again, in their place in the package; any other fails the
// run. The report is the one a run without Locks gives.
func (b *Batches) Locks(locks ...*Object) {
	r := b.r
	for _, obj := range locks {
		r.walk(obj)
	}
	r.readLock(r.locks)
	r.eager = true
}

// Keeps reports whether the run needs obj's tree whole after Add: it is a DigestLock, or one of
// its fields is pinned other than by its value (walker.Kind.Verbatim is false: a key added, a
// line comment), which a front end that writes text finds by comparing the tree with the text.
func (b *Batches) Keeps(obj *Object) bool { return b.r.keep[obj] }

// Drop lets go the trees of objs, the objects the last Add was given, but of those Keeps names:
// it sets their Node to nil and lets go the nodes of their fields, which it then sets none of. A
// front end that writes each pin into its input's text, at the finding's Line and Column, drops
// what it does not keep, so that a run holds no tree of an object once it is walked; such a
// finding's Node is nil. The command line and the KRM function drop; the webhook, which
// addresses fields by node, does not.
func (b *Batches) Drop(objs ...*Object) {
	given := make(map[*Object]bool, len(objs))
	for _, o := range objs {
		given[o] = true
		if !b.r.keep[o] {
			o.Node = nil
		}
	}
	for i := len(b.r.walked) - 1; i >= 0 && given[b.r.walked[i].obj]; i-- {
		w := b.r.walked[i]
		if b.r.keep[w.obj] {
			continue
		}
		for j := range w.fields {
			w.fields[j].Node = nil
		}
		for j := range w.problems {
			w.problems[j].Node = nil
		}
	}
}

// Finish looks every distinct reference up once, decides what each field becomes and, if the
// report is OK and the mode is pin, sets the fields' nodes and the lock.
func (b *Batches) Finish(ctx context.Context) *Report {
	r, p := b.r, b.r.Pinner
	if !r.eager {
		r.readLock(r.locks)
	}
	r.collect()
	r.lateLocks()
	requests := p.lookup.Requests()
	if p.opts.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.opts.Deadline)
		defer cancel()
	}
	r.lookUp(ctx)
	r.decide()
	r.rep.Summary.Requests = p.lookup.Requests() - requests // a shared Lookup's other runs may add to this
	switch {
	case r.rep.Summary.Check:
		r.checkLock()
	case r.rep.OK():
		r.apply()
		r.writeLock()
	}
	return r.rep
}

func (r *run) add(sev Severity, cause Cause, u use, msg, pinned string) *Finding {
	var id ID
	if u.id != nil {
		id = *u.id
	}
	r.rep.Findings = append(r.rep.Findings, Finding{
		Severity: sev, Cause: cause, Message: r.intern(msg), Object: u.obj, ID: id, Path: u.field.Path,
		Line: int(u.field.line), Column: int(u.field.column), Image: u.field.Image, Pinned: pinned,
		Entry: u.field.Kind == walker.KustomizeImage,
		Kind:  u.field.Kind,
		Node:  u.field.Node,
	})
	return &r.rep.Findings[len(r.rep.Findings)-1]
}

// failed reports an error (a warning under on-error: warn) that fails the run.
func (r *run) failed(cause Cause, u use, msg string) *Finding {
	s := &r.rep.Summary
	s.Failed++
	switch cause {
	case CauseUnpinned:
		s.Unpinned++
	case CauseStale:
		s.Stale++
	}
	return r.add(r.fail, cause, u, msg, "")
}

// walked is an object as Add leaves it for collect: what the walker found in it.
type walked struct {
	obj      *Object
	id       *ID
	fields   []field
	problems []problem
}

// problem is what the walker found wrong, with its place in its file (see field).
type problem struct {
	walker.Problem
	place
}

// walk notes a DigestLock, and walks any other object that is not local configuration (but a
// Kptfile, for its function images).
func (r *run) walk(obj *Object) {
	root := mapping(obj.Node)
	if root == nil {
		return
	}
	if IsLock(root) { // its images are the lock's entries, not fields to pin, annotated or not
		switch {
		case !r.eager:
			r.locks = append(r.locks, obj)
		case !slices.Contains(r.locks, obj):
			r.late = append(r.late, obj)
		}
		r.keep[obj] = true
		return
	}
	id := identify(root)
	local := localConfig(root)
	if local && !kptfile(id) {
		return
	}
	fields, problems := r.walker.Walk(root)
	switch {
	case local:
		fields, problems = kptFunctions(fields, problems)
	case id.Kind == "" && id.APIVersion == "" && kustomizationFile(obj.File):
		f, pr := r.walker.Kustomization(root)
		fields, problems = append(fields, f...), append(problems, pr...)
	case obj.Values:
		f, pr := r.walker.HelmValues(root)
		fields, problems = append(fields, f...), append(problems, pr...)
	}
	id.APIVersion, id.Kind, id.Namespace = r.intern(id.APIVersion), r.intern(id.Kind), r.intern(id.Namespace)
	w := walked{obj: obj, id: &id, fields: make([]field, len(fields)), problems: make([]problem, len(problems))}
	for i, f := range fields {
		if !f.Kind.Verbatim() {
			r.keep[obj] = true
		}
		f.Path, f.Image = r.intern(f.Path), r.intern(f.Image)
		w.fields[i] = field{f, placeOf(f.Node)}
	}
	for i, pr := range problems {
		w.problems[i] = problem{pr, placeOf(pr.Node)}
	}
	r.walked = append(r.walked, w)
}

// intern returns one copy of each distinct string it is given: the paths, images, kinds and
// messages that many fields share.
func (r *run) intern(s string) string {
	if c, ok := r.interned[s]; ok {
		return c
	}
	r.interned[s] = s
	return s
}

// collect classifies each image field of each object walked: left alone, reported, or a task.
func (r *run) collect() {
	for i, w := range r.walked {
		r.walked[i] = walked{} // what is left of it goes with its tasks
		for _, pr := range w.problems {
			f := field{walker.Field{Path: pr.Path, Node: pr.Node}, pr.place}
			r.problem(use{obj: w.obj, id: itemID(w.id, pr.Item), field: f}, pr.Problem)
		}
		for _, f := range w.fields {
			if t := r.classify(use{w.obj, itemID(w.id, f.Item), f}); t != nil {
				r.tasks = append(r.tasks, t)
			}
		}
	}
	r.walked = nil
}

// lateLocks fails the run for each DigestLock Add was given that Locks was not: the fields
// before it were decided without it.
func (r *run) lateLocks() {
	for _, obj := range r.late {
		r.failed(CauseLock, use{obj: obj, id: idOf(mapping(obj.Node)), field: field{Field: walker.Field{Path: "images"}}},
			"a DigestLock digester did not find when it first read the package: was the file changed while digester read it? Run digester again")
	}
}

// problem reports what the walker found wrong with an object.
func (r *run) problem(u use, pr walker.Problem) {
	switch pr.Kind {
	case walker.Ambiguous:
		r.failed(CauseAmbiguous, u, pr.Message)
	case walker.Tagged:
		r.failed(CauseTagged, u, pr.Message)
	case walker.Shared:
		r.failed(CauseShared, u, pr.Message)
	case walker.Expansion:
		r.failed(CauseExpansion, u, pr.Message)
	case walker.Unlisted:
		if _, err := resolver.Parse(pr.Image); err != nil || imageref.HasDigest(pr.Image) || r.unlisted[pr.Message] {
			return // not a reference, or nothing lost by leaving it
		}
		r.unlisted[pr.Message] = true
		u.field.Image = pr.Image
		r.add(Warning, CauseUnlisted, u, pr.Message, "")
	case walker.Duplicate:
		r.add(Warning, CauseDuplicate, u, pr.Message, "")
	case walker.NoDigestKey:
		u.field.Image = pr.Image
		r.add(Warning, CauseNoDigestKey, u, pr.Message, "")
	case walker.Floating:
		u.field.Image = pr.Image
		r.add(Info, "", u, pr.Message, "")
	default:
		r.add(Warning, CauseUnreadable, u, pr.Message, "")
	}
}

// classify decides what an image field needs: nothing (skipped, templated, pinned and kept, or
// an error already reported), or a task for lookUp.
func (r *run) classify(u use) *task {
	s, f, o := &r.rep.Summary, u.field, r.opts
	if tag, _, _ := strings.Cut(f.Image, "@"); lockable(tag) {
		r.inUse[r.normalise(tag)] = true // whatever becomes of the field, its lock entry stays
	}
	if hasPrefix(f.Image, o.SkipPrefixes) || r.leave != nil && r.leave(u.obj, f.Field) {
		s.Skipped++
		return nil
	}
	text := r.text(f.Image)
	if tv := text.template; tv != "" {
		s.Templated++
		r.add(Warning, CauseTemplate, u, fmt.Sprintf("not pinned: %q holds an unexpanded template variable, %s: pin the manifests once it is filled in", f.Image, tv), "")
		return nil
	}
	err := text.err
	switch {
	case err != nil && f.Kind.Lenient():
		r.add(Warning, CauseInvalid, u, "left alone: "+err.Error(), "")
		return nil
	case err != nil:
		r.failed(CauseInvalid, u, err.Error())
		return nil
	}
	t := &task{use: u, tag: f.Image, name: text.name}
	if imageref.HasDigest(f.Image) { // the tag's name is the lookup's only under verify or refresh
		t.tag, t.digest, _ = strings.Cut(f.Image, "@")
		if !imageref.HasTag(t.tag) {
			t.tag = ""
		} else if o.Pinned != PinnedKeep || r.lock != nil {
			t.name = r.normalise(t.tag)
		}
	}
	if e, ok := r.byName[t.name]; ok && lockable(t.tag) {
		if e.Platform == r.platform() {
			t.locked = e.Digest
		} else {
			t.lockedFor = cmp.Or(e.Platform, "no platform (the multi-arch index)")
		}
	}
	return r.route(t)
}

// refText is what classify reads of an image field's text.
type refText struct {
	template string // the unexpanded template variable it holds, if any
	name     string // its normalised name (resolver.Parse), if it holds none and parses
	err      error  // why it does not parse
}

// text reads an image field's text, once per distinct text.
func (r *run) text(image string) refText {
	t, ok := r.texts[image]
	if ok {
		return t
	}
	if t.template = resolver.Template(image); t.template == "" {
		if ref, err := resolver.Parse(image); err != nil {
			t.err = err
		} else {
			t.name = ref.Name()
		}
	}
	r.texts[image] = t
	return t
}

// normalise is normalise, once per distinct reference.
func (r *run) normalise(ref string) string {
	n, ok := r.names[ref]
	if !ok {
		n = normalise(ref)
		r.names[ref] = n
	}
	return n
}

// route says where a classified field's digest comes from: the lock, a lookup, or nowhere
// (check mode, a kept pin, a frozen lock without the entry).
func (r *run) route(t *task) *task {
	o, img := r.opts, t.field.Image
	switch {
	case t.digest == "" && o.Mode == ModeCheck:
		r.failed(CauseUnpinned, t.use, fmt.Sprintf("not pinned: %s has no digest (digester would pin it)", img))
		if t.lockedFor != "" {
			r.resolvedLock[img] = LockEntry{Platform: r.platform()} // pin mode would resolve it anew for this platform
		}
		return nil
	case t.digest != "" && o.Pinned == PinnedKeep:
		r.rep.Summary.AlreadyPinned++
		if t.locked != "" && t.locked != t.digest {
			r.add(Warning, CauseDisagreement, t.use, fmt.Sprintf("%s is pinned to %s here, but the lock says %s (pinned: refresh aligns them)", t.tag, t.digest, t.locked), "")
		}
		return nil
	case t.digest == "" && t.locked != "" && o.Pinned == PinnedKeep:
		// pinned from the lock, no request
	case t.digest == "" && o.Lock == LockFrozen && t.lockedFor != "":
		r.failed(CauseNotInLock, t.use, fmt.Sprintf("not in the lock for %s: the lock's entry for %s was resolved for %s, and lock: frozen sends no registry request (run with lock: update to resolve it for this platform)",
			cmp.Or(r.platform(), "no platform"), img, t.lockedFor))
		return nil
	case t.digest == "" && o.Lock == LockFrozen:
		r.failed(CauseNotInLock, t.use, fmt.Sprintf("not in the lock: %s has no entry in the package's DigestLock, and lock: frozen sends no registry request (run with lock: update to add it)", img))
		return nil
	case t.tag != "":
		t.lookup = t.tag
	default:
		t.lookup = img // repo@digest: is it served?
	}
	return t
}
