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
	"context"
	"fmt"
	"net/http"
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
}

// Summary counts what a run did.
type Summary struct {
	// Pinned image fields were set to a digest; AlreadyPinned carried one; Skipped matched a skip prefix.
	Pinned, AlreadyPinned, Skipped int
	// Failed image fields could not be pinned.
	Failed int
	// Distinct references were looked up (nginx and docker.io/library/nginx:latest count once).
	Distinct int
	// Requests is how many HTTP requests went to registries, retries included.
	Requests int64
	// Warn is true when the run was told on-error: warn.
	Warn bool
}

// String is the summary in plain words.
func (s Summary) String() string {
	if s.Failed > 0 && !s.Warn {
		return fmt.Sprintf("pinned nothing: %d image fields could not be pinned, so the package is returned unchanged (%d distinct references, %d registry requests)",
			s.Failed, s.Distinct, s.Requests)
	}
	msg := fmt.Sprintf("pinned %d image fields (%d distinct references, %d registry requests); %d already pinned, %d skipped by prefix",
		s.Pinned, s.Distinct, s.Requests, s.AlreadyPinned, s.Skipped)
	if s.Failed > 0 {
		msg += fmt.Sprintf("; %d left unpinned (on-error: warn)", s.Failed)
	}
	return msg
}

// Report is the outcome of a run.
type Report struct {
	// Findings in the order they were met: per object, fields in walk order; lookup failures and
	// pinned fields after all objects were walked.
	Findings []Finding
	Summary  Summary
}

// OK reports whether the run succeeded: every image pinned, or failures tolerated by on-error: warn.
func (r *Report) OK() bool { return r.Summary.Failed == 0 || r.Summary.Warn }

// Pinner runs the core with one configuration.
type Pinner struct {
	cfg       config.Config
	transport http.RoundTripper
	keychain  authn.Keychain
}

// Option configures a Pinner.
type Option func(*Pinner)

// WithTransport sets the HTTP transport to registries (default: the resolver's own).
func WithTransport(t http.RoundTripper) Option { return func(p *Pinner) { p.transport = t } }

// WithKeychain sets where registry credentials come from (default: the resolver's, docker's config).
func WithKeychain(k authn.Keychain) Option { return func(p *Pinner) { p.keychain = k } }

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

// Run pins the image fields of objs. Local-config objects (config.kubernetes.io/local-config:
// "true") are left alone. Nodes change only if the report is OK.
func (p *Pinner) Run(ctx context.Context, objs []*Object) *Report {
	cfg := p.cfg
	warn := cfg.OnError == "warn"
	failSeverity := Error
	if warn {
		failSeverity = Warning
	}
	rep := &Report{Summary: Summary{Warn: warn}}
	s := &rep.Summary
	add := func(sev Severity, u use, msg, pinned string) {
		rep.Findings = append(rep.Findings, Finding{
			Severity: sev, Message: msg, Object: u.obj, ID: u.id, Path: u.field.Path,
			Line: line(u.field.Node), Column: column(u.field.Node), Image: u.field.Image, Pinned: pinned,
		})
	}

	// 1. Find every image field and classify it.
	w := walker.New()
	var todo []use
	distinct := map[string]bool{} // normalised: nginx and docker.io/library/nginx:latest are one
	for _, obj := range objs {
		root := mapping(obj.Node)
		if root == nil || localConfig(root) {
			continue
		}
		id := identify(root)
		if dup := duplicateKey(root); dup != "" {
			s.Failed++
			add(failSeverity, use{obj: obj, id: id, field: walker.Field{Path: dup}},
				"duplicate key: Kubernetes rejects it and digester does not guess which value counts, so nothing in this resource is pinned", "")
			continue
		}
		fields, problems := w.Walk(root)
		for _, pr := range problems {
			add(Warning, use{obj: obj, id: id, field: walker.Field{Path: pr.Path}}, pr.Message, "")
		}
		for _, f := range fields {
			u := use{obj, id, f}
			if hasPrefix(f.Image, cfg.SkipPrefixes) {
				s.Skipped++
				continue
			}
			ref, err := resolver.Parse(f.Image)
			switch {
			case err != nil:
				s.Failed++
				add(failSeverity, u, err.Error(), "")
			case resolver.HasDigest(f.Image):
				s.AlreadyPinned++
			default:
				distinct[ref.Name()] = true
				todo = append(todo, u)
			}
		}
	}
	s.Distinct = len(distinct)

	// 2. Look each distinct reference up once.
	refs := make([]string, len(todo))
	for i, u := range todo {
		refs[i] = u.field.Image
	}
	r := resolver.New(p.resolverOptions()...)
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	resolved := r.Resolve(ctx, refs)

	// 3. All or nothing: pin only when every lookup succeeded, or when told to warn.
	for _, u := range todo {
		if res := resolved[u.field.Image]; res.Err != nil {
			s.Failed++
			add(failSeverity, u, fmt.Sprintf("cannot pin %s: %v", u.field.Image, res.Err), "")
		}
	}
	if rep.OK() {
		for _, u := range todo {
			res := resolved[u.field.Image]
			if res.Err != nil {
				continue
			}
			to := resolver.Pin(u.field.Image, res.Digest)
			u.field.Node.Value = to
			s.Pinned++
			add(Info, u, fmt.Sprintf("pinned %s to %s", u.field.Image, res.Digest), to)
		}
	}
	s.Requests = r.Requests()
	return rep
}

func (p *Pinner) resolverOptions() []resolver.Option {
	cfg := p.cfg
	opts := []resolver.Option{
		resolver.WithConcurrency(cfg.Concurrency),
		resolver.WithRegistryConcurrency(cfg.RegistryConcurrency),
		resolver.WithTimeout(cfg.Timeout),
		resolver.WithInsecureRegistries(cfg.InsecureRegistries...),
	}
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

// identify reads apiVersion, kind, metadata.namespace and metadata.name.
func identify(m *yaml.Node) ID {
	meta := value(m, "metadata")
	return ID{
		APIVersion: scalar(value(m, "apiVersion")),
		Kind:       scalar(value(m, "kind")),
		Namespace:  scalar(value(meta, "namespace")),
		Name:       scalar(value(meta, "name")),
	}
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

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
