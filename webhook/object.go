package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/walker"
)

// object is an admitted object as the pinning core reads it: a YAML node tree built from its JSON.
// The JSON pointers of the nodes the core reports on (so that the fields it pins become JSONPatch
// paths whatever the walker calls them) are found afterwards, by locate: keeping one for every
// string would cost more than the tree, and grow with depth times width.
type object struct {
	node *yaml.Node
}

// maxDepth bounds nesting; the API server's own JSON decoder stops at 10,000 levels, objects stop
// far sooner.
const maxDepth = 1000

// parseObject builds the node tree of a JSON object, keeping key order. raw must be JSON that
// encoding/json found valid (a json.RawMessage of a decoded review): other input fails with an
// error or is read leniently, never with a panic. Every growEvery nodes made are reported to grow
// (if not nil), whose error stops the parse. The object's metadata.managedFields is left out: it
// holds no image, and can be most of a large object.
func parseObject(raw []byte, grow func(nodes int) error) (*object, error) {
	p := &parser{data: raw, grow: grow, keys: map[string]*yaml.Node{}}
	n, err := p.value(0, atRoot)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("is %s, want a JSON object", shape(n))
	}
	if p.space(); p.pos < len(p.data) {
		return nil, errors.New("has data after the JSON object")
	}
	return &object{node: n}, nil
}

// growEvery is how many nodes parseObject makes between calls to grow.
const growEvery = 1024

// parser reads JSON into yaml.Nodes. It is a byte scanner because encoding/json's Decoder.Token
// allocates for every token: over a Pod of 4 MB it took 2.5 s and most of the memory.
type parser struct {
	data  []byte
	pos   int
	grow  func(int) error
	nodes int                   // made since grow was last called
	stack []*yaml.Node          // the children of the mappings and lists being read
	keys  map[string]*yaml.Node // the key nodes made so far, by key
}

// Where a value is, to leave metadata.managedFields out.
const (
	atRoot = iota
	atMetadata
	elsewhere
)

// node counts a node made, and says whether to stop.
func (p *parser) node() error {
	if p.nodes++; p.nodes == growEvery && p.grow != nil {
		p.nodes = 0
		return p.grow(growEvery)
	}
	return nil
}

func (p *parser) value(depth, at int) (*yaml.Node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nests deeper than %d levels", maxDepth)
	}
	if err := p.node(); err != nil {
		return nil, err
	}
	switch c := p.peek(); {
	case c == '{':
		return p.mapping(depth, at)
	case c == '[':
		return p.list(depth)
	case c == '"':
		s, err := p.str()
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}, err
	case c == '-' || '0' <= c && c <= '9':
		start := p.pos
		for p.pos < len(p.data) && strings.IndexByte("+-0123456789.eE", p.data[p.pos]) >= 0 {
			p.pos++
		}
		tag := "!!int"
		if bytes.ContainsAny(p.data[start:p.pos], ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(p.data[start:p.pos])}, nil
	}
	for _, lit := range [...]struct{ text, tag string }{{"true", "!!bool"}, {"false", "!!bool"}, {"null", "!!null"}} {
		if bytes.HasPrefix(p.data[p.pos:], []byte(lit.text)) {
			p.pos += len(lit.text)
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: lit.tag, Value: lit.text}, nil
		}
	}
	return nil, p.unexpected()
}

func (p *parser) mapping(depth, at int) (*yaml.Node, error) {
	p.pos++ // {
	base := len(p.stack)
	for end := p.peek() == '}'; !end; {
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if at == atMetadata && k.Value == "managedFields" {
			err = p.skip()
		} else {
			next := elsewhere
			if at == atRoot && k.Value == "metadata" {
				next = atMetadata
			}
			var v *yaml.Node
			if v, err = p.value(depth+1, next); err == nil {
				p.stack = append(p.stack, k, v)
			}
		}
		if err != nil {
			return nil, err
		}
		if end, err = p.next('}'); err != nil {
			return nil, err
		}
	}
	p.pos++ // }
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: p.pop(base)}, nil
}

func (p *parser) list(depth int) (*yaml.Node, error) {
	p.pos++ // [
	base := len(p.stack)
	for end := p.peek() == ']'; !end; {
		v, err := p.value(depth+1, elsewhere)
		if err != nil {
			return nil, err
		}
		p.stack = append(p.stack, v)
		if end, err = p.next(']'); err != nil {
			return nil, err
		}
	}
	p.pos++ // ]
	return &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: p.pop(base)}, nil
}

// key reads a mapping's key and the colon after it. Mappings share the node of a key they have in
// common ("name", "value", "image"): a key node is never written to (the walker and the core edit
// values only), and sharing them takes a third off a large object's tree.
func (p *parser) key() (*yaml.Node, error) {
	if p.peek() != '"' {
		return nil, p.unexpected()
	}
	n, err := p.keyNode()
	if err != nil {
		return nil, err
	}
	if p.peek() != ':' {
		return nil, p.unexpected()
	}
	p.pos++
	return n, nil
}

// keyNode reads a key and returns its node: the one made for the same key before, if any.
func (p *parser) keyNode() (*yaml.Node, error) {
	start := p.pos
	end, plain, err := p.strEnd()
	if err != nil {
		return nil, err
	}
	if n, ok := p.keys[string(p.data[start+1:end-1])]; ok && plain { // looked up with no copy made
		return n, nil
	}
	p.pos = start
	k, err := p.str()
	if err != nil {
		return nil, err
	}
	if n, ok := p.keys[k]; ok {
		return n, nil
	}
	if err := p.node(); err != nil {
		return nil, err
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}
	if len(p.keys) < maxSharedKeys {
		p.keys[k] = n
	}
	return n, nil
}

// maxSharedKeys bounds the distinct keys parseObject shares nodes for; an object with more
// (annotations, labels, data) gets a node of its own for each key after them.
const maxSharedKeys = 4096

// next passes the comma after a value and says false, or says true at close (left unread).
func (p *parser) next(close byte) (bool, error) {
	switch p.peek() {
	case ',':
		p.pos++
		return false, nil
	case close:
		return true, nil
	}
	return false, p.unexpected()
}

// pop returns the children pushed since base, in a slice of their own, and drops them from the stack.
func (p *parser) pop(base int) []*yaml.Node {
	c := slices.Clone(p.stack[base:])
	clear(p.stack[base:])
	p.stack = p.stack[:base]
	return c
}

// str reads a string.
func (p *parser) str() (string, error) {
	start := p.pos
	end, plain, err := p.strEnd()
	if err != nil {
		return "", err
	}
	if plain {
		return string(p.data[start+1 : end-1]), nil
	}
	var s string // escapes, and invalid UTF-8 turned into U+FFFD, as encoding/json reads them
	err = json.Unmarshal(p.data[start:end], &s)
	return s, err
}

// strEnd passes the string at p.pos and returns where it ends (after its closing quote) and whether
// it is plain ASCII with no escapes.
func (p *parser) strEnd() (end int, plain bool, err error) {
	plain = true
	for i := p.pos + 1; i < len(p.data); i++ {
		switch c := p.data[i]; {
		case c == '"':
			p.pos = i + 1
			return p.pos, plain, nil
		case c == '\\':
			plain = false
			i++ // an escaped quote does not end the string
		case c < 0x20:
			return 0, false, p.errorf("control character in a string")
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	return 0, false, p.errorf("unterminated string")
}

// skip passes over one value, making no nodes.
func (p *parser) skip() error {
	depth := 0
	for p.space(); p.pos < len(p.data); p.space() {
		switch c := p.data[p.pos]; {
		case c == '"':
			if _, _, err := p.strEnd(); err != nil {
				return err
			}
		case c == '{' || c == '[':
			depth++
			p.pos++
		case c == ':':
			p.pos++
			continue
		case c == '}' || c == ']' || c == ',':
			if depth == 0 {
				return nil
			}
			if c != ',' {
				depth--
			}
			p.pos++
		default: // a number or literal
			for p.pos < len(p.data) && strings.IndexByte(",:]} \t\r\n", p.data[p.pos]) < 0 {
				p.pos++
			}
			if depth == 0 {
				return nil
			}
			continue
		}
		if depth == 0 {
			return nil
		}
	}
	return p.errorf("unexpected end of JSON")
}

// peek returns the next byte that is not white space, 0 at the end.
func (p *parser) peek() byte {
	if p.space(); p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

func (p *parser) space() {
	for p.pos < len(p.data) && strings.IndexByte(" \t\r\n", p.data[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *parser) unexpected() error {
	if p.pos == len(p.data) {
		return p.errorf("unexpected end of JSON")
	}
	return p.errorf("unexpected %q", p.data[p.pos])
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("at byte %d: %s", p.pos, fmt.Sprintf(format, args...))
}

// place is where a node is in an object.
type place struct {
	ptr    string     // its JSON pointer: "/spec/containers/0/image"
	parent *yaml.Node // the mapping that holds it; nil in a list
	key    string     // its key in parent
}

// locate finds the place of each node of want in the object, in one walk of it.
func (o *object) locate(want map[*yaml.Node]bool) map[*yaml.Node]place {
	found := make(map[*yaml.Node]place, len(want))
	var segs []string // the JSON pointer's segments, escaped, down to the node being looked at
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if len(found) == len(want) {
			return
		}
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				segs = append(segs, escape(k))
				if want[v] {
					found[v] = place{ptr: "/" + strings.Join(segs, "/"), parent: n, key: k}
				}
				walk(v)
				segs = segs[:len(segs)-1]
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				segs = append(segs, strconv.Itoa(i))
				if want[v] {
					found[v] = place{ptr: "/" + strings.Join(segs, "/")}
				}
				walk(v)
				segs = segs[:len(segs)-1]
			}
		}
	}
	walk(o.node)
	return found
}

// unchanged returns the string values of o that old holds, the same, at the same JSON pointer.
func (o *object) unchanged(old *object) map[*yaml.Node]bool {
	same := map[*yaml.Node]bool{}
	var walk func(n, was *yaml.Node)
	walk = func(n, was *yaml.Node) {
		switch {
		case n.Kind != was.Kind:
		case n.Kind == yaml.ScalarNode:
			if n.Tag == "!!str" && was.Tag == "!!str" && n.Value == was.Value {
				same[n] = true
			}
		case n.Kind == yaml.SequenceNode:
			for i := range min(len(n.Content), len(was.Content)) {
				walk(n.Content[i], was.Content[i])
			}
		case n.Kind == yaml.MappingNode && len(was.Content) <= 16:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if w := last(was, n.Content[i].Value); w != nil {
					walk(n.Content[i+1], w)
				}
			}
		case n.Kind == yaml.MappingNode: // many keys: index them
			before := make(map[string]*yaml.Node, len(was.Content)/2)
			for i := 0; i+1 < len(was.Content); i += 2 {
				before[was.Content[i].Value] = was.Content[i+1] // the last of a repeated key counts
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				if w, ok := before[n.Content[i].Value]; ok {
					walk(n.Content[i+1], w)
				}
			}
		}
	}
	walk(o.node, old.node)
	return same
}

// escape escapes a key for a JSON pointer (RFC 6901).
func escape(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

// shape says what n is: "a list", "an object", "a str".
func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "an object"
	}
	return "a " + strings.TrimPrefix(n.Tag, "!!")
}

// podOf names the credentials of obj's pod spec — Pod's spec; the template of a Deployment,
// ReplicaSet, StatefulSet, DaemonSet, Job, ReplicationController or any kind that keeps its pod
// template at spec.template (Knative, Argo Rollouts); a CronJob's job template; a PodTemplate's
// template — or says there is none.
func podOf(kind, namespace string, obj *yaml.Node) (Pod, bool) {
	paths := [][]string{{"spec", "template", "spec"}, {"spec", "jobTemplate", "spec", "template", "spec"}, {"template", "spec"}}
	if kind == "Pod" {
		paths = [][]string{{"spec"}}
	}
	for _, path := range paths {
		spec := obj
		for _, k := range path {
			if spec = walker.Lookup(spec, k); spec == nil {
				break
			}
		}
		if spec == nil || spec.Kind != yaml.MappingNode {
			continue
		}
		p := Pod{Namespace: namespace}
		if sa := walker.Lookup(spec, "serviceAccountName"); sa != nil && sa.Kind == yaml.ScalarNode {
			p.ServiceAccount = sa.Value
		} else if sa := walker.Lookup(spec, "serviceAccount"); sa != nil && sa.Kind == yaml.ScalarNode { // deprecated alias
			p.ServiceAccount = sa.Value
		}
		if list := walker.Lookup(spec, "imagePullSecrets"); list != nil && list.Kind == yaml.SequenceNode {
			for _, ref := range list.Content {
				if n := walker.Lookup(ref, "name"); n != nil && n.Kind == yaml.ScalarNode && n.Value != "" {
					p.PullSecrets = append(p.PullSecrets, n.Value)
				}
			}
		}
		return p, true
	}
	return Pod{}, false
}

// last returns the value of the last key in mapping m (the one that counts in JSON, which has no
// merge keys), or nil.
func last(m *yaml.Node, key string) *yaml.Node {
	for i := len(m.Content) - 2; i >= 0; i -= 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
