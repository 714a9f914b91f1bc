package metrics

import (
	"sync"
	"time"
)

// The recent-calls window: what a producer's adapter calls came to over
// the last quarter of an hour, for the marketplace page's error ratio.
//
// The Prometheus counters cannot answer "lately": they count since the
// process started, and a rate needs two scrapes and a query language.
// This window answers in-process, without a round trip to Redis on the
// request path, at the price of seeing this replica's calls only (the
// fleet-wide ratio is a PromQL query over agora_adapter_calls_total).
const (
	recentBucket  = time.Minute
	recentBuckets = 15
)

// RecentCalls is what one offering's adapter calls came to over the
// window, on this replica.
type RecentCalls struct {
	// Calls counts every adapter call that ended; Faults those the
	// producer's adapter owns: outcomes terminal, timeout, unreachable
	// and error. Invalid parameters (the app developer's), not found,
	// already exists and not supported are answers, not faults.
	Calls, Faults int64
}

// isFault says whether an outcome (see outcome) counts as the adapter's
// fault in RecentCalls.
func isFault(outcome string) bool {
	switch outcome {
	case "terminal", "timeout", "unreachable", "error":
		return true
	}
	return false
}

type offeringKey struct{ producer, offering string }

// recentWindow counts calls per offering in one-minute buckets, a ring of
// recentBuckets of them. Its size is bounded by the catalog's offerings,
// like the labels of every other metric here.
type recentWindow struct {
	mu  sync.Mutex
	now func() time.Time
	by  map[offeringKey]*callRing
}

// callRing holds one offering's buckets; minute[i] says which minute
// (since the Unix epoch) slot i currently counts, so a slot left over from
// an earlier lap is recognised and reset rather than summed.
type callRing struct {
	minute         [recentBuckets]int64
	calls, faults  [recentBuckets]int64
	lastCallMinute int64
}

func newRecentWindow(now func() time.Time) *recentWindow {
	return &recentWindow{now: now, by: map[offeringKey]*callRing{}}
}

func (w *recentWindow) minute() int64 { return w.now().UnixNano() / int64(recentBucket) }

// add counts one call. It holds the lock for a few additions only: it
// runs on request and worker paths.
func (w *recentWindow) add(producer, offering, outcome string) {
	m := w.minute()
	w.mu.Lock()
	defer w.mu.Unlock()
	key := offeringKey{producer, offering}
	r := w.by[key]
	if r == nil {
		r = &callRing{}
		w.by[key] = r
	}
	slot := m % recentBuckets
	if r.minute[slot] != m {
		r.minute[slot], r.calls[slot], r.faults[slot] = m, 0, 0
	}
	r.calls[slot]++
	if isFault(outcome) {
		r.faults[slot]++
	}
	r.lastCallMinute = m
}

// read sums the buckets of the last recentBuckets minutes, this one
// included. Offerings without a call in the window are forgotten, so an
// offering that left the catalog does not stay in memory for good.
func (w *recentWindow) read(producer, offering string) RecentCalls {
	m := w.minute()
	w.mu.Lock()
	defer w.mu.Unlock()
	key := offeringKey{producer, offering}
	r := w.by[key]
	if r == nil {
		return RecentCalls{}
	}
	if m-r.lastCallMinute >= recentBuckets {
		delete(w.by, key)
		return RecentCalls{}
	}
	var out RecentCalls
	for i := range recentBuckets {
		if m-r.minute[i] < recentBuckets {
			out.Calls += r.calls[i]
			out.Faults += r.faults[i]
		}
	}
	return out
}

// RecentAdapterCalls is what one offering's adapter calls came to over
// RecentWindow, on this replica.
func (m *Metrics) RecentAdapterCalls(producer, offering string) RecentCalls {
	return m.recent.read(producer, offering)
}

// RecentWindow is how far back RecentAdapterCalls looks.
func (m *Metrics) RecentWindow() time.Duration { return recentBuckets * recentBucket }
