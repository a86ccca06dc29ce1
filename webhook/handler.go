// Package webhook is digester's admission front end: a mutating admission webhook that pins, as
// objects are created or updated in a cluster, the images no pipeline saw (containers injected by
// other webhooks, resources applied by hand).
//
// Handler turns an AdmissionReview (admission.k8s.io/v1) into objects for the pinning core (package
// pin) and the core's findings into a JSONPatch that replaces only the pinned image values, plus a
// denial or admission warnings for images that could not be pinned. Server serves it over HTTPS with
// health and Prometheus endpoints, reloads its certificate when the files change, and drains
// in-flight admissions on shutdown.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

// Defaults of a Handler.
const (
	// DefaultDeadline bounds one admission, below the API server's default timeoutSeconds of 10.
	DefaultDeadline = 8 * time.Second
	// DefaultMaxRequestBytes bounds a request body: the API server stores objects up to 3 MiB, and
	// an UPDATE's review carries two of them.
	DefaultMaxRequestBytes = 7 << 20
	// maxWarningBytes is where the API server starts truncating a warning.
	maxWarningBytes = 256
	// maxFailureBytes bounds each failure a denial lists.
	maxFailureBytes = 512
	// maxListed is how many failures, warnings or credential problems an answer or a log line
	// lists; the rest are counted.
	maxListed = 10
)

// Handler answers AdmissionReviews POSTed to it. It is safe for concurrent use.
type Handler struct {
	opts     pin.Options
	lookup   pin.Lookup
	maxBytes int64
	memory   budget
	metrics  *Metrics
	log      *slog.Logger
	pods     PodLookups
	scope    Scope
}

// Scope says which objects the webhook pins.
type Scope string

// Scopes.
const (
	// ScopeWorkloads pins every object that holds images: Pods, workloads, custom resources.
	ScopeWorkloads Scope = "workloads"
	// ScopePods pins Pods only (and the ephemeral containers added to them): workloads and custom
	// resources are stored as written, as Git has them, and the Pods their controllers create are
	// pinned.
	ScopePods Scope = "pods"
)

// ParseScope parses a --scope value.
func ParseScope(s string) (Scope, error) {
	switch sc := Scope(s); sc {
	case ScopeWorkloads, ScopePods:
		return sc, nil
	}
	return "", fmt.Errorf("scope %q: want %s or %s", s, ScopeWorkloads, ScopePods)
}

// WithScope sets which objects are pinned (default ScopeWorkloads); the others are admitted as
// they are, whatever the registration sends.
func WithScope(s Scope) Option { return func(h *Handler) { h.scope = s } }

// Pod names the credentials of an object's pod spec: where it runs and what it pulls with.
type Pod struct {
	// Namespace of the object.
	Namespace string
	// ServiceAccount the pod runs as; empty means "default", as in the API.
	ServiceAccount string
	// PullSecrets are the names in the pod spec's imagePullSecrets, in order.
	PullSecrets []string
}

// PodLookups gives the lookup for a pod spec's images: one that uses the credentials the Pod pulls
// with (cmd/webhook reads them from the cluster with package podcreds).
type PodLookups interface {
	// For returns the lookup for pod's images and the problems met reading its credentials.
	For(ctx context.Context, pod Pod) (pin.Lookup, []string)
}

// WithPodCredentials looks the images of objects that hold a pod spec up through pods, with the
// credentials of the pod spec's imagePullSecrets and ServiceAccount, instead of the Handler's
// lookup. Credentials are read only when an image needs a lookup; problems reading them become
// admission warnings, and are added to a denial.
func WithPodCredentials(pods PodLookups) Option { return func(h *Handler) { h.pods = pods } }

// Option configures a Handler.
type Option func(*Handler)

// WithMaxRequestBytes bounds a request body (default DefaultMaxRequestBytes); larger requests get 400.
func WithMaxRequestBytes(n int64) Option { return func(h *Handler) { h.maxBytes = n } }

// WithMaxReviewMemory bounds the memory the reviews in flight take together (default
// DefaultMaxReviewMemory), reckoned from their size and the number of JSON values in their objects.
// A review that would take more while others are in flight is answered 429 with Retry-After: 1 (the
// API server retries it); one that needs more than n alone, 413.
func WithMaxReviewMemory(n int64) Option { return func(h *Handler) { h.memory.capacity = n } }

// WithMetrics records admissions in m.
func WithMetrics(m *Metrics) Option { return func(h *Handler) { h.metrics = m } }

// WithLogger logs each admission that pins, warns or is denied, and each rejected request, to l
// (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(h *Handler) { h.log = l } }

// NewHandler returns a Handler that looks digests up through lookup, shared by all admissions,
// and pins with pinOpts: Deadline bounds each admission (DefaultDeadline if 0), OnError says
// whether failures deny or warn, ModeCheck denies every object with an image not pinned.
func NewHandler(lookup pin.Lookup, pinOpts pin.Options, opts ...Option) *Handler {
	if pinOpts.Deadline <= 0 {
		pinOpts.Deadline = DefaultDeadline
	}
	h := &Handler{opts: pinOpts, lookup: lookup, maxBytes: DefaultMaxRequestBytes, memory: budget{capacity: DefaultMaxReviewMemory}, log: slog.New(slog.DiscardHandler), scope: ScopeWorkloads}
	for _, o := range opts {
		o(h)
	}
	return h
}

// ServeHTTP answers one AdmissionReview. A request that is not one (wrong method, too large,
// malformed JSON, wrong apiVersion or kind, no request) gets 400 (405 for the method) and a message
// in plain words; one the memory for reviews cannot take gets 429 or 413 (see WithMaxReviewMemory);
// every other AdmissionReview gets 200 and a response, allowing or denying.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reject(w, http.StatusMethodNotAllowed, "POST an AdmissionReview")
		return
	}
	if r.ContentLength > h.maxBytes {
		h.reject(w, http.StatusBadRequest, fmt.Sprintf("request body is over %d bytes", h.maxBytes))
		return
	}
	mem := &claim{b: &h.memory}
	defer mem.release()
	size := r.ContentLength
	if size < 0 { // not said: reckon with the largest
		size = h.maxBytes
	}
	if err := mem.take(bodyCopies * size); err != nil {
		h.refuse(w, err)
		return
	}
	body, err := readBody(w, r, h.maxBytes)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.reject(w, http.StatusBadRequest, fmt.Sprintf("request body is over %d bytes", h.maxBytes))
		return
	case err != nil:
		h.reject(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	var rev review
	if err := json.Unmarshal(body, &rev); err != nil {
		h.reject(w, http.StatusBadRequest, "request body is not an AdmissionReview: "+err.Error())
		return
	}
	if rev.APIVersion != reviewAPIVersion || rev.Kind != reviewKind || rev.Request == nil {
		h.reject(w, http.StatusBadRequest, fmt.Sprintf("want an %s %s with a request, got apiVersion %.64q kind %.64q", reviewAPIVersion, reviewKind, rev.APIVersion, rev.Kind))
		return
	}
	ctx, answers := digestcache.Record(r.Context())
	a := &admission{req: rev.Request, start: time.Now(), answers: answers}
	resp, outcome, err := h.admit(ctx, a, mem)
	mem.release() // the objects are read and done with
	if err != nil {
		h.refuse(w, err)
		return
	}
	h.metrics.observe(rev.Request.Operation, outcome, time.Since(a.start))
	out, err := json.Marshal(review{APIVersion: reviewAPIVersion, Kind: reviewKind, Response: resp})
	if err != nil { // cannot happen: every field is a string, bool, number or byte slice
		h.reject(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// readBody reads a request body of at most max bytes, into a buffer of the size the request says
// when it says one.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength < 0 {
		return io.ReadAll(body)
	}
	b := make([]byte, r.ContentLength)
	_, err := io.ReadFull(body, b)
	return b, err
}

func (h *Handler) reject(w http.ResponseWriter, code int, msg string) {
	h.log.Warn("rejected request", "code", code, "error", msg)
	h.metrics.rejected()
	http.Error(w, msg, code)
}

// refuse answers a review the memory for reviews cannot take: 429, to be retried after a second,
// while other reviews hold it; 413 when the review alone needs more.
func (h *Handler) refuse(w http.ResponseWriter, err error) {
	var tooLarge *tooLargeError
	if errors.As(err, &tooLarge) {
		h.reject(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	h.metrics.throttled()
	w.Header().Set("Retry-After", "1")
	http.Error(w, err.Error()+"; retry", http.StatusTooManyRequests)
}

// Outcomes of an admission, as the metrics count them.
const (
	outcomeIgnored   = "ignored"   // not CREATE or UPDATE, no object, or out of scope
	outcomeUnchanged = "unchanged" // nothing to pin
	outcomePinned    = "pinned"    // a patch was returned
	outcomeWarned    = "warned"    // admitted with warnings (on-error: warn, or fields the walker could not read)
	outcomeDenied    = "denied"    // on-error: fail and an image could not be pinned
)

// admit pins the request's object and says what to answer. Its error, if any, is from mem: the
// memory for reviews could not take the objects.
func (h *Handler) admit(ctx context.Context, a *admission, mem *claim) (*response, string, error) {
	req := a.req
	resp := &response{UID: req.UID, Allowed: true}
	if req.Operation != "CREATE" && req.Operation != "UPDATE" || len(req.Object) == 0 || string(req.Object) == "null" || !h.inScope(req) {
		return resp, outcomeIgnored, nil
	}
	what := describeRequest(req)
	grow := func(nodes int) error { return mem.take(int64(nodes) * nodeBytes) }
	obj, err := parseObject(req.Object, grow)
	if outOfMemory(err) {
		return nil, "", err
	}
	if err != nil {
		return deny(resp, fmt.Sprintf("digester: %s: object %v", what, err)), outcomeDenied, nil
	}
	var lookup pin.Lookup = h.lookup
	var creds *podLookup
	if pod, ok := podOf(req.Kind.Kind, req.Namespace, obj.node); ok && h.pods != nil && req.Namespace != "" {
		creds = &podLookup{pods: h.pods, pod: pod}
		lookup = creds
	}
	var opts []pin.Option
	if req.Operation == "UPDATE" && len(req.OldObject) > 0 {
		// Fields an UPDATE leaves as they were cost no lookup, pinned or not.
		old, err := parseObject(req.OldObject, grow)
		if outOfMemory(err) {
			return nil, "", err
		}
		if err != nil {
			return deny(resp, fmt.Sprintf("digester: %s: oldObject %v", what, err)), outcomeDenied, nil
		}
		same := obj.unchanged(old) // smaller than old, whose memory stays claimed
		opts = append(opts, pin.WithLeave(func(_ *pin.Object, f walker.Field) bool {
			return same[f.Node] || f.Node.Kind == yaml.MappingNode && obj.sameMapping(old, f.Node) // a split image, a Flux ref
		}))
	}
	rep := pin.New(lookup, h.opts, opts...).Run(ctx, []*pin.Object{{Node: obj.node}})
	h.metrics.pinned(rep.Summary.Pinned)
	answers := a.answers()
	h.metrics.answered(answers)

	reported := map[*yaml.Node]bool{}
	for _, f := range rep.Findings {
		if f.Node != nil {
			reported[f.Node] = true
		}
	}
	places := obj.locate(reported)
	var patch []patchOp
	var failures, warnings []string
	for _, f := range rep.Findings {
		switch {
		case f.Pinned != "":
			if p, ok := places[f.Node]; ok {
				ops, err := obj.patch(f.Node, p, func() (*object, error) { return parseObject(req.Object, grow) })
				if outOfMemory(err) {
					return nil, "", err
				}
				patch = append(patch, ops...)
			}
		case f.Severity == pin.Error:
			failures = append(failures, describe(f, places))
		case f.Severity == pin.Warning:
			warnings = append(warnings, "digester: "+describe(f, places))
		}
	}
	var problems []string
	if creds != nil {
		problems = creds.problems
	}
	if !rep.OK() {
		errs, probs := listed(failures, maxFailureBytes, ""), listed(problems, maxFailureBytes, "")
		h.log.Warn("denied", "uid", req.UID, "object", what, "errors", errs, "failed", len(failures), "credentials", probs,
			"images", logged(answers), "durationMs", a.milliseconds())
		msg := fmt.Sprintf("digester could not pin the images of %s: %s", what, strings.Join(errs, "; "))
		switch {
		case len(probs) > 0:
			msg += " (credentials: " + strings.Join(probs, "; ") + ")"
		case creds != nil && creds.lookup != nil && unauthorized(rep):
			msg += " (credentials tried: the pod spec's imagePullSecrets, its ServiceAccount's, then the webhook's own)"
		}
		return deny(resp, msg), outcomeDenied, nil
	}
	for i, p := range problems { // first: they may be why the images after them were not pinned
		warnings = slices.Insert(warnings, i, "digester: "+p)
	}
	warnings = append(warnings, staleWarnings(answers, a.start)...)
	resp.Warnings = listed(warnings, maxWarningBytes, "digester: ")
	outcome := outcomeUnchanged
	if len(patch) > 0 {
		resp.Patch, _ = json.Marshal(patch) // strings only: cannot fail
		resp.PatchType = "JSONPatch"
		outcome = outcomePinned
	}
	// One line for an admission that pins or warns, with what it pinned and what it warned of.
	attrs := []any{"uid", req.UID, "object", what, "fields", len(patch), "images", logged(answers),
		"registryRequests", rep.Summary.Requests, "durationMs", a.milliseconds()}
	switch {
	case len(warnings) > 0:
		outcome = outcomeWarned
		msg := "admitted with warnings"
		if len(patch) > 0 {
			msg = "pinned, with warnings"
		}
		h.log.Warn(msg, append(attrs, "warnings", resp.Warnings, "warned", len(warnings))...)
	case len(patch) > 0:
		h.log.Info("pinned", attrs...)
	}
	return resp, outcome, nil
}

// admission is one review's request and what is recorded of it as it is answered.
type admission struct {
	req   *request
	start time.Time
	// answers returns where the digests looked up so far came from.
	answers func() []digestcache.Answer
}

// milliseconds is the time since the admission started, in milliseconds.
func (a *admission) milliseconds() float64 {
	return float64(time.Since(a.start).Microseconds()) / 1000
}

// inScope reports whether req's object is one the Handler's scope pins.
func (h *Handler) inScope(req *request) bool {
	return h.scope != ScopePods || req.Kind.Group == "" && req.Kind.Kind == "Pod"
}

// loggedImage is one digest of an admission as its log line shows it.
type loggedImage struct {
	Image  string `json:"image"`
	Digest string `json:"digest"`
	Source string `json:"source"`
	From   string `json:"from,omitempty"`
}

// logged lists, in the order asked, each image an admission looked up, its digest and where the
// digest came from, at most maxListed of them.
func logged(answers []digestcache.Answer) []loggedImage {
	var out []loggedImage
	for i, a := range answers {
		if i == maxListed {
			out = append(out, loggedImage{Image: fmt.Sprintf("and %d more", len(answers)-maxListed)})
			break
		}
		out = append(out, loggedImage{Image: truncate(a.Ref, maxFailureBytes), Digest: a.Digest, Source: string(a.Source), From: a.From})
	}
	return out
}

// staleWarnings are the warnings for the digests served stale: the image, why its lookup failed,
// and how old the digest is.
func staleWarnings(answers []digestcache.Answer, now time.Time) []string {
	var out []string
	for _, a := range answers {
		if a.Source == digestcache.SourceStale {
			out = append(out, fmt.Sprintf("digester: %s: pinned to %s, its digest %s ago, because the registry gave no answer now (stale-if-error): %v",
				a.Ref, a.Digest, now.Sub(a.Resolved).Round(time.Second), a.Err))
		}
	}
	return out
}

// podLookup is the lookup of one admission's pod spec, chosen when the first image needs a lookup:
// an admission whose images are all pinned or unchanged reads no credentials.
type podLookup struct {
	pods PodLookups
	pod  Pod

	once     sync.Once
	lookup   pin.Lookup
	problems []string
	requests atomic.Int64
}

func (l *podLookup) Resolve(ctx context.Context, refs []string) map[string]resolver.Result {
	l.once.Do(func() { l.lookup, l.problems = l.pods.For(ctx, l.pod) })
	before := l.lookup.Requests()
	defer func() { l.requests.Add(l.lookup.Requests() - before) }()
	return l.lookup.Resolve(ctx, refs)
}

// Platforms forwards to the pod's lookup when it is a pin.PlatformLister.
func (l *podLookup) Platforms(ctx context.Context, ref string) (map[string]string, error) {
	l.once.Do(func() { l.lookup, l.problems = l.pods.For(ctx, l.pod) })
	if pl, ok := l.lookup.(pin.PlatformLister); ok {
		return pl.Platforms(ctx, ref)
	}
	return nil, fmt.Errorf("listing the platforms of %s: the lookup cannot", ref)
}

// Requests counts the registry requests of this admission's lookups (other admissions sharing the
// lookup may add some).
func (l *podLookup) Requests() int64 { return l.requests.Load() }

// unauthorized reports whether a registry refused a lookup of the run for want of credentials.
func unauthorized(rep *pin.Report) bool {
	return slices.ContainsFunc(rep.Findings, func(f pin.Finding) bool { return f.Cause == pin.CauseUnauthorized })
}

func deny(resp *response, msg string) *response {
	resp.Allowed = false
	resp.Result = &status{Status: "Failure", Message: msg, Reason: "Forbidden", Code: http.StatusForbidden}
	return resp
}

// describe says where a finding is: its path, the container's name when the field is a
// container's image, and the core's message (which names the image and the registry's answer).
func describe(f pin.Finding, places map[*yaml.Node]place) string {
	where := f.Path
	if p, ok := places[f.Node]; ok && p.key == "image" {
		if name := walker.Lookup(p.parent, "name"); name != nil && name.Kind == yaml.ScalarNode && name.Tag == "!!str" {
			where += fmt.Sprintf(" (container %q)", name.Value)
		}
	}
	if where == "" {
		return f.Message
	}
	return where + ": " + f.Message
}

// describeRequest names the object as kubectl would: kind and namespace/name.
func describeRequest(req *request) string {
	name := req.Name
	if name == "" {
		name = "(name not yet generated)"
	}
	if req.Namespace != "" {
		name = req.Namespace + "/" + name
	}
	return truncate(req.Kind.Kind+" "+name, maxWarningBytes) // the API's limits make it shorter; others may not
}

// listed returns the first maxListed of items, each cut to n bytes, and, if there are more,
// prefix+"and N more" after them: a denial for a Pod of 1,000 images that cannot be pinned is a few
// KB, not hundreds.
func listed(items []string, n int, prefix string) []string {
	var out []string
	for i, s := range items {
		if i == maxListed {
			return append(out, fmt.Sprintf("%sand %d more", prefix, len(items)-maxListed))
		}
		out = append(out, truncate(s, n))
	}
	return out
}

// truncate shortens s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}
