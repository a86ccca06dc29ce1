package e2e_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// roundTripTemplate holds what a YAML writer changes on a round trip: a folded scalar with
// more-indented lines (from argo-workflows' examples/conditionals-complex.yaml; yaml.v3 adds a
// blank line to it on every write), a literal block, comments at several depths, a comment
// between documents.
const roundTripTemplate = `# Flip a coin twice.
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: coinflip
spec:
  entrypoint: coinflip
  templates:
  - name: coinflip
    steps:
    # evaluate the result in parallel
    - - name: heads-tails-or-twice-tails
        template: heads
        when: >-
          ( {{steps.flip-coin.outputs.result}} == heads &&
            {{steps.flip-again.outputs.result}} == tails
          ) ||
          ( {{steps.flip-coin.outputs.result}} == tails &&
            {{steps.flip-again.outputs.result}} == tails )
  - name: heads
    container:
      image: HOST/argo/alpine:3.7{pin}
      command: [sh, -c]
      args: ["echo \"it was heads\""]
    script:
      image: HOST/argo/alpine:3.7{pin}
      source: |
        import random
        result = "heads" if random.randint(0,1) == 0 else "tails"
          # indented more
        print(result)
      # after the script
# between documents
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  folded: >
    one
      two

    three
`

// TestKptEvalAddsNothing: kpt fn eval with digester changes a package as kpt's own round trip
// does (kpt fn eval with cat, a function that returns its input) and pins its images: nothing
// more. A function that parses and writes its output adds a blank line to the folded scalar on
// every run, on top of kpt's.
func TestKptEvalAddsNothing(t *testing.T) {
	kpt := tool(t, "kpt")
	s := newSpace(t)
	digests := s.push(t, map[string]types.MediaType{"argo/alpine:3.7": types.OCIManifestSchema1})
	in, want := s.fixture(t, roundTripTemplate, digests)
	files := func(text string) map[string]string {
		return map[string]string{"Kptfile": shopTemplate["Kptfile"], "workflow.yaml": text}
	}
	dir := t.TempDir()
	writeFiles(t, filepath.Join(dir, "by-cat"), files(in))
	writeFiles(t, filepath.Join(dir, "by-cat-pinned"), files(want))
	writeFiles(t, filepath.Join(dir, "by-digester"), files(in))
	for pkg, fn := range map[string]string{"by-cat": "cat", "by-cat-pinned": "cat", "by-digester": digester} {
		if out := run(t, env{}, nil, dir, kpt, "fn", "eval", pkg, "--exec", fn); out.code != 0 {
			t.Fatalf("kpt fn eval %s --exec %s exited %d:\n%s%s", pkg, fn, out.code, out.stdout, out.stderr)
		}
	}
	read := func(pkg string) string {
		b, err := os.ReadFile(filepath.Join(dir, pkg, "workflow.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	kptOnly, pinned := read("by-cat"), read("by-digester")
	if kptOnly == in {
		t.Fatal("kpt's round trip changed nothing: the fixture no longer shows what a writer changes")
	}
	if diff := cmp.Diff(read("by-cat-pinned"), pinned); diff != "" {
		t.Errorf("workflow.yaml after digester, against kpt's round trip of the pinned file (-want +got):\n%s", diff)
	}
	if !strings.Contains(pinned, "@"+digests["argo/alpine:3.7"]) {
		t.Errorf("workflow.yaml is not pinned:\n%s", pinned)
	}
}
