// Command webhook measures digester's admission webhook over HTTPS on loopback: the webhook
// (package webhook, as cmd/webhook wires it) in front of an in-process registry with a simulated
// round trip, and a load generator sending AdmissionReviews of one Pod each.
//
//  1. burst: 100 concurrent admissions of one image nobody has looked up; counts lookups and
//     manifest requests (target: 1 of each).
//  2. hits: admissions of a cached image at rising rates, open loop; reports the rate achieved,
//     p50 and p99 latency (target: 1,000/s with p99 under 20 ms).
//  3. lock hits: admissions of an image a lock ConfigMap lists (--lock-configmap; the lock as
//     digestcache.WithLock reads it), at 1,000/s and 2,000/s; target: as cache hits, and no lookup.
//  4. misses: admissions each of a new image, at a fixed rate; p50 and p99 against the registry's
//     round trip (target: p99 within one round trip and 10 ms; the first also pays the handshake).
//
// Run it with `make bench-webhook` (part of `make bench`) or `go run ./bench/webhook`. It exits 1
// when an answer is wrong or the burst costs more than one lookup; latency targets are reported,
// not enforced, because they depend on the machine.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/digester/digester/digestcache"
	"github.com/digester/digester/internal/registrytest"
	"github.com/digester/digester/internal/testcerts"
	"github.com/digester/digester/pin"
	"github.com/digester/digester/resolver"
	"github.com/digester/digester/webhook"
)

func main() {
	rtt := flag.Duration("rtt", 20*time.Millisecond, "simulated registry round trip")
	step := flag.Duration("step", 3*time.Second, "duration of each rate step")
	flag.Parse()
	if err := run(*rtt, *step); err != nil {
		fmt.Fprintln(os.Stderr, "bench/webhook:", err)
		os.Exit(1)
	}
}

type bench struct {
	url    string
	client *http.Client
	reg    *registrytest.Registry
	cache  *digestcache.Cache
}

func run(rtt, step time.Duration) error {
	reg := registrytest.New()
	defer reg.Close()
	const misses = 200
	for i := range misses + 1 {
		if _, err := reg.PushImage(fmt.Sprintf("app%d", i), "1", types.OCIManifestSchema1); err != nil {
			return err
		}
	}
	reg.SetLatency(rtt) // every registry response is delayed by the round trip; loopback adds nothing
	reg.Reset()

	ca, err := testcerts.NewCA()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-webhook-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	certFile, keyFile, err := ca.WriteServing(dir, "webhook", "127.0.0.1")
	if err != nil {
		return err
	}
	certs, err := webhook.LoadCertificates(certFile, keyFile, nil)
	if err != nil {
		return err
	}
	lockedImage := reg.Host + "/locked:1" // never pushed: a lookup of it would fail the admission
	const lockedDigest = "sha256:4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c4c0c"
	cache := digestcache.New(resolver.New(resolver.WithHandshakeRetry(time.Second)), digestcache.WithLock(func(ref string) (string, string, bool) {
		return lockedDigest, "digester-system/digests", ref == lockedImage
	}))
	metrics := webhook.NewMetrics(cache)
	h := webhook.NewHandler(cache, pin.Options{}, webhook.WithMetrics(metrics))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go webhook.NewServer(h, metrics, certs).Serve(ctx, ln)
	b := &bench{
		url: "https://" + ln.Addr().String() + webhook.MutatePath,
		client: &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.Pool()},
			ForceAttemptHTTP2: true, // as the API server's webhook client: one connection, many streams
		}},
		reg: reg, cache: cache,
	}
	fmt.Printf("webhook over HTTPS on loopback, registry round trip %s, %d CPUs\n\n", rtt, numCPU())

	// 1. Burst of one new image.
	img := reg.Host + "/app0:1"
	var wg sync.WaitGroup
	lat := make([]time.Duration, 100)
	errs := make([]error, 100)
	for i := range lat {
		wg.Go(func() { lat[i], errs[i] = b.admit(img) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("burst: %w", err)
		}
	}
	lookups, manifests := cache.Lookups(), reg.Count("", "manifest")
	fmt.Printf("burst: 100 concurrent admissions of one new image: %d lookup(s), %d manifest request(s), %d registry requests in all (ping and handshake included); p50 %s p99 %s\n\n",
		lookups, manifests, reg.Count("", ""), pct(lat, 50), pct(lat, 99))
	if lookups != 1 || manifests != 1 {
		return fmt.Errorf("burst cost %d lookups and %d manifest requests, want 1 and 1", lookups, manifests)
	}

	// 2. Cache hits at rising rates.
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\toffered/s\tachieved/s\tp50\tp99\tCPU/admission\tlookups\t")
	for _, rate := range []int{250, 500, 1000, 1500, 2000} {
		before, cpu := cache.Lookups(), cpuTime()
		lat, achieved, err := b.load(rate, step, func(int) string { return img })
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "hits\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", rate, achieved, pct(lat, 50), pct(lat, 99), perOp(cpuTime()-cpu, len(lat)), cache.Lookups()-before)
	}

	// 3. Lock hits.
	for _, rate := range []int{1000, 2000} {
		before, cpu := cache.Lookups(), cpuTime()
		lat, achieved, err := b.load(rate, step, func(int) string { return lockedImage })
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "lock hits\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", rate, achieved, pct(lat, 50), pct(lat, 99), perOp(cpuTime()-cpu, len(lat)), cache.Lookups()-before)
		if n := cache.Lookups() - before; n != 0 {
			return fmt.Errorf("lock hits cost %d lookups, want none", n)
		}
	}

	// 4. Misses: a new image each admission.
	before, cpu := cache.Lookups(), cpuTime()
	const missRate = 50
	lat, achieved, err := b.load(missRate, misses*time.Second/missRate, func(i int) string { return fmt.Sprintf("%s/app%d:1", reg.Host, 1+i%misses) })
	if err != nil {
		return err
	}
	fmt.Fprintf(tw, "misses\t%d\t%.0f\t%s\t%s\t%s\t%d\t\n", missRate, achieved, pct(lat, 50), pct(lat, 99), perOp(cpuTime()-cpu, len(lat)), cache.Lookups()-before)
	tw.Flush()
	fmt.Println("\nCPU/admission is this process's CPU time (webhook, load generator and registry together) per admission.")
	fmt.Printf("targets: hits and lock hits sustain 1000/s with p99 < 20ms; misses p99 <= round trip (%s) + 10ms\n", rtt)
	return nil
}

// load sends admissions at rate per second for d, open loop (each on schedule, whatever the
// latency of the others), and returns their latencies and the rate answered.
func (b *bench) load(rate int, d time.Duration, image func(i int) string) ([]time.Duration, float64, error) {
	n := int(d.Seconds() * float64(rate))
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		wg.Go(func() { lat[i], errs[i] = b.admit(image(i)) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return nil, 0, err
		}
	}
	return lat, float64(n) / elapsed.Seconds(), nil
}

// admit sends one AdmissionReview for a Pod running image and checks the answer pins it.
func (b *bench) admit(image string) (time.Duration, error) {
	body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"namespace":"ns","name":"web","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"ns","labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":%q,"ports":[{"containerPort":8080}],"resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}]}}}}`, image)
	start := time.Now()
	resp, err := b.client.Post(b.url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		return 0, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, err
	}
	var rev struct {
		Response struct {
			Allowed bool
			Patch   []byte
			Status  struct{ Message string }
		}
	}
	if err := json.Unmarshal(out, &rev); err != nil || !rev.Response.Allowed || !bytes.Contains(rev.Response.Patch, []byte(image+"@sha256:")) {
		return 0, fmt.Errorf("admission of %s: status %d, answer %s", image, resp.StatusCode, out)
	}
	return d, nil
}

func pct(lat []time.Duration, p int) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(i-1, 0)].Round(10 * time.Microsecond)
}

func numCPU() int { return runtime.NumCPU() }

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func perOp(d time.Duration, n int) time.Duration {
	return (d / time.Duration(max(n, 1))).Round(time.Microsecond)
}
