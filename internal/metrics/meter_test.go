package metrics

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// A meterVec must expose what the CounterVec and HistogramVec it replaced
// expose for the same calls: the same families, label sets, counts and
// cumulative buckets (a duration on a bound counts in that bound's
// bucket, as "le" says), and the same sums.
func TestMeterExposesWhatPrometheusVectorsWould(t *testing.T) {
	m := New(Sources{})
	ref := prometheus.NewRegistry()
	refCalls := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agora_store_calls_total",
		Help: "Calls to Agora's stores (store redis or vault), by operation and outcome (ok, error)."}, []string{"store", "operation", "outcome"})
	refSeconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "agora_store_call_duration_seconds",
		Help: "How long calls to Redis and Vault took.", Buckets: m.latencyBuckets}, []string{"store", "operation"})
	ref.MustRegister(refCalls, refSeconds)

	durations := []time.Duration{0, time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 2500*time.Microsecond + 1,
		30 * time.Millisecond, time.Second, 60 * time.Second, 61 * time.Second, time.Hour}
	calls := []struct {
		store, operation string
		failed           bool
	}{{"redis", "get", false}, {"redis", "get", true}, {"redis", "evalsha", false}, {"vault", "put", false}, {"vault", "put", true}}
	var wg sync.WaitGroup
	var refMu sync.Mutex
	for g := range 8 { // from many goroutines at once, so stripes are shared and concurrent
		wg.Go(func() {
			for i := range 500 {
				c, d := calls[(g+i)%len(calls)], durations[i%len(durations)]
				var err error
				outcome := "ok"
				if c.failed {
					err, outcome = fmt.Errorf("down"), "error"
				}
				m.StoreCalled(c.store, c.operation, err, d)
				refMu.Lock()
				refCalls.WithLabelValues(c.store, c.operation, outcome).Inc()
				refSeconds.WithLabelValues(c.store, c.operation).Observe(d.Seconds())
				refMu.Unlock()
			}
		})
	}
	wg.Wait()

	got, want := gatherText(t, m.reg, "agora_store_"), gatherText(t, ref, "agora_store_")
	if got != want {
		t.Errorf("the meter exposes\n%s\nthe Prometheus vectors\n%s", got, want)
	}
}

// gatherText is the families named with prefix, one sample per line,
// sorted, with sums to 9 significant digits (the meter adds nanoseconds,
// Prometheus float seconds).
func gatherText(t *testing.T, g prometheus.Gatherer, prefix string) string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), prefix) {
			continue
		}
		lines = append(lines, fmt.Sprintf("# %s %s %s", f.GetName(), f.GetType(), f.GetHelp()))
		for _, s := range f.GetMetric() {
			series := f.GetName() + labelText(s.GetLabel())
			if c := s.GetCounter(); c != nil {
				lines = append(lines, fmt.Sprintf("%s %g", series, c.GetValue()))
			}
			if h := s.GetHistogram(); h != nil {
				lines = append(lines, fmt.Sprintf("%s count %d sum %.9g", series, h.GetSampleCount(), roundSignificant(h.GetSampleSum())))
				for _, b := range h.GetBucket() {
					lines = append(lines, fmt.Sprintf("%s le=%g %d", series, b.GetUpperBound(), b.GetCumulativeCount()))
				}
			}
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func labelText(labels []*dto.LabelPair) string {
	var parts []string
	for _, l := range labels {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func roundSignificant(v float64) float64 {
	if v == 0 {
		return 0
	}
	scale := math.Pow(10, 9-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*scale) / scale
}

// A label value Prometheus refuses (not UTF-8) leaves that series out of
// the scrape, counted, and the scrape goes on; it never panics in the
// request that reported it.
func TestABadLabelValueIsLeftOutOfTheScrape(t *testing.T) {
	m := New(Sources{})
	m.StoreCalled("redis", "get", nil, time.Millisecond)
	m.StoreCalled("redis", "bad\xff", nil, time.Millisecond)
	text := gatherText(t, m.reg, "agora_")
	if !strings.Contains(text, "agora_store_calls_total{operation=get,outcome=ok,store=redis} 1") {
		t.Errorf("the good series is missing:\n%s", text)
	}
	if strings.Contains(text, "bad") {
		t.Errorf("the bad series was exposed:\n%s", text)
	}
	if !strings.Contains(text, "agora_scrape_errors_total{source=store_calls}") {
		t.Errorf("the left-out series was not counted:\n%s", text)
	}
}

// BenchmarkRequestDone is what reporting one request costs, alone and
// with every core reporting at once (ns/op is wall time per request, so
// with 2 cores the CPU per request is twice it): go test -bench
// RequestDone ./internal/metrics/.
func BenchmarkRequestDone(b *testing.B) {
	m := New(Sources{})
	info := &requestinfo.Info{Surface: requestinfo.SurfaceOSB, Endpoint: "catalog"}
	b.Run("alone", func(b *testing.B) {
		for b.Loop() {
			m.RequestDone(info, "GET", 200, 80*time.Microsecond)
		}
	})
	// The worst case for the stripes' memory of the last series: every
	// request another series than the one before.
	poll := &requestinfo.Info{Surface: requestinfo.SurfaceOSB, Endpoint: "last_operation"}
	b.Run("alternating", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if i++; i%2 == 0 {
				m.RequestDone(info, "GET", 200, 80*time.Microsecond)
			} else {
				m.RequestDone(poll, "GET", 200, 80*time.Microsecond)
			}
		}
	})
	b.Run("every-core", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.RequestDone(info, "GET", 200, 80*time.Microsecond)
			}
		})
	})
}
