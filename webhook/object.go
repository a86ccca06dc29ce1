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
	// pointers maps each string scalar node to its JSON pointer ("/spec/containers/0/image").
	pointers map[*yaml.Node]string
	// strings maps each JSON pointer of a string value to the value.
	strings map[string]string
}

// maxDepth bounds nesting; the API server's own JSON decoder stops at 10,000 levels, objects stop
// far sooner.
const maxDepth = 1000

// parseObject builds the node tree of a JSON object. Key order is kept.
func parseObject(raw []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	o := &object{pointers: map[*yaml.Node]string{}, strings: map[string]string{}}
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
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(t)}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
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
