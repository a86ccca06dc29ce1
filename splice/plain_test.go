package splice

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzPlain: whatever plain accepts, by its shortcut for references (which skips parsing) or
// not, reads back as the same string, written plain in block and in flow context.
func FuzzPlain(f *testing.F) {
	for _, s := range []string{"nginx:1.27@sha256:abc", "a@b", "1@2", "0x1@", "127.0.0.1:5000/app@sha256:00", "a:@b", "-a@b", "a@b:", "y@", "2001-12-14@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plain(s) {
			return
		}
		for _, doc := range []string{"k: " + s + "\n", "[" + s + "]", "{k: " + s + "}"} {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
				t.Fatalf("%q: %v", doc, err)
			}
			v := n.Content[0].Content[len(n.Content[0].Content)-1]
			if v.Value != s || v.ShortTag() != "!!str" || strings.Contains(doc, "\n\n") {
				t.Fatalf("%q reads back as %s %q", doc, v.ShortTag(), v.Value)
			}
		}
	})
}
