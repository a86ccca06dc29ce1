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
	// Findings are the group's fields in the report's order; the first locates the group.
	Findings []Finding
	// Registry is set when the group is one registry failing for several references.
	Registry string
}

// Groups returns the report's findings grouped: one group per distinct message (for a pinned or
// failed reference, one per reference as written), and one per registry that failed for several
// references with the same cause. Groups keep the order of their first finding.
func (r *Report) Groups() []Group {
	type acc struct {
		Group
		cause  string
		images []string
	}
	var order []*acc
	byKey := map[string]*acc{}
	for _, f := range r.Findings {
		key, cause, registry := f.Severity.String()+"\x00"+f.Message, "", ""
		if f.Registry != "" && f.Message == "cannot pin "+f.Image+": "+f.Reason {
			cause, registry = f.Reason, f.Registry
			key = f.Severity.String() + "\x00" + registry + "\x00" + cause
		}
		a := byKey[key]
		if a == nil {
			a = &acc{Group: Group{Severity: f.Severity, Message: f.Message}, cause: cause}
			byKey[key] = a
			order = append(order, a)
		}
		a.Findings = append(a.Findings, f)
		if !slices.Contains(a.images, f.Image) {
			a.images = append(a.images, f.Image)
			if len(a.images) > 1 {
				a.Registry = registry
			}
		}
	}
	groups := make([]Group, len(order))
	for i, a := range order {
		g := a.Group
		n := len(g.Findings)
		switch {
		case len(a.images) > 1 && a.Registry != "":
			g.Message = fmt.Sprintf("%s: %s cannot be pinned (%s): %s", a.cause,
				plural(len(a.images), "reference"), plural(n, "image field"), list(a.images))
		case n > 1 && g.Severity == Info:
			g.Message += fmt.Sprintf(" (%s, in %s)", plural(n, "image field"), list(files(g.Findings)))
		case n > 1:
			var fields []string
			for _, f := range g.Findings {
				fields = append(fields, f.Where())
			}
			g.Message += fmt.Sprintf(" (%s: %s)", plural(n, "field"), list(fields))
		}
		groups[i] = g
	}
	return groups
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

// files lists the distinct files of findings, in order; "no file" for objects without one.
func files(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		name := "no file"
		if f.Object != nil && f.Object.File != "" {
			name = f.Object.File
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// list joins up to a Handful of items, then says how many more there are.
func list(items []string) string {
	if len(items) <= Handful {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:Handful], ", ") + fmt.Sprintf(", and %d more", len(items)-Handful)
}
