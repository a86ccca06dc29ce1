package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/digester/digester/config"
	"github.com/digester/digester/pin"
)

// printReport writes the findings in the chosen format: "text" (file:line:col: severity: message,
// which editors and CI logs link to the place), "github" (GitHub Actions workflow commands, which
// annotate the pull request) or "json" (every field, for tools). Text and github print one line
// per group (pin.Report.Groups) unless perField.
func printReport(w io.Writer, format string, rep *pin.Report, summary string, ok, perField bool) error {
	if format == "json" {
		return writeJSON(w, rep, summary, ok)
	}
	line := func(g pin.Group) {
		f := g.Findings[0]
		if format == "github" {
			fmt.Fprintln(w, githubCommand(g, f))
			return
		}
		fmt.Fprintf(w, "%s%s: %s\n", location(g, f), g.Severity, g.Message)
	}
	if perField {
		for _, f := range rep.Findings {
			line(pin.Group{Severity: f.Severity, Message: f.Message, Findings: []pin.Finding{f}, Fields: 1})
		}
		return nil
	}
	for _, g := range rep.Groups() {
		line(g)
	}
	return nil
}

// location is "file:line:col: " for a finding in a file, "" otherwise. A registry's group is
// about no one place.
func location(g pin.Group, f pin.Finding) string {
	if f.Object == nil || f.Object.File == "" || g.Registry != "" {
		return ""
	}
	if f.Line == 0 {
		return f.Object.File + ": "
	}
	return fmt.Sprintf("%s:%d:%d: ", f.Object.File, f.Line, f.Column)
}

// githubCommand is a group as a GitHub Actions annotation:
// ::error file=web.yaml,line=17,col=18::message.
func githubCommand(g pin.Group, f pin.Finding) string {
	cmd := map[pin.Severity]string{pin.Info: "notice", pin.Warning: "warning", pin.Error: "error"}[g.Severity]
	var props []string
	if f.Object != nil && f.Object.File != "" && f.Object.File != "<stdin>" && g.Registry == "" {
		props = append(props, "file="+escapeProperty(f.Object.File))
		if f.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", f.Line), fmt.Sprintf("col=%d", f.Column))
		}
	}
	props = append(props, "title=digester")
	return "::" + cmd + " " + strings.Join(props, ",") + "::" + escapeData(g.Message)
}

// escapeData and escapeProperty escape as the GitHub Actions toolkit does.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// jsonFinding is a finding as --output json writes it.
type jsonFinding struct {
	Severity string `json:"severity"`
	Message  string `json:"message"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Resource *struct {
		APIVersion string `json:"apiVersion,omitempty"`
		Kind       string `json:"kind,omitempty"`
		Namespace  string `json:"namespace,omitempty"`
		Name       string `json:"name,omitempty"`
	} `json:"resource,omitempty"`
	Path   string `json:"path,omitempty"`
	Image  string `json:"image,omitempty"`
	Pinned string `json:"pinned,omitempty"`
}

// writeJSON writes every finding and the summary as one JSON object.
func writeJSON(w io.Writer, rep *pin.Report, summary string, ok bool) error {
	out := struct {
		OK       bool          `json:"ok"`
		Summary  any           `json:"summary"`
		Findings []jsonFinding `json:"findings"`
	}{
		OK: ok,
		Summary: struct {
			Message string `json:"message"`
			pin.Summary
		}{summary, rep.Summary},
		Findings: []jsonFinding{},
	}
	for _, f := range rep.Findings {
		j := jsonFinding{Severity: f.Severity.String(), Message: f.Message, Line: f.Line, Column: f.Column, Path: f.Path, Image: f.Image, Pinned: f.Pinned}
		if f.Object != nil {
			j.File = f.Object.File
		}
		if f.Object != nil && f.ID != (pin.ID{}) {
			j.Resource = &struct {
				APIVersion string `json:"apiVersion,omitempty"`
				Kind       string `json:"kind,omitempty"`
				Namespace  string `json:"namespace,omitempty"`
				Name       string `json:"name,omitempty"`
			}{f.ID.APIVersion, f.ID.Kind, f.ID.Namespace, f.ID.Name}
		}
		out.Findings = append(out.Findings, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "(>)" as written, not "(\u003e)"
	return enc.Encode(out)
}

// synopsis is the short usage printed with a command-line error.
const synopsis = `Usage:
  digester pin [flags] PATH...     pin the image fields under each file or directory, in place
  digester check [flags] PATH...   print each image field that pin would change; exit 1 if any
  digester pin [flags] -           read YAML documents on stdin, write them pinned on stdout
  digester < resource-list.yaml    run as a KRM function (kpt, kustomize): a ResourceList on stdin
  digester --version               print the version and the commit it was built from
`

// flagHelp is how each setting reads as a flag, where the functionConfig's words do not fit.
var flagHelp = map[string]struct{ arg, doc string }{
	"skip-prefixes":        {"LIST", "images to leave alone: prefixes, colon- or comma-separated, matched on path boundaries against the reference as written and as docker.io/library/…; may be repeated"},
	"concurrency":          {"N", ""},
	"registry-concurrency": {"N", ""},
	"timeout":              {"DURATION", ""},
	"deadline":             {"DURATION", ""},
	"insecure-registries":  {"LIST", "registries (host or host:port, comma-separated) that may be reached over plain HTTP or with unverified TLS; loopback always may use plain HTTP; may be repeated"},
	"on-error":             {"fail|warn", ""},
	"mode":                 {"pin|check", "check: change nothing, print each field pin would change, exit 1 if any; digester check is digester pin --mode check"},
	"pinned":               {"keep|verify|refresh", ""},
	"lock":                 {"update|frozen", ""},
	"lock-file":            {"FILE", ""},
	"report":               {"references|fields", "pin: references prints one line per distinct reference and one per registry that is down, fields one per image field (check always prints one per field)"},
}

// Usage is the help text: how to run digester, and every flag.
func Usage() string {
	var b strings.Builder
	b.WriteString(`digester pins every container image in Kubernetes manifests to its digest:
nginx:1.27 becomes nginx:1.27@sha256:…, in every resource, whatever its kind.

` + synopsis + `
A PATH that is a directory is read as kpt reads a package: its *.yaml and *.yml files,
subdirectories included, except what a .krmignore file lists. The items of a kind: List
are read too. Only image values change: comments, quoting, indentation and line endings
stay as they are. If any image cannot be pinned, no file is written (see --on-error).

Flags (flags and paths may come in any order):
  --config FILE
      read settings from a functionConfig (a ConfigMap or an fn.kpt.dev/v1alpha1
      Digester object); flags given as well override it
  --output text|json|github
      text: one line per finding, file:line:col: severity: message (default)
      github: GitHub Actions annotations (::error file=…,line=…,col=…::message)
      json: every finding and the summary, as one JSON object
`)
	for _, k := range config.Keys {
		h := flagHelp[k.Key]
		if h.arg == "" {
			h.arg = "VALUE"
		}
		if h.doc == "" {
			h.doc = strings.ReplaceAll(k.Doc, "`", "")
		}
		if k.Default != `""` {
			h.doc += " (default " + k.Default + ")"
		}
		fmt.Fprintf(&b, "  --%s %s\n", k.Key, h.arg)
		b.WriteString(wrap(h.doc, "      ", 90))
	}
	b.WriteString(`  --help
      print this help

The SKIP_PREFIXES environment variable (colon-separated) adds to --skip-prefixes.
Credentials come from the docker config ($DOCKER_CONFIG or ~/.docker/config.json),
its credential helpers included.

Exit status: 0 done (check: nothing to pin); 1 an image could not be pinned (check: an
image field is not pinned); 2 the command line or its configuration is wrong.

Examples:
  digester pin deploy/
  digester check --output github deploy/
  digester pin --skip-prefixes registry.internal.example/ --on-error warn deploy/ base/
  kustomize build overlays/prod | digester pin - > prod.yaml
  kpt fn eval deploy/ --exec digester -- on-error=warn
`)
	return b.String()
}

// wrap breaks text into lines of at most width characters, each starting with indent.
func wrap(text, indent string, width int) string {
	var b strings.Builder
	line := indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	b.WriteString(line + "\n")
	return b.String()
}
