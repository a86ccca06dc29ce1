package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/internal/testfiles"
)

// TestAliasesAndTags: what the command line does with the YAML shapes of issue 23. An image
// reached through an alias and a merge key is pinned once, where it is written; an image whose
// anchor is also a label is an error and is left; tagged images fail check and pin; an alias bomb
// is refused at once; a duplicate key in a one-line JSON manifest is shown at its column.
func TestAliasesAndTags(t *testing.T) {
	reg, digests := testRegistry(t, "nginx:1.27")
	pinned := "nginx:1.27@" + digests["nginx:1.27"]
	alias := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [&base {name: a, image: nginx:1.27}, {<<: *base, name: b}]\n  initContainers: [*base]\n"
	var bomb strings.Builder
	bomb.WriteString("apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: bomb}\nspec:\n  containers:\n  - &a0 {name: a, image: nginx:1.27}\n")
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&bomb, "  - &a%d [%s]\n", i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", i-1), 10), ","))
	}
	json := `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j"}, "spec": {"containers": [{"name": "a", "image": "` + pinned + `", "name": "b"}]}}` + "\n"
	for _, tc := range []struct {
		name, file, text string
		args             []string
		code             int
		stdout           string // with FILE for the file's path
		want             string // the file afterwards; "" for unchanged
	}{
		{
			name: "an alias and a merge key: pinned once, at the anchor", file: "alias.yaml", text: alias,
			args: []string{"pin"}, code: 0,
			stdout: "FILE:5:39: info: pinned nginx:1.27 to " + digests["nginx:1.27"] + "\n",
			want:   strings.Replace(alias, "nginx:1.27", pinned, 1),
		},
		{
			name: "an alias and a merge key: check names the field once", file: "alias.yaml", text: alias,
			args: []string{"check"}, code: 1,
			stdout: "FILE:5:39: error: not pinned: nginx:1.27 has no digest (digester would pin it)\n",
		},
		{
			name: "a shared anchor is reported and left", file: "shared.yaml",
			text: "apiVersion: v1\nkind: Pod\nmetadata:\n  name: s\n  labels: {app: &img nginx:1.27}\nspec:\n  containers: [{name: a, image: *img}]\n",
			args: []string{"pin"}, code: 1,
			stdout: "FILE:5:17: error: the image comes from anchor &img at metadata.labels.app, which is no image field: " +
				"pinning the anchor would change that value too, so digester leaves it; to pin the image, write it out instead of sharing it through the anchor\n",
		},
		{
			name: "tagged images fail check", file: "tagged.yaml",
			text: "apiVersion: v1\nkind: Pod\nmetadata: {name: t}\nspec:\n  containers:\n  - name: a\n    image: !custom nginx:1.27\n  - name: b\n    image: !!binary bmdpbng6MS4yNw==\n",
			args: []string{"check"}, code: 1,
			stdout: "FILE:7:12: error: the image is written with the YAML tag !custom: kubectl ignores a tag it does not know and runs the text, " +
				"but other YAML readers may decode it otherwise; digester pins only plain or quoted strings, so it is not pinned; remove the tag\n" +
				"FILE:9:12: error: the image is written with the YAML tag !!binary: kubectl runs the base64-decoded value, not the text a reviewer reads; " +
				"digester pins only plain or quoted strings, so it is not pinned; remove the tag\n",
		},
		{
			name: "tagged images fail pin", file: "tagged.yaml",
			text: "apiVersion: v1\nkind: Pod\nmetadata: {name: t}\nspec:\n  containers:\n  - name: a\n    image: !custom nginx:1.27\n  - name: b\n    image: nginx:1.27\n",
			args: []string{"pin"}, code: 1,
			stdout: "FILE:7:12: error: the image is written with the YAML tag !custom: kubectl ignores a tag it does not know and runs the text, " +
				"but other YAML readers may decode it otherwise; digester pins only plain or quoted strings, so it is not pinned; remove the tag\n",
		},
		{
			name: "an alias bomb is refused at once", file: "bomb.yaml", text: bomb.String(),
			args: []string{"check"}, code: 1,
			stdout: "FILE:12:10: error: alias expansion exceeds the limit: the aliases expand this resource from 85 nodes to 6913585 (alias *a5 alone to 622222); " +
				"yaml.v3 and kubectl refuse a document this alias-heavy (\"document contains excessive aliasing\"), so nothing in it is pinned\n",
		},
		{
			name: "a duplicate key in a one-line JSON manifest is shown at its column", file: "dup.json", text: json,
			args: []string{"check"}, code: 0,
			stdout: `FILE:1:197: warning: key "name" appears twice, on one line, at columns 89 and 197; the last value counts, as with kubectl, and the duplicate is left as it is` + "\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testfiles.Write(t, dir, map[string]string{tc.file: tc.text})
			done := make(chan result, 1)
			go func() { done <- runCLI(t, reg, "", append(tc.args, filepath.Join(dir, tc.file))...) }()
			var got result
			select {
			case got = <-done:
			case <-time.After(20 * time.Second): // a hang guard, not a timing assertion
				t.Fatal("digester hung")
			}
			if got.code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", got.code, tc.code, got.stderr)
			}
			if diff := cmp.Diff(strings.ReplaceAll(tc.stdout, "FILE", filepath.Join(dir, tc.file)), got.stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			want := tc.want
			if want == "" {
				want = tc.text
			}
			if diff := cmp.Diff(map[string]string{tc.file: want}, testfiles.Read(t, dir)); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}
