package pin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/pin"
)

// trustRegistry serves multi:1 (linux/amd64 and linux/arm64), amd64:1 (a linux/amd64 image) and
// nginx:1.27 and :latest, and returns the digests: "multi:1" the index's, "multi:1 arm64" and "multi:1 amd64"
// its images'.
func trustRegistry(t *testing.T) (*registrytest.Registry, map[string]string) {
	t.Helper()
	reg := registrytest.New(registrytest.WithTLS())
	t.Cleanup(reg.Close)
	d, err := reg.PushImages(types.OCIManifestSchema1, "amd64:1", "nginx:1.27", "nginx:latest")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := reg.PushIndex("multi", "1", types.OCIImageIndex)
	if err != nil {
		t.Fatal(err)
	}
	d["multi:1"] = idx.String()
	built, err := registrytest.Index(types.OCIImageIndex, "multi:1")
	if err != nil {
		t.Fatal(err)
	}
	im, err := built.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		d["multi:1 "+m.Platform.Architecture] = m.Digest.String()
	}
	return reg, d
}

// lockDocWith is a DigestLock whose entries are image, digest, platform triples ("" for none).
func lockDocWith(entries ...string) string {
	s := lockDoc()
	for i := 0; i+2 < len(entries); i += 3 {
		s += "- image: " + entries[i] + "\n  digest: " + entries[i+1] + "\n"
		if entries[i+2] != "" {
			s += "  platform: " + entries[i+2] + "\n"
		}
	}
	return s
}

// lockWith reads a DigestLock's entries as "digest" or "digest for platform".
func lockWith(t *testing.T, o *pin.Object) map[string]string {
	t.Helper()
	b, err := yaml.Marshal(o.Node)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := pin.ParseLock(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, e := range entries {
		out[k] = e.Digest
		if e.Platform != "" {
			out[k] += " for " + e.Platform
		}
	}
	return out
}

var arm64 = &v1.Platform{OS: "linux", Architecture: "arm64"}

// TestLockAndPlatform: the lock records the platform each digest was resolved for, and an entry
// for another platform answers nothing: a run resolves anew (the default), fails naming both
// platforms (frozen), or finds the lock stale (check).
func TestLockAndPlatform(t *testing.T) {
	reg, d := trustRegistry(t)
	for _, tc := range []struct {
		name      string
		docs      []string
		opts      pin.Options
		wantOK    bool
		wantDoc   string            // the first object, after the run
		wantLock  map[string]string // nil: not checked
		wantError string            // in the first error finding
		verified  int
	}{{
		name:     "a lock made without a platform does not answer a linux/arm64 run: resolved anew, and recorded",
		docs:     []string{pod("a", "multi:1"), lockDocWith("multi:1", d["multi:1"], "")},
		opts:     pin.Options{Platform: arm64},
		wantOK:   true,
		wantDoc:  pod("a", "multi:1@"+d["multi:1 arm64"]),
		wantLock: map[string]string{"multi:1": d["multi:1 arm64"] + " for linux/arm64"},
	}, {
		name:     "a lock made for linux/arm64 does not answer a run without a platform",
		docs:     []string{pod("a", "multi:1"), lockDocWith("multi:1", d["multi:1 arm64"], "linux/arm64")},
		wantOK:   true,
		wantDoc:  pod("a", "multi:1@"+d["multi:1"]),
		wantLock: map[string]string{"multi:1": d["multi:1"]},
	}, {
		name:     "an entry for the run's platform answers it, with no request",
		docs:     []string{pod("a", "multi:1"), lockDocWith("multi:1", d["multi:1 arm64"], "linux/arm64")},
		opts:     pin.Options{Platform: arm64},
		wantOK:   true,
		wantDoc:  pod("a", "multi:1@"+d["multi:1 arm64"]),
		wantLock: map[string]string{"multi:1": d["multi:1 arm64"] + " for linux/arm64"},
	}, {
		name:      "an index lock and linux/arm64 do not pin an amd64-only image",
		docs:      []string{pod("a", "amd64:1"), lockDocWith("amd64:1", d["amd64:1"], "")},
		opts:      pin.Options{Platform: arm64},
		wantDoc:   pod("a", "amd64:1"),
		wantError: "single-platform image for linux/amd64",
	}, {
		name:      "frozen: an entry for another platform fails, naming both",
		docs:      []string{pod("a", "multi:1"), lockDocWith("multi:1", d["multi:1"], "")},
		opts:      pin.Options{Platform: arm64, Lock: pin.LockFrozen},
		wantDoc:   pod("a", "multi:1"),
		wantError: "not in the lock for linux/arm64: the lock's entry for multi:1 was resolved for no platform (the multi-arch index)",
	}, {
		name:      "check: a pinned package whose lock was made for another platform has a stale lock",
		docs:      []string{pod("a", "multi:1"), lockDocWith("multi:1", d["multi:1"], "")},
		opts:      pin.Options{Platform: arm64, Mode: pin.ModeCheck},
		wantDoc:   pod("a", "multi:1"),
		wantError: "the lock is out of date: pinning would add 0, change 1 and drop 0 entries",
	}, {
		name:     "verify with linux/arm64: a pin to the tag's index is current for arm64 nodes, not stale",
		docs:     []string{pod("a", "multi:1@"+d["multi:1"]), lockDoc()},
		opts:     pin.Options{Platform: arm64, Pinned: pin.PinnedVerify},
		wantOK:   true,
		wantDoc:  pod("a", "multi:1@"+d["multi:1"]),
		wantLock: map[string]string{"multi:1": d["multi:1 arm64"] + " for linux/arm64"},
		verified: 1,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			objs := objects(t, tc.docs...)
			rep := newPinner(reg, func(o *pin.Options) { *o = tc.opts }).Run(context.Background(), objs)
			if rep.OK() != tc.wantOK {
				t.Errorf("OK() = %v, want %v: %+v", rep.OK(), tc.wantOK, simplify(rep.Findings))
			}
			if got := encode(t, objs[0]); got != tc.wantDoc {
				t.Errorf("object:\n%s\nwant:\n%s", got, tc.wantDoc)
			}
			if tc.wantLock != nil {
				if diff := cmp.Diff(tc.wantLock, lockWith(t, objs[len(objs)-1])); diff != "" {
					t.Errorf("lock (-want +got):\n%s", diff)
				}
			}
			if tc.wantError != "" && !hasError(rep, tc.wantError) {
				t.Errorf("no error finding contains %q: %+v", tc.wantError, simplify(rep.Findings))
			}
			if rep.Summary.Verified != tc.verified {
				t.Errorf("%d pins verified, want %d", rep.Summary.Verified, tc.verified)
			}
		})
	}
}

func hasError(rep *pin.Report, s string) bool {
	for _, f := range rep.Findings {
		if f.Severity == pin.Error && strings.Contains(f.Message, s) {
			return true
		}
	}
	return false
}

// TestLockHoldsWhatTheRunResolved: the lock holds what this run resolved or verified for its
// settings, never a digest copied from a pin the registry did not confirm for the reference, never
// one platform's image where the index was asked for; a tag-less reference is locked for latest
// and its entry outlives its pinning; and
// skipping a reference (by prefix, or leaving it after a failure) keeps its entry.
func TestLockHoldsWhatTheRunResolved(t *testing.T) {
	reg, d := trustRegistry(t)
	foreign := "sha256:" + strings.Repeat("8f", 32)
	for _, tc := range []struct {
		name     string
		docs     []string
		opts     pin.Options
		wantLock map[string]string
	}{{
		name:     "a pin from elsewhere is not what the run resolved for the tag",
		docs:     []string{pod("a", "nginx:1.27"), pod("b", "docker.io/library/nginx:1.27@"+foreign)},
		opts:     pin.Options{Lock: pin.LockUpdate},
		wantLock: map[string]string{"nginx:1.27": d["nginx:1.27"]},
	}, {
		name:     "verify: a pin to one platform's image locks the index the tag points to",
		docs:     []string{pod("a", "multi:1@"+d["multi:1 arm64"]), lockDoc()},
		opts:     pin.Options{Pinned: pin.PinnedVerify},
		wantLock: map[string]string{"multi:1": d["multi:1"]},
	}, {
		name:     "a tag-less reference is locked as written, for latest",
		docs:     []string{pod("a", "nginx"), pod("b", "nginx:1.27"), lockDoc()},
		wantLock: map[string]string{"nginx": d["nginx:latest"], "nginx:1.27": d["nginx:1.27"]},
	}, {
		name:     "a tag-less reference pinned from the lock keeps its entry",
		docs:     []string{pod("a", "nginx@"+d["nginx:latest"]), lockDoc("nginx", d["nginx:latest"])},
		wantLock: map[string]string{"nginx": d["nginx:latest"]},
	}, {
		name:     "skipping is not forgetting",
		docs:     []string{pod("a", "nginx:1.27@"+d["nginx:1.27"]), pod("b", "multi:1@"+d["multi:1"]), lockDocWith("nginx:1.27", d["nginx:1.27"], "", "multi:1", d["multi:1"], "")},
		opts:     pin.Options{SkipPrefixes: []string{"nginx"}, Pinned: pin.PinnedVerify},
		wantLock: map[string]string{"nginx:1.27": d["nginx:1.27"], "multi:1": d["multi:1"]},
	}, {
		name:     "a reference no field uses any more is dropped",
		docs:     []string{pod("b", "multi:1@"+d["multi:1"]), lockDocWith("nginx:1.27", d["nginx:1.27"], "", "multi:1", d["multi:1"], "")},
		wantLock: map[string]string{"multi:1": d["multi:1"]},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			reg.Reset()
			objs := objects(t, tc.docs...)
			rep := newPinner(reg, func(o *pin.Options) { *o = tc.opts }).Run(context.Background(), objs)
			if !rep.OK() {
				t.Fatalf("run failed: %+v", simplify(rep.Findings))
			}
			lock := objs[len(objs)-1]
			if len(rep.Created) == 1 {
				lock = rep.Created[0]
			}
			if diff := cmp.Diff(tc.wantLock, lockWith(t, lock)); diff != "" {
				t.Errorf("lock (-want +got):\n%s", diff)
			}
			// check with the same settings as the pin that wrote the lock passes.
			for i, o := range objs {
				if len(rep.Created) == 1 && i == len(objs)-1 {
					continue
				}
				objs[i] = &pin.Object{Node: o.Node, File: o.File}
			}
			if len(rep.Created) == 1 {
				objs = append(objs, rep.Created[0])
			}
			opts := tc.opts
			opts.Mode = pin.ModeCheck
			if check := newPinner(reg, func(o *pin.Options) { *o = opts }).Run(context.Background(), objs); !check.OK() {
				t.Errorf("check with the same settings fails: %+v", simplify(check.Findings))
			}
		})
	}
}

// TestLockSpellings: two spellings of one reference with different digests make a lock that
// cannot be read, naming both, so that lock: frozen never picks one at random.
func TestLockSpellings(t *testing.T) {
	reg, _ := trustRegistry(t)
	aa, bb := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	want := fmt.Sprintf("the DigestLock cannot be read: images[0] (nginx:1.27) and images[1] (docker.io/library/nginx:1.27) are one reference with different entries (%s, %s): remove one", aa, bb)
	for range 20 {
		objs := objects(t, pod("a", "nginx:1.27"), lockDoc("nginx:1.27", aa, "docker.io/library/nginx:1.27", bb))
		rep := newPinner(reg, func(o *pin.Options) { o.Lock = pin.LockFrozen }).Run(context.Background(), objs)
		if rep.OK() || !hasError(rep, want) {
			t.Fatalf("findings %+v, want an error %q", simplify(rep.Findings), want)
		}
		if got := encode(t, objs[0]); got != pod("a", "nginx:1.27") {
			t.Fatalf("pinned from an ambiguous lock:\n%s", got)
		}
	}
	// The same digest twice is one entry written twice: no harm.
	objs := objects(t, pod("a", "nginx:1.27"), lockDoc("nginx:1.27", aa, "docker.io/library/nginx:1.27", aa))
	if rep := newPinner(reg, func(o *pin.Options) { o.Lock = pin.LockFrozen }).Run(context.Background(), objs); !rep.OK() {
		t.Errorf("a lock with one digest written twice: %+v", simplify(rep.Findings))
	}
}

// A DigestLock written without the local-config annotation is still the package's lock: it is
// used, and its entries are not reported as image fields left alone.
func TestLockWithoutLocalConfig(t *testing.T) {
	reg, digests := serve(t)
	lock := strings.Replace(lockDoc("nginx:1.27", digests["nginx:1.27"]), "  annotations:\n    config.kubernetes.io/local-config: \"true\"\n", "", 1)
	objs := objects(t, pod("a", "nginx:1.27"), lock)
	rep := newPinner(reg, func(o *pin.Options) { o.Lock = pin.LockFrozen }).Run(context.Background(), objs)
	var got []finding
	for _, f := range simplify(rep.Findings) {
		if f.Severity != "info" {
			got = append(got, f)
		}
	}
	if !rep.OK() || len(got) > 0 || rep.Summary.FromLock != 1 {
		t.Errorf("ok %v, from lock %d, findings other than info %+v; want the Pod pinned from the lock and nothing else said", rep.OK(), rep.Summary.FromLock, got)
	}
}
