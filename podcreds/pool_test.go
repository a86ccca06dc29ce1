package podcreds_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/digester/digester/podcreds"
	"github.com/digester/digester/resolver"
)

// counting is a lookup that counts and resolves nothing; its name says which credentials made it.
type counting struct {
	name                    string
	lookups, hits, requests int64
}

func (c *counting) Resolve(context.Context, []string) map[string]resolver.Result { return nil }
func (c *counting) Requests() int64                                              { return c.requests }
func (c *counting) Lookups() int64                                               { return c.lookups }
func (c *counting) Hits() int64                                                  { return c.hits }

func TestPool(t *testing.T) {
	c := fake.NewClientset(
		dockerConfigJSON("a", "x", "private.example", "alice", "p"),
		dockerConfigJSON("b", "x2", "private.example", "alice", "p"),
		dockerConfigJSON("b", "y", "private.example", "bob", "p"),
		serviceAccount("a", "default"), serviceAccount("b", "default"),
	)
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	base := &counting{name: "base", lookups: 1, hits: 10, requests: 100}
	made := 0
	pool := podcreds.NewPool(podcreds.NewReader(c, podcreds.WithClock(clock)), base, func(kc authn.Keychain) podcreds.Lookup {
		made++
		return &counting{name: user(t, kc, "private.example"), lookups: 1, hits: 10, requests: 100}
	}, podcreds.WithIdle(time.Minute), podcreds.WithPoolClock(clock))

	ctx := context.Background()
	name := func(pod podcreds.Pod) string {
		l, problems := pool.For(ctx, pod)
		if len(problems) > 0 {
			t.Fatalf("%+v: %v", pod, problems)
		}
		return l.(*counting).name
	}
	got := []string{
		name(podcreds.Pod{Namespace: "a"}),
		name(podcreds.Pod{Namespace: "a", PullSecrets: []string{"x"}}),
		name(podcreds.Pod{Namespace: "b", PullSecrets: []string{"x2"}}), // the same credentials: the same lookup
		name(podcreds.Pod{Namespace: "b", PullSecrets: []string{"y"}}),
	}
	if diff := cmp.Diff([]string{"base", "alice", "alice", "bob"}, got); diff != "" {
		t.Errorf("lookups given (-want +got):\n%s", diff)
	}
	if made != 2 {
		t.Errorf("made %d lookups, want 2: one per distinct credentials", made)
	}
	counts := func() []int64 { return []int64{pool.Lookups(), pool.Hits(), pool.Requests()} }
	if diff := cmp.Diff([]int64{3, 30, 300}, counts()); diff != "" {
		t.Errorf("lookups, hits, requests (-want +got):\n%s", diff)
	}

	// Idle for exactly the limit, the lookups are kept.
	now = now.Add(time.Minute)
	name(podcreds.Pod{Namespace: "a", PullSecrets: []string{"x"}})
	name(podcreds.Pod{Namespace: "b", PullSecrets: []string{"y"}})
	if made != 2 {
		t.Errorf("lookups idle for exactly the limit were made again: made %d, want 2", made)
	}

	// alice's lookup is used again; bob's sits idle past the limit and goes, its counts kept.
	now = now.Add(50 * time.Second)
	name(podcreds.Pod{Namespace: "a", PullSecrets: []string{"x"}})
	now = now.Add(50 * time.Second)
	name(podcreds.Pod{Namespace: "a", PullSecrets: []string{"x"}})
	if made != 2 {
		t.Errorf("alice's lookup was made again although in use")
	}
	if diff := cmp.Diff([]int64{3, 30, 300}, counts()); diff != "" {
		t.Errorf("after bob's lookup went: lookups, hits, requests (-want +got):\n%s", diff)
	}
	if name(podcreds.Pod{Namespace: "b", PullSecrets: []string{"y"}}); made != 3 {
		t.Errorf("bob's lookup was not made anew after it went idle: made %d", made)
	}
}
