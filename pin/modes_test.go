package pin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
)

// lockDoc is a DigestLock with the given image → digest entries, in order.
func lockDoc(entries ...string) string {
	s := "apiVersion: fn.kpt.dev/v1alpha1\nkind: DigestLock\nmetadata:\n  name: digests\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\nimages:\n"
	for i := 0; i+1 < len(entries); i += 2 {
		s += "- image: " + entries[i] + "\n  digest: " + entries[i+1] + "\n"
	}
	return s
}

// lockEntries reads the image → digest entries of a DigestLock object.
func lockEntries(t *testing.T, o *pin.Object) map[string]string {
	t.Helper()
	var l struct {
		Images []struct{ Image, Digest string } `yaml:"images"`
	}
	b, err := yaml.Marshal(o.Node)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range l.Images {
		out[e.Image] = e.Digest
	}
	return out
}

// TestLockDigests: a lock digest is sha256: and 64 lowercase hex digits, every one of 0-9 and a-f
// allowed and the characters either side of those ranges refused; an empty images: is an empty lock.
func TestLockDigests(t *testing.T) {
	reg, d := serve(t)
	valid := "sha256:09af" + strings.Repeat("5", 60)
	for _, tt := range []struct {
		name, lock string
		wantErr    string
	}{
		{"every boundary digit", lockDoc("nginx:1.27", valid), ""},
		{"empty images", strings.TrimSuffix(lockDoc(), "\n") + " \n", ""},
		{"slash below 0", lockDoc("nginx:1.27", "sha256:/"+strings.Repeat("5", 63)), "is not a digest"},
		{"colon above 9", lockDoc("nginx:1.27", "sha256::"+strings.Repeat("5", 63)), "is not a digest"},
		{"backquote below a", lockDoc("nginx:1.27", "sha256:`"+strings.Repeat("5", 63)), "is not a digest"},
		{"g above f", lockDoc("nginx:1.27", "sha256:g"+strings.Repeat("5", 63)), "is not a digest"},
		{"upper case", lockDoc("nginx:1.27", "sha256:A"+strings.Repeat("5", 63)), "is not a digest"},
		{"short", lockDoc("nginx:1.27", "sha256:"+strings.Repeat("5", 63)), "is not a digest"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objs := objects(t, pod("a", "nginx:1.27"), tt.lock)
			rep := newPinner(reg, nil).Run(context.Background(), objs)
			switch {
			case tt.wantErr == "" && !rep.OK():
				t.Fatalf("lock refused: %+v", simplify(rep.Findings))
			case tt.wantErr != "" && (rep.OK() || !strings.Contains(rep.Findings[0].Message, tt.wantErr)):
				t.Fatalf("findings %+v, want an error containing %q", simplify(rep.Findings), tt.wantErr)
			}
			if tt.name == "every boundary digit" {
				if got := encode(t, objs[0]); got != pod("a", "nginx:1.27@"+valid) {
					t.Errorf("not pinned from the lock:\n%s", got)
				}
			}
			if tt.name == "empty images" {
				if diff := cmp.Diff(map[string]string{"nginx:1.27": d["nginx:1.27"]}, lockEntries(t, objs[1])); diff != "" {
					t.Errorf("lock (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestLockEntries: which references a lock keeps after a run, in each mode.
func TestLockEntries(t *testing.T) {
	reg, d := serve(t)
	ng, app := d["nginx:1.27"], d["ghcr.io/acme/app:2"]
	other := "sha256:" + strings.Repeat("e", 64)
	for _, tt := range []struct {
		name   string
		docs   []string // the last is the lock, if the case has one
		mutate func(*pin.Options)
		want   map[string]string
	}{{
		name:   "update: only what the run resolved is locked: a kept tag@digest pin is not confirmed, a repo@digest pin has no tag",
		docs:   []string{pod("a", "nginx:1.27@"+other), pod("b", "ghcr.io/acme/app@"+app), pod("c", "docker.io/library/nginx:1.27")},
		mutate: func(c *pin.Options) { c.Lock = pin.LockUpdate },
		want:   map[string]string{"docker.io/library/nginx:1.27": ng},
	}, {
		name: "an existing lock keeps its spelling and matches others",
		docs: []string{pod("a", "docker.io/library/nginx:1.27"), lockDoc("index.docker.io/library/nginx:1.27", ng)},
		want: map[string]string{"index.docker.io/library/nginx:1.27": ng},
	}, {
		name:   "frozen never drops an entry",
		docs:   []string{pod("a", "nginx:1.27"), lockDoc("nginx:1.27", ng, "redis:7", other)},
		mutate: func(c *pin.Options) { c.Lock = pin.LockFrozen },
		want:   map[string]string{"nginx:1.27": ng, "redis:7": other},
	}, {
		name: "a lock without images gets them",
		docs: []string{pod("a", "nginx:1.27"), strings.TrimSuffix(lockDoc(), "images:\n")},
		want: map[string]string{"nginx:1.27": ng},
	}, {
		name: "without frozen, unused entries go",
		docs: []string{pod("a", "nginx:1.27"), lockDoc("nginx:1.27", ng, "redis:7", other)},
		want: map[string]string{"nginx:1.27": ng},
	}, {
		name:   "a failed refresh under on-error warn keeps the entry it could not check",
		docs:   []string{pod("a", "nginx:1.28"), pod("b", "nginx:1.27"), lockDoc("nginx:1.28", other)},
		mutate: func(c *pin.Options) { c.Pinned, c.OnError = pin.PinnedRefresh, pin.OnErrorWarn },
		want:   map[string]string{"nginx:1.28": other, "nginx:1.27": ng},
	}, {
		name:   "a failed lookup under on-error warn adds no entry",
		docs:   []string{pod("a", "nginx:1.28"), pod("b", "nginx:1.27"), lockDoc()},
		mutate: func(c *pin.Options) { c.OnError = pin.OnErrorWarn },
		want:   map[string]string{"nginx:1.27": ng},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			objs := objects(t, tt.docs...)
			rep := newPinner(reg, tt.mutate).Run(context.Background(), objs)
			if !rep.OK() {
				t.Fatalf("run failed: %+v", simplify(rep.Findings))
			}
			lock := objs[len(objs)-1]
			if len(rep.Created) == 1 {
				lock = rep.Created[0]
			}
			if diff := cmp.Diff(tt.want, lockEntries(t, lock)); diff != "" {
				t.Errorf("lock (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLockMessages: a pin that disagrees with the lock is a warning under keep, and a refresh that
// moves a lock entry says so.
func TestLockMessages(t *testing.T) {
	reg, d := serve(t)
	ng := d["nginx:1.27"]
	other := "sha256:" + strings.Repeat("e", 64)

	objs := objects(t, pod("a", "nginx:1.27@"+other), pod("b", "nginx:1.27@"+ng), lockDoc("nginx:1.27", ng))
	rep := newPinner(reg, nil).Run(context.Background(), objs)
	want := []finding{{"warning", "Pod ns/a", "a.yaml", "spec.containers[0].image", "nginx:1.27@" + other, "",
		"nginx:1.27 is pinned to " + other + " here, but the lock says " + ng + " (pinned: refresh aligns them)"}}
	if diff := cmp.Diff(want, simplify(rep.Findings)); diff != "" {
		t.Errorf("keep (-want +got):\n%s", diff)
	}

	objs = objects(t, pod("a", "nginx:1.27"), lockDoc("nginx:1.27", other))
	rep = newPinner(reg, func(c *pin.Options) { c.Pinned = pin.PinnedRefresh }).Run(context.Background(), objs)
	if got, want := rep.Findings[0].Message, "pinned nginx:1.27 to "+ng+", refreshing the lock's "+other; got != want {
		t.Errorf("refresh: %q, want %q", got, want)
	}
	if got, want := rep.Findings[len(rep.Findings)-1].Message, "updated the lock: 0 added, 1 changed, 0 dropped"; got != want {
		t.Errorf("refresh: last finding %q, want %q", got, want)
	}
	if diff := cmp.Diff(map[string]string{"nginx:1.27": ng}, lockEntries(t, objs[1])); diff != "" {
		t.Errorf("refreshed lock (-want +got):\n%s", diff)
	}
	objs = objects(t, pod("a", "nginx:1.27"), lockDoc("nginx:1.27", ng))
	rep = newPinner(reg, func(c *pin.Options) { c.Pinned = pin.PinnedRefresh }).Run(context.Background(), objs)
	if got, want := rep.Findings[0].Message, "pinned nginx:1.27 to "+ng; got != want {
		t.Errorf("refresh of a current entry: %q, want %q", got, want)
	}
}

// TestRefreshRepoDigest: refresh leaves a repo@digest pin, saying it has no tag to follow; verify
// checks it silently.
func TestRefreshRepoDigest(t *testing.T) {
	reg, d := serve(t)
	img := "ghcr.io/acme/app@" + d["ghcr.io/acme/app:2"]
	for _, tt := range []struct {
		pinned pin.Pinned
		want   string
	}{
		{pin.PinnedRefresh, img + " has no tag to follow, so it is left as it is (its digest is served)"},
		{pin.PinnedVerify, ""},
	} {
		objs := objects(t, pod("a", img))
		rep := newPinner(reg, func(c *pin.Options) { c.Pinned = tt.pinned }).Run(context.Background(), objs)
		var got string
		for _, f := range rep.Findings {
			got += f.Message
		}
		if got != tt.want || encode(t, objs[0]) != pod("a", img) {
			t.Errorf("pinned: %v: findings %q, want %q; object:\n%s", tt.pinned, got, tt.want, encode(t, objs[0]))
		}
	}
}

// TestVerifyRepoDigest: a repo@digest pin of a repository without a slash (nginx@sha256:…) has no
// tag: verify asks whether the digest is served, not what nginx:latest is.
func TestVerifyRepoDigest(t *testing.T) {
	reg, d := serve(t)
	objs := objects(t, pod("a", "nginx@"+d["nginx:1.27"]))
	rep := newPinner(reg, func(c *pin.Options) { c.Pinned = pin.PinnedVerify }).Run(context.Background(), objs)
	if diff := cmp.Diff(pin.Summary{Verified: 1, Distinct: 1, Requests: 2}, rep.Summary); diff != "" || !rep.OK() {
		t.Errorf("summary (-want +got):\n%s\nfindings %+v", diff, simplify(rep.Findings))
	}
}

// TestSharedLookup: with a Lookup shared between runs, each run counts only its own requests.
func TestSharedLookup(t *testing.T) {
	reg, _ := serve(t)
	r := resolver.New(resolver.WithTransport(reg.Transport()), resolver.WithKeychain(authn.NewMultiKeychain()))
	p := pin.New(r, pin.Options{})
	first := p.Run(context.Background(), objects(t, pod("a", "nginx:1.27")))
	second := p.Run(context.Background(), objects(t, pod("a", "docker.io/library/nginx:1.27")))
	// The first run pings the registry and sends a HEAD; the second, on the same registry, a HEAD.
	if got := [2]int64{first.Summary.Requests, second.Summary.Requests}; got != [2]int64{2, 1} {
		t.Errorf("requests per run = %v, want [2 1]", got)
	}
}

// TestEntryFindings: a kustomize images: entry is marked as one, a container image is not.
func TestEntryFindings(t *testing.T) {
	reg, _ := serve(t)
	objs := objects(t, "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n- name: web\n  newName: nginx\n  newTag: \"1.27\"\n", pod("b", "nginx:1.27"))
	rep := newPinner(reg, nil).Run(context.Background(), objs)
	var got []bool
	for _, f := range rep.Findings {
		got = append(got, f.Entry)
	}
	if diff := cmp.Diff([]bool{true, false}, got); diff != "" {
		t.Errorf("Entry of the findings (-want +got):\n%s", diff)
	}
}

func TestSummaryString(t *testing.T) {
	for _, tt := range []struct {
		s    pin.Summary
		want string
	}{
		{pin.Summary{Pinned: 1, Distinct: 1, Requests: 2, Warn: true}, "pinned 1 image field (1 distinct reference, 2 registry requests); 0 already pinned, 0 skipped by prefix"},
		{pin.Summary{Pinned: 1, Failed: 1, Distinct: 2, Requests: 3, Warn: true}, "pinned 1 image field (2 distinct references, 3 registry requests); 0 already pinned, 0 skipped by prefix; 1 left unpinned (on-error: warn)"},
		{pin.Summary{Check: true, Failed: 4, Unpinned: 1, Stale: 1, Distinct: 2, AlreadyPinned: 1}, "check failed: pinning would make 1 change, 1 stale pin, 2 errors (2 distinct references, 0 registry requests); 1 already pinned, 0 skipped by prefix"},
		{pin.Summary{Failed: 3, Stale: 2, Distinct: 2, Requests: 4}, "pinned nothing: 2 stale pins, 1 image field could not be pinned, so the package is returned unchanged (2 distinct references, 4 registry requests)"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%+v:\n got %q\nwant %q", tt.s, got, tt.want)
		}
	}
}

func TestWhere(t *testing.T) {
	obj := &pin.Object{File: "a.yaml"}
	for _, tt := range []struct {
		f    pin.Finding
		want string
	}{
		{pin.Finding{Object: obj, ID: pin.ID{Kind: "Pod", Name: "p"}, Path: "spec", Line: 3}, "Pod p spec in a.yaml:3"},
		{pin.Finding{Object: obj, ID: pin.ID{Kind: "Pod", Name: "p"}, Path: "spec"}, "Pod p spec in a.yaml"},
	} {
		if got := tt.f.Where(); got != tt.want {
			t.Errorf("Where() = %q, want %q", got, tt.want)
		}
	}
}

// keychain answers every registry with one user's password.
type keychain struct{}

func (keychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return &authn.Basic{Username: "ci", Password: "s3cret-pass"}, nil
}

// TestKeychain: the credentials of the keychain a front end gives reach the registry.
func TestKeychain(t *testing.T) {
	reg := registrytest.New(registrytest.WithMiddleware(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "s3cret-pass" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}))
	t.Cleanup(reg.Close)
	if _, err := reg.PushImage("private/app", "1", types.OCIManifestSchema1); err == nil {
		t.Fatal("the registry took a push without credentials")
	}
	objs := objects(t, pod("a", reg.Host+"/private/app:1"))
	rep := pin.New(resolver.New(resolver.WithTransport(reg.Transport()), resolver.WithKeychain(keychain{})), pin.Options{}).Run(context.Background(), objs)
	// Nothing was pushed, so the registry answers 404 once the credentials are accepted.
	if len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0].Message, "not found") {
		t.Errorf("findings %+v, want a not-found error past the credential check", simplify(rep.Findings))
	}
}

// TestVerifyCountsTags: under verify a tag@digest pin is looked up by its tag, so pins of one tag,
// written two ways, and the bare tag are one distinct reference and one lookup.
func TestVerifyCountsTags(t *testing.T) {
	reg, d := serve(t)
	objs := objects(t, pod("a", "nginx:1.27@"+d["nginx:1.27"]), pod("b", "docker.io/library/nginx:1.27@"+d["nginx:1.27"]), pod("c", "nginx:1.27"))
	rep := newPinner(reg, func(c *pin.Options) { c.Pinned = pin.PinnedVerify }).Run(context.Background(), objs)
	if diff := cmp.Diff(pin.Summary{Pinned: 1, Verified: 2, Distinct: 1, Requests: 2}, rep.Summary); diff != "" || !rep.OK() {
		t.Errorf("summary (-want +got):\n%s\nfindings %+v", diff, simplify(rep.Findings))
	}
}

// TestChangeCounts: the summary counts a pin from the lock as pinned and from the lock, a tag
// pinned as pinned, and a moved pin refreshed (not pinned).
func TestChangeCounts(t *testing.T) {
	reg, d := serve(t)
	old := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	counts := func(s pin.Summary) [3]int { return [3]int{s.Pinned, s.FromLock, s.Refreshed} }
	rep := newPinner(reg, nil).Run(context.Background(), objects(t, pod("a", "nginx:1.27"), pod("c", "ghcr.io/acme/app:2"), lockDoc("nginx:1.27", d["nginx:1.27"])))
	if got, want := counts(rep.Summary), [3]int{2, 1, 0}; got != want || !rep.OK() {
		t.Errorf("a pin from the lock and a tag: pinned, from the lock, refreshed %v, want %v", got, want)
	}
	rep = newPinner(reg, func(c *pin.Options) { c.Pinned = pin.PinnedRefresh }).Run(context.Background(), objects(t, pod("b", "ghcr.io/acme/app:2@"+old)))
	if got, want := counts(rep.Summary), [3]int{0, 0, 1}; got != want || !rep.OK() {
		t.Errorf("a moved pin refreshed: pinned, from the lock, refreshed %v, want %v", got, want)
	}
}
