package pin_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/pin"
)

// TestBatches: objects given to Add in batches, the lock in the last one, give the report Run
// gives for them all at once, and the lock the run updated is in Report.Updated.
func TestBatches(t *testing.T) {
	reg, d := serve(t)
	old := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	docs := []string{
		pod("a", "nginx:1.27"),
		dupPod,
		pod("t", "${IMAGE}"),
		pod("c", "ghcr.io/acme/app:2"),
		lockDoc("nginx:1.27", old),
	}
	opts := func(o *pin.Options) { o.Pinned = pin.PinnedRefresh }
	whole := newPinner(reg, opts).Run(context.Background(), objects(t, docs...))

	objs := objects(t, docs...)
	b := newPinner(reg, opts).Start()
	b.Add(objs[:2]...)
	b.Add(objs[2])
	b.Add(objs[3:]...)
	batched := b.Finish(context.Background())

	if diff := cmp.Diff(simplify(whole.Findings), simplify(batched.Findings)); diff != "" {
		t.Errorf("findings (-Run +batches):\n%s", diff)
	}
	whole.Summary.Requests, batched.Summary.Requests = 0, 0 // the second run's lookups are the first's again
	if diff := cmp.Diff(whole.Summary, batched.Summary); diff != "" {
		t.Errorf("summary (-Run +batches):\n%s", diff)
	}
	if got := encode(t, objs[0]); got != pod("a", "nginx:1.27@"+d["nginx:1.27"]) {
		t.Errorf("first object after the run:\n%s", got)
	}
	if len(batched.Updated) != 1 || batched.Updated[0] != objs[4] {
		t.Fatalf("Updated = %v, want the lock object", batched.Updated)
	}
	if got := lockEntries(t, objs[4]); got["nginx:1.27"] != d["nginx:1.27"] {
		t.Errorf("lock after the run: %v, want nginx:1.27 at %s", got, d["nginx:1.27"])
	}
}

// TestBatchesKeepNoTrees: once Add returns, the core holds nothing of an object's tree but its
// image fields' nodes: a tree the front end drops is collected.
func TestBatchesKeepNoTrees(t *testing.T) {
	reg, _ := serve(t)
	b := newPinner(reg, nil).Start()
	collected := make(chan string, 2)
	for _, o := range objects(t, pod("a", "nginx:1.27"), pod("b", "ghcr.io/acme/app:2")) {
		metadata := o.Node.Content[0].Content[5] // a node that is no image field
		name := metadata.Content[1].Value
		runtime.SetFinalizer(metadata, func(*yaml.Node) { collected <- name })
		b.Add(o)
		o.Node = nil
	}
	awaitCollected(t, collected, 2, "dropped trees")
	if rep := b.Finish(context.Background()); rep.Summary.Pinned != 2 {
		t.Errorf("summary %+v, want 2 pinned", rep.Summary)
	}
}

// TestKeeps: the run needs the whole tree of a DigestLock and of an object with a field pinned in
// its kind's syntax (a Kptfile function, with its tag in a comment), and of no other object.
func TestKeeps(t *testing.T) {
	reg, _ := serve(t)
	kptfile := "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: p\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\npipeline:\n  mutators:\n  - image: ghcr.io/acme/app:2\n"
	objs := objects(t, pod("a", "nginx:1.27"), kptfile, lockDoc("nginx:1.27", "sha256:"+"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
	b := newPinner(reg, nil).Start()
	b.Add(objs...)
	got := []bool{b.Keeps(objs[0]), b.Keeps(objs[1]), b.Keeps(objs[2])}
	if diff := cmp.Diff([]bool{false, true, true}, got); diff != "" {
		t.Errorf("Keeps of a Pod, a Kptfile, a DigestLock (-want +got):\n%s", diff)
	}
}

// TestDrop: objects dropped after Add (a front end that writes pins at their line and column)
// give the findings an undropped run gives, lines and columns included, with no node; the run
// lets go of their image fields' nodes and sets none; an object added before the last Add keeps
// its tree, and its fields are set as before.
func TestDrop(t *testing.T) {
	reg, d := serve(t)
	docs := []string{pod("a", "nginx:1.27"), dupPod, pod("t", "${IMAGE}"), pod("c", "ghcr.io/acme/app:2")}
	whole := newPinner(reg, nil).Run(context.Background(), objects(t, docs...))

	objs := objects(t, docs...)
	b := newPinner(reg, nil).Start()
	b.Add(objs[0])
	collected := make(chan string, 3)
	for _, o := range objs[1:] {
		image := imageNode(o.Node)
		runtime.SetFinalizer(image, func(n *yaml.Node) { collected <- n.Value })
		b.Add(o)
		b.Drop(o)
		if o.Node != nil {
			t.Errorf("%s: Node after Drop, want nil", image.Value)
		}
	}
	awaitCollected(t, collected, 3, "dropped image nodes")
	dropped := b.Finish(context.Background())

	type place struct {
		Message      string
		Line, Column int
		Node         bool
	}
	places := func(fs []pin.Finding) (out []place) {
		for _, f := range fs {
			out = append(out, place{f.Message, f.Line, f.Column, f.Node != nil})
		}
		return out
	}
	want := places(whole.Findings)
	for i, f := range whole.Findings {
		want[i].Node = want[i].Node && f.Object.File == objs[0].File // the first object was not dropped
	}
	if diff := cmp.Diff(simplify(whole.Findings), simplify(dropped.Findings)); diff != "" {
		t.Errorf("findings (-undropped +dropped):\n%s", diff)
	}
	if diff := cmp.Diff(want, places(dropped.Findings)); diff != "" {
		t.Errorf("lines, columns and nodes (-want +got):\n%s", diff)
	}
	if got := encode(t, objs[0]); got != pod("a", "nginx:1.27@"+d["nginx:1.27"]) {
		t.Errorf("the object added before the last Add, after the run:\n%s", got)
	}
	for _, f := range dropped.Findings { // each place is the image's in its document's text
		if f.Image == "" {
			continue
		}
		doc := docs[f.Object.File[0]-'a']
		lines := strings.Split(doc, "\n")
		if f.Line < 1 || f.Line > len(lines) || f.Column < 1 || !strings.HasPrefix(lines[f.Line-1][f.Column-1:], f.Image) {
			t.Errorf("%s %s at line %d, column %d: want the place of %q in\n%s", f.Object.File, f.Path, f.Line, f.Column, f.Image, doc)
		}
	}
}

// imageNode returns the value of the first image: key in n's tree.
func imageNode(n *yaml.Node) *yaml.Node {
	for i, c := range n.Content {
		if c.Value == "image" && n.Kind == yaml.MappingNode && i%2 == 0 {
			return n.Content[i+1]
		}
		if found := imageNode(c); found != nil {
			return found
		}
	}
	return nil
}

// TestDropLeavesWhatKeepsNames: Drop leaves whole the objects the run needs whole, a DigestLock
// and a Kptfile, which are then pinned and updated as if none were dropped.
func TestDropLeavesWhatKeepsNames(t *testing.T) {
	reg, d := serve(t)
	kptfile := "apiVersion: kpt.dev/v1\nkind: Kptfile\nmetadata:\n  name: p\n  annotations:\n    config.kubernetes.io/local-config: \"true\"\npipeline:\n  mutators:\n  - image: ghcr.io/acme/app:2\n"
	old := "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	objs := objects(t, pod("a", "nginx:1.27"), kptfile, lockDoc("nginx:1.27", old))
	b := newPinner(reg, func(o *pin.Options) { o.Pinned = pin.PinnedRefresh }).Start()
	collected := make(chan bool, 1)
	runtime.SetFinalizer(imageNode(objs[0].Node), func(*yaml.Node) { collected <- true })
	b.Add(objs...)
	b.Drop(objs...)
	awaitCollected(t, collected, 1, "image nodes of the dropped Pod, the first object walked,")
	if got := []bool{objs[0].Node == nil, objs[1].Node == nil, objs[2].Node == nil}; !cmp.Equal(got, []bool{true, false, false}) {
		t.Fatalf("Node nil after Drop for a Pod, a Kptfile, a DigestLock: %v, want [true false false]", got)
	}
	rep := b.Finish(context.Background())
	if !rep.OK() || rep.Summary.Pinned != 2 {
		t.Fatalf("summary %+v, want 2 pinned", rep.Summary)
	}
	if got, want := encode(t, objs[1]), "ghcr.io/acme/app@"+d["ghcr.io/acme/app:2"]+" # 2"; !strings.Contains(got, want) {
		t.Errorf("Kptfile after the run, want %q in it:\n%s", want, got)
	}
	if len(rep.Updated) != 1 || rep.Updated[0] != objs[2] || lockEntries(t, objs[2])["nginx:1.27"] != d["nginx:1.27"] {
		t.Errorf("the lock after the run: Updated %v, entries %v", rep.Updated, lockEntries(t, objs[2]))
	}
}

// awaitCollected runs the collector until n values arrive on collected, each sent by a finalizer,
// or fails the test after 10 s: the run still holds what should be gone.
func awaitCollected[T any](t *testing.T, collected <-chan T, n int, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for got := 0; got < n; {
		runtime.GC()
		select {
		case <-collected:
			got++
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d %s collected: the run keeps them", got, n, what)
		}
	}
}
