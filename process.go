package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/config"
	"github.com/digester/digester/internal/krmio"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/splice"
)

// processor is the KRM front end of the pinning core: it reads the functionConfig, hands the items
// to pin one at a time as YAML nodes, which it then drops, and edits the pinned values in the
// items' own text (package krmio), so that nothing else of an item changes; it turns the report
// into results. The core decides on every change only once every lookup has succeeded (unless
// on-error: warn), so a failed run returns the package as it came in.
type processor struct {
	ctx    context.Context
	getenv func(string) string
	stderr io.Writer

	// resolver options are added to the configuration's; tests set a transport and keychain.
	resolver []resolver.Option
}

func (p *processor) Process(l *krmio.List) (bool, error) {
	cfg, err := config.Parse(functionConfigYAML(l.FunctionConfig), p.getenv("SKIP_PREFIXES"))
	if err != nil {
		l.Results = append(l.Results, &fn.Result{Message: err.Error(), Severity: fn.Error})
		p.report(l.Results)
		return false, nil
	}
	lookup := resolver.New(append(cfg.ResolverOptions(), p.resolver...)...)

	run := pin.New(lookup, cfg.Options).Start()
	items := make(map[*pin.Object]*krmio.Item, len(l.Items))
	for _, it := range l.Items {
		n, err := it.Parse()
		if err != nil {
			return false, err
		}
		ko := fn.MoveToKubeObject(yaml.NewRNode(n))
		obj := &pin.Object{Node: n, File: ko.PathAnnotation(), Index: max(ko.IndexAnnotation(), 0)}
		run.Add(obj)
		if !run.Keeps(obj) {
			run.Drop(obj) // the item's text is what gets written, each pin at its line and column
		}
		items[obj] = it
	}
	rep := run.Finish(p.ctx)
	if unwritten := edit(items, rep); len(unwritten) > 0 {
		notWritten(rep, unwritten)
	}
	for i := range rep.Findings {
		rep.Findings[i].Node = nil // results need none, and each holds a node of a tree long gone
	}
	if rep.OK() {
		for _, o := range rep.Updated { // the lock: digester's own resource, written anew
			items[o].Replace(o.Node)
		}
		for _, o := range rep.Created { // a new DigestLock: kpt writes it to the file its path names
			obj := fn.MoveToKubeObject(yaml.NewRNode(o.Node))
			if err := obj.SetPathAnnotation(o.File); err != nil {
				return false, fmt.Errorf("add %s: %w", o.File, err)
			}
			l.Add(o.Node)
		}
	} else {
		l.Reset()
	}

	// kpt prints only the first few results: errors first, then the summary, then the rest.
	groups := rep.Groups()
	if cfg.Report == config.ReportFields {
		groups = perField(rep.Findings)
	}
	rep.Findings = nil // a result names a group's first finding: the others, a copy of each, can go
	for i := range groups {
		groups[i].Findings = slices.Clone(groups[i].Findings[:1])
	}
	l.Results = appendResults(l.Results, groups, pin.Error)
	l.Results = append(l.Results, &fn.Result{Message: rep.Summary.String(), Severity: fn.Info})
	l.Results = appendResults(l.Results, groups, pin.Warning)
	l.Results = appendResults(l.Results, groups, pin.Info)
	p.report(l.Results)
	return rep.OK(), nil
}

// edit records, in each item's text, the values the run pinned: a value replaced or, for a field
// pinned in its kind's syntax (a kustomize images: entry's digest: key, a Kptfile function's tag
// in a comment), what the core changed in the item's tree, compared with the item's text. It
// returns the findings of the fields that cannot be written so, with why.
func edit(items map[*pin.Object]*krmio.Item, rep *pin.Report) map[*pin.Finding]error {
	byItem := map[*pin.Object][]int{}
	var order []*pin.Object
	for i, f := range rep.Findings {
		if f.Object == nil || f.Pinned == "" || items[f.Object] == nil {
			continue
		}
		if byItem[f.Object] == nil {
			order = append(order, f.Object)
		}
		byItem[f.Object] = append(byItem[f.Object], i)
	}
	unwritten := map[*pin.Finding]error{}
	for _, obj := range order {
		it, edits, err := items[obj], []splice.Edit(nil), error(nil)
		var text *yaml.Node // the item as its text says, for the fields pinned in their kind's syntax
		for _, i := range byItem[obj] {
			f := &rep.Findings[i]
			if f.Kind.Verbatim() {
				edits = append(edits, splice.Replace(f.Line, f.Column, f.Image, f.Pinned))
				continue
			}
			if text == nil {
				if text, err = it.Parse(); err != nil {
					break
				}
			}
			es, derr := splice.Diff([]*yaml.Node{text}, []*yaml.Node{obj.Node}, f.Node)
			if derr != nil {
				err = derr
				break
			}
			edits = append(edits, es...)
		}
		if err == nil {
			err = it.Edit(edits...)
		}
		if err != nil {
			for _, i := range byItem[obj] {
				unwritten[&rep.Findings[i]] = err
			}
		}
	}
	return unwritten
}

// notWritten turns the report's pinned findings that cannot be written into failures, and the run
// into a failed one (unless on-error: warn): then nothing is written, and no finding says otherwise.
func notWritten(rep *pin.Report, unwritten map[*pin.Finding]error) {
	sev := pin.Error
	if rep.Summary.Warn {
		sev = pin.Warning
	}
	for i := range rep.Findings {
		f := &rep.Findings[i]
		if err, ok := unwritten[f]; ok {
			f.Severity, f.Cause, f.Pinned = sev, pin.CauseUnwritable, ""
			f.Message = fmt.Sprintf("cannot write the pin of %s: %v", f.Image, err)
			rep.Summary.Failed++
			rep.Summary.Pinned = max(rep.Summary.Pinned-1, 0)
		}
	}
	if rep.OK() {
		return
	}
	// Nothing is written: the findings that say something was go.
	rep.Findings = slices.DeleteFunc(rep.Findings, func(f pin.Finding) bool {
		return f.Severity == pin.Info && (f.Pinned != "" || slices.Contains(rep.Created, f.Object) || slices.Contains(rep.Updated, f.Object))
	})
}

// perField makes each finding a group of its own, for report: fields.
func perField(findings []pin.Finding) []pin.Group {
	groups := make([]pin.Group, len(findings))
	for i, f := range findings {
		groups[i] = pin.Group{Severity: f.Severity, Message: f.Message, Findings: []pin.Finding{f}, Fields: 1}
	}
	return groups
}

// appendResults appends a result for each group of one severity, in their order.
func appendResults(results fn.Results, groups []pin.Group, sev pin.Severity) fn.Results {
	for _, g := range groups {
		if g.Severity == sev {
			results = append(results, result(g))
		}
	}
	return results
}

// result is a group as a KRM result. A group about fields names its first field's resource, file
// and path; a registry that failed for several references names none.
func result(g pin.Group) *fn.Result {
	r := &fn.Result{Message: g.Message, Severity: severity[g.Severity]}
	f := g.Findings[0]
	if f.Object == nil || g.Registry != "" {
		return r
	}
	r.ResourceRef = &fn.ResourceRef{APIVersion: f.ID.APIVersion, Kind: f.ID.Kind, Name: f.ID.Name, Namespace: f.ID.Namespace}
	if f.Path != "" {
		r.Field = &fn.Field{Path: f.Path}
		if f.Image != "" {
			r.Field.CurrentValue = f.Image
		}
		if f.Pinned != "" {
			r.Field.ProposedValue = f.Pinned
		}
	}
	if f.Object.File != "" {
		r.File = &fn.File{Path: f.Object.File, Index: f.Object.Index}
	}
	return r
}

var severity = map[pin.Severity]fn.Severity{pin.Info: fn.Info, pin.Warning: fn.Warning, pin.Error: fn.Error}

// report writes error results to stderr, so that a failed run says why wherever it runs.
func (p *processor) report(results fn.Results) {
	if p.stderr == nil {
		return
	}
	for _, r := range results {
		if r.Severity != fn.Error {
			continue
		}
		where := ""
		if r.File != nil && r.File.Path != "" {
			where = " (" + r.File.Path + ")"
		}
		fmt.Fprintf(p.stderr, "%s%s\n", r.String(), where)
	}
}

func functionConfigYAML(fc *fn.KubeObject) []byte {
	if fc == nil || fc.IsEmpty() {
		return nil
	}
	return []byte(fc.String())
}
