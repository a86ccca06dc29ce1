package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/walker"
)

// object is an admitted object as the pinning core reads it: a YAML node tree built from its JSON,
// with the JSON pointer of every string value, so that the fields the core pins become JSONPatch
// paths whatever the walker calls them.
type object struct {
	node *yaml.Node
	// pointers maps each scalar and mapping node to its JSON pointer ("/spec/containers/0/image").
	pointers map[*yaml.Node]string
	// strings maps each JSON pointer of a string value to the value.
	strings map[string]string
	// mappings maps each JSON pointer of an object to its node.
	mappings map[string]*yaml.Node
}

// maxDepth bounds nesting; the API server's own JSON decoder stops at 10,000 levels, objects stop
// far sooner.
const maxDepth = 1000

// parseObject builds the node tree of a JSON object. Key order is kept.
func parseObject(raw []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	o := &object{pointers: map[*yaml.Node]string{}, strings: map[string]string{}, mappings: map[string]*yaml.Node{}}
	n, err := o.value(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("is %s, want a JSON object", describe(n))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("has data after the JSON object")
	}
	o.node = n
	return o, nil
}

func (o *object) value(dec *json.Decoder, ptr string, depth int) (*yaml.Node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nests deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			o.pointers[m], o.mappings[ptr] = ptr, m
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string) // the decoder gives object keys as strings or fails
				v, err := o.value(dec, ptr+"/"+escape(k), depth+1)
				if err != nil {
					return nil, err
				}
				m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
			}
			_, err := dec.Token()
			return m, err
		case '[':
			s := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
			for i := 0; dec.More(); i++ {
				v, err := o.value(dec, ptr+"/"+strconv.Itoa(i), depth+1)
				if err != nil {
					return nil, err
				}
				s.Content = append(s.Content, v)
			}
			_, err := dec.Token()
			return s, err
		}
	case string:
		n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: t}
		o.pointers[n] = ptr
		o.strings[ptr] = t
		return n, nil
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(t), ".eE") {
			tag = "!!float"
		}
		return o.scalar(ptr, tag, string(t)), nil
	case bool:
		return o.scalar(ptr, "!!bool", strconv.FormatBool(t)), nil
	case nil:
		return o.scalar(ptr, "!!null", "null"), nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// scalar makes a scalar node that is no string, at ptr.
func (o *object) scalar(ptr, tag, value string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
	o.pointers[n] = ptr
	return n
}

// patch returns the JSONPatch operations that write what the core set in n, a field's node: a
// string replaced (a reference, a Kptfile function's value), or, in a mapping, each string
// value that changed replaced and each key the core added (a digest) added.
func (o *object) patch(n *yaml.Node) []patchOp {
	ptr, ok := o.pointers[n]
	switch {
	case !ok:
		return nil
	case n.Kind == yaml.ScalarNode:
		return []patchOp{{Op: "replace", Path: ptr, Value: n.Value}}
	}
	var ops []patchOp
	for i := 0; i+1 < len(n.Content); i += 2 {
		v := n.Content[i+1]
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
			continue
		}
		switch at, known := o.pointers[v]; {
		case !known:
			ops = append(ops, patchOp{Op: "add", Path: ptr + "/" + escape(n.Content[i].Value), Value: v.Value})
		case o.strings[at] != v.Value || !o.isString(at):
			ops = append(ops, patchOp{Op: "replace", Path: at, Value: v.Value})
		}
	}
	return ops
}

func (o *object) isString(ptr string) bool {
	_, ok := o.strings[ptr]
	return ok
}

// unchanged reports whether the field at n is as it was in old, the object before an UPDATE: a
// string with the same value, a mapping with the same keys and scalar values.
func (o *object) unchanged(old *object, n *yaml.Node) bool {
	ptr, ok := o.pointers[n]
	switch {
	case !ok:
		return false
	case n.Kind == yaml.ScalarNode:
		was, ok := old.strings[ptr]
		return ok && n.Tag == "!!str" && was == n.Value
	}
	was := old.mappings[ptr]
	if was == nil || len(was.Content) != len(n.Content) {
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		w := walker.Lookup(was, k.Value)
		if w == nil || v.Kind != w.Kind || v.Kind == yaml.ScalarNode && (v.Value != w.Value || v.Tag != w.Tag) {
			return false
		}
	}
	return true
}

// escape escapes a key for a JSON pointer (RFC 6901).
func escape(k string) string {
	if !strings.ContainsAny(k, "~/") {
		return k
	}
	return strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
}

func describe(n *yaml.Node) string {
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
