package metrics

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agora-osb/agora/adapters/remote"
)

// scrapeCollector reads, at scrape time, what only Redis and the catalog
// know, and adds up the request and store meters' stripes. Each read is bounded by scrapeTimeout and run concurrently, so a
// dependency that hangs costs a scrape at most that long; what fails is
// left out and counted in agora_scrape_errors_total.
type scrapeCollector struct{ m *Metrics }

func (c scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.m.instancesDesc, c.m.bindingsDesc, c.m.queueDesc, c.m.oldestDesc, c.m.circuitDesc, c.m.dependencyDesc, c.m.canaryUpDesc, c.m.canaryLastDesc} {
		ch <- d
	}
	c.m.requests.Describe(ch)
	c.m.storeCalls.Describe(ch)
	c.m.scrapeErrors.Describe(ch)
}

func (c scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if m.sources.Counts != nil {
		wg.Go(func() { c.counts(ctx, ch) })
	}
	if m.sources.Queue != nil {
		wg.Go(func() { c.queue(ctx, ch) })
	}
	if m.sources.Canary != nil {
		wg.Go(func() { c.canary(ctx, ch) })
	}
	for name, check := range m.sources.Checks {
		wg.Go(func() {
			up := 1.0
			if err := bounded(ctx, check); err != nil {
				up = 0
			}
			ch <- prometheus.MustNewConstMetric(m.dependencyDesc, prometheus.GaugeValue, up, name)
		})
	}
	c.circuits(ch)
	// The meters here rather than as collectors of their own, which the
	// registry would run alongside: a series they leave out is then
	// counted before scrapeErrors is read.
	m.requests.Collect(ch)
	m.storeCalls.Collect(ch)
	wg.Wait()
	// Last, so this scrape's own failures are in it.
	m.scrapeErrors.Collect(ch)
}

// bounded runs fn, giving up when ctx ends even if fn ignores it.
func bounded(ctx context.Context, fn func(context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c scrapeCollector) counts(ctx context.Context, ch chan<- prometheus.Metric) {
	var counts []PlanCount
	err := bounded(ctx, func(ctx context.Context) error {
		var err error
		counts, err = c.m.sources.Counts(ctx)
		return err
	})
	if err != nil {
		c.m.scrapeErrors.WithLabelValues("counts").Inc()
		return
	}
	// Redis keeps only non-zero counts; every plan in the catalog still
	// exports a series, so a plan that was emptied reads 0 rather than
	// vanishing (and rules over it do not see "absent"). Counts are summed
	// per label set: IDs no longer in the catalog all read "unknown".
	type planLabels struct{ producer, offering, plan string }
	type tally struct{ instances, bindings int64 }
	byPlan := map[planLabels]*tally{}
	if c.m.sources.Catalog != nil {
		for _, off := range c.m.sources.Catalog().Offerings() {
			for _, p := range off.Plans {
				byPlan[planLabels{off.Producer, off.Name, p.Name}] = &tally{}
			}
		}
	}
	for _, pc := range counts {
		producer, offering, plan := c.m.names(pc.ServiceID, pc.PlanID)
		key := planLabels{producer, offering, plan}
		t := byPlan[key]
		if t == nil {
			t = &tally{}
			byPlan[key] = t
		}
		t.instances += pc.Instances
		t.bindings += pc.Bindings
	}
	for l, t := range byPlan {
		ch <- prometheus.MustNewConstMetric(c.m.instancesDesc, prometheus.GaugeValue, float64(t.instances), l.producer, l.offering, l.plan)
		ch <- prometheus.MustNewConstMetric(c.m.bindingsDesc, prometheus.GaugeValue, float64(t.bindings), l.producer, l.offering, l.plan)
	}
}

func (c scrapeCollector) queue(ctx context.Context, ch chan<- prometheus.Metric) {
	var d QueueDepth
	err := bounded(ctx, func(ctx context.Context) error {
		var err error
		d, err = c.m.sources.Queue(ctx)
		return err
	})
	if err != nil {
		c.m.scrapeErrors.WithLabelValues("queue").Inc()
		return
	}
	for state, n := range map[string]int64{"queued": d.Queued, "ready": d.Ready, "delayed": d.Delayed} {
		ch <- prometheus.MustNewConstMetric(c.m.queueDesc, prometheus.GaugeValue, float64(n), state)
	}
	ch <- prometheus.MustNewConstMetric(c.m.oldestDesc, prometheus.GaugeValue, d.Oldest.Seconds())
}

// circuits reports the breaker of every remote adapter in the catalog.
func (c scrapeCollector) circuits(ch chan<- prometheus.Metric) {
	if c.m.sources.Catalog == nil {
		return
	}
	for _, off := range c.m.sources.Catalog().Offerings() {
		b, ok := off.Adapter.(interface{ BreakerState() string })
		if !ok {
			continue
		}
		state := b.BreakerState()
		for _, s := range []string{remote.CircuitClosed, remote.CircuitOpen, remote.CircuitHalfOpen} {
			v := 0.0
			if s == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.m.circuitDesc, prometheus.GaugeValue, v, off.Producer, off.Name, s)
		}
	}
}

func (c scrapeCollector) canary(ctx context.Context, ch chan<- prometheus.Metric) {
	var health []CanaryHealth
	err := bounded(ctx, func(ctx context.Context) error {
		var err error
		health, err = c.m.sources.Canary(ctx)
		return err
	})
	if err != nil {
		c.m.scrapeErrors.WithLabelValues("canary").Inc()
		return
	}
	for _, h := range health {
		up := 0.0
		if h.Passed {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(c.m.canaryUpDesc, prometheus.GaugeValue, up, h.Producer, h.Offering)
		if !h.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.m.canaryLastDesc, prometheus.GaugeValue, float64(h.LastSuccess.UnixNano())/1e9, h.Producer, h.Offering)
		}
	}
}

// scrapeFailed counts, under source, a metric a scrape had to leave out.
func (m *Metrics) scrapeFailed(source string) func(error) {
	return func(error) { m.scrapeErrors.WithLabelValues(source).Inc() }
}
