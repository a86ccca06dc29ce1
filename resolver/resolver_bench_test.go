package resolver_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/digester/digester/bench/gen"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/resolver"
)

// BenchmarkResolve resolves a package's worth of references (each distinct one named 25 times,
// 30 % of them multi-arch) with a new Resolver per run, as the function does, against an
// in-process registry on loopback. It reports the requests of a run: one ping and one manifest
// HEAD per distinct reference. With latency, a run takes about ceil(distinct/16)+1 round trips.
func BenchmarkResolve(b *testing.B) {
	reg := registrytest.New()
	defer reg.Close()
	imgs, err := gen.Push(reg, 800)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		distinct int
		latency  time.Duration
	}{{40, 0}, {200, 0}, {800, 0}, {200, 20 * time.Millisecond}} {
		b.Run(fmt.Sprintf("distinct=%d/latency=%s", c.distinct, c.latency), func(b *testing.B) {
			var refs []string
			for range 25 {
				for _, img := range imgs[:c.distinct] {
					refs = append(refs, img.Spellings...)
				}
			}
			reg.SetLatency(c.latency)
			defer reg.SetLatency(0)
			reg.Reset()
			b.ReportAllocs()
			for b.Loop() {
				r := resolver.New(resolver.WithKeychain(authn.NewMultiKeychain()))
				for ref, res := range r.Resolve(context.Background(), refs) {
					if res.Err != nil {
						b.Fatalf("%s: %v", ref, res.Err)
					}
				}
			}
			if heads, gets := reg.Count(http.MethodHead, "manifest"), reg.Count(http.MethodGet, "manifest"); heads != b.N*c.distinct || gets != 0 {
				b.Fatalf("%d manifest HEADs and %d GETs in %d runs, want %d HEADs and no GET per run", heads, gets, b.N, c.distinct)
			}
			b.ReportMetric(float64(len(reg.Requests()))/float64(b.N), "requests/op")
		})
	}
}
