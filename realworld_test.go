package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/kio"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/internal/registrytest"
)

// leftAlone are the references in testdata/corpus that digester must not pin, by file, each
// with why. Every other image reference the test finds must come back pinned.
var leftAlone = map[string][]string{
	// Argo loop data: values a template reads as {{item.image}}, not image fields.
	"argo-workflows/examples/loops-maps.yaml":         {"debian", "alpine", "ubuntu"},
	"argo-workflows/examples/ci.yaml":                 {"debian", "alpine", "ubuntu"},
	"argo-workflows/examples/ci-output-artifact.yaml": {"debian", "alpine", "ubuntu"},
}

// TestRealWorld runs the built binary on manifests from four public projects
// (testdata/corpus, see its SOURCES) and on hand-made files (testdata/handmade: CRLF, a BOM, tabs
// in comments, comments between documents, empty and comment-only documents, Lists, an image
// volume, presets, duplicate keys kubectl takes, kustomize images:), as
// `kpt fn source | digester | kpt fn sink` would, with
// every image host moved onto a loopback registry that serves each referenced tag. It asserts
// exit 0, no error result, every image at every place digester supports pinned to the digest
// served, pinned references untouched, nothing else in any file changed, and one manifest
// request per distinct reference.
func TestRealWorld(t *testing.T) {
	bin := buildBinary(t)
	// kustomize-examples declares MyKind's image field to kustomize (transformerconfigs/images/
	// kustomizeconfig/mykind.yaml); digester is told the same, in the same syntax.
	// One result per field (report: fields), to compare with the fields the test expects pinned.
	config := "functionConfig:\n  apiVersion: fn.kpt.dev/v1alpha1\n  kind: Digester\n  metadata: {name: pin}\n  report: fields\n"
	configs := map[string]string{
		"kustomize-examples": config + "  additionalImageFields:\n  - {kind: MyKind, path: spec/runLatest/container/image}\n",
	}
	for _, project := range []string{"argo-workflows", "kustomize-examples", "microservices-demo", "tekton-catalog", "handmade"} {
		t.Run(project, func(t *testing.T) {
			reg := registrytest.New()
			t.Cleanup(reg.Close)
			src := filepath.Join("testdata", "corpus", project)
			if project == "handmade" {
				src = filepath.Join("testdata", "handmade")
			}
			if configs[project] == "" {
				configs[project] = config
			}
			in, want := t.TempDir(), t.TempDir()
			digests := map[string]string{} // loopback reference -> digest served
			var pinned, kept int
			var wantPins []string // "file reference" of every field digester must pin
			err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") {
					return err
				}
				rel, _ := filepath.Rel(filepath.Dir(src), path)
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				moved, pinnedText, pins, k := rewrite(t, reg, rel, b, digests)
				relIn, _ := filepath.Rel(src, path)
				for _, p := range pins {
					wantPins = append(wantPins, relIn+" "+p)
				}
				pinned += len(pins)
				kept += k
				return writeFile(filepath.Join(in, relIn), moved, filepath.Join(want, relIn), pinnedText)
			})
			if err != nil {
				t.Fatal(err)
			}
			if pinned == 0 {
				t.Fatal("found no image to pin: the test reads nothing")
			}
			reg.Reset()

			stdout, stderr, code := run(t, bin, string(source(t, in))+configs[project])
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			rl, err := fn.ParseResourceList([]byte(stdout))
			if err != nil {
				t.Fatal(err)
			}
			var gotPins []string
			for _, r := range rl.Results {
				if r.Severity == fn.Error {
					t.Errorf("error result: %s", r)
				}
				if r.Field != nil && r.Field.ProposedValue != nil {
					gotPins = append(gotPins, r.File.Path+" "+fmt.Sprint(r.Field.CurrentValue))
				}
			}
			sort.Strings(wantPins)
			sort.Strings(gotPins)
			if diff := cmp.Diff(wantPins, gotPins); diff != "" {
				t.Errorf("pinned fields, by file and reference (-want +got):\n%s", diff)
			}
			wantSummary := fmt.Sprintf("pinned %d image fields (%d distinct references, %d registry requests)", pinned, len(digests), len(digests)+1)
			for _, r := range rl.Results {
				if r.Severity == fn.Info && r.ResourceRef == nil && !strings.HasPrefix(r.Message, wantSummary) {
					t.Errorf("summary is %q, want %q", r.Message, wantSummary)
				}
			}
			// Byte for byte: each item as kpt fn source writes the expected files, which is the input
			// item with its image values pinned. Nothing goes through a YAML writer on the way (which
			// would add a blank line to a folded scalar with more-indented lines on every run).
			if diff := cmp.Diff(itemTexts(t, source(t, want)), itemTexts(t, []byte(stdout))); diff != "" {
				t.Errorf("items by file (-want +got):\n%s", diff)
			}
			got := map[string]int{"HEAD manifest": reg.Count("HEAD", "manifest"), "GET manifest": reg.Count("GET", "manifest")}
			if diff := cmp.Diff(map[string]int{"HEAD manifest": len(digests), "GET manifest": 0}, got); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
			t.Logf("%d fields pinned, %d distinct references, %d references left alone", pinned, len(digests), kept)
		})
	}
}

// rewrite moves every image reference in a file onto reg and pushes each tag it names. It
// returns the file as digester gets it, the file as it must come back, how many fields must be
// pinned and how many references are left alone. References are values of image, reference and
// newName keys, and the name of a kustomize images: entry without newName, that parse as
// references; the file's bytes are edited in place, at the position the YAML parser gives.
func rewrite(t *testing.T, reg *registrytest.Registry, file string, b []byte, digests map[string]string) (moved, pinned []byte, pins []string, nkept int) {
	t.Helper()
	type edit struct {
		line, col int    // of the value, 1-based
		value     string // as written
		to        string // the loopback reference
		suffix    string // what digester must add right after the value ("@sha256:…"), if anything
		after     string // a line digester must add after line afterLine, if anything
		afterLine int
		pin       string // the reference digester must pin, if any
	}
	var edits []edit
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			break
		}
		var visit func(n *yaml.Node, inImages bool)
		visit = func(n *yaml.Node, inImages bool) {
			switch n.Kind {
			case yaml.DocumentNode, yaml.SequenceNode:
				for _, c := range n.Content {
					visit(c, inImages)
				}
			case yaml.MappingNode:
				keys := map[string]*yaml.Node{}
				for i := 0; i+1 < len(n.Content); i += 2 {
					keys[n.Content[i].Value] = n.Content[i+1]
				}
				for i := 0; i+1 < len(n.Content); i += 2 {
					k, v := n.Content[i], n.Content[i+1]
					if v.Kind != yaml.ScalarNode {
						visit(v, k.Value == "images")
						continue
					}
					entry := inImages && (keys["newTag"] != nil || keys["newName"] != nil || keys["digest"] != nil)
					if k.Value != "image" && k.Value != "reference" && !(entry && (k.Value == "newName" || k.Value == "name" && keys["newName"] == nil)) {
						continue
					}
					ref, err := name.ParseReference(v.Value)
					if err != nil || v.Tag != "!!str" {
						continue
					}
					to := reg.Host + "/" + v.Value
					e := edit{line: v.Line, col: v.Column, value: v.Value, to: to}
					if entry {
						full := to
						if nt := keys["newTag"]; nt != nil {
							full += ":" + nt.Value
						}
						_, tagged := ref.(name.Tag)
						tagged = tagged && strings.Contains(v.Value[strings.LastIndex(v.Value, "/")+1:], ":")
						if keys["digest"] == nil && (keys["newTag"] != nil || tagged) {
							e.after = strings.Repeat(" ", k.Column-1) + "digest: " + push(t, reg, full, digests)
							e.pin = full
							e.afterLine = n.Content[len(n.Content)-1].Line // the end of the entry
							if nt := keys["newTag"]; nt != nil {
								e.afterLine = nt.Line // digester writes digest: after newTag
							}
						}
					} else if _, ok := ref.(name.Tag); ok && !slices.Contains(leftAlone[file], v.Value) {
						e.suffix = "@" + push(t, reg, to, digests)
						e.pin = to
					}
					edits = append(edits, e)
				}
			}
		}
		visit(&doc, false)
	}
	lines := strings.SplitAfter(string(b), "\n")
	movedLines, pinnedLines := slices.Clone(lines), slices.Clone(lines)
	sort.Slice(edits, func(i, j int) bool { // right to left, so positions stay valid
		return edits[i].line > edits[j].line || edits[i].line == edits[j].line && edits[i].col > edits[j].col
	})
	after := map[int]string{} // lines to add after a line, in pinnedLines
	for _, e := range edits {
		l := lines[e.line-1]
		at := strings.Index(l[e.col-1:], e.value)
		if at < 0 || at > 1 {
			t.Fatalf("%s:%d:%d: %q is not where the parser says", file, e.line, e.col, e.value)
		}
		at += e.col - 1
		end := at + len(e.value)
		movedLines[e.line-1] = movedLines[e.line-1][:at] + e.to + movedLines[e.line-1][end:]
		pinnedLines[e.line-1] = pinnedLines[e.line-1][:at] + e.to + e.suffix + pinnedLines[e.line-1][end:]
		if e.after != "" {
			after[e.afterLine] = e.after
		}
		if e.pin != "" {
			pins = append(pins, e.pin)
		} else {
			nkept++
		}
	}
	for line, add := range after {
		l := pinnedLines[line-1]
		nl := "\n"
		if strings.HasSuffix(l, "\r\n") {
			nl = "\r\n"
		}
		pinnedLines[line-1] = strings.TrimRight(l, "\r\n") + nl + add + nl
	}
	return []byte(strings.Join(movedLines, "")), []byte(strings.Join(pinnedLines, "")), pins, nkept
}

// push serves ref (host/repo[:tag]) on reg, once, and returns its digest.
func push(t *testing.T, reg *registrytest.Registry, ref string, digests map[string]string) string {
	t.Helper()
	r, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	key := r.Name()
	if d, ok := digests[key]; ok {
		return d
	}
	d, err := reg.PushImage(r.Context().RepositoryStr(), r.TagStr(), types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	digests[key] = d.String()
	return d.String()
}

func writeFile(in string, moved []byte, want string, pinned []byte) error {
	for _, f := range []struct {
		path string
		b    []byte
	}{{in, moved}, {want, pinned}} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, f.b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// source reads a folder into a ResourceList as `kpt fn source` does (kyaml's package reader:
// Lists are not unwrapped, every document gets its path and index annotations).
func source(t *testing.T, dir string) []byte {
	t.Helper()
	var out bytes.Buffer
	err := kio.Pipeline{
		Inputs:  []kio.Reader{kio.LocalPackageReader{PackagePath: dir, PreserveSeqIndent: true, WrapBareSeqNode: true}},
		Outputs: []kio.Writer{kio.ByteWriter{Writer: &out, WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion}},
	}.Execute()
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// itemTexts returns the text of each item of a ResourceList written in block style (as kpt fn
// source and digester write it), by file and position in the file: the lines from an item's
// "- " to the next item's, the comment lines right before the next "- " going with the next item
// (they are its head comment, and travel with it when items are sorted).
func itemTexts(t *testing.T, rl []byte) map[string][]string {
	t.Helper()
	text := string(rl)
	_, after, ok := strings.Cut(text, "\nitems:\n")
	if !ok {
		t.Fatalf("no items in\n%s", rl)
	}
	var lines []string
	for _, l := range strings.SplitAfter(after, "\n") {
		if strings.HasPrefix(l, "functionConfig:") || strings.HasPrefix(l, "results:") {
			break
		}
		lines = append(lines, l)
	}
	var pieces []string
	start := 0
	for i, l := range lines {
		if i == 0 || !strings.HasPrefix(l, "- ") {
			continue
		}
		head := i
		for head > start && strings.HasPrefix(lines[head-1], "#") {
			head--
		}
		pieces = append(pieces, strings.Join(lines[start:head], ""))
		start = head
	}
	pieces = append(pieces, strings.Join(lines[start:], ""))
	items := map[string][]string{}
	for _, p := range pieces {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(p), &doc); err != nil || len(doc.Content) != 1 || len(doc.Content[0].Content) != 1 {
			t.Fatalf("an item does not parse on its own (%v):\n%s", err, p)
		}
		o := yaml.NewRNode(doc.Content[0].Content[0])
		str := func(path ...string) string {
			n, err := o.Pipe(yaml.Lookup(path...))
			if err != nil || n == nil {
				return ""
			}
			return n.YNode().Value
		}
		key := fmt.Sprintf("%s %s %s %s/%s%s", str("metadata", "annotations", "internal.config.kubernetes.io/path"), str("apiVersion"), str("kind"),
			str("metadata", "namespace"), str("metadata", "name"), str("metadata", "generateName"))
		items[key] = append(items[key], p)
		sort.Strings(items[key]) // items with one key may come in any order
	}
	return items
}

// TestCommandLineList: `digester pin FILE` reads a List, and a Workflow inside it with only
// generateName, and pins them in place: the file becomes the input with only the digests added.
func TestCommandLineList(t *testing.T) {
	bin := buildBinary(t)
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	b, err := os.ReadFile("testdata/handmade/list.yaml")
	if err != nil {
		t.Fatal(err)
	}
	moved, pinned, pins, _ := rewrite(t, reg, "handmade/list.yaml", b, map[string]string{})
	if len(pins) != 3 {
		t.Fatalf("%d fields to pin in list.yaml, want 3", len(pins))
	}
	file := filepath.Join(t.TempDir(), "list.yaml")
	if err := os.WriteFile(file, moved, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "pin", file)
	cmd.Env = append(cmd.Environ(), "DOCKER_CONFIG="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v, stderr:\n%s", err, stderr.String())
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(pinned), string(got)); diff != "" {
		t.Errorf("list.yaml after digester pin (-want +got):\n%s", diff)
	}
}
