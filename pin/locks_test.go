package pin_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/pin"
)

// TestLocks: a run given the package's DigestLock first (Locks), then every object in its place,
// the lock again among them, each dropped once added, reports what Run reports for the same
// objects, under the settings that read the lock, and updates the lock alike.
func TestLocks(t *testing.T) {
	reg, d := serve(t)
	old := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	tests := []struct {
		name string
		opts func(*pin.Options)
		docs []string
	}{
		{"update, the lock in the middle", nil, []string{pod("a", "nginx:1.27"), lockDoc("nginx:1.27", old), pod("b", "ghcr.io/acme/app:2"), dupPod}},
		{"frozen, an entry missing", func(o *pin.Options) { o.Lock = pin.LockFrozen }, []string{pod("a", "nginx:1.27"), pod("b", "ghcr.io/acme/app:2"), lockDoc("nginx:1.27", old)}},
		{"frozen, no lock", func(o *pin.Options) { o.Lock = pin.LockFrozen }, []string{pod("a", "nginx:1.27")}},
		{"refresh", func(o *pin.Options) { o.Pinned = pin.PinnedRefresh }, []string{pod("a", "nginx:1.27@"+old), lockDoc("nginx:1.27", old), pod("t", "${IMAGE}")}},
		{"verify", func(o *pin.Options) { o.Pinned = pin.PinnedVerify }, []string{lockDoc("nginx:1.27", old), pod("a", "nginx:1.27"), pod("b", "ghcr.io/acme/app:2@"+d["ghcr.io/acme/app:2"])}},
		{"check", func(o *pin.Options) { o.Mode = pin.ModeCheck }, []string{pod("a", "nginx:1.27@"+old), pod("b", "ghcr.io/acme/app:2"), lockDoc("nginx:1.27", d["nginx:1.27"])}},
		{"two locks", nil, []string{lockDoc("nginx:1.27", old), pod("a", "nginx:1.27"), lockDoc("nginx:1.27", d["nginx:1.27"])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wholeObjs := objects(t, tt.docs...)
			whole := newPinner(reg, tt.opts).Run(context.Background(), wholeObjs)

			objs := objects(t, tt.docs...)
			var locks []*pin.Object
			for _, o := range objs {
				if pin.IsLock(o.Node) {
					locks = append(locks, o)
				}
			}
			b := newPinner(reg, tt.opts).Start()
			b.Locks(locks...)
			for _, o := range objs {
				b.Add(o)
				b.Drop(o)
			}
			early := b.Finish(context.Background())

			if diff := cmp.Diff(simplify(whole.Findings), simplify(early.Findings)); diff != "" {
				t.Errorf("findings (-Run +Locks first):\n%s", diff)
			}
			whole.Summary.Requests, early.Summary.Requests = 0, 0
			if diff := cmp.Diff(whole.Summary, early.Summary); diff != "" {
				t.Errorf("summary (-Run +Locks first):\n%s", diff)
			}
			for i, o := range objs {
				if pin.IsLock(o.Node) && encode(t, o) != encode(t, wholeObjs[i]) {
					t.Errorf("lock %d after the run:\n%s\nwant\n%s", i, encode(t, o), encode(t, wholeObjs[i]))
				}
			}
		})
	}
}

// TestLocksLate: a DigestLock that Add is given but Locks was not fails the run, naming it: the
// fields before it were decided without it.
func TestLocksLate(t *testing.T) {
	reg, _ := serve(t)
	objs := objects(t, pod("a", "nginx:1.27"), lockDoc("nginx:1.27", "sha256:"+strings.Repeat("0123456789abcdef", 4)))
	b := newPinner(reg, nil).Start()
	b.Locks()
	b.Add(objs...)
	rep := b.Finish(context.Background())
	want := finding{Severity: "error", ID: "DigestLock digests", File: "b.yaml", Path: "images",
		Message: "a DigestLock digester did not find when it first read the package: was the file changed while digester read it? Run digester again"}
	if rep.OK() || !cmp.Equal(simplify(rep.Findings)[0], want) || rep.Findings[0].Cause != pin.CauseLock {
		t.Errorf("report OK %v, findings %+v; want it failed with %+v", rep.OK(), simplify(rep.Findings), want)
	}
	if got := encode(t, objs[0]); !strings.Contains(got, "image: nginx:1.27 #") {
		t.Errorf("the Pod was changed by a failed run:\n%s", got)
	}
}

// TestLocksKeepOnlyWhatWaits: once the lock is read, an object whose fields need no lookup and
// have nothing to report (pinned, under pinned: keep) is not kept past the next Add, nor its
// fields: the run holds what waits for a lookup, not the package.
func TestLocksKeepOnlyWhatWaits(t *testing.T) {
	reg, d := serve(t)
	b := newPinner(reg, nil).Start()
	b.Locks()
	collected := make(chan string, 2)
	for _, doc := range []string{pod("p0", "nginx:1.27@"+d["nginx:1.27"]), pod("p1", "ghcr.io/acme/app:2@"+d["ghcr.io/acme/app:2"])} {
		o := objects(t, doc)[0]
		runtime.SetFinalizer(o, func(*pin.Object) { collected <- doc })
		b.Add(o)
		b.Drop(o)
	}
	b.Add(objects(t, pod("w", "nginx:1.27"))...) // decides the last object added before it
	awaitCollected(t, collected, 2, "objects whose fields were pinned")
	rep := b.Finish(context.Background())
	if rep.Summary.AlreadyPinned != 2 || rep.Summary.Pinned != 1 {
		t.Errorf("summary %+v, want 2 already pinned, 1 pinned", rep.Summary)
	}
}
