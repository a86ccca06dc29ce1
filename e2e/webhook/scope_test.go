package webhook_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// setterLine is a line holding a field marked "# kpt-set: PATTERN": the text before the value,
// the value as written, and the pattern.
var setterLine = regexp.MustCompile(`^(\s*(?:- )?(?:[A-Za-z][\w.-]*: )?)(\S.*?) # kpt-set: (.*)$`)

// applySetters does to text what apply-setters (gcr.io/kpt-fn/apply-setters, which this machine
// cannot pull) does to a scalar field marked "# kpt-set: PATTERN" whose pattern names one of
// setters: the value becomes the pattern with each ${name} replaced by its value, keeping the
// value's quoting and the comment.
func applySetters(t *testing.T, text string, setters map[string]string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		m := setterLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		v, named := m[3], false
		for name, value := range setters {
			named = named || strings.Contains(v, "${"+name+"}")
			v = strings.ReplaceAll(v, "${"+name+"}", value)
		}
		if !named {
			continue
		}
		if strings.Contains(v, "${") {
			t.Fatalf("setters %v leave %q unresolved", setters, v)
		}
		if strings.HasPrefix(m[2], `"`) || strings.HasPrefix(m[2], "'") {
			q, _ := json.Marshal(v)
			v = string(q)
		}
		lines[i] = m[1] + v + " # kpt-set: " + m[3]
	}
	return strings.Join(lines, "\n")
}

// Every field a kpt setter marks holds what setters.yaml's value gives it: rendering the package
// with its defaults changes nothing, so the pattern in each comment is the field's true form
// (the scope setter's CEL expressions included).
func TestSettersMatchTheirDefaults(t *testing.T) {
	pkg := filepath.Join(repoRoot, "deploy/webhook")
	b, err := os.ReadFile(filepath.Join(pkg, "setters.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct{ Data map[string]string }
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(pkg, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	marked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, l := range strings.Split(string(b), "\n") {
			m := setterLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			marked++
			var current any
			if err := yaml.Unmarshal([]byte(m[2]), &current); err != nil {
				t.Fatalf("%s:%d: %v", filepath.Base(f), n+1, err)
			}
			want := m[3]
			for _, ref := range regexp.MustCompile(`\$\{([^}]+)\}`).FindAllStringSubmatch(m[3], -1) {
				value, ok := cm.Data[ref[1]]
				if !ok {
					t.Errorf("%s:%d: setter %s is not in setters.yaml", filepath.Base(f), n+1, ref[1])
				}
				used[ref[1]] = true
				want = strings.ReplaceAll(want, ref[0], value)
			}
			if got := fmt.Sprint(current); got != want {
				t.Errorf("%s:%d: holds %q, but its setter's default gives %q", filepath.Base(f), n+1, got, want)
			}
		}
	}
	for name := range cm.Data {
		if !used[name] {
			t.Errorf("setters.yaml has %s, which no field uses", name)
		}
	}
	if marked < 8 {
		t.Errorf("found %d fields marked with setters, want the package's 8 or more", marked)
	}
}

// admissions returns how many AdmissionReviews the webhook serving mutateURL has answered, from
// its /metrics.
func admissions(t *testing.T, mutateURL string) int {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: api.CA.Pool()}}}
	resp, err := hc.Get(strings.TrimSuffix(mutateURL, "/v1/mutate") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "digester_webhook_admissions_total{"); ok {
			v, err := strconv.ParseFloat(rest[strings.LastIndex(rest, " ")+1:], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", sc.Text(), err)
			}
			n += int(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// crd defines a namespaced custom resource kind in group with any content, waiting until it is
// served.
func crd(t *testing.T, group, kind string) {
	t.Helper()
	plural := strings.ToLower(kind) + "s"
	mustKubectl(t, fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %s.%s}
spec:
  group: %s
  names: {kind: %s, plural: %s}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`, plural, group, group, kind, plural), "apply", "-f", "-")
	mustKubectl(t, "", "wait", "--for=condition=Established", "crd/"+plural+"."+group)
}

// admitted is one object created in a namespace the webhook is registered for: how many
// admissions it cost, and its images as stored.
type admitted struct {
	Kind       string
	Admissions int
	Images     string
}

// scopeObject is an object to create: its YAML (%[1]s is the namespace, %[2]s the image), and
// the jsonpath of its images, "" for none.
type scopeObject struct {
	kind, yaml, path string
}

var scopeObjects = []scopeObject{
	{"Secret", "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: %[1]s}\nstringData: {image: %[2]s}\n", ""},
	{"ConfigMap", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: %[1]s}\ndata: {image: %[2]s}\n", ""},
	{"Event", "apiVersion: v1\nkind: Event\nmetadata: {name: e, namespace: %[1]s}\ninvolvedObject: {kind: Pod, name: web, namespace: %[1]s}\nreason: Test\nmessage: pulling %[2]s\n", ""},
	{"Lease", "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l, namespace: %[1]s}\nspec: {holderIdentity: web}\n", ""},
	{"Service", "apiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: %[1]s}\nspec: {ports: [{port: 80}]}\n", ""},
	{"Pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: %[1]s}\nspec:\n  containers: [{name: app, image: %[2]s}]\n", "{.spec.containers[*].image}"},
	{"Deployment", `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: %[2]s}]
`, "{.spec.template.spec.containers[*].image}"},
	{"CronJob", `apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: %[1]s}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: app, image: %[2]s}]
`, "{.spec.jobTemplate.spec.template.spec.containers[*].image}"},
	{"Widget (a CRD with a pod template)", `apiVersion: example.dev/v1
kind: Widget
metadata: {name: w, namespace: %[1]s}
spec:
  replicas: 2
  template:
    spec:
      containers: [{name: app, image: %[2]s}]
`, "{.spec.template.spec.containers[*].image}"},
	{"Workflow (Argo Workflows)", `apiVersion: argoproj.io/v1
kind: Workflow
metadata: {name: wf, namespace: %[1]s}
spec:
  entrypoint: main
  templates:
  - name: main
    container: {image: %[2]s}
`, "{.spec.templates[*].container.image}"},
	{"Task (Tekton)", `apiVersion: tekton.dev/v1
kind: Task
metadata: {name: build, namespace: %[1]s}
spec:
  steps:
  - name: build
    image: %[2]s
`, "{.spec.steps[*].image}"},
	{"Gadget (a CRD without pod specs)", "apiVersion: example.dev/v1\nkind: Gadget\nmetadata: {name: g, namespace: %[1]s}\nspec: {size: 3, note: %[2]s}\n", ""},
	{"Gadget whose spec is a string", "apiVersion: example.dev/v1\nkind: Gadget\nmetadata: {name: g2, namespace: %[1]s}\nspec: %[2]s\n", ""},
}

// deploy/webhook's registration sends only objects that can hold pod specs. With scope workloads
// (the default): Pods, the built-in workload kinds and custom resources shaped like them reach
// the webhook and are pinned; Secrets, ConfigMaps, Events, Leases, Services and custom resources
// of other shapes cost no admission, and a spec that is not an object is stored, not refused.
// With scope pods, only Pods reach it.
func TestBlastRadius(t *testing.T) {
	for _, gk := range [][2]string{{"example.dev", "Widget"}, {"example.dev", "Gadget"}, {"argoproj.io", "Workflow"}, {"tekton.dev", "Task"}} {
		crd(t, gk[0], gk[1])
	}
	want := map[string][]admitted{
		"workloads": {
			{"Secret", 0, ""}, {"ConfigMap", 0, ""}, {"Event", 0, ""}, {"Lease", 0, ""}, {"Service", 0, ""},
			{"Pod", 1, pinned("app:1")}, {"Deployment", 1, pinned("app:1")}, {"CronJob", 1, pinned("app:1")},
			{"Widget (a CRD with a pod template)", 1, pinned("app:1")}, {"Workflow (Argo Workflows)", 1, pinned("app:1")},
			{"Task (Tekton)", 1, pinned("app:1")},
			{"Gadget (a CRD without pod specs)", 0, ""}, {"Gadget whose spec is a string", 0, ""},
		},
		"pods": {
			{"Secret", 0, ""}, {"ConfigMap", 0, ""}, {"Event", 0, ""}, {"Lease", 0, ""}, {"Service", 0, ""},
			{"Pod", 1, pinned("app:1")}, {"Deployment", 0, image("app:1")}, {"CronJob", 0, image("app:1")},
			{"Widget (a CRD with a pod template)", 0, image("app:1")}, {"Workflow (Argo Workflows)", 0, image("app:1")},
			{"Task (Tekton)", 0, image("app:1")},
			{"Gadget (a CRD without pod specs)", 0, ""}, {"Gadget whose spec is a string", 0, ""},
		},
	}
	for _, scope := range []string{"workloads", "pods"} {
		t.Run(scope, func(t *testing.T) {
			url := startWebhook(t)
			ns := "radius-" + scope
			label := map[string]string{"digester-e2e-scope": scope}
			namespace(t, ns, label)
			register(t, configurationWith(t, "digester-"+scope, url, "Fail", map[string]any{"matchLabels": label}, map[string]string{"scope": scope}),
				ns, func(img string) bool { return img == pinned("app:1") })
			var got []admitted
			for _, o := range scopeObjects {
				doc := fmt.Sprintf(o.yaml, ns, image("app:1"))
				before := admissions(t, url)
				mustKubectl(t, doc, "create", "-f", "-")
				a := admitted{Kind: o.kind, Admissions: admissions(t, url) - before}
				if o.path != "" {
					// kubectl get -f wraps what it gets in a List
					a.Images = mustKubectl(t, doc, "get", "-f", "-", "-o", "jsonpath={.items[0]"+strings.TrimPrefix(o.path, "{"))
				}
				got = append(got, a)
			}
			if diff := cmp.Diff(want[scope], got); diff != "" {
				t.Errorf("admissions and stored images (-want +got):\n%s", diff)
			}
		})
	}
}

// A GitOps estate under scope pods, with a real kube-controller-manager: the Deployment and the
// ReplicaSet made from it are stored as written (Git stays the source of truth, nothing drifts)
// and cost no admission; the Pods the ReplicaSet controller creates are pinned, within seconds.
func TestControllerManagerScopePods(t *testing.T) {
	if err := api.StartControllerManager(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.StopControllerManager)
	url := startWebhook(t, "--scope=pods")
	ns := "gitops"
	label := map[string]string{"digester-e2e-scope": "gitops"}
	namespace(t, ns, label)
	register(t, configurationWith(t, "digester-gitops", url, "Fail", map[string]any{"matchLabels": label}, map[string]string{"scope": "pods"}),
		ns, func(img string) bool { return img == pinned("app:1") })

	before := admissions(t, url)
	start := time.Now()
	mustKubectl(t, fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: %s}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: app, image: %s}]
`, ns, image("app:1")), "create", "-f", "-")
	var pods string
	for {
		pods = mustKubectl(t, "", "get", "pods", "-n", ns, "-l", "app=web", "-o", `jsonpath={range .items[*]}{.metadata.ownerReferences[0].kind} {.spec.containers[*].image}{"\n"}{end}`)
		if strings.Count(pods, "\n") == 2 {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("after a minute, Pods of Deployment web:\n%s\nkube-controller-manager log:\n%s", pods, api.ControllerManagerLog(3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("Deployment created to 2 Pods stored: %s", time.Since(start).Round(time.Millisecond))
	got := []string{
		images(t, "deployment", ns, "web", "{.spec.template.spec.containers[*].image}"),
		mustKubectl(t, "", "get", "replicasets", "-n", ns, "-l", "app=web", "-o", "jsonpath={.items[*].spec.template.spec.containers[*].image}"),
		pods,
	}
	want := []string{image("app:1"), image("app:1"), "ReplicaSet " + pinned("app:1") + "\nReplicaSet " + pinned("app:1") + "\n"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Deployment, ReplicaSet and Pods as stored (-want +got):\n%s", diff)
	}
	if n := admissions(t, url) - before; n != 2 {
		t.Errorf("%d admissions, want 2 (the Pods; not the Deployment nor the ReplicaSet)", n)
	}
}

// kubectl debug adds an ephemeral container through the pods/ephemeralcontainers subresource:
// under either scope its image is pinned, the Pod's other images untouched.
func TestEphemeralContainerPinned(t *testing.T) {
	for _, scope := range []string{"workloads", "pods"} {
		t.Run(scope, func(t *testing.T) {
			url := startWebhook(t)
			ns := "debug-" + scope
			label := map[string]string{"digester-e2e-scope": ns}
			namespace(t, ns, label)
			register(t, configurationWith(t, "digester-"+ns, url, "Fail", map[string]any{"matchLabels": label}, map[string]string{"scope": scope}),
				ns, func(img string) bool { return img == pinned("app:1") })
			mustKubectl(t, podYAML("web", ns, nil, image("app:1")), "create", "-f", "-")
			before := admissions(t, url)
			mustKubectl(t, "", "debug", "web", "-n", ns, "--image="+image("sidecar:1"), "--container=debugger", "--profile=general")
			got := images(t, "pod", ns, "web", "{.spec.containers[*].image} {.spec.ephemeralContainers[*].image}")
			if want := pinned("app:1") + " " + pinned("sidecar:1"); got != want {
				t.Errorf("stored images %q, want %q", got, want)
			}
			if n := admissions(t, url) - before; n != 1 {
				t.Errorf("kubectl debug cost %d admissions, want 1", n)
			}
		})
	}
}
