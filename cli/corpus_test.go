package cli

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testfiles"
)

// TestCorpus runs check and pin on a copy of real-world manifests (testdata/corpus: Argo
// Workflows, the Tekton catalog, kustomize's examples, microservices-demo; see its SOURCES) with
// every image they name served on loopback. check exits 1 and prints one file:line:col per
// unpinned field; pin then changes exactly those fields and nothing else in any file, which the
// test checks line by line, independently of how pin edits; check then passes for them.
//
// The corpus has a resource with a duplicate key (a warning: it decides no image) and kustomize
// images: entries, which pin gives a digest: line of their own.
func TestCorpus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "corpus")
	testfiles.Write(t, dir, testfiles.Read(t, "../testdata/corpus"))
	before := testfiles.Read(t, dir)

	// check: one line per unpinned field.
	got := runCLI(t, nil, "", "check", "--output", "json", dir)
	if got.code != 1 {
		t.Fatalf("check: exit %d, want 1; stderr:\n%s", got.code, got.stderr)
	}
	var report struct{ Findings []jsonFinding }
	if err := json.Unmarshal([]byte(got.stdout), &report); err != nil {
		t.Fatal(err)
	}
	unpinned := map[string]string{} // file:line:col -> image
	for _, f := range report.Findings {
		if f.Severity == "error" && strings.HasPrefix(f.Message, "not pinned: ") {
			unpinned[loc(f.File, f.Line, f.Column)] = f.Image
		}
	}
	if len(unpinned) < 40 {
		t.Fatalf("check found %d unpinned fields in the corpus, want at least 40", len(unpinned))
	}
	text := runCLI(t, nil, "", "check", dir)
	var textLocs []string
	for _, l := range strings.Split(strings.TrimSpace(text.stdout), "\n") {
		if i := strings.Index(l, ": error: not pinned: "); i > 0 {
			textLocs = append(textLocs, l[:i])
		}
	}
	if len(textLocs) != len(unpinned) {
		t.Errorf("check prints %d file:line:col lines for unpinned fields, want one per field (%d)", len(textLocs), len(unpinned))
	}
	for _, l := range textLocs {
		if _, ok := unpinned[l]; !ok {
			t.Errorf("check prints %s, which is not an unpinned field", l)
		}
	}

	// Serve every image check named.
	reg := registrytest.New(registrytest.WithTLS())
	t.Cleanup(reg.Close)
	served := map[string]bool{}
	for _, img := range unpinned {
		ref, err := name.NewTag(img)
		if err != nil {
			t.Fatalf("%s: %v", img, err)
		}
		key := ref.Context().Name() + ":" + ref.TagStr()
		if served[key] {
			continue
		}
		served[key] = true
		if _, err := reg.PushImage(ref.Context().Name(), ref.TagStr(), types.OCIManifestSchema1); err != nil {
			t.Fatal(err)
		}
	}

	// pin: every unpinned field, and nothing else.
	got = runCLI(t, reg, "", "pin", dir)
	if got.code != 0 {
		t.Fatalf("pin: exit %d; stderr:\n%s", got.code, got.stderr)
	}
	after := testfiles.Read(t, dir)
	changed := 0
	for file, old := range before {
		oldLines, newLines := strings.Split(old, "\n"), strings.Split(after[file], "\n")
		newLines, inserted := dropDigestLines(oldLines, newLines)
		changed += inserted // a kustomize images: entry pinned: its new digest: line
		if len(oldLines) != len(newLines) {
			t.Errorf("%s: %d lines, was %d", file, len(newLines), len(oldLines))
			continue
		}
		for i := range oldLines {
			if oldLines[i] == newLines[i] {
				continue
			}
			changed++
			// The only change allowed: an unpinned image at this line gets "@sha256:<64 hex>".
			var ok bool
			for l, img := range unpinned {
				if !strings.HasPrefix(l, filepath.Join(dir, file)+":") || !strings.HasPrefix(l[len(filepath.Join(dir, file))+1:], itoa(i+1)+":") {
					continue
				}
				j := strings.Index(newLines[i], img+"@sha256:")
				if j < 0 {
					continue
				}
				end := j + len(img) + len("@sha256:") + 64
				if end <= len(newLines[i]) && newLines[i][:j+len(img)]+newLines[i][end:] == oldLines[i] {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s:%d changed beyond an image value:\n-%s\n+%s", file, i+1, oldLines[i], newLines[i])
			}
		}
	}
	t.Logf("corpus: %d files, %d unpinned fields, %d distinct references served, %d lines changed", len(before), len(unpinned), len(served), changed)
	if changed != len(unpinned) {
		t.Errorf("pin changed %d lines, want one per unpinned field (%d)", changed, len(unpinned))
	}

	// Every field check named is now pinned.
	again := runCLI(t, nil, "", "check", dir)
	if strings.Contains(again.stdout, ": error: not pinned: ") {
		t.Errorf("check after pin still finds unpinned fields:\n%s", again.stdout)
	}
	if diff := cmp.Diff(len(before), len(after)); diff != "" {
		t.Errorf("file count (-want +got):\n%s", diff)
	}
}

// digestLine is the line pin adds to a kustomize images: entry.
var digestLine = regexp.MustCompile(`^\s*digest: sha256:[0-9a-f]{64}\r?$`)

// dropDigestLines returns newLines without the digest: lines that are not in oldLines, and how many
// it dropped.
func dropDigestLines(oldLines, newLines []string) ([]string, int) {
	var out []string
	dropped := 0
	for i, j := 0, 0; i < len(newLines); i++ {
		if (j >= len(oldLines) || newLines[i] != oldLines[j]) && digestLine.MatchString(newLines[i]) {
			dropped++
			continue
		}
		out = append(out, newLines[i])
		j++
	}
	return out, dropped
}

func loc(file string, line, col int) string { return file + ":" + itoa(line) + ":" + itoa(col) }

func itoa(n int) string { return strconv.Itoa(n) }
