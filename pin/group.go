package pin

import (
	"fmt"
	"slices"
	"strings"
)

// Handful is how many fields, references or files a group's message names before "and N more".
const Handful = 5

// Group is findings of one severity that say the same thing: every field that uses one reference,
// or every reference that a registry failed in the same way (one that cannot be reached at all).
// Front ends report a group as one result or one line, so output grows with the references of a
// package, not with its fields.
type Group struct {
	Severity Severity
	// Message says what happened and, when the group has more than one field, to how many and
	// where, naming up to a Handful of them.
	Message string
	// Findings are the group's first fields (at most a Handful), in the report's order; the first
	// locates the group. Fields counts them all.
	Findings []Finding
	Fields   int
	// Registry is set when the group is one registry failing for several references.
	Registry string
}

// Groups returns the report's findings grouped: one group per distinct message (for a pinned or
// failed reference, one per reference as written), and one per registry that failed for several
// references with the same cause. Groups keep the order of their first finding. A group keeps a
// Handful of its findings, the distinct references and files it names, and counts the rest.
func (r *Report) Groups() []Group {
	var order []*acc
	byKey := map[string]*acc{}
	for i := range r.Findings {
		f := &r.Findings[i]
		key, cause, registry := f.Severity.String()+"\x00"+f.Message, "", ""
		if f.Registry != "" && f.Message == "cannot pin "+f.Image+": "+f.Reason {
			cause, registry = f.Reason, f.Registry
			key = f.Severity.String() + "\x00" + registry + "\x00" + cause
		}
		a := byKey[key]
		if a == nil {
			a = &acc{Group: Group{Severity: f.Severity, Message: f.Message}, cause: cause, files: map[string]bool{}}
			byKey[key] = a
			order = append(order, a)
		}
		a.add(f, registry)
	}
	groups := make([]Group, len(order))
	for i, a := range order {
		groups[i] = a.group()
	}
	return groups
}

// acc is a group as Groups collects it.
type acc struct {
	Group
	cause     string
	images    []string
	fileNames []string // the first Handful of distinct files
	files     map[string]bool
}

// add counts f in the group, keeping what the group's message names.
func (a *acc) add(f *Finding, registry string) {
	a.Fields++
	if len(a.Findings) < Handful {
		a.Findings = append(a.Findings, *f)
	}
	if name := fileOf(f); !a.files[name] {
		a.files[name] = true
		if len(a.fileNames) < Handful {
			a.fileNames = append(a.fileNames, name)
		}
	}
	if !slices.Contains(a.images, f.Image) {
		a.images = append(a.images, f.Image)
		if len(a.images) > 1 {
			a.Registry = registry
		}
	}
}

// group is the collected group, its message saying how many fields and where.
func (a *acc) group() Group {
	g, n := a.Group, a.Fields
	switch {
	case len(a.images) > 1 && a.Registry != "":
		g.Message = fmt.Sprintf("%s: %s cannot be pinned (%s): %s", a.cause,
			plural(len(a.images), "reference"), plural(n, "image field"), list(a.images[:min(len(a.images), Handful)], len(a.images)))
	case n > 1 && g.Severity == Info:
		g.Message += fmt.Sprintf(" (%s, in %s)", plural(n, "image field"), list(a.fileNames, len(a.files)))
	case n > 1:
		where := make([]string, len(a.Findings))
		for i, f := range a.Findings {
			where[i] = f.Where()
		}
		g.Message += fmt.Sprintf(" (%s: %s)", plural(n, "field"), list(where, n))
	}
	return g
}

// Where names the finding's field in words: resource, field path and file:line.
func (f Finding) Where() string {
	var parts []string
	if f.Object != nil {
		parts = append(parts, f.ID.String())
	}
	if f.Path != "" {
		parts = append(parts, f.Path)
	}
	if f.Object != nil && f.Object.File != "" {
		loc := f.Object.File
		if f.Line > 0 {
			loc += fmt.Sprintf(":%d", f.Line)
		}
		parts = append(parts, "in "+loc)
	}
	return strings.Join(parts, " ")
}

// fileOf names the file of a finding; "no file" for an object without one.
func fileOf(f *Finding) string {
	if f.Object != nil && f.Object.File != "" {
		return f.Object.File
	}
	return "no file"
}

// list joins items, the first of n, and says how many more there are.
func list(items []string, n int) string {
	s := strings.Join(items, ", ")
	if n > len(items) {
		s += fmt.Sprintf(", and %d more", n-len(items))
	}
	return s
}
