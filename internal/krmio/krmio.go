// Package krmio runs a KRM function on the text of a ResourceList: it reads the list an item at
// a time and writes the function's output from the input's own bytes, so that every item comes
// back byte for byte as it came in, except where the function edits its text (package splice).
// Whatever a YAML library would change on a round trip (a folded scalar that gains a blank line,
// quoting, indentation, comments) cannot reach the output, and the input never lives as one
// parse tree: each item is parsed on its own, when the function asks for it, and can be dropped.
//
// The block style kpt and kustomize write (an "items:" key at the start of a line, each item an
// entry "- " of a block sequence) is read this way. Any other ResourceList the SDK reads (JSON,
// flow style, anchors shared between items, several documents) is read whole by the SDK, and its
// items are written by yaml.v3, each checked to hold the values it held; so is an item whose
// edits cannot be made in its text (a value in a block scalar, with escapes).
//
// Results are written as the SDK writes them, most of them directly rather than through the
// SDK's conversions (see appendResults and docs/performance.md).
package krmio

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/kptdev/krm-functions-sdk/go/fn"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/splice"
)

// Processor is a KRM function that works on a List. Process must parse every item (Item.Parse)
// before it does anything it could not do twice, and return an error of Parse's as it is: when
// an item cannot be read on its own, Run reads the whole list again with the SDK and calls
// Process once more.
type Processor interface {
	Process(l *List) (bool, error)
}

// Run reads input, runs p and returns the output ResourceList and an error, as fn.Run does: the
// output is nil only when the input cannot be read (or the output cannot be made), and an
// unsuccessful run is an error. The output is written by its WriteTo, from the input's bytes.
func Run(p Processor, input []byte) (*Output, error) {
	if p == nil {
		return nil, errors.New("nil Processor")
	}
	l, err := Read(input)
	if err != nil {
		return nil, err
	}
	ok, fnErr := p.Process(l)
	if fnErr == nil {
		fnErr = l.parseAll() // the items the function left unread, for their order
	}
	if errors.Is(fnErr, errSplit) {
		if l, err = readWhole(input); err != nil {
			return nil, err
		}
		ok, fnErr = p.Process(l)
	}
	out, err := l.Output()
	switch {
	case err != nil:
		return nil, err
	case fnErr != nil:
		return out, fnErr
	case !ok:
		return out, errors.New("error: function failure")
	}
	return out, nil
}

// errSplit says that an item did not parse on its own: the list is to be read whole.
var errSplit = errors.New("an item of the ResourceList does not parse on its own")

// List is a ResourceList: its items, its functionConfig, and its results, to which the function
// appends its own.
type List struct {
	Items []*Item
	// FunctionConfig is the functionConfig (empty if there is none); Results, the input's results.
	FunctionConfig *fn.KubeObject
	Results        fn.Results

	added []*Item
	// whole is set for a list read whole by the SDK, whose items have trees and no text.
	whole bool
	// trailer holds the comment lines after the last item, for a list read from its text.
	trailer []byte
}

// Item is one item of a List.
type Item struct {
	// lead is the comment and blank lines before the item's "- " that the parser gives to it;
	// text, the item from its "- " to its last line; indent, the column of its "-". For a list
	// read whole, tree is the item.
	lead, text []byte
	indent     int
	tree       *yaml.Node
	// key orders the items as the SDK does (set by Parse, or for a list read whole, by Read).
	key     string
	edits   []splice.Edit
	replace *yaml.Node
	// out is the item as written, when that is not its text with its edits made.
	out []byte
}

// Parse returns the item's mapping node, a tree of its own that the caller may change and drop;
// its nodes' positions (Line, Column) are those edits of the item give.
func (it *Item) Parse() (*yaml.Node, error) {
	if it.tree != nil {
		return copyTree(it.tree), nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(it.text, &doc); err != nil || len(doc.Content) != 1 {
		return nil, errSplit
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || len(seq.Content) != 1 || seq.Content[0].Kind != yaml.MappingNode {
		return nil, errSplit
	}
	it.key = sortKey(seq.Content[0])
	return seq.Content[0], nil
}

// parseAll parses the items not parsed yet, for their keys.
func (l *List) parseAll() error {
	for _, it := range l.Items {
		if it.key == "" && it.tree == nil {
			if _, err := it.Parse(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Edit records edits to make in the item when the list is written, at positions of its Parse.
// If they cannot be made, neither in its text nor in its tree without changing another value, it
// records none and returns a *WriteError. (For a list read whole, that is found by Write.)
func (it *Item) Edit(edits ...splice.Edit) error {
	all := append(it.edits[:len(it.edits):len(it.edits)], edits...)
	if it.tree == nil {
		it.out = nil
		if _, err := splice.Check(it.text, all); err != nil {
			if it.out, err = it.write(all); err != nil {
				return err
			}
		}
	}
	it.edits = all
	return nil
}

// Replace makes the list write n (the item's tree from Parse, changed) in place of the item.
func (it *Item) Replace(n *yaml.Node) { it.replace = n }

// Add adds an item, written from its tree.
func (l *List) Add(n *yaml.Node) { l.added = append(l.added, &Item{replace: n, key: sortKey(n)}) }

// Reset drops every edit, replacement and added item: the list is written as it came in.
func (l *List) Reset() {
	for _, it := range l.Items {
		it.edits, it.replace, it.out = nil, nil, nil
	}
	l.added = nil
}

// WriteError is an item whose edits could be made neither in its text nor in its tree without
// changing another of its values.
type WriteError struct {
	Item *Item
	// Edit is why the edits cannot be made in the text (nil for a list read whole); Changed, the
	// first value that yaml.v3 would write differently (a path in the item).
	Edit    *splice.Error
	Changed string
}

func (e *WriteError) Error() string {
	if e.Edit == nil {
		return fmt.Sprintf("written anew, the resource would change its value at %s", e.Changed)
	}
	return fmt.Sprintf("the value %s, so it cannot be edited in place, and written anew the resource would change its value at %s; %s",
		e.Edit.How, e.Changed, e.Edit.Fix)
}

// Output is a List ready to be written: whatever may fail has been done.
type Output struct {
	l          *List
	items      []*Item
	body, tail []byte
}

// Output prepares the output ResourceList: the items (edited, replaced, or as they came) and the
// added items, in the SDK's order (sortItems), the functionConfig and the results. A *WriteError
// names an item of a list read whole that cannot be written with its edits (Reset and call
// Output again for the list as it came in).
func (l *List) Output() (*Output, error) {
	items := append(l.Items[:len(l.Items):len(l.Items)], l.added...)
	sortItems(items)
	var tail bytes.Buffer
	if fc := l.FunctionConfig; fc != nil && !fc.IsEmpty() {
		rn := fc.MoveToResourceNode()
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "functionConfig"}, rn.YNode()}}
		l.FunctionConfig = fn.MoveToKubeObject(rn)
		if err := yaml.NewEncoder(&tail).Encode(m); err != nil {
			return nil, fmt.Errorf("write functionConfig: %w", err)
		}
	}
	if err := appendResults(&tail, l.Results); err != nil {
		return nil, err
	}
	var body bytes.Buffer
	if l.whole {
		if err := writeWhole(&body, items); err != nil {
			return nil, err
		}
	}
	for _, it := range items {
		if err := it.prepare(); err != nil {
			return nil, err
		}
	}
	return &Output{l: l, items: items, body: body.Bytes(), tail: tail.Bytes()}, nil
}

// WriteTo writes the output ResourceList to w, the items from the input's bytes, edited.
func (o *Output) WriteTo(w io.Writer) (int64, error) {
	cw := &counter{w: w}
	out := bufio.NewWriterSize(cw, 64<<10)
	out.WriteString("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\n")
	if len(o.items) > 0 {
		out.WriteString("items:\n")
	}
	out.Write(o.body)
	if !o.l.whole {
		o.l.writeItems(out, o.items)
	}
	out.Write(o.tail)
	err := out.Flush()
	return cw.n, err
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// prepare encodes a replaced or added item, as it will be written; an item with edits was
// prepared by Edit.
func (it *Item) prepare() error {
	if it.replace == nil {
		return nil
	}
	var b bytes.Buffer
	if err := encode(&b, it.replace, it.indent); err != nil {
		return err
	}
	it.out = b.Bytes()
	return nil
}

// writeLines writes b, ending it with a line break if it has none.
func writeLines(out *bufio.Writer, b []byte) {
	out.Write(b)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		out.WriteByte('\n')
	}
}

// writeItems writes the items of a list read from its text: each one's lead and its text,
// edited, or as prepared.
func (l *List) writeItems(out *bufio.Writer, items []*Item) {
	var scratch []byte
	for _, it := range items {
		writeLines(out, it.lead)
		if it.out != nil {
			writeLines(out, it.out)
			continue
		}
		var err error
		if scratch, err = splice.Append(scratch[:0], it.text, it.edits); err != nil {
			panic(fmt.Sprintf("krmio: edits that Item.Edit checked cannot be made: %v", err)) // cannot happen: the same plan
		}
		writeLines(out, scratch)
	}
	writeLines(out, l.trailer)
}

// write returns an item read from its text with edits made: in its text or, when that cannot be,
// in its tree, written by yaml.v3 as an item at column 0 and checked to hold the values the tree
// holds.
func (it *Item) write(edits []splice.Edit) ([]byte, error) {
	text, err := splice.Apply(it.text, edits)
	var why *splice.Error
	if err == nil || !errors.As(err, &why) {
		return text, err
	}
	tree, err := it.Parse()
	if err != nil {
		return nil, err
	}
	if err := splice.Nodes(tree, edits); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := encode(&b, tree, it.indent); err != nil {
		return nil, err
	}
	if path := changed(tree, b.Bytes()); path != "" {
		return nil, &WriteError{Item: it, Edit: why, Changed: path}
	}
	return b.Bytes(), nil
}

// writeWhole writes the items of a list read whole, with their edits made in a copy of their
// trees, by yaml.v3 as one sequence (anchors and aliases may cross items), and checks that each
// item holds the values of its tree.
func writeWhole(out *bytes.Buffer, items []*Item) error {
	if len(items) == 0 {
		return nil
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, it := range items {
		if it.tree != nil {
			seq.Content = append(seq.Content, it.tree)
		}
	}
	seq = copyTree(seq)
	trees := seq.Content
	seq.Content = nil
	for _, it := range items {
		switch {
		case it.replace != nil:
			seq.Content = append(seq.Content, it.replace)
		default:
			if err := splice.Nodes(trees[0], it.edits); err != nil {
				return err
			}
			seq.Content = append(seq.Content, trees[0])
		}
		if it.tree != nil {
			trees = trees[1:]
		}
	}
	var b bytes.Buffer
	if err := yaml.NewEncoder(&b).Encode(seq); err != nil {
		return fmt.Errorf("write items: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b.Bytes(), &doc); err != nil || len(doc.Content) != 1 || len(doc.Content[0].Content) != len(seq.Content) {
		return fmt.Errorf("write items: yaml.v3 wrote items it cannot read back (%v)", err)
	}
	for i, it := range items {
		if path := differ(seq.Content[i], doc.Content[0].Content[i], ""); path != "" && it.replace == nil {
			return &WriteError{Item: it, Changed: path}
		}
	}
	out.Write(b.Bytes())
	return nil
}

// encode writes n as an item of a list whose "-" is at column indent: yaml.v3's lines for a
// one-item sequence, as kyaml writes it, moved to that column.
func encode(out *bytes.Buffer, n *yaml.Node, indent int) error {
	var b bytes.Buffer
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: []*yaml.Node{n}}
	if err := yaml.NewEncoder(&b).Encode(seq); err != nil {
		return fmt.Errorf("write items: %w", err)
	}
	if indent == 0 {
		out.Write(b.Bytes())
		return nil
	}
	pad := bytes.Repeat([]byte(" "), indent)
	for _, line := range bytes.SplitAfter(b.Bytes(), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			out.Write(pad)
		}
		out.Write(line)
	}
	return nil
}

// changed returns the path of the first value in which text, an item written by encode, differs
// from tree; "" if it holds the same values (comments and quoting aside).
func changed(tree *yaml.Node, text []byte) string {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil || len(doc.Content) != 1 || len(doc.Content[0].Content) != 1 {
		return "the whole resource"
	}
	return differ(tree, doc.Content[0].Content[0], "")
}

// differ returns the path under which a and b first hold different values, "" if none.
func differ(a, b *yaml.Node, path string) string {
	here := path
	if here == "" {
		here = "the top"
	}
	if a.Kind != b.Kind || a.ShortTag() != b.ShortTag() || a.Value != b.Value || len(a.Content) != len(b.Content) {
		return here
	}
	if a.Kind == yaml.AliasNode {
		return "" // compared by name (Value); the anchored node is compared where it is
	}
	for i := range a.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if a.Kind == yaml.MappingNode {
			p = a.Content[i&^1].Value
			if path != "" {
				p = path + "." + p
			}
		}
		if d := differ(a.Content[i], b.Content[i], p); d != "" {
			return d
		}
	}
	return ""
}

// copyTree returns a deep copy of n; aliases point into the copy.
func copyTree(n *yaml.Node) *yaml.Node {
	copies := map[*yaml.Node]*yaml.Node{}
	var cp func(*yaml.Node) *yaml.Node
	cp = func(n *yaml.Node) *yaml.Node {
		if c, ok := copies[n]; ok {
			return c
		}
		c := *n
		copies[n] = &c
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, k := range n.Content {
			c.Content[i] = cp(k)
		}
		if n.Alias != nil {
			c.Alias = cp(n.Alias)
		}
		return &c
	}
	return cp(n)
}

// sortKey is what the SDK orders an item by: apiVersion, kind, namespace and name.
func sortKey(n *yaml.Node) string {
	o := fn.MoveToKubeObject(yaml.NewRNode(n))
	return o.GetAPIVersion() + " " + o.GetKind() + " " + o.GetNamespace() + " " + o.GetName()
}

// sortItems orders items as the SDK's rl.Sort does, with each item's key built once rather than
// twice per comparison (the SDK formats four fields with fmt.Sprintf in every Less): sort.Sort
// makes the same comparisons in the same order on the same keys, so the items end in the same
// order, ties included.
func sortItems(items []*Item) { sort.Sort(byKey(items)) }

type byKey []*Item

func (k byKey) Len() int           { return len(k) }
func (k byKey) Less(i, j int) bool { return k[i].key < k[j].key }
func (k byKey) Swap(i, j int)      { k[i], k[j] = k[j], k[i] }
