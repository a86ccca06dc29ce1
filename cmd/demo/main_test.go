package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDemo runs make demo's program on example/ with a freshly built digester: the diff pins
// every image under the name the package gives it (localhost:5000, which the in-process registry
// answers for as its mirror), and the summary line is the run's summary.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "digester")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out strings.Builder
	if err := run(&out, bin, "../../example"); err != nil {
		t.Fatal(err)
	}
	diff := out.String()[strings.Index(out.String(), "the diff:"):]
	pinned := regexp.MustCompile(`(?m)^\+.*image: "?localhost:5000/[^@"]+@sha256:[0-9a-f]{64}`).FindAllString(diff, -1)
	if len(pinned) != 7 || strings.Contains(diff, "127.0.0.1") {
		t.Errorf("the diff should pin example/'s 7 image fields under localhost:5000 names:\n%s", diff)
	}
	if n := strings.Count(diff, "\nsummary: "); n != 1 {
		t.Errorf("%d summary lines, want one:\n%s", n, diff)
	}
	if !regexp.MustCompile(`(?m)^summary: pinned 7 image fields \(6 distinct references, 7 registry requests\); 0 already pinned, 0 skipped by prefix$`).MatchString(diff) {
		t.Errorf("no summary line, or not the run's summary:\n%s", diff)
	}
}
