package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
)

// TestBadInput feeds the built binary input people and tools get wrong. Each case must end in a
// clear message naming where the problem is and a meaningful exit code: never a panic, never a
// half-pinned item.
func TestBadInput(t *testing.T) {
	bin := buildBinary(t)
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	d, err := reg.PushImage("app", "v1", types.OCIManifestSchema1)
	if err != nil {
		t.Fatal(err)
	}
	img := reg.Host + "/app:v1"
	head := "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"
	pod := func(spec string) string {
		return head + "- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n    namespace: ns\n  spec:\n" + spec
	}
	tests := []struct {
		name       string
		in         string
		wantCode   int
		wantStderr string   // a line stderr must contain
		wantOut    []string // strings stdout must contain
		unchanged  bool     // items must come back exactly as they went in
	}{
		{
			name:       "malformed YAML",
			in:         pod("    containers: [{image: " + img + "\n"),
			wantCode:   1,
			wantStderr: "yaml: line 9: did not find expected ',' or '}'",
		},
		{
			name:       "item that is not an object",
			in:         head + "- just a string\n- {kind: Pod}\n",
			wantCode:   1,
			wantStderr: `digester: ResourceList items[0] (line 4) is the scalar "just a string", not a resource object`,
		},
		{
			name:       "not UTF-8",
			in:         pod("    containers: [{image: "+img+"}]\n") + "# caf\xe9\n",
			wantCode:   1,
			wantStderr: "digester: input is not UTF-8: byte 0xe9 on line 11",
		},
		{
			name:       "not a ResourceList",
			in:         "apiVersion: v1\nkind: Pod\n",
			wantCode:   1,
			wantStderr: `digester: stdin holds a Pod, not a ResourceList: with no arguments digester is a KRM function and reads what kpt sends; to pin plain YAML, run digester pin - < FILE, or digester pin FILE`,
		},
		{
			name:       "too deeply nested",
			in:         pod("    containers: [{image: " + img + "}]\n    x: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n"),
			wantCode:   1,
			wantStderr: "exceeded max depth",
		},
		{
			name:       "duplicate image keys that disagree",
			in:         pod("    containers:\n    - name: a\n      image: " + img + "\n      image: " + reg.Host + "/app:v2\n"),
			wantCode:   1,
			wantStderr: `[error] v1/Pod/ns/p spec.containers[0].image: key "image" appears twice, here and 1 line above, with different images`,
			unchanged:  true,
		},
		{
			name:     "duplicate keys kubectl takes: warnings, the resource pinned",
			in:       pod("    containers:\n    - name: a\n      name: b\n      image: " + img + "\n      image: " + img + "\n"),
			wantCode: 0,
			wantOut: []string{
				"      image: " + img + "\n      image: " + img + "@" + d.String() + "\n",
				`message: key "name" appears twice, here and 1 line above; the last value counts, as with kubectl, and the duplicate is left as it is`,
			},
		},
		{
			name:       "invalid references",
			in:         pod("    containers:\n    - image: 'nginx:'\n    - image: " + img + "\n"),
			wantCode:   1,
			wantStderr: `[error] v1/Pod/ns/p spec.containers[0].image: "nginx:" is not a valid image reference: the tag after ':' is empty`,
			unchanged:  true,
		},
		{
			name:     "containers is a map, image a number: warnings, the rest pinned",
			in:       pod("    initContainers: {a: {image: " + img + "}}\n    containers:\n    - image: 1.5\n    - image: " + img + "\n"),
			wantCode: 0,
			wantOut: []string{
				"image: " + img + "@" + d.String(),
				"message: is a mapping, want a list of containers",
				"path: spec.initContainers",
				"message: is a number (1.5), want a string",
			},
		},
		{
			name:     "anchor and alias on image fields",
			in:       pod("    initContainers: [{name: i, image: &img " + img + "}]\n    containers: [{name: c, image: *img}]\n"),
			wantCode: 0,
			wantOut:  []string{"[{name: i, image: &img " + img + "@" + d.String() + "}]", "image: *img"}, // the value edited in place, plain as written
		},
		{
			name:     "JSON: read whole, written by yaml.v3",
			in:       `{"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "` + img + `"}]}}]}`,
			wantCode: 0,
			wantOut:  []string{`"image": "` + img + "@" + d.String() + `"`, "pinned 1 image field"},
		},
		{
			name:     "image in a block scalar: the resource written anew",
			in:       pod("    containers:\n    - name: c\n      image: |-\n        " + img + "\n      args: [\"a\"]\n"),
			wantCode: 0,
			wantOut:  []string{"image: |-\n        " + img + "@" + d.String() + "\n      args: [\"a\"]\n", "pinned 1 image field"},
		},
		{
			name:     "image in a block scalar, and a value a YAML writer would change",
			in:       pod("    containers:\n    - name: c\n      image: |-\n        " + img + "\n      args:\n      - >-\n        ( a &&\n          b )\n"),
			wantCode: 1,
			wantStderr: `[error] v1/Pod/ns/p spec.containers[0].image: cannot write the pin of ` + img + `: the value is a block scalar (|), so it cannot be edited in place, ` +
				`and written anew the resource would change its value at spec.containers[0].args[0]; write it as a plain or quoted string on one line`,
			wantOut:   []string{"pinned nothing: 1 image field could not be pinned, so the package is returned unchanged"},
			unchanged: true,
		},
		{
			name: "the same under on-error: warn: that resource left as it is, a warning, the run goes on",
			in: pod("    containers:\n    - name: c\n      image: |-\n        "+img+"\n      args:\n      - >-\n        ( a &&\n          b )\n") +
				"functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\n  data:\n    on-error: warn\n",
			wantCode:  0,
			wantOut:   []string{"message: 'cannot write the pin of " + img + ": the value is a block scalar (|)", "severity: warning", "pinned 0 image fields", "1 left unpinned (on-error: warn)"},
			unchanged: true,
		},
		{
			name:     "empty input",
			in:       "",
			wantCode: 0,
			wantOut:  []string{"kind: ResourceList", "pinned 0 image fields"},
		},
		{
			name:     "large document",
			in:       head + "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: big}\n  data:\n    blob: " + strings.Repeat("x", 8<<20) + "\n",
			wantCode: 0,
			wantOut:  []string{"name: big", "pinned 0 image fields"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, bin, tt.in)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("panicked:\n%s", stderr)
			}
			if tt.wantStderr != "" && !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr)
			}
			if tt.wantCode != 0 && !tt.unchanged && stdout != "" {
				t.Errorf("stdout = %q, want nothing for input that cannot be read", stdout)
			}
			if tt.unchanged {
				if diff := cmp.Diff(itemsYAML(t, []byte(tt.in)), itemsYAML(t, []byte(stdout))); diff != "" {
					t.Errorf("items changed (-want +got):\n%s", diff)
				}
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}
