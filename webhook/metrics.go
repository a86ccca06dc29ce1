package webhook

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/digester/digester/digestcache"
)

// Counters is what the lookup cache counts; *digestcache.Cache is one.
type Counters interface {
	Lookups() int64
	Hits() int64
	Requests() int64
}

// Metrics are the webhook's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	reg        *prometheus.Registry
	admissions *prometheus.CounterVec
	duration   prometheus.Histogram
	pinnedN    prometheus.Counter
	rejectedN  prometheus.Counter
	throttledN prometheus.Counter
	digests    *prometheus.CounterVec

	certs     atomic.Pointer[Certificates] // the serving certificate, once a Server uses it
	certsOnce sync.Once
}

// NewMetrics returns the metrics of one webhook process, reading lookup, hit and registry request
// counts from c, plus the Go runtime's and the process's.
func NewMetrics(c Counters) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		admissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digester_webhook_admissions_total",
			Help: "AdmissionReviews answered, by operation (CREATE, UPDATE, DELETE, CONNECT, other) and outcome (ignored, unchanged, pinned, warned, denied).",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "digester_webhook_admission_duration_seconds",
			Help:    "Time to answer an AdmissionReview, lookups included.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		pinnedN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "digester_webhook_pinned_fields_total",
			Help: "Image fields pinned to a digest.",
		}),
		rejectedN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "digester_webhook_rejected_requests_total",
			Help: "Requests that were not an AdmissionReview (malformed, oversized, wrong method), answered 4xx.",
		}),
		throttledN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "digester_webhook_throttled_requests_total",
			Help: "Reviews answered 429 (retried by the API server) because the reviews in flight held the memory for reviews.",
		}),
		digests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "digester_webhook_digests_total",
			Help: "Digests the admissions used, by where each came from: lock (a lock ConfigMap), cache, registry (a lookup, or one in flight joined), stale (a lookup failed and an earlier digest was served, --stale-if-error).",
		}, []string{"source"}),
	}
	for _, s := range []digestcache.Source{digestcache.SourceLock, digestcache.SourceCache, digestcache.SourceRegistry, digestcache.SourceStale} {
		m.digests.WithLabelValues(string(s)) // every series from the start, at 0
	}
	reg.MustRegister(m.admissions, m.duration, m.pinnedN, m.rejectedN, m.throttledN, m.digests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "digester_webhook_lookups_total",
			Help: "References looked up in registries (cache misses not shared with a lookup in flight).",
		}, func() float64 { return float64(c.Lookups()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "digester_webhook_cache_hits_total",
			Help: "References answered from the cache or by a lookup already in flight.",
		}, func() float64 { return float64(c.Hits()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "digester_webhook_registry_requests_total",
			Help: "HTTP requests sent to registries, token exchanges and retries included.",
		}, func() float64 { return float64(c.Requests()) }),
	)
	return m
}

// watch exports the expiry of the certificate c holds (nothing before a Server calls it).
func (m *Metrics) watch(c *Certificates) {
	if m == nil || c == nil {
		return
	}
	m.certs.Store(c)
	m.certsOnce.Do(func() {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "digester_webhook_serving_certificate_expiry_timestamp_seconds",
			Help: "When the serving certificate expires, in seconds since the Unix epoch (alert on it minus time() falling under a few days).",
		}, func() float64 { return float64(m.certs.Load().NotAfter().Unix()) }))
	})
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// operations are the values of the admissions' operation label: the API's four operations, and
// opOther for anything else, so that whoever reaches the port cannot add series at will.
var operations = map[string]bool{"CREATE": true, "UPDATE": true, "DELETE": true, "CONNECT": true}

const opOther = "other"

// observe counts an admission; outcome is one of the outcome constants.
func (m *Metrics) observe(op, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	if !operations[op] {
		op = opOther
	}
	m.admissions.WithLabelValues(op, outcome).Inc()
	m.duration.Observe(d.Seconds())
}

func (m *Metrics) pinned(n int) {
	if m != nil {
		m.pinnedN.Add(float64(n))
	}
}

// WatchLocks exports rejected, the count of lock ConfigMap versions refused as a whole (a lock that
// does not parse, a malformed entry), as digester_webhook_lock_configmaps_rejected_total.
func (m *Metrics) WatchLocks(rejected func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "digester_webhook_lock_configmaps_rejected_total",
		Help: "Versions of lock ConfigMaps (--lock-configmap) refused as a whole, and so not used: no digests.lock.yaml, a lock that does not parse, a malformed entry, another platform. The log says why.",
	}, func() float64 { return float64(rejected()) }))
}

// answered counts an admission's digests by source.
func (m *Metrics) answered(answers []digestcache.Answer) {
	if m == nil {
		return
	}
	for _, a := range answers {
		m.digests.WithLabelValues(string(a.Source)).Inc()
	}
}

func (m *Metrics) rejected() {
	if m != nil {
		m.rejectedN.Inc()
	}
}

func (m *Metrics) throttled() {
	if m != nil {
		m.throttledN.Inc()
	}
}
