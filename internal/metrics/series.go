package metrics

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// series is the counter and histogram one request or store call moves.
type series struct {
	count   prometheus.Counter
	seconds prometheus.Observer
}

// seriesCache maps a label set to its series, for the paths every request
// and every Redis command take: WithLabelValues hashes and validates each
// value on every call. Reads take no lock and allocate nothing: the map is
// replaced, never changed, so a reader holds a snapshot (a sync.Map would
// box each key into an interface, one allocation per lookup). Label values
// are bounded by the catalog and fixed vocabularies, so copying on the
// rare miss costs little.
type seriesCache[K comparable] struct {
	m  atomic.Pointer[map[K]*series]
	mu sync.Mutex // serialises misses
}

// get returns key's series, making it with newSeries the first time.
func (c *seriesCache[K]) get(key K, newSeries func() *series) *series {
	if m := c.m.Load(); m != nil {
		if s, ok := (*m)[key]; ok {
			return s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[K]*series{}
	if old := c.m.Load(); old != nil {
		if s, ok := (*old)[key]; ok { // another miss made it meanwhile
			return s
		}
		next = maps.Clone(*old)
	}
	s := newSeries()
	next[key] = s
	c.m.Store(&next)
	return s
}
