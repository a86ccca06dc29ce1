package model_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"go.yaml.in/yaml/v3"
	"sigs.k8s.io/kustomize/kyaml/kio"

	"github.com/digester/digester/cli"
	"github.com/digester/digester/config"
	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

// settings are one run's settings, given to every front end in its own syntax: flags to the
// command line and the webhook, a ConfigMap functionConfig to the KRM function.
type settings struct {
	Platform string   // "", linux/amd64, linux/arm64
	Skip     []string // skip-prefixes
	Lock     string   // "", update, frozen
	Pinned   string   // keep, verify, refresh
	Mirrors  string   // registry-mirrors, "" for none
	Fallback bool     // mirror-fallback
	OnError  string   // fail, warn
	Check    bool     // mode: check
}

// pairs are the settings as key=value, defaults left out.
func (s settings) pairs(withLock bool) [][2]string {
	var out [][2]string
	add := func(k, v string) { out = append(out, [2]string{k, v}) }
	if s.Platform != "" {
		add("platform", s.Platform)
	}
	if len(s.Skip) > 0 {
		add("skip-prefixes", strings.Join(s.Skip, ","))
	}
	if s.Lock != "" && withLock {
		add("lock", s.Lock)
	}
	if s.Pinned != "" && s.Pinned != "keep" {
		add("pinned", s.Pinned)
	}
	if s.Mirrors != "" {
		add("registry-mirrors", s.Mirrors)
		if s.Fallback {
			add("mirror-fallback", "true")
		}
	}
	if s.OnError == "warn" {
		add("on-error", "warn")
	}
	return out
}

// cliArgs is the command line: digester pin|check FLAGS.
func (s settings) cliArgs() []string {
	args := []string{"pin"}
	if s.Check {
		args[0] = "check"
	}
	for _, p := range s.pairs(true) {
		args = append(args, "--"+p[0], p[1])
	}
	return args
}

// String is the settings as a command line, for messages.
func (s settings) String() string { return "digester " + strings.Join(s.cliArgs(), " ") }

// configMap is the settings as the functionConfig `kpt fn eval -- key=value` sends.
func (s settings) configMap() string {
	var b strings.Builder
	b.WriteString("functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: function-input\n  data:\n")
	pairs := s.pairs(true)
	if s.Check {
		pairs = append(pairs, [2]string{"mode", "check"})
	}
	if len(pairs) == 0 {
		return "functionConfig:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: function-input\n"
	}
	for _, p := range pairs {
		fmt.Fprintf(&b, "    %s: %q\n", p[0], p[1])
	}
	return b.String()
}

// webhookArgs are the settings as digester-webhook's flags (it has no lock).
func (s settings) webhookArgs() []string {
	var args []string
	for _, p := range s.pairs(false) {
		args = append(args, "--"+p[0]+"="+p[1])
	}
	if s.Check {
		args = append(args, "--mode=check")
	}
	return args
}

// result is what one front end did with a package.
type result struct {
	front  string
	exit   int
	values map[*field]string // every image field after the run
	// lock is the DigestLock's entries after the run (reference as written -> digest), nil if
	// the package has none.
	lock map[string]string
	// files are the command line's files after the run; untouched reports that none changed.
	files     map[string]string
	untouched bool
	// bytesOK is false for a file in which a byte outside image values changed (command line).
	bytesOK map[string]bool
	report  *jsonReport // the command line's --output json
	stdout  string
	stderr  string
	hosts   []string // the Host of each registry request the run made
}

// jsonReport is what --output json prints.
type jsonReport struct {
	OK      bool `json:"ok"`
	Summary struct {
		Message   string `json:"message"`
		Failed    int    `json:"failed"`
		Pinned    int    `json:"pinned"`
		Refreshed int    `json:"refreshed"`
		Distinct  int    `json:"distinctReferences"`
		Requests  int    `json:"registryRequests"`
	} `json:"summary"`
	Findings []struct {
		Severity string `json:"severity"`
		Message  string `json:"message"`
		File     string `json:"file"`
		Path     string `json:"path"`
		Image    string `json:"image"`
		Pinned   string `json:"pinned"`
	} `json:"findings"`
}

// messages are the report's findings' messages.
func (r *result) messages() []string {
	var out []string
	if r.report != nil {
		for _, f := range r.report.Findings {
			out = append(out, f.Severity+": "+f.Message)
		}
	}
	return out
}

// resolverOptions point a front end run in-process at the world's registry, with no host
// credentials.
func (w *world) resolverOptions() []resolver.Option {
	return []resolver.Option{resolver.WithTransport(w.transport), resolver.WithKeychain(authn.NewMultiKeychain())}
}

// writePackage writes the package's input files under a new directory.
func writePackage(t *testing.T, layouts []*layout) string {
	t.Helper()
	dir := t.TempDir()
	for _, l := range layouts {
		p := filepath.Join(dir, filepath.FromSlash(l.file.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(l.input), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// readPackage reads every YAML file under dir, by name relative to it.
func readPackage(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// runCLI runs `digester pin|check --output json DIR` in-process (cli.Main) on a copy of the
// package and reads back every file.
func runCLI(t *testing.T, w *world, layouts []*layout, s settings) *result {
	t.Helper()
	dir := writePackage(t, layouts)
	before := readPackage(t, dir)
	var stdout, stderr bytes.Buffer
	w.resetHosts()
	args := append(s.cliArgs(), "--output", "json", dir)
	code := cli.Main(context.Background(), args, cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Resolver: w.resolverOptions()})
	r := &result{front: "command line", exit: code, stdout: stdout.String(), stderr: stderr.String(), hosts: w.seenHosts(),
		files: readPackage(t, dir), values: map[*field]string{}, bytesOK: map[string]bool{}}
	r.untouched = maps.Equal(before, r.files)
	r.report = parseReport(stdout.Bytes())
	r.collect(t, layouts, r.files)
	return r
}

// collect reads the fields and the lock from the files a command line run left: from the bytes
// where only image values changed, else (bytesOK false) from the documents, decoded.
func (r *result) collect(t *testing.T, layouts []*layout, files map[string]string) {
	t.Helper()
	for _, l := range layouts {
		out, ok := files[l.file.name]
		if !ok {
			r.bytesOK[l.file.name] = false
			continue
		}
		values, lock, ok := l.match(out)
		r.bytesOK[l.file.name] = ok
		if !ok {
			values, lock = decodeFields(l, out)
		}
		for fd, v := range values {
			r.values[fd] = v
		}
		if lock != "" {
			r.lock = parseLock(t, lock)
		}
	}
	if text, ok := files[lockFile]; ok && !slices.ContainsFunc(layouts, func(l *layout) bool { return l.file.name == lockFile }) {
		r.lock = parseLock(t, text) // created by the run
	}
}

// decodeFields reads the fields of a file and its DigestLock from its documents, decoded.
func decodeFields(l *layout, text string) (map[*field]string, string) {
	var docs []any
	var lock string
	dec := yaml.NewDecoder(strings.NewReader(text))
	for {
		var n yaml.Node
		if dec.Decode(&n) != nil {
			break
		}
		d := decode(&n)
		if m, ok := d.(map[string]any); ok && m["kind"] == "DigestLock" {
			b, _ := yaml.Marshal(m)
			lock = string(b)
		}
		docs = append(docs, d)
	}
	values := map[*field]string{}
	for _, fd := range l.fields {
		if fd.doc < len(docs) {
			values[fd] = fieldValue(docs[fd.doc], fd)
		}
	}
	return values, lock
}

// lockFile is where a run writes a new DigestLock.
const lockFile = "digests.lock.yaml"

// parseReport reads --output json; nil if it is not JSON.
func parseReport(b []byte) *jsonReport {
	var rep jsonReport
	if json.Unmarshal(b, &rep) != nil {
		return nil
	}
	return &rep
}

// parseLock reads a DigestLock's entries: reference as written -> digest. Any further keys an
// entry may carry (what it was resolved for) are ignored.
func parseLock(t *testing.T, text string) map[string]string {
	t.Helper()
	var doc struct {
		Images []struct {
			Image  string `yaml:"image"`
			Digest string `yaml:"digest"`
		} `yaml:"images"`
	}
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Errorf("the DigestLock does not parse: %v\n%s", err, text)
		return nil
	}
	out := map[string]string{}
	for _, e := range doc.Images {
		out[e.Image] = e.Digest
	}
	return out
}

// stdinInput is the package as one stream for `digester pin -`: its files in the order the
// command line reads a directory, joined as documents.
func stdinInput(layouts []*layout) string {
	var parts []string
	for _, l := range sortedLayouts(layouts) {
		parts = append(parts, l.input)
	}
	return strings.Join(parts, "---\n")
}

// sortedLayouts orders files as kpt and the command line read a directory: by path, a
// directory's files before those of its subdirectories at the same level in lexical order.
func sortedLayouts(layouts []*layout) []*layout {
	out := slices.Clone(layouts)
	slices.SortFunc(out, func(a, b *layout) int { return strings.Compare(a.file.name, b.file.name) })
	return out
}

// runCLIStdin runs `digester pin|check --output json -` in-process with the package on stdin.
func runCLIStdin(t *testing.T, w *world, input string, s settings) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	w.resetHosts()
	args := append(s.cliArgs(), "--output", "json", "-")
	code = cli.Main(context.Background(), args, cli.Env{Stdin: strings.NewReader(input), Stdout: &out, Stderr: &errb, Resolver: w.resolverOptions()})
	return out.String(), errb.String(), code
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds digester once (go build of the module's root) and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "digester-model-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "digester")
		if out, err := exec.Command("go", "build", "-o", binPath, "../..").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// source reads a directory into a ResourceList as `kpt fn source` does (kyaml's package reader:
// Lists are not unwrapped, every document gets its path and index annotations).
func source(t *testing.T, dir string) string {
	t.Helper()
	var out bytes.Buffer
	err := kio.Pipeline{
		Inputs:  []kio.Reader{kio.LocalPackageReader{PackagePath: dir, PreserveSeqIndent: true, WrapBareSeqNode: true}},
		Outputs: []kio.Writer{kio.ByteWriter{Writer: &out, KeepReaderAnnotations: true, WrappingKind: kio.ResourceListKind, WrappingAPIVersion: kio.ResourceListAPIVersion}},
	}.Execute()
	if err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// krmResult is what the KRM function returned.
type krmResult struct {
	*result
	in, out map[string]any // items by "path#index", as decoded YAML
	rl      string         // the ResourceList sent
}

// runKRM runs the built binary as kpt runs an exec function: the package as a ResourceList on
// stdin, the settings as a ConfigMap functionConfig, the registries reached by name through
// the world's proxy.
func runKRM(t *testing.T, w *world, layouts []*layout, s settings) *krmResult {
	t.Helper()
	rl := source(t, writePackage(t, layouts)) + s.configMap()
	cmd := exec.Command(binary(t))
	cmd.Env = krmEnv(t, w)
	cmd.Stdin = strings.NewReader(rl)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	w.resetHosts()
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run digester: %v", err)
		}
		code = ee.ExitCode()
	}
	r := &krmResult{result: &result{front: "KRM function", exit: code, stdout: stdout.String(), stderr: stderr.String(),
		hosts: w.seenHosts(), values: map[*field]string{}}, rl: rl}
	r.in = items(t, rl)
	r.out = items(t, stdout.String())
	for _, l := range layouts {
		for _, fd := range l.fields {
			item, ok := r.out[itemKey(l.file.name, fd.doc)]
			if !ok {
				r.values[fd] = "<item missing>"
				continue
			}
			r.values[fd] = fieldValue(item, fd)
		}
	}
	for _, it := range r.out {
		if m, ok := it.(map[string]any); ok && m["kind"] == "DigestLock" {
			b, _ := yaml.Marshal(m)
			r.lock = parseLock(t, string(b))
		}
	}
	return r
}

// krmEnv is the binary's environment: registries through the world's proxy, trusted by its CA,
// and no credentials of the host (no docker config, no gcloud on PATH, no metadata server).
func krmEnv(t *testing.T, w *world) []string {
	return []string{"PATH=", "HOME=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir(), "GCE_METADATA_HOST=127.0.0.1:9",
		"HTTPS_PROXY=" + w.proxy.URL, "SSL_CERT_FILE=" + w.proxy.CAFile}
}

// itemKey names an item (a document) of a package: file#index, as kpt's annotations do.
func itemKey(file string, index int) string { return fmt.Sprintf("%s#%d", file, index) }

// items decodes a ResourceList's items by their path and index annotations.
func items(t *testing.T, rl string) map[string]any {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(rl), &doc); err != nil {
		t.Errorf("ResourceList does not parse: %v", err)
		return nil
	}
	list, _ := decode(&doc).(map[string]any)
	its, _ := list["items"].([]any)
	out := map[string]any{}
	for _, it := range its {
		ann, _ := at(it, []any{"metadata", "annotations"})
		a, _ := ann.(map[string]any)
		p, _ := a["config.kubernetes.io/path"].(string)
		i, _ := a["config.kubernetes.io/index"].(string)
		var idx int
		fmt.Sscan(i, &idx)
		out[itemKey(p, idx)] = it
	}
	return out
}

// decode turns a YAML node into maps, slices and scalars as kubectl reads it: a key given twice
// keeps its last value.
func decode(n *yaml.Node) any {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return decode(n.Content[0])
	case yaml.AliasNode:
		return decode(n.Alias)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = decode(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		s := []any{}
		for _, c := range n.Content {
			s = append(s, decode(c))
		}
		return s
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return n.Value
	}
	return v
}

// admission is the webhook's answer to one AdmissionReview.
type admission struct {
	allowed bool
	message string
	patch   map[string]string // JSON pointer -> value of each replace
	ops     []string          // every op that is not a replace of a string, as JSON
	hosts   []string
}

// runWebhook posts one CREATE AdmissionReview of a Pod to webhook.NewHandler under scope, wired
// as cmd/webhook wires it by default (settings from config.Flags, a digestcache with
// stale-if-error over a resolver), with a cache of its own.
func runWebhook(t *testing.T, w *world, pod map[string]any, s settings, scope webhook.Scope) *admission {
	t.Helper()
	var fl config.Flags
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fl.Register(fs)
	if err := fs.Parse(s.webhookArgs()); err != nil {
		t.Fatalf("webhook flags %q: %v", s.webhookArgs(), err)
	}
	cfg, err := fl.Config(config.Default(), func(string) string { return "" })
	if err != nil {
		t.Fatalf("webhook flags %q: %v", s.webhookArgs(), err)
	}
	cache := digestcache.New(resolver.New(append(cfg.ResolverOptions(), w.resolverOptions()...)...), digestcache.WithStaleIfError(time.Hour))
	h := webhook.NewHandler(cache, cfg.Options, webhook.WithScope(scope))
	obj, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := at(pod, []any{"metadata", "name"})
	review := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"ns","name":%q,"operation":"CREATE","object":%s}}`, fmt.Sprint(name), obj)
	w.resetHosts()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, webhook.MutatePath, strings.NewReader(review)))
	a := &admission{patch: map[string]string{}, hosts: w.seenHosts()}
	if rec.Code != http.StatusOK {
		t.Fatalf("webhook answered %d: %s", rec.Code, rec.Body)
	}
	var out struct {
		Response struct {
			Allowed bool
			Status  struct{ Message string }
			Patch   []byte
		}
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("webhook answer is not JSON: %v", err)
	}
	a.allowed, a.message = out.Response.Allowed, out.Response.Status.Message
	if len(out.Response.Patch) > 0 {
		var ops []map[string]any
		if err := json.Unmarshal(out.Response.Patch, &ops); err != nil {
			t.Fatalf("webhook patch is not a JSONPatch: %v", err)
		}
		for _, op := range ops {
			v, isString := op["value"].(string)
			if op["op"] != "replace" || !isString {
				b, _ := json.Marshal(op)
				a.ops = append(a.ops, string(b))
				continue
			}
			a.patch[fmt.Sprint(op["path"])] = v
		}
	}
	return a
}
