package metrics

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// Concurrent first uses of a label set make its series once, and every
// caller gets that one.
func TestSeriesCacheMakesEachSeriesOnce(t *testing.T) {
	var c seriesCache[storeLabels, *meter]
	keys := []storeLabels{{"redis", "get", "ok"}, {"redis", "get", "error"}, {"vault", "put", "ok"}}
	var made [3]atomic.Int32
	got := make([][]*meter, len(keys))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i, k := range keys {
				s := c.get(k, func() *meter { made[i].Add(1); return &meter{} })
				mu.Lock()
				got[i] = append(got[i], s)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i, k := range keys {
		if n := made[i].Load(); n != 1 {
			t.Errorf("%v: series made %d times, want once", k, n)
		}
		for _, s := range got[i] {
			if s != got[i][0] {
				t.Fatalf("%v: callers got different series", k)
			}
		}
	}
}

// Every request and every Redis command report here, so once a label set
// is known, reporting must not allocate (a sync.Map boxed each key).
func TestReportingAllocatesNothing(t *testing.T) {
	m := New(Sources{})
	info := &requestinfo.Info{Surface: requestinfo.SurfaceOSB, Endpoint: "catalog"}
	report := func() {
		m.RequestDone(info, "GET", 200, time.Millisecond)
		m.StoreCalled("redis", "get", nil, time.Microsecond)
	}
	report()
	if n := testing.AllocsPerRun(100, report); n != 0 {
		t.Errorf("reporting a request and a store call allocates %.0f times, want 0", n)
	}
	counts := map[string]float64{}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			counts[f.GetName()] += s.GetCounter().GetValue()
		}
	}
	// AllocsPerRun runs the function once more to warm up.
	for _, name := range []string{"agora_requests_total", "agora_store_calls_total"} {
		if counts[name] != 102 {
			t.Errorf("%s = %v, want 102", name, counts[name])
		}
	}
}
