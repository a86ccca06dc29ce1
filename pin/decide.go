package pin

import (
	"context"
	"fmt"
	"slices"

	"github.com/digester/digester/imageref"
	"github.com/digester/digester/resolver"
)

// lookUp resolves each distinct reference once; for pins whose tag moved, it also asks whether
// the repository still serves the pinned digest (to say so) and, when strict, which platform's
// image of the tag's index the pin may be.
func (r *run) lookUp(ctx context.Context) {
	var refs []string
	distinct := map[string]bool{}
	for _, t := range r.tasks {
		distinct[t.name] = true
		if t.lookup != "" {
			refs = append(refs, t.lookup)
		}
	}
	r.rep.Summary.Distinct = len(distinct)
	r.resolved = r.resolve(ctx, refs)
	var old []string
	for _, t := range r.moved() {
		old = append(old, imageref.Repository(t.tag)+"@"+t.digest)
	}
	r.old = r.resolve(ctx, old)
	r.children = map[string]map[string]string{}
	lister, ok := r.lookup.(PlatformLister)
	if !ok || !r.strict() {
		return
	}
	// One GET per index. On failure the pin is reported stale, as it would be without the lister.
	// Without a platform, a moved pin may be one platform's image of the tag's index; with one,
	// the pin may be an index whose image for the platform is the tag's now.
	for _, t := range r.moved() {
		idx := imageref.Repository(t.tag) + "@" + r.resolved[t.lookup].Digest
		if r.opts.Platform != nil {
			idx = imageref.Repository(t.tag) + "@" + t.digest
		}
		if _, done := r.children[idx]; !done {
			r.children[idx], _ = lister.Platforms(ctx, idx)
		}
	}
}

// resolve looks refs up, if there are any.
func (r *run) resolve(ctx context.Context, refs []string) map[string]resolver.Result {
	if len(refs) == 0 {
		return map[string]resolver.Result{}
	}
	return r.lookup.Resolve(ctx, refs)
}

// moved returns the tag@digest pins whose tag resolved to another digest.
func (r *run) moved() []*task {
	var out []*task
	for _, t := range r.tasks {
		if got := r.resolved[t.lookup]; t.digest != "" && t.tag != "" && got.Err == nil && got.Digest != t.digest {
			out = append(out, t)
		}
	}
	return out
}

// strict reports whether a moved pin is an error rather than a change: check mode, pinned: verify.
func (r *run) strict() bool { return r.opts.Mode == ModeCheck || r.opts.Pinned == PinnedVerify }

// decide says what each task's field becomes. Failures are reported at once; changes wait for apply.
func (r *run) decide() {
	s := &r.rep.Summary
	for _, t := range r.tasks {
		got, img := r.resolved[t.lookup], t.field.Image
		switch {
		case t.lookup == "": // from the lock
			r.change(t, imageref.WithDigest(img, t.locked), fmt.Sprintf("pinned %s to %s from the lock", img, t.locked), true)
		case got.Err != nil:
			r.lookupFailed(t, got.Err)
		case t.digest == "" && t.locked != "" && got.Digest != t.locked && r.opts.Pinned == PinnedVerify:
			r.failed(CauseStale, t.use, fmt.Sprintf("stale lock entry: the lock pins %s to %s, not to %s, which the tag points to now", img, t.locked, got.Digest))
		case t.digest == "":
			r.pinTag(t, got)
		case t.tag == "": // repo@digest, served
			s.Verified++
			if r.opts.Pinned == PinnedRefresh {
				r.add(Info, CauseNoTag, t.use, fmt.Sprintf("%s has no tag to follow, so it is left as it is (its digest is served)", img), "")
			}
		case got.Digest == t.digest:
			s.Verified++
			r.confirm(t.tag, t.digest)
		default:
			r.tagMoved(t, got.Digest)
		}
	}
}

// lookupFailed reports a task whose lookup failed; the lock keeps what the field had.
func (r *run) lookupFailed(t *task, err error) {
	verb := "pin"
	if t.digest != "" {
		verb = "verify"
	}
	f := r.failed(causeOf(err), t.use, fmt.Sprintf("cannot %s %s: %v", verb, t.field.Image, err))
	f.Reason = err.Error()
	if ref, perr := resolver.Parse(t.lookup); perr == nil {
		f.Registry = ref.Context().RegistryStr()
	}
}

// pinTag pins an unpinned field to its tag's digest.
func (r *run) pinTag(t *task, got resolver.Result) {
	img := t.field.Image
	msg := fmt.Sprintf("pinned %s to %s", img, got.Digest)
	if t.locked != "" && t.locked != got.Digest {
		msg = fmt.Sprintf("pinned %s to %s, refreshing the lock's %s", img, got.Digest, t.locked)
	}
	if got.Mirror != "" {
		msg += " (answered by mirror " + got.Mirror + ")"
	}
	r.change(t, imageref.WithDigest(img, got.Digest), msg, false)
	r.confirm(img, got.Digest)
}

// tagMoved handles a tag@digest pin whose tag now points to now: one platform's image of the
// tag's index (a warning, when strict), a multi-arch index whose image for the run's platform is
// now (current, for that platform), a stale pin (an error, when strict), or a refresh.
func (r *run) tagMoved(t *task, now string) {
	repo := imageref.Repository(t.tag)
	if p, child := r.children[repo+"@"+now][t.digest]; child && r.strict() {
		r.rep.Summary.Verified++
		r.confirm(t.tag, now)
		r.add(Warning, CauseDisagreement, t.use, fmt.Sprintf("%s is pinned to %s, the %s image of the multi-arch tag (%s): nodes of other platforms cannot run it",
			t.tag, t.digest, p, now), "")
		return
	}
	if p, ok := r.children[repo+"@"+t.digest][now]; ok && p == r.platform() {
		r.rep.Summary.Verified++ // the pinned index gives this platform's nodes the image the tag gives them now
		r.confirm(t.tag, now)
		return
	}
	// The pin is not what the tag gives now. Whether the tag moved, or the pin was another
	// platform's image or an attestation all along, only the registry's history could tell: the
	// words claim neither.
	current := now + ", which the tag points to now"
	if p := r.platform(); p != "" {
		current = now + ", which the tag gives " + p + " now"
	}
	if o := r.old[repo+"@"+t.digest]; o.Err != nil {
		current += fmt.Sprintf(" (and the repository does not serve %s)", t.digest)
	}
	if r.strict() {
		r.failed(CauseStale, t.use, fmt.Sprintf("stale pin: %s is pinned to %s, not to %s", t.tag, t.digest, current))
		return
	}
	r.change(t, imageref.WithDigest(t.tag, now), fmt.Sprintf("refreshed: %s was pinned to %s, not to %s", t.tag, t.digest, current), false)
	r.confirm(t.tag, now)
}

// change notes what t's field becomes, for apply. Its value and message are kept once for all
// the fields that share them.
func (r *run) change(t *task, to, msg string, lock bool) {
	r.changes = append(r.changes, change{t: t, to: r.intern(to), msg: r.intern(msg), lock: lock})
}

// apply sets every decided change in its node (none for a field the run keeps no node of, see
// Batches.Drop) and reports it. Each change, and its task, goes once reported.
func (r *run) apply() {
	s := &r.rep.Summary
	r.tasks = nil
	r.rep.Findings = slices.Grow(r.rep.Findings, len(r.changes))
	for i, c := range r.changes {
		r.changes[i] = change{}
		if c.t.field.Node != nil {
			c.t.field.Set(c.to)
		}
		switch {
		case c.lock:
			s.FromLock++
			s.Pinned++
		case c.t.digest != "":
			s.Refreshed++
		default:
			s.Pinned++
		}
		r.add(Info, "", c.t.use, c.msg, c.to)
	}
}
