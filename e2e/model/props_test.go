package model_test

import (
	stdcmp "cmp"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

// run runs the case through every front end and checks every property.
func (c *kase) run() {
	s := c.sc.settings
	cliRun := runCLI(c.t, c.w, c.layouts, s)
	krm := runKRM(c.t, c.w, c.layouts, s)
	c.cliRun, c.krmRun = cliRun, krm

	c.frontEndsAgree(cliRun, krm.result)
	c.stdinAgrees(cliRun)
	c.webhookAgrees()
	c.onlyImagesChange(cliRun)
	c.krmKeepsValues(krm)
	c.krmKeepsBytes(krm)
	c.allOrNothing(cliRun, krm)
	for _, r := range []*result{cliRun, krm.result} {
		c.modelAgrees(r)
		c.digestsServed(r)
		c.lockKeepsWhatIsUsed(r)
		c.lockHoldsWhatWasResolved(r)
		c.claimsTrue(r)
		c.mirrorsOnly(r)
		c.noRequests(r)
	}
	c.reportTrue(cliRun)
	c.summaryTrue(cliRun)
	c.lockEqualsFresh(cliRun)
	c.pinThenCheck(cliRun)
}

// outcome is what the model allows for one field: a value (want; the input's for a field left
// alone), whether the run may fail on the field (canFail) or must (mustFail).
type outcome struct {
	want, alt         string // alt: another value the model accepts, "" for none
	canFail, mustFail bool
	why               string
}

// expect is the model: what a run with settings s makes of field fd, given the world now and
// the package's lock.
func (c *kase) expect(fd *field, s settings) outcome {
	img := fd.image
	left := outcome{want: img}
	if skipped(img, s.Skip) {
		left.why = "skipped by prefix"
		return left
	}
	if resolver.Template(img) != "" {
		left.why = "a template variable"
		return left
	}
	tagPart, pinned, isPinned := strings.Cut(img, "@")
	if isPinned && !hasTag(tagPart) {
		left.why = "repo@digest: nothing to follow"
		if s.Pinned != "keep" && !c.servedInRepo(img) {
			left.mustFail, left.canFail, left.why = true, true, "pinned: "+s.Pinned+", and the repository does not serve the digest"
		}
		return left
	}
	k, _ := refKey(img)
	cur, ok := c.w.current(k, s.Platform)
	resolved := outcome{want: tagPart + "@" + cur, why: fmt.Sprintf("the tag's current digest for %q", s.Platform)}
	cannot := outcome{want: img, mustFail: true, canFail: true, why: fmt.Sprintf("the registry has no image of %s for %q", k, s.Platform)}
	if s.Check {
		return c.expectCheck(fd, s, isPinned, pinned, k, ok && pinned == cur)
	}
	if isPinned {
		switch s.Pinned {
		case "keep":
			left.why = "pinned: keep"
			return left
		case "refresh":
			if !ok {
				return cannot
			}
			return resolved
		}
		return c.expectVerify(img, pinned, k, s, ok && pinned == cur)
	}
	e := c.entry(tagPart)
	switch {
	case e == "" && s.Lock == "frozen":
		return outcome{want: img, mustFail: true, canFail: true, why: "lock: frozen and no entry"}
	case e == "" && !ok:
		return cannot
	case e == "":
		return resolved
	case s.Pinned == "refresh" && !ok:
		return cannot
	case s.Pinned == "refresh":
		return resolved
	}
	fromLock := outcome{want: tagPart + "@" + e, why: "the lock's entry " + short(e)}
	// A lock records the platform its digests were resolved for; one without the record (hand
	// made, or written before it existed) is for the index, platform "".
	made := c.earlierPlatform
	switch {
	case made != s.Platform && s.Lock == "frozen":
		return outcome{want: img, mustFail: true, canFail: true, why: fmt.Sprintf("lock: frozen, and the lock was made for platform %q, not %q", made, s.Platform)}
	case made != s.Platform && !ok:
		cannot.why += " (the lock was made for another platform)"
		return cannot
	case made != s.Platform:
		resolved.why += fmt.Sprintf(" (the lock was made for platform %q)", made)
		return resolved
	case s.Pinned == "verify" && e != cur:
		return outcome{want: img, mustFail: true, canFail: true, why: "pinned: verify, and the lock's entry is not the tag's current digest"}
	}
	return fromLock
}

// expectVerify is the model of pinned: verify for a tag@digest field.
func (c *kase) expectVerify(img, pinned, k string, s settings, current bool) outcome {
	o := outcome{want: img, why: "pinned: verify"}
	switch vs := c.w.versions(k); {
	case current:
	case !c.w.inCurrent(k, pinned):
		o.mustFail, o.canFail, o.why = true, true, "pinned: verify, and the pin is no manifest of the tag's current version"
	case vs[len(vs)-1].children["unknown/unknown"] == pinned:
		o.mustFail, o.canFail, o.why = true, true, "pinned: verify, and the pin is the index's attestation (unknown/unknown), not an image"
	default:
		o.canFail, o.why = true, "pinned: verify, a pin to another manifest of the tag's current version"
	}
	return o
}

// expectCheck is the model of mode: check: nothing changes; an unpinned field fails the run,
// and so does a pin that verify or refresh would call stale.
func (c *kase) expectCheck(fd *field, s settings, isPinned bool, pinned, k string, current bool) outcome {
	o := outcome{want: fd.image, canFail: true, why: "mode: check"}
	switch {
	case !isPinned:
		o.mustFail, o.why = true, "mode: check, and the field is not pinned"
	case s.Pinned == "keep" || current:
	case !c.w.inCurrent(k, pinned):
		o.mustFail, o.why = true, "mode: check, pinned: "+s.Pinned+", and the pin is no manifest of the tag's current version"
	case c.w.versions(k)[len(c.w.versions(k))-1].children["unknown/unknown"] == pinned:
		o.mustFail, o.why = true, "mode: check, pinned: "+s.Pinned+", and the pin is the index's attestation (unknown/unknown)"
	}
	return o
}

// entry is the lock's digest for a reference (any spelling), "" if none.
func (c *kase) entry(ref string) string {
	n := normalise(ref)
	for img, d := range c.lockBefore {
		if normalise(img) == n {
			return d
		}
	}
	return ""
}

// usable is the lock's digest for a reference if the lock was made for the run's platform (an
// entry for another platform answers nothing), "" otherwise.
func (c *kase) usable(ref string) string {
	if c.earlierPlatform != c.sc.settings.Platform {
		return ""
	}
	return c.entry(ref)
}

// skipped is the README's rule for skip-prefixes: a prefix matches the reference as written or
// its normalised name (for Docker Hub also docker.io/…), on a path boundary.
func skipped(ref string, prefixes []string) bool {
	forms := []string{ref}
	tagPart, _, _ := strings.Cut(ref, "@")
	if r, err := resolver.Parse(tagPart); err == nil {
		repo := tagPart
		if hasTag(tagPart) {
			repo = tagPart[:strings.LastIndex(tagPart, ":")]
		}
		rest := ref[len(repo):]
		forms = append(forms, r.Context().Name()+rest)
		if r.Context().RegistryStr() == "index.docker.io" {
			forms = append(forms, "docker.io/"+r.Context().RepositoryStr()+rest)
		}
	}
	for _, p := range prefixes {
		for _, f := range forms {
			if rest, ok := strings.CutPrefix(f, p); ok && (rest == "" || strings.HasSuffix(p, "/") || strings.HasSuffix(p, ":") || strings.ContainsRune("/:@", rune(rest[0]))) {
				return true
			}
		}
	}
	return false
}

// modelAgrees checks a run against the model: each field's value, and the exit status.
func (c *kase) modelAgrees(r *result) {
	s := c.sc.settings
	if c.cliCannotEdit(r) {
		return
	}
	var must, can []string
	for _, fd := range c.fields() {
		o := c.expect(fd, s)
		got := r.values[fd]
		switch {
		case o.mustFail:
			must = append(must, fd.id()+" ("+o.why+")")
			// An alias shares its anchor's value, which is reported once, at the anchor.
			if sev := failSeverity(s); r.report != nil && !fd.alias && !r.names(fd, sev) {
				c.fail("model", "%s: %s must fail on %s (%s), but no %s names it", s, r.front, fd.id(), o.why, sev)
			}
		case o.canFail:
			can = append(can, fd.id())
		}
		failedHere := o.canFail && got == fd.image
		switch {
		case got == o.want || o.alt != "" && got == o.alt:
		case r.exit != 0 && s.OnError != "warn" && got == fd.image: // nothing written: all or nothing
		case s.OnError == "warn" && failedHere:
		default:
			c.fail("model", "%s: %s left %s = %q, the model wants %q (%s)", c.sc.settings, r.front, fd.id(), got, o.want, o.why)
		}
	}
	if s.Lock == "frozen" && !c.hasLock() {
		must = append(must, "the package (lock: frozen, and it has no DigestLock)")
	}
	if s.Check && s.Lock != "frozen" && c.hasLock() {
		// check judges the lock too: one that pin would change (an entry added, changed, or
		// dropped because nothing uses it) fails; the model does not work out which.
		can = append(can, "the DigestLock")
	}
	strict := s.Check || s.OnError != "warn"
	switch {
	case len(must) > 0 && strict && r.exit == 0:
		c.fail("model", "%s: %s exited 0, but the run must fail on %s", c.sc.settings, r.front, strings.Join(must, "; "))
	case len(must) == 0 && len(can) == 0 && r.exit != 0 && !c.exotic():
		c.fail("model", "%s: %s exited %d, but nothing in the package can fail: %s", c.sc.settings, r.front, r.exit, firstLine(r.stderr))
	}
}

// hasLock reports whether the package holds a DigestLock before the run.
func (c *kase) hasLock() bool {
	return slices.ContainsFunc(c.layouts, func(l *layout) bool { return l.lockGroup > 0 })
}

// failSeverity is how a run reports a field it cannot pin: an error, or under on-error: warn
// (pin mode) a warning.
func failSeverity(s settings) string {
	if s.OnError == "warn" && !s.Check {
		return "warning"
	}
	return "error"
}

// names reports whether the command line's report has a finding of severity sev about field fd.
func (r *result) names(fd *field, sev string) bool {
	for _, f := range r.report.Findings {
		// The command line reads a List's items as resources of their own: paths from the item.
		p := pathString(fd.path)
		if f.Severity == sev && (f.Path == p || strings.HasSuffix(p, "]."+f.Path)) && f.Image == fd.image {
			return true
		}
	}
	return false
}

// exotic reports whether the package writes an image as an alias or a block scalar, which the
// command line cannot edit in place.
func (c *kase) exotic() bool {
	for _, l := range c.layouts {
		if strings.Contains(l.file.template, "image: *") || strings.Contains(l.file.template, "image: >-") {
			return true
		}
	}
	return false
}

// cliCannotEdit reports whether r is a command line run that refused to write a value it cannot
// edit in place, and the package has one (an alias, a block scalar): a limit of the command line
// that the KRM function and the webhook do not have. reportTrue checks what it says then.
func (c *kase) cliCannotEdit(r *result) bool {
	said := r.stderr + strings.Join(r.messages(), "\n")
	return r.front == "command line" && c.exotic() && (strings.Contains(said, "cannot pin it in place") || strings.Contains(said, "so that digester can add its digest"))
}

var pinnedRE = regexp.MustCompile(`^(.+)@(sha256:[0-9a-f]{64})$`)

// digestsServed checks every value a run changed: the reference as written plus a digest that
// the registry served for that tag and the run's platform, at some time. A digest the lock gave
// must also be one the registry served; a hand-made lock's foreign digest is the exception.
func (c *kase) digestsServed(r *result) {
	p := c.sc.settings.Platform
	for _, fd := range c.fields() {
		got := r.values[fd]
		if got == fd.image {
			continue
		}
		m := pinnedRE.FindStringSubmatch(got)
		tagPart, _, _ := strings.Cut(fd.image, "@")
		if m == nil || m[1] != tagPart {
			c.fail("digest", "%s: %s changed %s from %q to %q: not the reference as written with a digest", c.sc.settings, r.front, fd.id(), fd.image, got)
			continue
		}
		k, ok := refKey(tagPart)
		if !ok || c.w.served(k, p, m[2]) {
			continue
		}
		if c.origin == handLock && p == "" && m[2] == c.entry(tagPart) {
			continue // the user's hand-made entry, which a run for the index trusts
		}
		c.fail("digest", "%s: %s pinned %s to %s, which the registry never served as %s for platform %q (%s)",
			c.sc.settings, r.front, fd.id(), short(m[2]), k, p, c.whatIs(m[2]))
	}
}

// servedInRepo reports whether the repository of a repo@digest reference ever served its digest,
// as any tag's manifest.
func (c *kase) servedInRepo(ref string) bool {
	repoPart, digest, _ := strings.Cut(ref, "@")
	r, err := resolver.Parse(repoPart)
	if err != nil {
		return false
	}
	for k := range c.w.history {
		if strings.HasPrefix(k, r.Context().RepositoryStr()+":") && c.servedAnywhere(k, digest) {
			return true
		}
	}
	return false
}

// servedAnywhere reports whether digest was ever a manifest of tag k, for any platform.
func (c *kase) servedAnywhere(k, digest string) bool {
	for _, v := range c.w.versions(k) {
		if slices.Contains(v.digests(), digest) {
			return true
		}
	}
	return false
}

// whatIs names a digest of the world: which tag, version and platform it is.
func (c *kase) whatIs(digest string) string {
	for _, k := range slices.Sorted(maps.Keys(c.w.history)) {
		vs := c.w.versions(k)
		for i, v := range vs {
			age := fmt.Sprintf("version %d of %d", i+1, len(vs))
			switch digest {
			case v.index:
				return fmt.Sprintf("it is the index of %s, %s", k, age)
			case v.image:
				return fmt.Sprintf("it is the %s image of %s, %s", v.platform, k, age)
			}
			for pl, d := range v.children {
				if d == digest {
					return fmt.Sprintf("it is the %s entry of %s's index, %s", pl, k, age)
				}
			}
		}
	}
	return "the registry never served it"
}

// frontEndsAgree checks that the command line and the KRM function exit alike, pin the same
// fields to the same values and leave the same lock.
func (c *kase) frontEndsAgree(cliRun, krm *result) {
	if c.cliCannotEdit(cliRun) {
		return // the command line's documented limit; reportTrue checks what it says
	}
	if (cliRun.exit == 0) != (krm.exit == 0) {
		c.fail("front ends", "%s: the command line exited %d (%s), the KRM function %d (%s)", c.sc.settings,
			cliRun.exit, firstLine(cliRun.stderr), krm.exit, firstLine(krm.stderr))
	}
	for _, fd := range c.fields() {
		if a, b := cliRun.values[fd], krm.values[fd]; a != b && cliRun.bytesOK[fd.file] {
			c.fail("front ends", "%s: %s is %q after the command line, %q after the KRM function", c.sc.settings, fd.id(), a, b)
		}
	}
	if diff := cmp.Diff(cliRun.lock, krm.lock); diff != "" {
		c.fail("front ends", "%s: the lock after the command line and after the KRM function differ (-cli +krm):\n%s", c.sc.settings, diff)
	}
}

// stdinAgrees checks that `digester pin -` on the package's files, one after another, writes
// what `digester pin DIR` writes to them (and a new lock after them), and exits alike. A
// kustomization.yaml is read as one only by its file name, which stdin does not have.
func (c *kase) stdinAgrees(files *result) {
	for _, l := range c.layouts {
		if l.file.name == "kustomization.yaml" {
			return
		}
	}
	stdout, stderr, code := runCLIStdin(c.t, c.w, stdinInput(c.layouts), c.sc.settings)
	if (code == 0) != (files.exit == 0) {
		c.fail("stdin", "%s: `digester pin -` exited %d (%s), `digester pin DIR` %d (%s)", c.sc.settings, code, firstLine(stderr), files.exit, firstLine(files.stderr))
		return
	}
	if c.sc.settings.Check {
		return // check writes nothing on stdout
	}
	var parts []string
	for _, l := range sortedLayouts(c.layouts) {
		parts = append(parts, files.files[l.file.name])
	}
	want := strings.Join(parts, "---\n")
	if text, ok := files.files[lockFile]; ok && !slices.ContainsFunc(c.layouts, func(l *layout) bool { return l.file.name == lockFile }) {
		want += "---\n" + text
	}
	if files.exit != 0 {
		want = stdinInput(c.layouts)
	}
	if stdout != want {
		c.fail("stdin", "%s: `digester pin -` wrote other bytes than `digester pin DIR` wrote to the files (-dir +stdin):\n%s", c.sc.settings, cmp.Diff(want, stdout))
	}
}

// webhookAgrees checks each Pod through the webhook against `digester pin -` on the same Pod
// alone with the same settings (the webhook has no lock): allowed when it exits 0, the same
// fields pinned to the same values, and a patch that replaces image fields only; and under
// scope: pods the webhook answers a Pod as under workloads.
func (c *kase) webhookAgrees() {
	s := c.sc.settings
	s.Lock = ""
	for _, p := range c.pods() {
		a := runWebhook(c.t, c.w, p.doc, s, webhook.ScopeWorkloads)
		if pods := runWebhook(c.t, c.w, p.doc, s, webhook.ScopePods); pods.allowed != a.allowed || !maps.Equal(pods.patch, a.patch) {
			c.fail("webhook", "%s: Pod %s: under scope pods the webhook allowed=%v with patch %v, under workloads allowed=%v with %v", s, p.name, pods.allowed, pods.patch, a.allowed, a.patch)
		}
		js, _ := json.Marshal(p.doc)
		stdout, stderr, code := runCLIStdin(c.t, c.w, string(js), s)
		if a.allowed != (code == 0) {
			c.fail("webhook", "%s: Pod %s: the webhook allowed=%v (%s), `digester pin -` exited %d (%s)", s, p.name, a.allowed, a.message, code, firstLine(stderr))
			continue
		}
		if len(a.ops) > 0 {
			c.fail("webhook", "%s: Pod %s: patch operations other than replacing an image: %v", s, p.name, a.ops)
		}
		var out any
		if s.Check || code != 0 {
			out = p.doc
		} else if err := yaml.Unmarshal([]byte(stdout), &out); err != nil {
			c.fail("webhook", "%s: Pod %s: `digester pin -` wrote what does not parse: %v", s, p.name, err)
			continue
		}
		byPointer := map[string]*field{}
		for _, fd := range p.fields {
			byPointer[fd.pointer()] = fd
			want := fieldValue(out, fd)
			got, patched := a.patch[fd.pointer()]
			if !patched {
				got = fd.image
			}
			if a.allowed && got != want {
				c.fail("webhook", "%s: Pod %s %s: the webhook made it %q, `digester pin -` %q", s, p.name, pathString(fd.path), got, want)
			}
		}
		for ptr := range a.patch {
			if byPointer[ptr] == nil {
				c.fail("webhook", "%s: Pod %s: the patch replaces %s, which is no image field", s, p.name, ptr)
			}
		}
		c.mirrorsOnly(&result{front: "webhook", hosts: a.hosts})
	}
}

// onlyImagesChange checks that the command line changed no byte of any file but image values
// (the lock's own file aside), and wrote no file when it failed.
func (c *kase) onlyImagesChange(r *result) {
	for _, l := range c.layouts {
		if !r.bytesOK[l.file.name] {
			c.fail("bytes", "%s: the command line changed %s outside image values (-before +after):\n%s", c.sc.settings, l.file.name, cmp.Diff(l.input, r.files[l.file.name]))
		}
	}
}

// krmKeepsValues checks that every item the KRM function returns, decoded, equals the item it
// was sent but for image fields (the lock aside), and that no item is lost.
func (c *kase) krmKeepsValues(k *krmResult) {
	fieldsOf := map[string][]*field{}
	for _, fd := range c.fields() {
		fieldsOf[itemKey(fd.file, fd.doc)] = append(fieldsOf[itemKey(fd.file, fd.doc)], fd)
	}
	for id, in := range k.in {
		out, ok := k.out[id]
		if !ok {
			c.fail("krm values", "%s: the KRM function lost item %s", c.sc.settings, id)
			continue
		}
		if m, _ := in.(map[string]any); m["kind"] == "DigestLock" {
			continue
		}
		in, out := clone(in), clone(out)
		mask(in, fieldsOf[id])
		mask(out, fieldsOf[id])
		if diff := cmp.Diff(in, out); diff != "" {
			c.fail("krm values", "%s: the KRM function changed item %s outside image fields (-sent +returned):\n%s", c.sc.settings, id, diff)
		}
	}
}

// krmKeepsBytes checks, byte for byte, that every item the KRM function returns is the text it
// was sent but for image values (an image may gain "@sha256:…", an images: entry a digest:
// line): kpt writes each item back to its file, so any other change is a change in the user's
// file. The lock is the function's own.
func (c *kase) krmKeepsBytes(k *krmResult) {
	in, out := itemTexts(c.t, k.rl), itemTexts(c.t, k.stdout)
	var images []string
	for _, fd := range c.fields() {
		tagPart, _, _ := strings.Cut(fd.image, "@") // a refresh changes the digest
		images = append(images, tagPart)
	}
	for id, text := range in {
		if strings.Contains(text, "kind: DigestLock") {
			continue
		}
		got, ok := out[id]
		if !ok {
			continue // krmKeepsValues says so
		}
		if a, b := maskImages(text, images), maskImages(got, images); a != b {
			c.fail("krm bytes", "%s: the KRM function returned item %s with other bytes than it was sent, image values aside (-sent +returned):\n%s", c.sc.settings, id, cmp.Diff(a, b))
		}
	}
}

var digestLineRE = regexp.MustCompile(`(?m)^ *digest: sha256:[0-9a-f]{64}\n`)

// maskImages replaces each image value in text, with the digest it may have gained, by a
// placeholder, and drops digest: lines.
func maskImages(text string, images []string) string {
	text = digestLineRE.ReplaceAllString(text, "")
	images = slices.Clone(images)
	slices.SortFunc(images, func(a, b string) int { return stdcmp.Or(len(b)-len(a), strings.Compare(a, b)) }) // longest first
	for _, img := range slices.Compact(images) {
		re := regexp.MustCompile(regexp.QuoteMeta(img) + `(@sha(256|512):[0-9a-f]+)?`)
		text = re.ReplaceAllString(text, "<image>")
	}
	return text
}

// itemTexts cuts a ResourceList into the text of each item, by "path#index".
func itemTexts(t *testing.T, rl string) map[string]string {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(rl), &doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	lines := strings.SplitAfter(rl, "\n")
	var starts []int // the first line of each item, then where the items end
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "items" {
			for _, it := range root.Content[i+1].Content {
				start := it.Line // the first key's line; the item starts at its "- ", which may hold a comment
				for start > 1 && !strings.HasPrefix(lines[start-1], "- ") {
					start--
				}
				starts = append(starts, start)
			}
			end := len(lines) + 1
			if i+2 < len(root.Content) {
				end = root.Content[i+2].Line
			}
			starts = append(starts, end)
		}
	}
	out := map[string]string{}
	for i := 0; i+1 < len(starts); i++ {
		item := lines[starts[i]-1 : starts[i+1]-1]
		for len(item) > 1 && strings.HasPrefix(strings.TrimSpace(item[len(item)-1]), "#") {
			item = item[:len(item)-1] // a comment before the next item is that item's
		}
		text := strings.Join(item, "")
		var dedented strings.Builder
		for _, l := range item {
			if strings.HasPrefix(l, "- ") || strings.HasPrefix(l, "  ") {
				l = l[2:]
			}
			dedented.WriteString(l)
		}
		var n yaml.Node
		if yaml.Unmarshal([]byte(dedented.String()), &n) != nil {
			t.Errorf("item at line %d of the ResourceList does not parse", starts[i])
			continue
		}
		ann, _ := at(decode(&n), []any{"metadata", "annotations"})
		a, _ := ann.(map[string]any)
		idx := 0
		fmt.Sscan(fmt.Sprint(a["config.kubernetes.io/index"]), &idx)
		out[itemKey(fmt.Sprint(a["config.kubernetes.io/path"]), idx)] = text
	}
	return out
}

// clone deep-copies a decoded document.
func clone(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

// allOrNothing checks that a failed pin run changed nothing: no file (command line), no value
// and no lock (KRM function).
func (c *kase) allOrNothing(cliRun *result, krm *krmResult) {
	if c.sc.settings.Check || c.sc.settings.OnError == "warn" {
		return
	}
	if cliRun.exit != 0 && !cliRun.untouched {
		c.fail("all or nothing", "%s: the command line exited %d but changed files", c.sc.settings, cliRun.exit)
	}
	if krm.exit != 0 {
		for _, fd := range c.fields() {
			if krm.values[fd] != fd.image {
				c.fail("all or nothing", "%s: the KRM function exited %d but changed %s to %q", c.sc.settings, krm.exit, fd.id(), krm.values[fd])
			}
		}
		if krm.lock != nil && !maps.Equal(krm.lock, c.lockBefore) {
			c.fail("all or nothing", "%s: the KRM function exited %d but changed the lock", c.sc.settings, krm.exit)
		}
	}
}

// lockKeepsWhatIsUsed checks that a pin run keeps the lock entry of every reference a field of
// the package still uses, skipped or not ("skipping is not forgetting").
func (c *kase) lockKeepsWhatIsUsed(r *result) {
	s := c.sc.settings
	if c.lockBefore == nil || s.Check || r.exit != 0 || r.lock == nil {
		return
	}
	used := map[string]string{}
	for _, fd := range c.fields() {
		tagPart, digest, pinned := strings.Cut(fd.image, "@")
		switch {
		case resolver.Template(tagPart) != "":
		case pinned && !hasTag(tagPart) && c.entry(tagPart) != digest:
		default: // a tag-less nginx@sha256:… pinned from the entry of nginx uses it (README)
			used[normalise(tagPart)] = fd.id()
		}
	}
	after := map[string]bool{}
	for img := range r.lock {
		after[normalise(img)] = true
	}
	for img := range c.lockBefore {
		if f, inUse := used[normalise(img)]; inUse && !after[normalise(img)] {
			c.fail("lock", "%s: %s dropped the lock entry of %s, which %s still uses", s, r.front, img, f)
		}
	}
}

// lockHoldsWhatWasResolved checks the lock a pin run leaves: one entry per reference; what the
// run added or changed is the digest the registry serves for the run's platform now; and each
// field the run pinned agrees with its entry. (A tag-less reference is locked as written, for
// latest: the README says so since issue 24.)
func (c *kase) lockHoldsWhatWasResolved(r *result) {
	s := c.sc.settings
	if s.Check || r.exit != 0 || r.lock == nil {
		return
	}
	names := map[string]string{}
	for img, d := range r.lock {
		n := normalise(img)
		if other, dup := names[n]; dup {
			c.fail("lock", "%s: %s wrote %s and %s to the lock, one reference", s, r.front, other, img)
		}
		names[n] = img
		if c.lockBefore[img] == d {
			continue
		}
		k, ok := refKey(img)
		if cur, okCur := c.w.current(k, s.Platform); ok && (!okCur || d != cur) {
			serves := "serves " + short(cur)
			if !okCur {
				serves = "serves no image"
			}
			c.fail("lock", "%s: %s wrote %s: %s to the lock, but the registry %s for platform %q (the lock's digest: %s)", s, r.front, img, short(d), serves, s.Platform, c.whatIs(d))
		}
	}
	for _, fd := range c.fields() {
		got := r.values[fd]
		m := pinnedRE.FindStringSubmatch(got)
		if got == fd.image || m == nil {
			continue
		}
		n := normalise(m[1])
		if img, ok := names[n]; ok && r.lock[img] != m[2] {
			c.fail("lock", "%s: %s pinned %s to %s, but its lock entry %s says %s", s, r.front, fd.id(), short(m[2]), img, short(r.lock[img]))
		} else if !ok && !skipped(fd.image, s.Skip) {
			c.fail("lock", "%s: %s pinned %s to %s, and the lock has no entry for it", s, r.front, fd.id(), short(m[2]))
		}
	}
}

var claimRE = regexp.MustCompile(`(\S+) (?:is pinned to|to) (sha256:[0-9a-f]{64}), but the tag now points to`)

// claimsTrue checks every "the tag now points to" a run says: the tag did move away from the
// digest named (it is no manifest of the tag's current version).
func (c *kase) claimsTrue(r *result) {
	for _, msg := range r.messages() {
		for _, m := range claimRE.FindAllStringSubmatch(msg, -1) {
			k, ok := refKey(m[1])
			if ok && c.w.inCurrent(k, m[2]) {
				c.fail("claims", "%s: %s says %q, but %s never moved away from %s (%s)", c.sc.settings, r.front, msg, k, short(m[2]), c.whatIs(m[2]))
			}
		}
	}
}

// dockerHubHosts are the names of Docker Hub's registry.
var dockerHubHosts = []string{"docker.io", "index.docker.io", "registry-1.docker.io", "docker.io."}

// mirrorsOnly checks that with mirror-fallback off, no request reaches a mirrored registry, in
// whatever spelling the package names it.
func (c *kase) mirrorsOnly(r *result) {
	s := c.sc.settings
	if s.Mirrors == "" || s.Fallback {
		return
	}
	upstream, _, _ := strings.Cut(s.Mirrors, "=")
	forbidden := []string{upstream}
	if upstream == "docker.io" {
		forbidden = dockerHubHosts
	}
	for _, h := range slices.Compact(slices.Sorted(slices.Values(r.hosts))) {
		if slices.Contains(forbidden, strings.TrimSuffix(h, ":443")) {
			c.fail("mirrors", "%s: %s sent a request to %s, though %s is mirrored and mirror-fallback is off", s, r.front, h, upstream)
		}
	}
}

// noRequests checks the runs that promise no registry request: mode: check and lock: frozen,
// each with pinned: keep.
func (c *kase) noRequests(r *result) {
	s := c.sc.settings
	if s.Pinned != "keep" || !s.Check && s.Lock != "frozen" {
		return
	}
	if len(r.hosts) > 0 {
		c.fail("requests", "%s: %s sent %d registry requests (to %s), though it promises none", s, r.front, len(r.hosts), strings.Join(slices.Compact(slices.Sorted(slices.Values(r.hosts))), ", "))
	}
}

// reportTrue checks what the command line's --output json says against what it did: ok when it
// exits 0, and every value it says it pinned is in the files.
func (c *kase) reportTrue(r *result) {
	s := c.sc.settings
	if r.report == nil {
		c.fail("report", "%s: --output json printed no JSON report: %s", s, firstLine(r.stdout))
		return
	}
	if r.report.OK != (r.exit == 0) {
		c.fail("report", "%s: the JSON report says ok=%v (failed=%d), but the command line exited %d (%s)", s, r.report.OK, r.report.Summary.Failed, r.exit, firstLine(r.stderr))
	}
	if s.Check {
		return
	}
	values := map[string]bool{}
	for _, v := range r.values {
		values[v] = true
	}
	for _, f := range r.report.Findings {
		switch {
		case f.Pinned == "":
		case r.exit == 0 && !values[f.Pinned]:
			c.fail("report", "%s: the report says %s was pinned to %s, but no file holds it", s, f.Image, f.Pinned)
		case r.exit != 0 && f.Severity == "info":
			c.fail("report", "%s: the command line exited %d and wrote nothing, but its report says %q", s, r.exit, f.Message)
		}
	}
}

// summaryTrue checks the numbers of the command line's summary against what it did: the fields
// it pinned or refreshed, at least as many distinct references as those fields name, and the
// registry requests the registry received.
func (c *kase) summaryTrue(r *result) {
	s := c.sc.settings
	if r.report == nil || s.Check || r.exit != 0 || c.exotic() {
		return
	}
	sum := r.report.Summary
	changed, refs := 0, map[string]bool{}
	for _, fd := range c.fields() {
		if r.values[fd] != fd.image {
			changed++
			refs[normalise(fd.image)] = true
		}
	}
	if sum.Pinned+sum.Refreshed != changed {
		c.fail("summary", "%s: the summary counts %d pinned and %d refreshed fields, but %d fields changed: %q", s, sum.Pinned, sum.Refreshed, changed, sum.Message)
	}
	if sum.Distinct < len(refs) {
		c.fail("summary", "%s: the summary counts %d distinct references, but the run pinned %d: %q", s, sum.Distinct, len(refs), sum.Message)
	}
	if sum.Requests != len(r.hosts) {
		c.fail("summary", "%s: the summary counts %d registry requests, but the registry received %d: %q", s, sum.Requests, len(r.hosts), sum.Message)
	}
}

// lockEqualsFresh checks that a run from a lock pins as a fresh run (no lock) with the same
// settings does, wherever each entry it uses is what the registry serves for the run's platform
// now; and says what the lock changes where a tag moved since (the model checks the value).
func (c *kase) lockEqualsFresh(r *result) {
	s := c.sc.settings
	if c.lockBefore == nil || s.Check || c.origin == handLock && c.hasForeignEntries() {
		return // check mode also judges the lock itself: a stale one fails where no lock passes
	}
	fs := s
	fs.Lock = ""
	fresh := runCLI(c.t, c.w, c.withoutLock(), fs)
	agree := true
	for _, fd := range c.fields() {
		tagPart, ok := needsDigest(fd, s)
		if !ok {
			continue
		}
		k, _ := refKey(tagPart)
		cur, ok := c.w.current(k, s.Platform)
		if e := c.usable(tagPart); e != "" && (!ok || e != cur) || e == "" && s.Lock == "frozen" {
			agree = false
		}
	}
	if c.origin == earlierLock && c.earlierPlatform != s.Platform && s.Lock == "frozen" {
		agree = false
	}
	if agree && (r.exit == 0) != (fresh.exit == 0) {
		c.fail("lock = fresh", "%s: from the lock the command line exited %d (%s); without it, %d (%s)", s, r.exit, firstLine(r.stderr), fresh.exit, firstLine(fresh.stderr))
	}
	if r.exit != 0 || fresh.exit != 0 {
		return
	}
	for _, fd := range c.fields() {
		tagPart, _, _ := strings.Cut(fd.image, "@")
		k, _ := refKey(tagPart)
		cur, ok := c.w.current(k, s.Platform)
		if e := c.usable(tagPart); e != "" && (!ok || e != cur) || e == "" && s.Lock == "frozen" {
			continue // the tag moved since the lock, the lock is for another platform or lacks it: the model judges
		}
		var fv string
		for ffd, v := range fresh.values {
			if ffd.file == fd.file && ffd.doc == fd.doc && pathString(ffd.path) == pathString(fd.path) {
				fv = v
			}
		}
		if got := r.values[fd]; got != fv {
			c.fail("lock = fresh", "%s: %s is %q from the lock, %q without it (the lock's entry: %q, the tag's current digest)", s, fd.id(), got, fv, c.entry(tagPart))
		}
	}
}

// needsDigest reports whether a run with settings s gives fd a digest (from the registry or the
// lock): a reference written without one, not skipped, not a template; and returns it.
func needsDigest(fd *field, s settings) (string, bool) {
	if strings.Contains(fd.image, "@") || skipped(fd.image, s.Skip) || resolver.Template(fd.image) != "" {
		return "", false
	}
	return fd.image, true
}

// hasForeignEntries reports whether the hand-made lock holds a digest the registry never served
// for its tag: then the user's word and a fresh run differ, as they should.
func (c *kase) hasForeignEntries() bool {
	for img, d := range c.lockBefore {
		k, ok := refKey(img)
		if !ok || !c.servedAnywhere(k, d) {
			return true
		}
	}
	return false
}

// pinThenCheck checks, after a pin run that pinned everything, that `digester check` with the
// same settings passes, and that a second `digester pin` changes nothing.
func (c *kase) pinThenCheck(r *result) {
	s := c.sc.settings
	if s.Check || r.exit != 0 || r.report == nil || r.report.Summary.Failed > 0 {
		return
	}
	after := c.after(r)
	if after == nil {
		return // onlyImagesChange has said why
	}
	cs := s
	cs.Check = true
	chk := runCLI(c.t, c.w, after, cs)
	if chk.exit != 0 {
		var errs []string
		for _, m := range chk.messages() {
			if strings.HasPrefix(m, "error") {
				errs = append(errs, m)
			}
		}
		c.fail("check after pin", "%s passed, then `%s` failed:\n  %s", s, cs, strings.Join(errs, "\n  "))
	}
	again := runCLI(c.t, c.w, after, s)
	if again.exit != 0 || !again.untouched {
		diffs := ""
		for name, text := range again.files {
			if r.files[name] != text {
				diffs += fmt.Sprintf("%s (-first +second):\n%s", name, cmp.Diff(r.files[name], text))
			}
		}
		c.fail("pin twice", "%s passed, then the same run again exited %d (%s) and changed:\n%s", s, again.exit, firstLine(again.stderr), diffs)
	}
}
