package main

import (
	"context"
	"fmt"
	"io"

	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/config"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
)

// processor is the KRM front end of the pinning core: it reads the functionConfig, hands the items
// to pin as YAML nodes and turns the report into results. The core changes items only once every
// lookup has succeeded (unless on-error: warn), so a failed run returns the package as it came in.
type processor struct {
	ctx    context.Context
	getenv func(string) string
	stderr io.Writer

	// resolver options are added to the configuration's; tests set a transport and keychain.
	resolver []resolver.Option
}

func (p *processor) Process(rl *fn.ResourceList) (bool, error) {
	cfg, err := config.Parse(functionConfigYAML(rl), p.getenv("SKIP_PREFIXES"))
	if err != nil {
		rl.Results = append(rl.Results, &fn.Result{Message: err.Error(), Severity: fn.Error})
		p.report(rl.Results)
		return false, nil
	}
	lookup := resolver.New(append(cfg.ResolverOptions(), p.resolver...)...)

	objs := make([]*pin.Object, len(rl.Items))
	for i, it := range rl.Items {
		objs[i] = &pin.Object{File: it.PathAnnotation(), Index: max(it.IndexAnnotation(), 0)}
		rn := it.MoveToResourceNode() // the SDK's node itself, not a copy: the core edits it in place
		objs[i].Node = rn.YNode()
		rl.Items[i] = fn.MoveToKubeObject(rn)
	}
	rep := pin.New(lookup, cfg.Options).Run(p.ctx, objs)
	for _, o := range rep.Created { // a new DigestLock: kpt writes it to the file its path names
		obj := fn.MoveToKubeObject(yaml.NewRNode(o.Node))
		if err := obj.SetPathAnnotation(o.File); err != nil {
			return false, fmt.Errorf("add %s: %w", o.File, err)
		}
		rl.Items = append(rl.Items, obj)
	}

	// kpt prints only the first few results: errors first, then the summary, then the rest.
	groups := rep.Groups()
	if cfg.Report == config.ReportFields {
		groups = perField(rep.Findings)
	}
	rl.Results = appendResults(rl.Results, groups, pin.Error)
	rl.Results = append(rl.Results, &fn.Result{Message: rep.Summary.String(), Severity: fn.Info})
	rl.Results = appendResults(rl.Results, groups, pin.Warning)
	rl.Results = appendResults(rl.Results, groups, pin.Info)
	p.report(rl.Results)
	return rep.OK(), nil
}

// perField makes each finding a group of its own, for report: fields.
func perField(findings []pin.Finding) []pin.Group {
	groups := make([]pin.Group, len(findings))
	for i, f := range findings {
		groups[i] = pin.Group{Severity: f.Severity, Message: f.Message, Findings: []pin.Finding{f}}
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

func functionConfigYAML(rl *fn.ResourceList) []byte {
	if rl.FunctionConfig == nil || rl.FunctionConfig.IsEmpty() {
		return nil
	}
	return []byte(rl.FunctionConfig.String())
}
