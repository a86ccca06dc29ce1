package model_test

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A package is written as templates: YAML text in which every image field's value is a marker,
// «nginx:1.27» or «nginx:1.27@{old}» (a symbolic digest, resolved against the world when the case
// starts), and a DigestLock document is the marker «LOCK», the file's last document. From a
// template the harness knows, without trusting any YAML library's positions, the input bytes, the
// regular expression that the command line's output must match (every byte the same but image
// values), and the path of every image field in its document.

// pkgFile is one file of a package.
type pkgFile struct {
	name     string // relative to the package
	template string
	lock     string // the DigestLock document «LOCK» stands for
}

var markerRE = regexp.MustCompile(`«([^»]*)»`)

// field is one image field of a package.
type field struct {
	file  string
	doc   int   // the document's index in the file
	path  []any // keys (string) and indexes (int) from the document's root
	kind  string
	image string // the value as written in the input; for an entry, name:tag[@digest]
	// entry: a kustomize images: entry, pinned by adding a digest: key (or setting the one it has:
	// then image carries it, and pinned is the line of its digest: key).
	entry  bool
	pinned int
	// alias: a YAML alias of another field's anchored value (same group).
	alias bool
	group int // the regular expression's group holding the value (an entry: the digest)
}

// id names a field in messages: file#doc path.
func (f *field) id() string { return fmt.Sprintf("%s#%d %s", f.file, f.doc, pathString(f.path)) }

// pathString writes a path as digester's findings do: spec.containers[0].image.
func pathString(p []any) string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(fmt.Sprint(e))
		}
	}
	return b.String()
}

// pointer is the field's JSON pointer (RFC 6901), as a JSONPatch names it.
func (f *field) pointer() string {
	var b strings.Builder
	for _, e := range f.path {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(fmt.Sprint(e)))
	}
	return b.String()
}

// docInfo is what the harness knows of one document of a file.
type docInfo struct {
	apiVersion, kind string
	lock             bool
}

// layout is a file analysed: its input bytes, the expression its output must match, its fields.
type layout struct {
	file      pkgFile
	input     string
	re        *regexp.Regexp
	fields    []*field
	docs      []docInfo
	lockGroup int // the group holding the lock document, 0 if the file has none
}

// placeholder stands for marker i while the template is parsed.
func placeholder(i int) string { return fmt.Sprintf("x0mk%dq", i) }

// analyze reads a template.
func analyze(f pkgFile) (*layout, error) {
	l := &layout{file: f}
	var images []string
	ph := markerRE.ReplaceAllStringFunc(f.template, func(m string) string {
		if m == "«LOCK»" {
			return f.lock
		}
		images = append(images, m[len("«"):len(m)-len("»")])
		return placeholder(len(images) - 1)
	})
	l.input = markerRE.ReplaceAllStringFunc(f.template, func(m string) string {
		if m == "«LOCK»" {
			return f.lock
		}
		return m[len("«") : len(m)-len("»")]
	})
	for dec := yaml.NewDecoder(strings.NewReader(l.input)); ; {
		var n yaml.Node
		if err := dec.Decode(&n); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: not valid YAML: %w\n%s", f.name, err, l.input)
		}
	}
	byPlaceholder := map[string]int{}
	for i := range images {
		byPlaceholder[placeholder(i)] = i
	}

	// Fields: placeholders, their aliases, and kustomize entries; entries get a digest: line
	// inserted at the end of a line of the file (insert: line -> indent).
	markerFields := map[int][]*field{}
	insert := map[int]int{}
	digestAt := map[int]int{} // line of an entry's digest: key -> its indent
	var entries []*field
	dec := yaml.NewDecoder(strings.NewReader(ph))
	for doc := 0; ; doc++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: template does not parse: %w\n%s", f.name, err, ph)
		}
		root := n.Content[0]
		info := docInfo{apiVersion: scalarAt(root, "apiVersion"), kind: scalarAt(root, "kind")}
		info.lock = info.kind == "DigestLock"
		l.docs = append(l.docs, info)
		var walk func(n *yaml.Node, p []any)
		walk = func(n *yaml.Node, p []any) {
			switch n.Kind {
			case yaml.MappingNode:
				for i := 0; i+1 < len(n.Content); i += 2 {
					walk(n.Content[i+1], append(slices.Clip(p), n.Content[i].Value))
				}
			case yaml.SequenceNode:
				for i, c := range n.Content {
					walk(c, append(slices.Clip(p), i))
				}
			case yaml.ScalarNode, yaml.AliasNode:
				alias := n.Kind == yaml.AliasNode
				if alias {
					n = n.Alias
				}
				if i, ok := byPlaceholder[n.Value]; ok {
					fd := &field{file: f.name, doc: doc, path: p, kind: info.kind, image: images[i], alias: alias}
					markerFields[i] = append(markerFields[i], fd)
				}
			}
		}
		walk(root, nil)
		if isKustomization(f.name, info) {
			for i, e := range seqAt(root, "images") {
				fd, line, indent := kustomizeEntry(e)
				if fd == nil {
					continue
				}
				fd.file, fd.doc, fd.path, fd.kind = f.name, doc, []any{"images", i}, info.kind
				entries = append(entries, fd)
				if fd.pinned > 0 {
					digestAt[line] = indent
				} else {
					insert[line] = indent
				}
				fd.group = -line // resolved below
			}
		}
	}

	// The expression: literal bytes, a group per marker, an optional digest: line per entry,
	// the lock document as a whole.
	var re strings.Builder
	re.WriteString(`^`)
	group := 0
	lines := strings.SplitAfter(f.template, "\n")
	markerAt := 0
	for ln, line := range lines {
		body, nl := strings.CutSuffix(line, "\n")
		if indent, ok := digestAt[ln+1]; ok { // an entry's digest: the value is the entry's to change
			group++
			re.WriteString(strings.Repeat(" ", indent) + `digest: (sha256:[0-9a-f]{64})`)
			for _, fd := range entries {
				if fd.group == -(ln + 1) {
					fd.group = group
				}
			}
			if nl {
				re.WriteString(`\n`)
			}
			continue
		}
		last := 0
		for _, m := range markerRE.FindAllStringIndex(body, -1) {
			re.WriteString(regexp.QuoteMeta(body[last:m[0]]))
			last = m[1]
			group++
			if body[m[0]:m[1]] == "«LOCK»" {
				re.WriteString(`(?s:(.*))`)
				l.lockGroup = group
				continue
			}
			re.WriteString(`([^\s"']+?)`)
			for _, fd := range markerFields[markerAt] {
				fd.group = group
			}
			markerAt++
		}
		re.WriteString(regexp.QuoteMeta(body[last:]))
		if indent, ok := insert[ln+1]; ok {
			group++
			re.WriteString(`(?:\n` + strings.Repeat(" ", indent) + `digest: (sha256:[0-9a-f]{64}))?`)
			for _, fd := range entries {
				if fd.group == -(ln + 1) {
					fd.group = group
				}
			}
		}
		if nl {
			re.WriteString(`\n`)
		}
	}
	re.WriteString(`$`)
	var err error
	if l.re, err = regexp.Compile(re.String()); err != nil {
		return nil, err
	}
	for i := range images {
		if len(markerFields[i]) == 0 {
			return nil, fmt.Errorf("%s: marker «%s» is not a scalar value", f.name, images[i])
		}
		l.fields = append(l.fields, markerFields[i]...)
	}
	l.fields = append(l.fields, entries...)
	return l, nil
}

// isKustomization reports whether a document is one whose images: entries digester pins.
func isKustomization(file string, d docInfo) bool {
	if d.apiVersion == "" && d.kind == "" {
		return path.Base(file) == "kustomization.yaml" || path.Base(file) == "kustomization.yml"
	}
	return strings.HasPrefix(d.apiVersion, "kustomize.config.k8s.io/") && (d.kind == "Kustomization" || d.kind == "Component")
}

// kustomizeEntry reads an images: entry that digester pins (a tag, no tagSuffix, no digest or
// a sha256 one on a line of its own) and returns it as a field, with the line after which its
// digest: goes and that line's key indent, or, for a pinned entry, its digest: line and indent.
func kustomizeEntry(e *yaml.Node) (fd *field, line, indent int) {
	if e.Kind != yaml.MappingNode || e.Style&yaml.FlowStyle != 0 {
		return nil, 0, 0
	}
	var name, newName, newTag, digest string
	var at, digestKey *yaml.Node // newTag's key, or the last key; the digest: key
	for i := 0; i+1 < len(e.Content); i += 2 {
		k, v := e.Content[i], e.Content[i+1]
		switch k.Value {
		case "tagSuffix":
			return nil, 0, 0
		case "digest":
			if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(v.Value) || v.Style != 0 {
				return nil, 0, 0
			}
			digest, digestKey = v.Value, k
		case "name":
			name = v.Value
		case "newName":
			newName = v.Value
		case "newTag":
			newTag = v.Value
		}
		if at == nil || at.Value != "newTag" {
			at = k
		}
	}
	repo := cmp.Or(newName, name)
	ref := repo
	switch {
	case newTag != "":
		ref += ":" + newTag
	case !hasTag(repo):
		return nil, 0, 0
	}
	if digestKey != nil {
		return &field{image: ref + "@" + digest, entry: true, pinned: digestKey.Line}, digestKey.Line, digestKey.Column - 1
	}
	return &field{image: ref, entry: true}, at.Line, at.Column - 1
}

// match reads a file's output: the value of every field (an entry: name:tag@digest once pinned)
// and the lock document. ok is false when a byte outside image values changed.
func (l *layout) match(out string) (values map[*field]string, lock string, ok bool) {
	m := l.re.FindStringSubmatch(out)
	if m == nil {
		return nil, "", false
	}
	values = map[*field]string{}
	for _, fd := range l.fields {
		v := m[fd.group]
		if fd.entry {
			v, _, _ = strings.Cut(fd.image, "@")
			if m[fd.group] != "" {
				v += "@" + m[fd.group]
			}
		}
		values[fd] = v
	}
	if l.lockGroup > 0 {
		lock = m[l.lockGroup]
	}
	return values, lock, true
}

// rebase is a file's template for its output: the output's bytes with each field's value a
// marker again, so that a later run can start from what an earlier one wrote.
func (l *layout) rebase(out string) (pkgFile, bool) {
	idx := l.re.FindStringSubmatchIndex(out)
	if idx == nil {
		return pkgFile{}, false
	}
	type span struct {
		start, end int
		text       string
	}
	var spans []span
	seen := map[int]bool{}
	for _, fd := range l.fields {
		g := fd.group
		if fd.entry || seen[g] || idx[2*g] < 0 {
			continue
		}
		seen[g] = true
		spans = append(spans, span{idx[2*g], idx[2*g+1], "«" + out[idx[2*g]:idx[2*g+1]] + "»"})
	}
	nf := pkgFile{name: l.file.name}
	if g := l.lockGroup; g > 0 {
		spans = append(spans, span{idx[2*g], idx[2*g+1], "«LOCK»"})
		nf.lock = out[idx[2*g]:idx[2*g+1]]
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	last := 0
	for _, s := range spans {
		b.WriteString(out[last:s.start])
		b.WriteString(s.text)
		last = s.end
	}
	b.WriteString(out[last:])
	nf.template = b.String()
	return nf, true
}

// scalarAt is the value of a mapping's scalar key, "" if none.
func scalarAt(m *yaml.Node, k string) string {
	if v := valueAt(m, k); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// valueAt is the value of a mapping's key, nil if none.
func valueAt(m *yaml.Node, k string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == k {
			return m.Content[i+1]
		}
	}
	return nil
}

// seqAt is the items of a mapping's list-valued key.
func seqAt(m *yaml.Node, k string) []*yaml.Node {
	if v := valueAt(m, k); v != nil && v.Kind == yaml.SequenceNode {
		return v.Content
	}
	return nil
}

// at returns the value at path p in a decoded document (maps and slices), and whether it is there.
func at(v any, p []any) (any, bool) {
	for _, e := range p {
		switch e := e.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[e]; !ok {
				return nil, false
			}
		case int:
			s, ok := v.([]any)
			if !ok || e >= len(s) {
				return nil, false
			}
			v = s[e]
		}
	}
	return v, true
}

// set replaces the value at path p in a decoded document, if it is there.
func set(v any, p []any, to any) {
	if len(p) == 0 {
		return
	}
	parent, ok := at(v, p[:len(p)-1])
	if !ok {
		return
	}
	switch e := p[len(p)-1].(type) {
	case string:
		if m, ok := parent.(map[string]any); ok {
			if _, there := m[e]; there {
				m[e] = to
			}
		}
	case int:
		if s, ok := parent.([]any); ok && e < len(s) {
			s[e] = to
		}
	}
}

// fieldValue reads a field's value from a decoded document: the string at its path, or for an
// entry name:tag@digest (name:tag without a digest: key).
func fieldValue(doc any, fd *field) string {
	v, ok := at(doc, fd.path)
	if !ok {
		return "<missing>"
	}
	if fd.entry {
		m, _ := v.(map[string]any)
		ref, _, _ := strings.Cut(fd.image, "@")
		if d, ok := m["digest"].(string); ok {
			return ref + "@" + d
		}
		return ref
	}
	if s, ok := v.(string); ok {
		return s
	}
	return fmt.Sprintf("<%T %v>", v, v)
}

// mask replaces every field of a decoded document with a placeholder, and removes an entry's
// digest: key, so that what is left must be equal before and after a run.
func mask(doc any, fields []*field) {
	for _, fd := range fields {
		if fd.entry {
			if v, ok := at(doc, fd.path); ok {
				if m, ok := v.(map[string]any); ok {
					delete(m, "digest")
				}
			}
			continue
		}
		set(doc, fd.path, "<image "+strconv.Itoa(fd.group)+">")
	}
}
