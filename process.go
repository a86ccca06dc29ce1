package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/kptdev/krm-functions-sdk/go/fn"

	"github.com/digester/digester/config"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/walker"
)

// processor is the ResourceList processor: config in, items through the walker, lookups through
// the resolver, results out. It changes items only once every lookup has succeeded (unless the
// config says on-error: warn), so a failed run returns the package exactly as it came in.
type processor struct {
	ctx    context.Context
	getenv func(string) string
	stderr io.Writer

	// Tests set these; nil means the real thing.
	transport http.RoundTripper
	keychain  authn.Keychain
}

// use is one image field of one item.
type use struct {
	obj   *fn.KubeObject
	field walker.Field
}

func (p *processor) Process(rl *fn.ResourceList) (bool, error) {
	cfg, err := config.Parse(functionConfigYAML(rl), p.getenv("SKIP_PREFIXES"))
	if err != nil {
		rl.Results = append(rl.Results, &fn.Result{Message: err.Error(), Severity: fn.Error})
		p.report(rl.Results)
		return false, nil
	}
	warn := cfg.OnError == "warn"
	failSeverity := fn.Error
	if warn {
		failSeverity = fn.Warning
	}

	// 1. Find every image field.
	w := walker.New()
	var todo []use
	var results fn.Results
	var alreadyPinned, skipped, invalid int
	distinct := map[string]bool{} // normalised: nginx and docker.io/library/nginx:latest are one
	for i, obj := range rl.Items {
		if obj.IsLocalConfig() {
			continue
		}
		rn := obj.MoveToResourceNode()
		dup := duplicateKey(rn.YNode())
		fields, problems := w.Walk(rn.YNode())
		obj = fn.MoveToKubeObject(rn)
		rl.Items[i] = obj
		if dup != "" {
			invalid++
			results = append(results, fieldResult(obj, failSeverity,
				"duplicate key: Kubernetes rejects it and digester does not guess which value counts, so nothing in this resource is pinned", dup, nil, nil))
			continue
		}
		for _, pr := range problems {
			results = append(results, fieldResult(obj, fn.Warning, pr.Message, pr.Path, nil, nil))
		}
		for _, f := range fields {
			if hasPrefix(f.Image, cfg.SkipPrefixes) {
				skipped++
				continue
			}
			ref, err := resolver.Parse(f.Image)
			switch {
			case err != nil:
				invalid++
				results = append(results, fieldResult(obj, failSeverity, err.Error(), f.Path, f.Image, nil))
			case resolver.HasDigest(f.Image):
				alreadyPinned++
			default:
				distinct[ref.Name()] = true
				todo = append(todo, use{obj, f})
			}
		}
	}

	// 2. Look each distinct reference up once.
	refs := make([]string, len(todo))
	for i, u := range todo {
		refs[i] = u.field.Image
	}
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
	r := resolver.New(opts...)
	ctx, cancel := context.WithTimeout(p.ctx, cfg.Deadline)
	defer cancel()
	resolved := r.Resolve(ctx, refs)

	// 3. All or nothing: pin only when every lookup succeeded, or when told to warn.
	failed := invalid
	for _, u := range todo {
		if res := resolved[u.field.Image]; res.Err != nil {
			failed++
			results = append(results, fieldResult(u.obj, failSeverity,
				fmt.Sprintf("cannot pin %s: %v", u.field.Image, res.Err), u.field.Path, u.field.Image, nil))
		}
	}
	pinned := 0
	if failed == 0 || warn {
		for _, u := range todo {
			res := resolved[u.field.Image]
			if res.Err != nil {
				continue
			}
			to := resolver.Pin(u.field.Image, res.Digest)
			u.field.Node.Value = to
			pinned++
			results = append(results, fieldResult(u.obj, fn.Info,
				fmt.Sprintf("pinned %s to %s", u.field.Image, res.Digest), u.field.Path, u.field.Image, to))
		}
	}
	requests := r.Requests()
	summary := fmt.Sprintf("pinned %d image fields (%d distinct references, %d registry requests); %d already pinned, %d skipped by prefix",
		pinned, len(distinct), requests, alreadyPinned, skipped)
	if failed > 0 && !warn {
		summary = fmt.Sprintf("pinned nothing: %d image fields could not be pinned, so the package is returned unchanged (%d distinct references, %d registry requests)",
			failed, len(distinct), requests)
	} else if failed > 0 {
		summary += fmt.Sprintf("; %d left unpinned (on-error: warn)", failed)
	}
	// kpt prints only the first few results: errors first, then the summary, then the rest.
	rl.Results = append(rl.Results, bySeverity(results, fn.Error)...)
	rl.Results = append(rl.Results, &fn.Result{Message: summary, Severity: fn.Info})
	rl.Results = append(rl.Results, bySeverity(results, fn.Warning)...)
	rl.Results = append(rl.Results, bySeverity(results, fn.Info)...)
	p.report(rl.Results)
	return failed == 0 || warn, nil
}

// bySeverity returns the results of one severity, in their order.
func bySeverity(results fn.Results, sev fn.Severity) fn.Results {
	var out fn.Results
	for _, r := range results {
		if r.Severity == sev {
			out = append(out, r)
		}
	}
	return out
}

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

// fieldResult makes a result about one field of one object, naming its resource and file.
func fieldResult(obj *fn.KubeObject, sev fn.Severity, msg, path string, current, proposed any) *fn.Result {
	r := &fn.Result{
		Message:  msg,
		Severity: sev,
		ResourceRef: &fn.ResourceRef{
			APIVersion: obj.GetAPIVersion(),
			Kind:       obj.GetKind(),
			Name:       obj.GetName(),
			Namespace:  obj.GetNamespace(),
		},
		Field: &fn.Field{Path: path, CurrentValue: current, ProposedValue: proposed},
	}
	if p := obj.PathAnnotation(); p != "" {
		r.File = &fn.File{Path: p, Index: max(obj.IndexAnnotation(), 0)}
	}
	return r
}

func functionConfigYAML(rl *fn.ResourceList) []byte {
	if rl.FunctionConfig == nil || rl.FunctionConfig.IsEmpty() {
		return nil
	}
	return []byte(rl.FunctionConfig.String())
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
