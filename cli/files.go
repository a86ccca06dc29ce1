package cli

import (
	"bytes"
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

	"github.com/digester/digester/pin"
)

// file is one YAML file of the input: its bytes and the objects read from them.
type file struct {
	name string // as shown in findings: the path as given, joined with the file's path under it
	path string // where it is written back; "" for stdin
	mode os.FileMode
	data []byte
	objs []*pin.Object
	docs []*yaml.Node // every document, for writing the file out whole

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
}

// edits finds, in the file's bytes, each value that the run pinned (or refreshed) and returns the
// replacements that pin them. Only the value's own bytes are touched, so comments, quoting, indentation and
// line endings stay exactly as they were. A value written in a form that cannot be edited in
// place (a block scalar, an escape sequence, a value over several lines) is an error naming it.
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
		start, ok := valueStart(f.data, starts, fd.Line, fd.Column, fd.Image)
		if !ok {
			return nil, fmt.Errorf("%s:%d:%d: %s %s: the value %q is not written as a plain or quoted string on one line, so digester cannot pin it in place; write it on one line",
				f.name, fd.Line, fd.Column, fd.ID, fd.Path, fd.Image)
		}
		out = append(out, edit{start: start, end: start + len(fd.Image), text: fd.Pinned})
	}
	slices.SortFunc(out, func(a, b edit) int { return a.start - b.start })
	return out, nil
}

// apply returns the file's bytes with the edits made.
func (f *file) apply(edits []edit) []byte {
	var b bytes.Buffer
	last := 0
	for _, e := range edits {
		b.Write(f.data[last:e.start])
		b.WriteString(e.text)
		last = e.end
	}
	b.Write(f.data[last:])
	return b.Bytes()
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

// valueStart returns the byte offset at which the text of value starts, its node being at
// line:column (1-based; the column counts characters, as the YAML parser does). The value must be
// there as written: plain, or in single or double quotes with nothing escaped, on one line.
func valueStart(data []byte, starts []int, line, column int, value string) (int, bool) {
	if line < 1 || line > len(starts) || column < 1 {
		return 0, false
	}
	off := starts[line-1]
	for range column - 1 {
		if off >= len(data) || data[off] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	rest := data[off:]
	if len(rest) > 0 && (rest[0] == '"' || rest[0] == '\'') {
		q := rest[0]
		if !bytes.HasPrefix(rest[1:], []byte(value)) || len(rest) < len(value)+2 || rest[len(value)+1] != q ||
			strings.ContainsRune(value, rune(q)) || q == '"' && strings.Contains(value, `\`) {
			return 0, false
		}
		return off + 1, true
	}
	if !bytes.HasPrefix(rest, []byte(value)) {
		return 0, false
	}
	end := off + len(value)
	if end < len(data) && !strings.ContainsRune(" \t\r\n#,]}", rune(data[end])) {
		return 0, false
	}
	return off, true
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

// encode writes every document of the file from its nodes, keeping its line endings.
func (f *file) encode() []byte {
	var docs []string
	for _, d := range f.docs {
		docs = append(docs, encode(d))
	}
	out := strings.Join(docs, "---\n")
	if bytes.Contains(f.data, []byte("\r\n")) {
		out = strings.ReplaceAll(out, "\n", "\r\n")
	}
	return []byte(out)
}

// write replaces the file's content with data, through a temporary file renamed over it, so that
// a file is never left half written.
func (f *file) write(data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".digester-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(f.mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.path)
}
