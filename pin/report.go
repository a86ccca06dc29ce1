package pin

import (
	"fmt"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

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
	// Values is true when the object is a Helm chart's values file (a values*.yaml beside a
	// Chart.yaml, which only the front end that reads files knows): its split images are pinned.
	Values bool
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

// Cause says why a warning or an error is one, for front ends to branch on instead of reading
// messages. Info findings have none.
type Cause string

// Causes of findings. The first group are a registry's answers to a lookup, the rest are about
// the package itself.
const (
	CauseUnauthorized Cause = "unauthorized"  // the registry wants credentials it was not given, or refused them
	CauseNotFound     Cause = "not-found"     // no such tag, manifest or repository
	CauseRateLimited  Cause = "rate-limited"  // the registry asked to come back later
	CauseUnreachable  Cause = "unreachable"   // the registry could not be reached, or its TLS refused
	CauseTimeout      Cause = "timeout"       // the registry did not answer in time, or the run was stopped
	CauseCredentials  Cause = "credentials"   // reading the credentials for the registry failed
	CausePlatform     Cause = "platform"      // the tag has no image for the platform asked
	CauseRegistry     Cause = "registry"      // any other failure of the registry or of its answer
	CauseInvalid      Cause = "invalid"       // the value is not an image reference digester can look up
	CauseTemplate     Cause = "template"      // the value holds a template variable
	CauseUnreadable   Cause = "unreadable"    // a field where an image belongs cannot be read as one
	CauseAmbiguous    Cause = "ambiguous"     // duplicate keys disagree on an image
	CauseTagged       Cause = "tagged"        // an image written with a YAML tag other than !!str
	CauseShared       Cause = "shared"        // an image's anchor is also used where no image belongs
	CauseExpansion    Cause = "expansion"     // aliases expand the resource past what kubectl decodes
	CauseDuplicate    Cause = "duplicate"     // a key appears twice (the last counts)
	CauseUnlisted     Cause = "unlisted"      // an image key at a place digester does not pin
	CauseUnpinned     Cause = "unpinned"      // check: the field has no digest
	CauseStale        Cause = "stale"         // the pin, or the lock's entry, is not what the tag points to now
	CauseNotInLock    Cause = "not-in-lock"   // lock: frozen and the lock has no entry for the reference
	CauseLock         Cause = "lock"          // the package's DigestLock is missing, unreadable or out of date
	CauseDisagreement Cause = "disagreement"  // a pin disagrees with the lock, or is one platform's image
	CauseNoTag        Cause = "no-tag"        // refresh: a repo@digest pin has no tag to follow
	CauseNoDigestKey  Cause = "no-digest-key" // a Helm split image has no digest key to pin it in
	CauseUnwritable   Cause = "unwritable"    // a front end cannot write the pinned value where it is written
)

// causeOf classifies a lookup's error by the resolver's typed cause.
func causeOf(err error) Cause {
	switch resolver.CauseOf(err) {
	case resolver.Unauthorized:
		return CauseUnauthorized
	case resolver.NotFound:
		return CauseNotFound
	case resolver.RateLimited:
		return CauseRateLimited
	case resolver.Unreachable, resolver.TLSFailure:
		return CauseUnreachable
	case resolver.Timeout, resolver.Canceled:
		return CauseTimeout
	case resolver.Credentials:
		return CauseCredentials
	case resolver.Invalid:
		return CauseInvalid
	case resolver.Platform:
		return CausePlatform
	}
	return CauseRegistry
}

// Finding is one thing a run found or did: a pinned field, a field that could not be pinned, a
// field that looks wrong. Object is nil for a finding about the run as a whole.
type Finding struct {
	Severity Severity
	// Cause classifies a warning or an error; "" for info.
	Cause   Cause
	Message string
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
	// Kind is how the field holds its reference. Unless Kind.Verbatim(), Image is the reference
	// the field stands for, not its text, and pinning changes Node as the kind's syntax says (a
	// key added or set, a line comment): a front end that edits text compares Node with the text.
	Kind walker.Kind
	// Node is the field's scalar node, when the finding is about an image field; front ends that
	// address fields by something other than Path (the webhook's JSON pointers) find them by it.
	Node *yaml.Node
	// Registry and Reason are set when a lookup failed: the registry asked and its answer in
	// words (Message is "cannot pin IMAGE: " + Reason).
	Registry, Reason string
}

// Summary counts what a run did. Every front end renders it the same: String in words, and the
// counts under these JSON names (--output json, the webhook's log).
type Summary struct {
	// Pinned image fields were set to a digest, FromLock of them from the package's DigestLock;
	// AlreadyPinned carried one; Skipped matched a skip prefix or were left alone by WithLeave.
	Pinned        int `json:"pinned"`
	FromLock      int `json:"fromLock"`
	AlreadyPinned int `json:"alreadyPinned"`
	Skipped       int `json:"skipped"`
	// Templated image fields hold a template variable (${IMAGE}, $(params.image)): left as they are, with a warning.
	Templated int `json:"templated"`
	// Verified pins were found current (pinned: verify or refresh); Refreshed were moved to their
	// tag's current digest.
	Verified  int `json:"verified"`
	Refreshed int `json:"refreshed"`
	// Failed counts errors: fields that could not be pinned and, in check mode, fields that pin
	// mode would change. Unpinned of them are fields (or a lock) pin mode would change (check
	// mode); Stale, pins or lock entries whose tag has moved (pinned: verify, check mode).
	Failed   int `json:"failed"`
	Unpinned int `json:"unpinned"`
	Stale    int `json:"stale"`
	// Distinct references were looked up or pinned from the lock (nginx and
	// docker.io/library/nginx:latest count once).
	Distinct int `json:"distinctReferences"`
	// Requests is how many HTTP requests went to registries, retries included.
	Requests int64 `json:"registryRequests"`
	// Warn is true when the run was told on-error: warn; Check, when it was told mode: check.
	Warn  bool `json:"onErrorWarn"`
	Check bool `json:"check"`
}

// String is the summary in plain words.
func (s Summary) String() string {
	counts := fmt.Sprintf("%s, %s", plural(s.Distinct, "distinct reference"), plural(int(s.Requests), "registry request"))
	tail := fmt.Sprintf("; %d already pinned, %d skipped by prefix", s.AlreadyPinned, s.Skipped)
	var msg string
	switch {
	case s.Check && s.Failed > 0:
		msg = fmt.Sprintf("check failed: %s (%s)%s", s.problems(), counts, tail)
	case s.Check:
		msg = fmt.Sprintf("check passed: nothing to pin (%s)%s", counts, tail)
	case s.Failed > 0 && !s.Warn:
		return fmt.Sprintf("pinned nothing: %s, so the package is returned unchanged (%s)", s.problems(), counts)
	default:
		msg = fmt.Sprintf("pinned %s (%s)%s", plural(s.Pinned, "image field"), counts, tail)
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

// problems says what failed: changes check mode found, stale pins, and the rest.
func (s Summary) problems() string {
	var parts []string
	if s.Unpinned > 0 {
		parts = append(parts, "pinning would make "+plural(s.Unpinned, "change"))
	}
	if s.Stale > 0 {
		parts = append(parts, plural(s.Stale, "stale pin"))
	}
	switch other := s.Failed - s.Unpinned - s.Stale; {
	case other > 0 && s.Check:
		parts = append(parts, plural(other, "error"))
	case other > 0:
		parts = append(parts, plural(other, "image field")+" could not be pinned")
	}
	return strings.Join(parts, ", ")
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
	// Updated holds objects whose nodes the run changed other than by pinning a field: the
	// package's DigestLock, when its images changed.
	Updated []*Object
}

// OK reports whether the run succeeded: every image pinned, or failures tolerated by on-error: warn.
func (r *Report) OK() bool { return r.Summary.Failed == 0 || r.Summary.Warn }

// plural is n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
