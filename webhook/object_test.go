package webhook

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"
)

// plain turns a tree parseObject made back into the values encoding/json decodes (with UseNumber).
func plain(n *yaml.Node) any {
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = plain(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		l := []any{}
		for _, c := range n.Content {
			l = append(l, plain(c))
		}
		return l
	}
	switch n.Tag {
	case "!!str":
		return n.Value
	case "!!int", "!!float":
		return json.Number(n.Value)
	case "!!bool":
		return n.Value == "true"
	}
	return nil
}

// FuzzParseObject: for any JSON object, parseObject's tree holds what encoding/json reads (keys,
// strings with their escapes and invalid UTF-8, numbers as written, nesting), but for
// metadata.managedFields, which it leaves out; it never panics.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{
		`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{".":{},"f:image":{}}}}}}],"labels":{"a/b~c":"x"}},"spec":{"containers":[{"name":"a","image":"nginx:1.27"}]}}`,
		` { "a" : [ 1 , -2.5e+3 , true , false , null , "" , [ ] , { } ] , "b\u00e9\"\\\/\n" : "\ud83d\ude00 caf\u00e9" } `,
		"{\"a\":\"\xff\xfe invalid\",\"\xc3\xa9\":1}",
		`{"metadata":{"managedFields":null,"name":"x"},"metadata":{"managedFields":"y"}}`,
		`{"a":{"a":{"a":[[["deep"]]]}},"a":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if !json.Valid(raw) || dec.Decode(&want) != nil {
			return
		}
		obj, err := parseObject(raw, nil)
		m, isObject := want.(map[string]any)
		switch {
		case err != nil && strings.Contains(err.Error(), "nests deeper than"):
			return
		case !isObject:
			if err == nil {
				t.Fatalf("parsed %q as an object", raw)
			}
			return
		case err != nil:
			t.Fatalf("parse %q: %v", raw, err)
		}
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "managedFields")
		}
		if diff := cmp.Diff(want, plain(obj.node)); diff != "" {
			t.Errorf("parse %q (-encoding/json +parseObject):\n%s", raw, diff)
		}
	})
}
