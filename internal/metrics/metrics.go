// Package metrics is Agora's Prometheus metrics: what the one HTTP edge,
// the broker's adapter calls, the async engine, Redis and Vault report as
// they work, and what a scrape reads from Redis (queue depth, instance and
// binding counts) and from the catalog (circuit breakers), and, for the
// marketplace page, a quarter hour of adapter calls per offering kept in
// memory (RecentAdapterCalls).
//
// Label values come from the catalog (producer, offering and plan names)
// and from bounded vocabularies (surface, endpoint, call, outcome); never
// from instance or binding IDs, so cardinality stays bounded by the
// catalog, not by the number of instances.
//
// What it must never do: make a scrape hang or fail because a dependency
// is down (scrape-time reads are bounded by a timeout, and a failure is
// counted), or keep state at package level (everything hangs off one
// registry per process).
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// Names resolves catalog IDs to the names labels carry.
type Names func(serviceID, planID string) (producer, offering, plan string)

// Sources are what a scrape reads. Any of them may be nil.
type Sources struct {
	// Catalog is the catalog in force.
	Catalog func() *catalog.Catalog
	// Counts reads every plan's instance and binding counts.
	Counts func(ctx context.Context) ([]PlanCount, error)
	// Queue reads the async queue's depth.
	Queue func(ctx context.Context) (QueueDepth, error)
	// Checks are the dependencies whose reachability is exported as
	// agora_dependency_up (redis, vault).
	Checks map[string]func(ctx context.Context) error
	// Canary reads the canary's latest verdict per live offering, for the
	// health gauges (the same on every replica, whichever ran it).
	Canary func(ctx context.Context) ([]CanaryHealth, error)
}

// CanaryHealth is the canary's latest verdict on one offering.
type CanaryHealth struct {
	Producer, Offering string
	Passed             bool
	// LastSuccess is zero when the canary never passed on it.
	LastSuccess time.Time
}

// PlanCount is one plan's instance and binding counts.
type PlanCount struct {
	ServiceID, PlanID   string
	Instances, Bindings int64
}

// QueueDepth is what the async queue holds.
type QueueDepth struct {
	Queued, Ready, Delayed int64
	Oldest                 time.Duration
}

// scrapeTimeout bounds every read a scrape makes.
const scrapeTimeout = 2 * time.Second

// Metrics holds every metric of one process.
type Metrics struct {
	reg     *prometheus.Registry
	sources Sources

	// requests and storeCalls are what every request and every Redis
	// command report, each a counter and a histogram (see meterVec).
	requests       *meterVec[requestLabels]
	adapterCalls   *prometheus.CounterVec
	adapterSeconds *prometheus.HistogramVec
	storeCalls     *meterVec[storeLabels]
	attempts       *prometheus.CounterVec
	throttled      *prometheus.CounterVec
	running        *prometheus.GaugeVec
	scrapeErrors   *prometheus.CounterVec
	gateRuns       *prometheus.CounterVec
	canaryRuns     *prometheus.CounterVec
	canaryUpDesc   *prometheus.Desc
	canaryLastDesc *prometheus.Desc
	instancesDesc  *prometheus.Desc
	bindingsDesc   *prometheus.Desc
	queueDesc      *prometheus.Desc
	oldestDesc     *prometheus.Desc
	circuitDesc    *prometheus.Desc
	dependencyDesc *prometheus.Desc
	latencyBuckets []float64
	adapterBuckets []float64
	// recent is the last quarter hour of adapter calls, for the
	// marketplace page (RecentAdapterCalls).
	recent *recentWindow
}

type requestLabels struct{ surface, endpoint, producer, offering, plan, code string }

func (l requestLabels) labelValues() ([]string, string) {
	return []string{l.surface, l.endpoint, l.producer, l.offering, l.plan}, l.code
}

type storeLabels struct{ store, operation, outcome string }

func (l storeLabels) labelValues() ([]string, string) {
	return []string{l.store, l.operation}, l.outcome
}

// New registers every metric on a registry of its own.
func New(sources Sources) *Metrics {
	m := &Metrics{
		reg:            prometheus.NewRegistry(),
		sources:        sources,
		latencyBuckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		adapterBuckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		recent:         newRecentWindow(time.Now),
	}
	osb := []string{"surface", "endpoint", "producer", "offering", "plan"}
	m.requests = newMeterVec[requestLabels](
		prometheus.NewDesc("agora_requests_total",
			"Requests answered, by surface, endpoint, status class and the producer, offering and plan they concern.",
			append(osb, "code"), nil),
		prometheus.NewDesc("agora_request_duration_seconds", "How long requests took to answer.", osb, nil),
		m.latencyBuckets, m.scrapeFailed("requests"))
	adapter := []string{"producer", "offering", "plan", "call"}
	m.adapterCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agora_adapter_calls_total",
		Help: "Calls of producers' adapters, by outcome (ok, invalid_parameters, not_found, already_exists, not_supported, terminal, timeout, unreachable, error)."},
		append(adapter, "outcome"))
	m.adapterSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "agora_adapter_call_duration_seconds",
		Help: "How long adapter calls took: a producer's SLO is computed from it.", Buckets: m.adapterBuckets}, adapter)
	m.storeCalls = newMeterVec[storeLabels](
		prometheus.NewDesc("agora_store_calls_total",
			"Calls to Agora's stores (store redis or vault), by operation and outcome (ok, error).",
			[]string{"store", "operation", "outcome"}, nil),
		prometheus.NewDesc("agora_store_call_duration_seconds", "How long calls to Redis and Vault took.", []string{"store", "operation"}, nil),
		m.latencyBuckets, m.scrapeFailed("store_calls"))
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agora_async_attempts_total",
		Help: "Attempts of async operations, by producer and outcome (succeeded, failed: terminal, retry, lost)."},
		[]string{"producer", "outcome"})
	m.throttled = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agora_async_throttled_total",
		Help: "Async jobs put back unstarted because their producer was at its limit on this replica."}, []string{"producer"})
	m.running = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agora_async_running",
		Help: "Async jobs running on this replica, by producer."}, []string{"producer"})
	m.scrapeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agora_scrape_errors_total",
		Help: "Reads a scrape could not make (the metric it would have given is left out)."}, []string{"source"})
	m.gateRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agora_gate_runs_total",
		Help: "Conformance gate runs on producers' slices, by result (pass, fail: a check failed, unverified: a credential type the kit could not verify, refused: egress, error: the kit could not run)."},
		[]string{"producer", "result"})
	m.canaryRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agora_canary_runs_total",
		Help: "Canary runs of the conformance kit against live offerings on this replica, by result (pass, fail, error: not run)."},
		[]string{"producer", "offering", "result"})
	m.canaryUpDesc = prometheus.NewDesc("agora_canary_healthy", "Whether the canary's latest run against the offering passed (1) or not (0).", []string{"producer", "offering"}, nil)
	m.canaryLastDesc = prometheus.NewDesc("agora_canary_last_success_timestamp_seconds", "When the canary last passed against the offering (Unix time; absent when it never did).", []string{"producer", "offering"}, nil)
	m.instancesDesc = prometheus.NewDesc("agora_instances", "Service instances per plan (ready ones; counted on commit).", []string{"producer", "offering", "plan"}, nil)
	m.bindingsDesc = prometheus.NewDesc("agora_bindings", "Service bindings per plan they were bound on (counted on commit).", []string{"producer", "offering", "plan"}, nil)
	m.queueDesc = prometheus.NewDesc("agora_async_queue_jobs", "Async jobs in the queue: queued (all), ready (in the stream), delayed (waiting for a next attempt).", []string{"state"}, nil)
	m.oldestDesc = prometheus.NewDesc("agora_async_oldest_job_age_seconds", "Age of the oldest job in the queue's stream.", nil, nil)
	m.circuitDesc = prometheus.NewDesc("agora_adapter_circuit_state", "A remote adapter's circuit breaker: 1 for its current state.", []string{"producer", "offering", "state"}, nil)
	m.dependencyDesc = prometheus.NewDesc("agora_dependency_up", "Whether a dependency answered the scrape's check (1) or not (0).", []string{"dependency"}, nil)
	m.reg.MustRegister(m.collectors()...)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// collectors are Agora's own (the Go runtime's and the process's are
// registered besides).
func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.adapterCalls, m.adapterSeconds,
		m.attempts, m.throttled, m.running, m.gateRuns, m.canaryRuns, scrapeCollector{m}}
}

// Handler serves the registry (GET /metrics). A collector that fails does
// not fail the scrape: what it could not read is left out and counted.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// names turns IDs into label values: "" when the request names none,
// "unknown" when the catalog does not know it (bounded either way).
func (m *Metrics) names(serviceID, planID string) (producer, offering, plan string) {
	if serviceID == "" || m.sources.Catalog == nil {
		return "", "", ""
	}
	cat := m.sources.Catalog()
	if off, p, ok := cat.Plan(serviceID, planID); ok {
		return off.Producer, off.Name, p.Name
	}
	if off, ok := cat.Offering(serviceID); ok {
		return off.Producer, off.Name, ""
	}
	return "unknown", "unknown", ""
}

// RequestDone implements httpapi.Observer.
func (m *Metrics) RequestDone(info *requestinfo.Info, _ string, status int, took time.Duration) {
	if info == nil {
		return
	}
	sid, pid := info.Resource["service_id"], info.Resource["plan_id"]
	if b := info.Body; b != nil {
		sid, pid = b.ServiceID, b.PlanID
	}
	producer, offering, plan := m.names(sid, pid)
	key := requestLabels{string(info.Surface), info.Endpoint, producer, offering, plan, codeClass(status)}
	m.requests.observe(key, took)
}

// codeClass is the status class label, "2xx".
func codeClass(status int) string {
	switch status / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return strconv.Itoa(status/100) + "xx"
}

// AdapterCalled implements broker.AdapterObserver.
func (m *Metrics) AdapterCalled(off *catalog.Offering, plan *catalog.Plan, call string, err error, took time.Duration) {
	planName := ""
	if plan != nil {
		planName = plan.Name
	}
	result := outcome(err)
	m.adapterCalls.WithLabelValues(off.Producer, off.Name, planName, call, result).Inc()
	m.recent.add(off.Producer, off.Name, result)
	m.adapterSeconds.WithLabelValues(off.Producer, off.Name, planName, call).Observe(took.Seconds())
}

// outcome sorts an adapter's error into a bounded vocabulary.
func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, adapters.ErrInvalidParameters):
		return "invalid_parameters"
	case errors.Is(err, adapters.ErrNotFound):
		return "not_found"
	case errors.Is(err, adapters.ErrAlreadyExists):
		return "already_exists"
	case errors.Is(err, adapters.ErrNotSupported):
		return "not_supported"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case broker.Unreachable(err):
		return "unreachable"
	case adapters.IsTerminal(err):
		return "terminal"
	}
	return "error"
}

// JobThrottled implements broker.Observer (the async engine's).
func (m *Metrics) JobThrottled(producer string) { m.throttled.WithLabelValues(producer).Inc() }

// AttemptEnded implements broker.Observer.
func (m *Metrics) AttemptEnded(producer string, o broker.AttemptOutcome) {
	m.attempts.WithLabelValues(producer, string(o)).Inc()
}

// Running implements broker.Observer.
func (m *Metrics) Running(producer string, delta int) {
	m.running.WithLabelValues(producer).Add(float64(delta))
}

// GateRun records one gate run on a producer's slice.
func (m *Metrics) GateRun(producer, result string) {
	m.gateRuns.WithLabelValues(producer, result).Inc()
}

// CanaryRun records one canary run against a live offering.
func (m *Metrics) CanaryRun(producer, offering, result string) {
	m.canaryRuns.WithLabelValues(producer, offering, result).Inc()
}

// StoreCalled records one call to Redis or Vault.
func (m *Metrics) StoreCalled(store, operation string, err error, took time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.storeCalls.observe(storeLabels{store, operation, result}, took)
}

var (
	_ broker.AdapterObserver = (*Metrics)(nil)
	_ broker.Observer        = (*Metrics)(nil)
)
