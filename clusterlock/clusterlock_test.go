package clusterlock_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/digester/digester/clusterlock"
	"github.com/digester/digester/internal/apiservertest"
)

var (
	api *apiservertest.Server
	// admin may do anything; webhook is ServiceAccount digester-system/digester-webhook, bound to
	// deploy/webhook's rbac.yaml and nothing else.
	admin, webhook kubernetes.Interface
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "clusterlock:", err); return 1 }
	root, err := filepath.Abs("..")
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "digester-clusterlock-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	if api, err = apiservertest.Start(root, dir); err != nil {
		return fail(err)
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, f := range []string{"namespace.yaml", "serviceaccount.yaml", "rbac.yaml"} {
		if _, _, err := api.Kubectl(ctx, "", "apply", "-f", filepath.Join(root, "deploy/webhook", f)); err != nil {
			return fail(err)
		}
	}
	token, _, err := api.Kubectl(ctx, "", "create", "token", "digester-webhook", "-n", "digester-system", "--duration=1h")
	if err != nil {
		return fail(err)
	}
	if admin, err = client(api.Token); err != nil {
		return fail(err)
	}
	if webhook, err = client(strings.TrimSpace(token)); err != nil {
		return fail(err)
	}
	return m.Run()
}

func client(token string) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(&rest.Config{Host: api.URL, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAData: api.CA.CertPEM}})
}

// deploy/webhook's RBAC lets the webhook read its lock ConfigMap, digester-system/digests, by
// name and nothing else: get it, and list and watch it with a metadata.name field selector (which
// is how RBAC authorizes a list or watch by resourceNames), but not list the namespace's
// ConfigMaps, nor get or watch another.
func TestRBACByNameOnly(t *testing.T) {
	ctx := context.Background()
	cms := webhook.CoreV1().ConfigMaps("digester-system")
	byName := func(name string) metav1.ListOptions {
		return metav1.ListOptions{FieldSelector: "metadata.name=" + name}
	}
	outcome := func(err error) string {
		switch {
		case err == nil:
			return "allowed"
		case apierrors.IsNotFound(err):
			return "allowed (not found)"
		case apierrors.IsForbidden(err):
			return "forbidden"
		}
		return err.Error()
	}
	watch := func(o metav1.ListOptions) error {
		w, err := cms.Watch(ctx, o)
		if err == nil {
			w.Stop()
		}
		return err
	}
	got := map[string]string{}
	_, err := cms.Get(ctx, "digests", metav1.GetOptions{})
	got["get digests"] = outcome(err)
	_, err = cms.List(ctx, byName("digests"))
	got["list metadata.name=digests"] = outcome(err)
	got["watch metadata.name=digests"] = outcome(watch(byName("digests")))
	_, err = cms.List(ctx, metav1.ListOptions{})
	got["list all"] = outcome(err)
	got["watch all"] = outcome(watch(metav1.ListOptions{}))
	_, err = cms.Get(ctx, "other", metav1.GetOptions{})
	got["get other"] = outcome(err)
	_, err = cms.List(ctx, byName("other"))
	got["list metadata.name=other"] = outcome(err)
	_, err = webhook.CoreV1().ConfigMaps("default").List(ctx, byName("digests"))
	got["list default/digests"] = outcome(err)
	want := map[string]string{
		"get digests":                 "allowed (not found)",
		"list metadata.name=digests":  "allowed",
		"watch metadata.name=digests": "allowed",
		"list all":                    "forbidden",
		"watch all":                   "forbidden",
		"get other":                   "forbidden",
		"list metadata.name=other":    "forbidden",
		"list default/digests":        "forbidden",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the webhook's access to ConfigMaps (-want +got):\n%s", diff)
	}
}

const (
	d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	d3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333"
	d4 = "sha256:4444444444444444444444444444444444444444444444444444444444444444"
)

// lock is a DigestLock as `digester pin --lock update` writes it, of image, digest pairs.
func lock(pairs ...string) string {
	var b strings.Builder
	b.WriteString("# Image digests pinned by digester.\napiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nimages:\n")
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, "- image: %s\n  digest: %s\n", pairs[i], pairs[i+1])
	}
	return b.String()
}

// A Watcher of two lock ConfigMaps, with no more than deploy/webhook's RBAC (and the same Role
// copied into the second one's namespace, as its README says), follows what CI and users do to
// them within seconds: created, edited, broken (refused as a whole and counted, its earlier
// entries dropped), fixed, disagreeing (the first listed wins), deleted.
func TestWatcherFollowsTheCluster(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mustKubectl(t, `apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: digester-webhook-lock, namespace: team}
rules:
- apiGroups: [""]
  resources: ["configmaps"]
  resourceNames: ["team-digests"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: digester-webhook-lock, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: digester-webhook-lock}
subjects: [{kind: ServiceAccount, name: digester-webhook, namespace: digester-system}]
`)
	var logs syncBuffer
	platform, team := clusterlock.Source{Namespace: "digester-system", Name: "digests"}, clusterlock.Source{Namespace: "team", Name: "team-digests"}
	w, err := clusterlock.New(webhook, []clusterlock.Source{team, platform}, clusterlock.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	w.Start(ctx)
	syncCtx, syncCancel := context.WithTimeout(ctx, 30*time.Second)
	defer syncCancel()
	if err := w.WaitForSync(syncCtx); err != nil {
		t.Fatalf("%v\nlog:\n%s", err, logs.String())
	}

	const (
		app     = "index.docker.io/library/app:1"
		nginx   = "index.docker.io/library/nginx:latest"
		sidecar = "registry.example/mesh/sidecar:2"
	)
	set := func(s clusterlock.Source, data map[string]string) func() error {
		return func() error {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace}, Data: data}
			_, err := admin.CoreV1().ConfigMaps(s.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
			if apierrors.IsNotFound(err) {
				_, err = admin.CoreV1().ConfigMaps(s.Namespace).Create(ctx, cm, metav1.CreateOptions{})
			}
			return err
		}
	}
	del := func(s clusterlock.Source) func() error {
		return func() error {
			return admin.CoreV1().ConfigMaps(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{})
		}
	}
	entry := func(d string, s clusterlock.Source) clusterlock.Entry {
		return clusterlock.Entry{Digest: d, From: s.String()}
	}
	var slowest time.Duration
	for _, step := range []struct {
		name     string
		do       func() error
		want     map[string]clusterlock.Entry
		rejected int64
		logged   string
	}{
		{name: "created by CI", do: set(platform, map[string]string{clusterlock.Key: lock("app:1", d1, "nginx", d2)}),
			want: map[string]clusterlock.Entry{app: entry(d1, platform), nginx: entry(d2, platform)}, logged: "lock ConfigMap loaded"},
		{name: "edited", do: set(platform, map[string]string{clusterlock.Key: lock("app:1", d3, "nginx", d2)}),
			want: map[string]clusterlock.Entry{app: entry(d3, platform), nginx: entry(d2, platform)}},
		{name: "a lock that does not parse", do: set(platform, map[string]string{clusterlock.Key: "apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nimages: {\n"}),
			want: map[string]clusterlock.Entry{}, rejected: 1, logged: "lock ConfigMap refused"},
		{name: "fixed", do: set(platform, map[string]string{clusterlock.Key: lock("app:1", d3, "nginx", d2)}),
			want: map[string]clusterlock.Entry{app: entry(d3, platform), nginx: entry(d2, platform)}, rejected: 1},
		{name: "one malformed digest refuses the whole lock", do: set(platform, map[string]string{clusterlock.Key: lock("app:1", d3, "nginx", "sha256:ABC")}),
			want: map[string]clusterlock.Entry{}, rejected: 2, logged: `\"sha256:ABC\" is not a digest`},
		{name: "the key missing", do: set(platform, map[string]string{"lock.yaml": lock("app:1", d3)}),
			want: map[string]clusterlock.Entry{}, rejected: 3, logged: "no key digests.lock.yaml"},
		{name: "fixed again", do: set(platform, map[string]string{clusterlock.Key: lock("app:1", d3, "nginx", d2)}),
			want: map[string]clusterlock.Entry{app: entry(d3, platform), nginx: entry(d2, platform)}, rejected: 3},
		{name: "a second lock, listed first, disagrees on app:1: it wins", do: set(team, map[string]string{clusterlock.Key: lock("docker.io/library/app:1", d4, sidecar, d1)}),
			want:     map[string]clusterlock.Entry{app: entry(d4, team), nginx: entry(d2, platform), sidecar: entry(d1, team)},
			rejected: 3, logged: "lock ConfigMaps disagree"},
		{name: "the first deleted", do: del(team),
			want: map[string]clusterlock.Entry{app: entry(d3, platform), nginx: entry(d2, platform)}, rejected: 3, logged: "lock ConfigMap deleted"},
		{name: "the second deleted", do: del(platform), want: map[string]clusterlock.Entry{}, rejected: 3},
	} {
		logs.Reset()
		start := time.Now()
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		var got map[string]clusterlock.Entry
		for {
			got = w.Entries()
			if cmp.Equal(step.want, got) && w.Rejected() == step.rejected && strings.Contains(logs.String(), step.logged) {
				break
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s: after 10 s, entries (-want +got):\n%s\nrejected %d, want %d; log, want %q:\n%s",
					step.name, cmp.Diff(step.want, got), w.Rejected(), step.rejected, step.logged, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(start)
		slowest = max(slowest, took)
		t.Logf("%s: seen after %s", step.name, took.Round(time.Millisecond))
		for ref, e := range step.want { // Digest answers for the reference as a Pod spells it
			short := strings.TrimPrefix(ref, "index.docker.io/library/")
			if d, from, ok := w.Digest(short); !ok || d != e.Digest || from != e.From {
				t.Errorf("%s: Digest(%q) = %q, %q, %v; want %q from %q", step.name, short, d, from, ok, e.Digest, e.From)
			}
		}
		if d, from, ok := w.Digest("app:2"); ok {
			t.Errorf("%s: Digest(app:2) = %q from %q, want no entry", step.name, d, from)
		}
	}
	t.Logf("slowest step seen after %s", slowest.Round(time.Millisecond))
}

func mustKubectl(t *testing.T, stdin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, _, err := api.Kubectl(ctx, stdin, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer for a logger and a test reading it at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// A ConfigMap the webhook may not read is never synced: WaitForSync names it, and the log says
// why.
func TestWatcherWithoutAccess(t *testing.T) {
	var logs syncBuffer
	ok, denied := clusterlock.Source{Namespace: "digester-system", Name: "digests"}, clusterlock.Source{Namespace: "default", Name: "digests"}
	w, err := clusterlock.New(webhook, []clusterlock.Source{ok, denied}, clusterlock.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Start(ctx)
	syncCtx, syncCancel := context.WithTimeout(ctx, 3*time.Second)
	defer syncCancel()
	err = w.WaitForSync(syncCtx)
	if want := "lock ConfigMaps default/digests not read: context deadline exceeded"; err == nil || err.Error() != want {
		t.Errorf("WaitForSync: %v, want %q", err, want)
	}
	if want := `configmaps \"digests\" is forbidden: User \"system:serviceaccount:digester-system:digester-webhook\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"`; !strings.Contains(logs.String(), want) {
		t.Errorf("log:\n%s\nwant it to contain %s", logs.String(), want)
	}
}
