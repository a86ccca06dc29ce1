package model_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/digester/digester/resolver"
)

// corpora are real-world packages: testdata/corpus (four public projects, copied into the
// repository with their licenses, see its SOURCES) and testdata/handmade, relative to this
// package.
var corpora = []string{
	"../../testdata/corpus/argo-workflows",
	"../../testdata/corpus/kustomize-examples",
	"../../testdata/corpus/microservices-demo",
	"../../testdata/corpus/tekton-catalog",
	"../../testdata/handmade",
}

// TestCorpus is the differential test over the corpora: the KRM function, sent each package as
// kpt sends it with every image it names served by the loopback registry (under its own name,
// through the proxy), must exit 0 and return every item, decoded, equal to the item it was
// sent except image fields; an image field may only gain "@sha256:…", the digest the registry
// serves, and a kustomize images: entry only a digest: key; and the fields that change are
// exactly those that `mode: check` reports as not pinned.
func TestCorpus(t *testing.T) {
	for _, dir := range corpora {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			rl := source(t, dir)
			config := "functionConfig:\n  apiVersion: fn.kpt.dev/v1alpha1\n  kind: Digester\n  metadata: {name: pin}\n  report: fields\n"
			if filepath.Base(dir) == "kustomize-examples" {
				// transformerconfigs/images/kustomizeconfig/mykind.yaml declares this to kustomize.
				config += "  additionalImageFields:\n  - {kind: MyKind, path: spec/runLatest/container/image}\n"
			}
			unpinned := checkRun(t, rl+config+"  mode: check\n")
			if len(unpinned) == 0 {
				t.Fatal("mode: check found no field to pin: the test reads nothing")
			}
			hosts := slices.Clone(registryHosts)
			for _, img := range unpinned {
				if r, err := resolver.Parse(img); err == nil {
					hosts = append(hosts, strings.ToLower(r.Context().RegistryStr()))
				}
			}
			w := startWorld(t, nil, slices.Compact(slices.Sorted(slices.Values(hosts))), false)
			for _, img := range unpinned {
				if k, ok := refKey(img); ok {
					w.serve(k)
				}
			}
			stdout, stderr, code := runBinary(t, krmEnv(t, w), rl+config)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr)
			}
			changed := map[string]string{}
			in, out := items(t, rl), items(t, stdout)
			for id, it := range in {
				o, ok := out[id]
				if !ok {
					t.Errorf("item %s is missing from the output", id)
					continue
				}
				for _, p := range diffItem(id, it, o, nil, changed, w) {
					t.Error(p)
				}
			}
			if len(out) != len(in) {
				t.Errorf("%d items sent, %d returned", len(in), len(out))
			}
			var got []string
			for where := range changed {
				got = append(got, where)
			}
			want := slices.Collect(func(yield func(string) bool) {
				for where := range unpinned {
					if !yield(where) {
						return
					}
				}
			})
			slices.Sort(got)
			slices.Sort(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("fields pinned, by item and path (-reported by mode: check +changed by pinning):\n%s", diff)
			}
			t.Logf("%d items, %d fields pinned", len(in), len(changed))
		})
	}
}

// runBinary runs the built binary with env and stdin.
func runBinary(t *testing.T, env []string, stdin string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary(t))
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// checkRun runs the function in mode: check (no registry request) and returns the fields it
// reports as not pinned: "file#index path" -> image.
func checkRun(t *testing.T, rl string) map[string]string {
	t.Helper()
	stdout, stderr, _ := runBinary(t, []string{"PATH=", "HOME=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir()}, rl)
	var list struct {
		Results []struct {
			Message  string `yaml:"message"`
			Severity string `yaml:"severity"`
			Field    struct {
				Path         string `yaml:"path"`
				CurrentValue string `yaml:"currentValue"`
			} `yaml:"field"`
			File struct {
				Path  string `yaml:"path"`
				Index int    `yaml:"index"`
			} `yaml:"file"`
		} `yaml:"results"`
	}
	if err := yaml.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("check run: %v\n%s", err, stderr)
	}
	out := map[string]string{}
	for _, r := range list.Results {
		if r.Severity == "error" && strings.HasPrefix(r.Message, "not pinned:") {
			out[itemKey(r.File.Path, r.File.Index)+" "+r.Field.Path] = r.Field.CurrentValue
		}
	}
	return out
}

var digestSuffixRE = regexp.MustCompile(`^@(sha256:[0-9a-f]{64})$`)

// diffItem compares an item sent with the item returned. The only differences allowed are an
// image pinned (a string that gains "@sha256:…", the digest the world serves for it) and a
// kustomize images: entry that gains digest:; each is recorded in changed by "item path".
func diffItem(id string, in, out any, path []any, changed map[string]string, w *world) []string {
	where := id + " " + pathString(path)
	bad := func() []string {
		return []string{fmt.Sprintf("%s: changed outside image fields (-sent +returned):\n%s", where, cmp.Diff(in, out))}
	}
	switch in := in.(type) {
	case map[string]any:
		o, ok := out.(map[string]any)
		if !ok {
			return bad()
		}
		var problems []string
		for k, v := range in {
			ov, ok := o[k]
			if !ok {
				return bad()
			}
			problems = append(problems, diffItem(id, v, ov, append(slices.Clip(path), k), changed, w)...)
		}
		for k := range o {
			if _, ok := in[k]; ok {
				continue
			}
			if k != "digest" || len(path) < 2 || path[len(path)-2] != "images" {
				return bad()
			}
			changed[where] = fmt.Sprint(o[k])
		}
		return problems
	case []any:
		o, ok := out.([]any)
		if !ok || len(o) != len(in) {
			return bad()
		}
		var problems []string
		for i := range in {
			problems = append(problems, diffItem(id, in[i], o[i], append(slices.Clip(path), i), changed, w)...)
		}
		return problems
	case string:
		o, ok := out.(string)
		if !ok {
			return bad()
		}
		if o == in {
			return nil
		}
		m := digestSuffixRE.FindStringSubmatch(strings.TrimPrefix(o, in))
		if !strings.HasPrefix(o, in) || m == nil {
			return bad()
		}
		changed[where] = o
		if k, ok := refKey(in); !ok || !w.served(k, "", m[1]) {
			return []string{fmt.Sprintf("%s: %s pinned to %s, which the registry does not serve as %s", where, in, m[1], k)}
		}
		return nil
	}
	if !reflect.DeepEqual(in, out) {
		return bad()
	}
	return nil
}
