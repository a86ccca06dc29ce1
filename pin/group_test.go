package pin_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/pin"
)

// TestGroups: findings that say the same thing become one group; a registry that fails the same
// way for several references is one group naming them, up to a handful.
func TestGroups(t *testing.T) {
	obj := func(file string) *pin.Object { return &pin.Object{File: file} }
	field := func(sev pin.Severity, file string, line int, image, msg string) pin.Finding {
		return pin.Finding{Severity: sev, Object: obj(file), ID: pin.ID{Kind: "Pod", Name: "p"}, Path: "spec.containers[0].image", Line: line, Column: 12, Image: image, Message: msg}
	}
	down := "cannot connect to registry 127.0.0.1:1: connection refused"
	var findings []pin.Finding
	for i := range 7 {
		img := fmt.Sprintf("127.0.0.1:1/app%d:v1", i)
		f := field(pin.Error, "down.yaml", i+1, img, "cannot pin "+img+": "+down)
		f.Registry, f.Reason = "127.0.0.1:1", down
		findings = append(findings, f)
	}
	missing := `cannot pin nginx:1.277: tag not found: "1.277" in repository library/nginx on registry index.docker.io`
	for i := range 7 {
		findings = append(findings, field(pin.Error, fmt.Sprintf("f%d.yaml", i), 3, "nginx:1.277", missing))
	}
	pinned := "pinned nginx:1.27 to sha256:aa"
	findings = append(findings, field(pin.Info, "a.yaml", 5, "nginx:1.27", pinned), field(pin.Info, "b.yaml", 5, "nginx:1.27", pinned), field(pin.Info, "b.yaml", 9, "nginx:1.27", pinned))
	findings = append(findings, field(pin.Warning, "a.yaml", 7, "${IMAGE}", "a warning"))
	redis := "pinned redis:7 to sha256:bb" // 8 fields in 7 files, a file named twice apart
	for _, file := range []string{"r0.yaml", "r1.yaml", "r0.yaml", "r2.yaml", "r3.yaml", "r4.yaml", "r5.yaml", "r6.yaml"} {
		findings = append(findings, field(pin.Info, file, 4, "redis:7", redis))
	}
	noFile := field(pin.Info, "", 0, "redis:7", redis)
	noFile.Object = nil
	findings = append(findings, noFile)

	at := func(f pin.Finding) string {
		if f.Object == nil {
			return "no file"
		}
		return fmt.Sprintf("%s:%d", f.Object.File, f.Line)
	}
	var got []string
	for _, g := range (&pin.Report{Findings: findings}).Groups() {
		got = append(got, fmt.Sprintf("%s|%d|%s|%s", g.Severity, g.Fields, g.Registry, g.Message))
		var kept []string
		for _, f := range g.Findings {
			kept = append(kept, at(f))
		}
		var first []string // the group's first fields, a Handful at most
		for _, f := range findings {
			if strings.HasPrefix(g.Message, f.Message) || g.Registry != "" && f.Registry == g.Registry {
				first = append(first, at(f))
			}
		}
		if diff := cmp.Diff(first[:min(len(first), pin.Handful)], kept); diff != "" {
			t.Errorf("group %q keeps (-want +got):\n%s", g.Message, diff)
		}
	}
	want := []string{
		"error|7|127.0.0.1:1|" + down + ": 7 references cannot be pinned (7 image fields): 127.0.0.1:1/app0:v1, 127.0.0.1:1/app1:v1, 127.0.0.1:1/app2:v1, 127.0.0.1:1/app3:v1, 127.0.0.1:1/app4:v1, and 2 more",
		"error|7||" + missing + " (7 fields: Pod p spec.containers[0].image in f0.yaml:3, Pod p spec.containers[0].image in f1.yaml:3, Pod p spec.containers[0].image in f2.yaml:3, Pod p spec.containers[0].image in f3.yaml:3, Pod p spec.containers[0].image in f4.yaml:3, and 2 more)",
		"info|3||" + pinned + " (3 image fields, in a.yaml, b.yaml)",
		"warning|1||a warning",
		"info|9||" + redis + " (9 image fields, in r0.yaml, r1.yaml, r2.yaml, r3.yaml, r4.yaml, and 3 more)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

// TestSummaryPlurals: one of a thing is singular.
func TestSummaryPlurals(t *testing.T) {
	tests := []struct {
		s    pin.Summary
		want string
	}{
		{pin.Summary{Pinned: 1, Distinct: 1, Requests: 1}, "pinned 1 image field (1 distinct reference, 1 registry request); 0 already pinned, 0 skipped by prefix"},
		{pin.Summary{Pinned: 2, Distinct: 2, Requests: 3}, "pinned 2 image fields (2 distinct references, 3 registry requests); 0 already pinned, 0 skipped by prefix"},
		{pin.Summary{Failed: 1, Distinct: 1, Requests: 2}, "pinned nothing: 1 image field could not be pinned, so the package is returned unchanged (1 distinct reference, 2 registry requests)"},
		{pin.Summary{Pinned: 1, Templated: 1}, "pinned 1 image field (0 distinct references, 0 registry requests); 0 already pinned, 0 skipped by prefix; 1 image field with a template variable left as written"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, tt.s.String()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
}

// TestGroupsHandful: a group of exactly Handful fields names them all, with no "and 0 more".
func TestGroupsHandful(t *testing.T) {
	missing := `cannot pin nginx:1.277: tag not found`
	var findings []pin.Finding
	for i := range pin.Handful {
		findings = append(findings, pin.Finding{Severity: pin.Error, Object: &pin.Object{File: fmt.Sprintf("f%d.yaml", i)}, ID: pin.ID{Kind: "Pod", Name: "p"},
			Path: "spec.containers[0].image", Line: 3, Image: "nginx:1.277", Message: missing})
	}
	groups := (&pin.Report{Findings: findings}).Groups()
	want := missing + " (5 fields: Pod p spec.containers[0].image in f0.yaml:3, Pod p spec.containers[0].image in f1.yaml:3, Pod p spec.containers[0].image in f2.yaml:3, Pod p spec.containers[0].image in f3.yaml:3, Pod p spec.containers[0].image in f4.yaml:3)"
	if len(groups) != 1 || groups[0].Message != want {
		t.Errorf("groups = %+v\nwant one with message %q", groups, want)
	}
}
