package pin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/pin"
)

// TestPlatformPins: with platform set, a multi-arch tag pins to that platform's image; with
// pinned: verify, a pin that is one platform's image of the tag's index is a warning, not a
// stale pin, while a pin that is not in the index stays stale.
func TestPlatformPins(t *testing.T) {
	reg := registrytest.New(registrytest.WithTLS())
	t.Cleanup(reg.Close)
	index, err := reg.PushIndex("multi", "1", types.OCIImageIndex)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := registrytest.Index(types.OCIImageIndex, "multi:1")
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	arm64 := ""
	for _, d := range im.Manifests {
		if d.Platform.Architecture == "arm64" {
			arm64 = d.Digest.String()
		}
	}
	other := "sha256:" + strings.Repeat("b", 64)
	const field = "spec.containers[0].image"
	for _, tc := range []struct {
		name         string
		image        string
		mutate       func(*pin.Options)
		wantOK       bool
		wantSummary  pin.Summary
		wantFindings []finding
		wantDoc      string
	}{
		{
			name:        "platform pins a multi-arch tag to its image",
			image:       "multi:1",
			mutate:      func(c *pin.Options) { c.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"} },
			wantOK:      true,
			wantSummary: pin.Summary{Pinned: 1, Distinct: 1, Requests: 3}, // ping, HEAD, GET of the index
			wantFindings: []finding{
				{"info", "Pod ns/a", "a.yaml", field, "multi:1", "multi:1@" + arm64, "pinned multi:1 to " + arm64},
			},
			wantDoc: pod("a", "multi:1@"+arm64),
		},
		{
			name:        "verify: one platform's image of the index is a warning",
			image:       "multi:1@" + arm64,
			mutate:      func(c *pin.Options) { c.Pinned = pin.PinnedVerify },
			wantOK:      true,
			wantSummary: pin.Summary{Verified: 1, Distinct: 1, Requests: 4}, // ping, HEAD of the tag and of the pin, GET of the index
			wantFindings: []finding{
				{"warning", "Pod ns/a", "a.yaml", field, "multi:1@" + arm64, "", "multi:1 is pinned to " + arm64 +
					", the linux/arm64 image of the multi-arch tag (" + index.String() + "): nodes of other platforms cannot run it"},
			},
			wantDoc: pod("a", "multi:1@"+arm64),
		},
		{
			name:        "verify: a digest the index does not list is stale",
			image:       "multi:1@" + other,
			mutate:      func(c *pin.Options) { c.Pinned = pin.PinnedVerify },
			wantSummary: pin.Summary{Failed: 1, Stale: 1, Distinct: 1, Requests: 5},
			wantFindings: []finding{
				{"error", "Pod ns/a", "a.yaml", field, "multi:1@" + other, "", "stale pin: multi:1 is pinned to " + other + ", not to " +
					index.String() + ", which the tag points to now (and the repository does not serve " + other + ")"},
			},
			wantDoc: pod("a", "multi:1@"+other),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg.Reset()
			objs := objects(t, pod("a", tc.image))
			rep := newPinner(reg, tc.mutate).Run(context.Background(), objs)
			if rep.OK() != tc.wantOK {
				t.Errorf("OK() = %v, want %v", rep.OK(), tc.wantOK)
			}
			if diff := cmp.Diff(tc.wantSummary, rep.Summary); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantFindings, simplify(rep.Findings)); diff != "" {
				t.Errorf("findings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantDoc, encode(t, objs[0])); diff != "" {
				t.Errorf("object (-want +got):\n%s", diff)
			}
		})
	}
}
