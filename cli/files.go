package cli

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/internal/filetx"
	"github.com/digester/digester/pin"
)

// file is one YAML file of the input: its bytes and the objects read from them.
type file struct {
	name string // as shown in findings: the path as given, joined with the file's path under it
	path string // where it is written back; "" for stdin
	real string // path, its symbolic links resolved
	snap filetx.Snapshot
	data []byte
	objs []*pin.Object
	docs []*yaml.Node // every document

	pristine []*yaml.Node // every document as the file has it, parsed again when needed (insert.go)
}

// yamlFiles lists the YAML files under arg as kpt reads a package: *.yaml, *.yml and Kptfiles, in
// lexical order, subdirectories and subpackages included, except what a package's .krmignore
// lists, anything under .git and a Helm chart's templates/. A file named on the command line is
// read whatever its name.
func yamlFiles(arg string) ([]string, error) {
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{arg}, nil
	}
	var out []string
	r := kio.LocalPackageReader{
		PackagePath:        arg,
		PackageFileName:    "Kptfile", // so that subpackages' .krmignore files are read too
		IncludeSubpackages: true,
		// The reader only finds files; they are parsed here, whole, so that each value's line and
		// column are its place in the file (kyaml's reader parses each document on its own).
		FileSkipFunc: func(rel string) bool {
			base := filepath.Base(rel)
			yml := strings.HasSuffix(base, ".yaml") || strings.HasSuffix(base, ".yml") || base == "Kptfile"
			if yml && !slices.Contains(strings.Split(filepath.ToSlash(rel), "/"), ".git") && !chartTemplate(arg, rel) {
				out = append(out, filepath.Join(arg, rel))
			}
			return true
		},
	}
	if _, err := r.Read(); err != nil {
		return nil, err
	}
	return out, nil
}

// parse reads the objects of a file's YAML documents. Each mapping document is an object; the
// items of a kind: List are objects of their own. Documents that are empty or not mappings are
// left alone.
func (f *file) parse() error {
	dec := yaml.NewDecoder(bytes.NewReader(f.data))
	for index := 0; ; {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: not valid YAML: %w", f.name, err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null" {
			continue
		}
		f.docs = append(f.docs, &doc)
		root := doc.Content[0]
		if items := listItems(root); items != nil {
			for _, it := range items {
				f.objs = append(f.objs, &pin.Object{Node: it, File: f.name, Index: index})
			}
		} else {
			f.objs = append(f.objs, &pin.Object{Node: &doc, File: f.name, Index: index})
		}
		index++
	}
}

// listItems returns the items of a kind: List (apiVersion v1), or nil if root is not one.
func listItems(root *yaml.Node) []*yaml.Node {
	if root.Kind != yaml.MappingNode {
		return nil
	}
	var kind, items *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "kind":
			kind = root.Content[i+1]
		case "items":
			items = root.Content[i+1]
		}
	}
	if kind == nil || kind.Value != "List" || items == nil || items.Kind != yaml.SequenceNode {
		return nil
	}
	return items.Content
}

// edit replaces an image value in the text of a file.
type edit struct {
	start, end int    // the value's bytes, quotes excluded
	text       string // what replaces them: the pinned reference
	fd         pin.Finding
}

// edits finds, in the file's bytes, each value that the run pinned (or refreshed) and returns the
// replacements that pin them, in order. Only the value's own bytes are touched, so comments,
// quoting, indentation and line endings stay exactly as they were. A value written in a form that
// cannot be edited in place (an alias, a block scalar, an escape sequence, a value over several
// lines) is an error naming it and saying which. A value reached twice (through an alias or a
// merge key) is edited once; two different edits of the same bytes are an error.
func (f *file) edits(findings []pin.Finding) ([]edit, error) {
	starts := lineStarts(f.data)
	var out []edit
	for _, fd := range findings {
		if fd.Object == nil || fd.Pinned == "" {
			continue
		}
		if !fd.Kind.Verbatim() { // kustomize images: entries, Kptfile functions, Helm and Flux digest keys
			es, err := f.shapeEdits(starts, fd)
			if err != nil {
				return nil, err
			}
			out = append(out, es...)
			continue
		}
		start, err := f.valueAt(starts, fd)
		if err != nil {
			return nil, err
		}
		out = append(out, edit{start: start, end: start + len(fd.Image), text: fd.Pinned, fd: fd})
	}
	slices.SortStableFunc(out, func(a, b edit) int { return cmp.Or(a.start-b.start, a.end-b.end) })
	out = slices.CompactFunc(out, func(a, b edit) bool { return a.start == b.start && a.end == b.end && a.text == b.text })
	for i := 1; i < len(out); i++ {
		if a, b := out[i-1], out[i]; b.start < a.end || b.start == a.start {
			return nil, &fieldError{b.fd, fmt.Sprintf("its value is also that of %s %s (line %d), and the two would be pinned differently (%s, %s); write each in its own place",
				a.fd.ID, a.fd.Path, a.fd.Line, b.text, a.text)}
		}
	}
	return out, nil
}

// fieldError is an image field whose pin cannot be written: the finding locates it.
type fieldError struct {
	fd  pin.Finding
	msg string
}

func (e *fieldError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s %s: %s", e.fd.Object.File, e.fd.Line, e.fd.Column, e.fd.ID, e.fd.Path, e.msg)
}

// valueAt returns the offset of the image value a finding names in the file's bytes, or an error
// that says how the value is written, when it is not as a plain or quoted string on one line with
// only a !!str tag or an anchor.
func (f *file) valueAt(starts []int, fd pin.Finding) (int, error) {
	off, ok := offset(f.data, starts, fd.Line, fd.Column)
	if !ok {
		return 0, &fieldError{fd, fmt.Sprintf("the value %q is not where the YAML parser put it, so digester cannot pin it in place", fd.Image)}
	}
	fail := func(how string) (int, error) {
		return 0, &fieldError{fd, fmt.Sprintf("the value %q %s", fd.Image, how)}
	}
	for props := 0; props < 2; props++ { // a tag and an anchor, in either order
		rest := f.data[off:]
		if len(rest) == 0 || rest[0] != '!' && rest[0] != '&' {
			break
		}
		token := rest[:tokenEnd(rest)]
		if token[0] == '!' && string(token) != "!!str" && string(token) != "!<tag:yaml.org,2002:str>" {
			return fail(fmt.Sprintf("is written with the explicit tag %s, so digester cannot pin it in place; write it without the tag", token))
		}
		// An anchor is pinned where it is written: the walker returns an anchored value as a
		// field only when every use of it is an image field (else a Shared problem), once.
		off += len(token)
		for off < len(f.data) && (f.data[off] == ' ' || f.data[off] == '\t') {
			off++
		}
	}
	start, how := valueStart(f.data, off, fd.Image)
	if how != "" {
		return fail(how)
	}
	return start, nil
}

// tokenEnd returns the length of the tag, anchor or alias at the start of b.
func tokenEnd(b []byte) int {
	if bytes.HasPrefix(b, []byte("!<")) { // a verbatim tag: !<tag:yaml.org,2002:str>
		if i := bytes.IndexByte(b, '>'); i > 0 {
			return i + 1
		}
	}
	for i, c := range b {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ']' || c == '}' {
			return i
		}
	}
	return len(b)
}

// lineStarts returns the byte offset at which each line starts (index 0 is line 1).
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

// offset returns the byte offset of line:column (1-based; the column counts characters, as the
// YAML parser does, and a byte order mark at the start of the file is no character).
func offset(data []byte, starts []int, line, column int) (int, bool) {
	if line < 1 || line > len(starts) || column < 1 {
		return 0, false
	}
	off := starts[line-1]
	if line == 1 && bytes.HasPrefix(data, []byte("\ufeff")) {
		off += 3
	}
	for range column - 1 {
		if off >= len(data) || data[off] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	return off, true
}

// valueStart returns the byte offset at which the text of value starts, its node starting at off.
// The value must be there as written: plain, or in single or double quotes with nothing escaped,
// on one line. Otherwise how says how it is written instead, as the end of a sentence about it.
func valueStart(data []byte, off int, value string) (start int, how string) {
	const fix = ", so digester cannot pin it in place; write it as a plain or quoted string on one line"
	rest := data[off:]
	line := rest
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		line = rest[:i]
	}
	switch {
	case len(rest) == 0:
		return 0, "is not where the YAML parser put it" + fix
	case rest[0] == '*':
		return 0, "is an alias, " + string(rest[:tokenEnd(rest)]) + ", so digester cannot pin it in place; write the image itself"
	case rest[0] == '|' || rest[0] == '>':
		return 0, "is a block scalar (" + string(rest[:1]) + ")" + fix
	case rest[0] == '"' || rest[0] == '\'':
		q := rest[0]
		for i := 1; i < len(line); i++ {
			switch {
			case q == '"' && line[i] == '\\', q == '\'' && line[i] == '\'' && i+1 < len(line) && line[i+1] == '\'':
				return 0, "holds an escape sequence" + fix
			case line[i] == q:
				if string(line[1:i]) != value {
					return 0, "is not written as the YAML parser read it" + fix
				}
				return off + 1, ""
			}
		}
		return 0, "spans several lines" + fix
	}
	end := off + len(value)
	if bytes.HasPrefix(rest, []byte(value)) && (end == len(data) || strings.IndexByte(" \t\r\n#,]}", data[end]) >= 0) {
		return off, ""
	}
	if len(line) < len(value) {
		return 0, "spans several lines" + fix
	}
	return 0, "is not written as the YAML parser read it" + fix
}

// isLock reports whether n is a DigestLock (see package pin).
func isLock(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	var kind, apiVersion string
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "kind":
			kind = n.Content[i+1].Value
		case "apiVersion":
			apiVersion = n.Content[i+1].Value
		}
	}
	return kind == pin.LockKind && apiVersion == pin.LockAPIVersion
}

// encode writes a node as kyaml does (two-space indent, lists not indented under their key).
func encode(n *yaml.Node) string {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return kyaml.NewRNode(n).MustString()
}
