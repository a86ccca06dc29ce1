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

	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/internal/filetx"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/splice"
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

	pristine []*yaml.Node // every document as the file has it, parsed again when needed (pinEdits)
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

// pinEdits returns the edits that write, in the file's text, each value the run pinned (or
// refreshed), each with the finding it writes (package splice): a value that holds its reference
// replaced; a field pinned in its kind's syntax (a kustomize images: entry's digest: key, a
// Kptfile function's tag in its comment, a Helm or Flux digest key) written as the core changed
// its node, compared with the file's text parsed afresh. Only those bytes change: comments,
// quoting, indentation and line endings stay as they were. A value reached twice is edited once;
// two different pins of one value are an error naming both.
func (f *file) pinEdits(findings []pin.Finding) ([]splice.Edit, []pin.Finding, error) {
	type at struct{ line, column int }
	seen := map[at]pin.Finding{}
	var edits []splice.Edit
	var by []pin.Finding
	for _, fd := range findings {
		if fd.Object == nil || fd.Pinned == "" {
			continue
		}
		if !fd.Kind.Verbatim() {
			if f.pristine == nil {
				docs, err := parseDocs(f.data)
				if err != nil { // the file parsed once already: this cannot happen
					return nil, nil, fmt.Errorf("%s: %w", f.name, err)
				}
				f.pristine = docs
			}
			es, err := splice.Diff(f.pristine, f.docs, fd.Node)
			if err != nil {
				return nil, nil, &fieldError{fd, err.Error()}
			}
			for range es {
				by = append(by, fd)
			}
			edits = append(edits, es...)
			continue
		}
		if prev, ok := seen[at{fd.Line, fd.Column}]; ok {
			if prev.Pinned != fd.Pinned {
				return nil, nil, &fieldError{fd, fmt.Sprintf("its value is also that of %s %s (line %d), and the two would be pinned differently (%s, %s); write each in its own place",
					prev.ID, prev.Path, prev.Line, fd.Pinned, prev.Pinned)}
			}
			continue
		}
		seen[at{fd.Line, fd.Column}] = fd
		edits, by = append(edits, splice.Replace(fd.Line, fd.Column, fd.Image, fd.Pinned)), append(by, fd)
	}
	return edits, by, nil
}

// parseDocs parses every YAML document of data.
func parseDocs(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &doc)
	}
}

// fieldError is an image field whose pin cannot be written: the finding locates it.
type fieldError struct {
	fd  pin.Finding
	msg string
}

func (e *fieldError) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s %s: %s", e.fd.Object.File, e.fd.Line, e.fd.Column, e.fd.ID, e.fd.Path, e.msg)
}

// pinError says why the edit of a field's text cannot be made (splice's error).
func pinError(fd pin.Finding, se *splice.Error) error {
	if fd.Kind.Verbatim() && se.Value == fd.Image {
		return &fieldError{fd, fmt.Sprintf("the value %q %s, so digester cannot pin it in place; %s", fd.Image, se.How, se.Fix)}
	}
	return &fieldError{fd, fmt.Sprintf("the value %q at line %d %s, so digester cannot pin it in place; %s", se.Value, se.Line, se.How, se.Fix)}
}

// encode writes a node as kyaml does (two-space indent, lists not indented under their key).
func encode(n *yaml.Node) string {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return kyaml.NewRNode(n).MustString()
}
