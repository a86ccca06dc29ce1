package pin_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/digester/digester/pin"
)

// TestCheckModeCounts: check mode counts each field pin would change and fails on a stale pin
// whatever pinned says (refresh would move it: a change, so an error in check mode), and on a lock
// pin mode would change, even one that would only drop an entry.
func TestCheckModeCounts(t *testing.T) {
	reg, d := serve(t)
	old := "sha256:" + strings.Repeat("e", 64)
	for _, tc := range []struct {
		name    string
		docs    []string
		opts    pin.Options
		want    pin.Summary
		wantMsg string
	}{{
		name:    "an unpinned field",
		docs:    []string{pod("a", "nginx:1.27"), pod("b", "nginx:1.27@"+d["nginx:1.27"])},
		opts:    pin.Options{Mode: pin.ModeCheck},
		want:    pin.Summary{Check: true, Failed: 1, Unpinned: 1, AlreadyPinned: 1},
		wantMsg: "not pinned: nginx:1.27 has no digest",
	}, {
		name:    "a stale pin under pinned: refresh",
		docs:    []string{pod("a", "nginx:1.27@"+old)},
		opts:    pin.Options{Mode: pin.ModeCheck, Pinned: pin.PinnedRefresh},
		want:    pin.Summary{Check: true, Failed: 1, Stale: 1, Distinct: 1, Requests: 5},
		wantMsg: "stale pin: nginx:1.27 is pinned to " + old,
	}, {
		name:    "a lock that would only drop an entry",
		docs:    []string{pod("a", "nginx:1.27@"+d["nginx:1.27"]), lockDoc("nginx:1.27", d["nginx:1.27"], "redis:7", old)},
		opts:    pin.Options{Mode: pin.ModeCheck},
		want:    pin.Summary{Check: true, Failed: 1, Unpinned: 1, AlreadyPinned: 1},
		wantMsg: "the lock is out of date: pinning would add 0, change 0 and drop 1 entries",
	}, {
		name: "frozen: the same lock is not out of date, since pin never changes it",
		docs: []string{pod("a", "nginx:1.27@"+d["nginx:1.27"]), lockDoc("nginx:1.27", d["nginx:1.27"], "redis:7", old)},
		opts: pin.Options{Mode: pin.ModeCheck, Lock: pin.LockFrozen},
		want: pin.Summary{Check: true, AlreadyPinned: 1},
	}, {
		name: "a current lock",
		docs: []string{pod("a", "nginx:1.27@"+d["nginx:1.27"]), lockDoc("nginx:1.27", d["nginx:1.27"])},
		opts: pin.Options{Mode: pin.ModeCheck},
		want: pin.Summary{Check: true, AlreadyPinned: 1},
	}, {
		name: "no lock",
		docs: []string{pod("a", "nginx:1.27@"+d["nginx:1.27"])},
		opts: pin.Options{Mode: pin.ModeCheck},
		want: pin.Summary{Check: true, AlreadyPinned: 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			reg.Reset()
			rep := newPinner(reg, func(o *pin.Options) { *o = tc.opts }).Run(context.Background(), objects(t, tc.docs...))
			if diff := cmp.Diff(tc.want, rep.Summary); diff != "" {
				t.Errorf("summary (-want +got):\n%s\nfindings %+v", diff, simplify(rep.Findings))
			}
			if tc.wantMsg != "" && !hasError(rep, tc.wantMsg) {
				t.Errorf("no error contains %q: %+v", tc.wantMsg, simplify(rep.Findings))
			}
		})
	}
}

// TestRegistryGroups: references that fail alike on one registry that cannot be reached make one
// group naming the registry; a reference that fails alone is a group about its fields.
func TestRegistryGroups(t *testing.T) {
	objs := objects(t, pod("a", "127.0.0.1:1/app:1"), pod("b", "127.0.0.1:1/web:2"))
	rep := pin.New(lookup(http.DefaultTransport, nil), pin.Options{}).Run(context.Background(), objs)
	groups := rep.Groups()
	if len(groups) != 1 || groups[0].Registry != "127.0.0.1:1" || !strings.Contains(groups[0].Message, "2 references cannot be pinned") {
		t.Errorf("groups %+v, want one for registry 127.0.0.1:1 naming both references", groups)
	}
	for _, f := range rep.Findings {
		if f.Severity == pin.Error && (f.Registry != "127.0.0.1:1" || f.Cause != pin.CauseUnreachable || !strings.HasPrefix(f.Reason, "cannot connect to registry 127.0.0.1:1")) {
			t.Errorf("finding %+v: want registry 127.0.0.1:1, cause unreachable and the registry's answer", f)
		}
	}
	one := pin.New(lookup(http.DefaultTransport, nil), pin.Options{}).Run(context.Background(), objects(t, pod("a", "127.0.0.1:1/app:1")))
	if g := one.Groups(); len(g) != 1 || g[0].Registry != "" {
		t.Errorf("one failing reference: groups %+v, want one about its field, with no registry", g)
	}
}

// TestDefaultLockFile: lock: update with no lock file named creates digests.lock.yaml.
func TestDefaultLockFile(t *testing.T) {
	reg, _ := serve(t)
	rep := newPinner(reg, func(o *pin.Options) { o.Lock = pin.LockUpdate }).Run(context.Background(), objects(t, pod("a", "nginx:1.27")))
	if len(rep.Created) != 1 || rep.Created[0].File != "digests.lock.yaml" {
		t.Errorf("created %+v, want one lock in digests.lock.yaml", rep.Created)
	}
}

// TestLockKeepsItsSpelling: a refreshed entry stays spelled as the lock spells it.
func TestLockKeepsItsSpelling(t *testing.T) {
	reg, d := serve(t)
	old := "sha256:" + strings.Repeat("e", 64)
	objs := objects(t, pod("a", "nginx:1.27"), lockDoc("index.docker.io/library/nginx:1.27", old))
	rep := newPinner(reg, func(o *pin.Options) { o.Pinned = pin.PinnedRefresh }).Run(context.Background(), objs)
	if diff := cmp.Diff(map[string]string{"index.docker.io/library/nginx:1.27": d["nginx:1.27"]}, lockEntries(t, objs[1])); diff != "" || !rep.OK() {
		t.Errorf("lock (-want +got):\n%s\nfindings %+v", diff, simplify(rep.Findings))
	}
}
