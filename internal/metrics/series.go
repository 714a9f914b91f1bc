package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
)

// seriesCache maps a label set to its series, for the paths every request
// and every Redis command take. Reads take no lock and allocate nothing:
// the map is replaced, never changed, so a reader holds a snapshot (a
// sync.Map would box each key into an interface, one allocation per
// lookup). Label values are bounded by the catalog and fixed
// vocabularies, so copying on the rare miss costs little.
type seriesCache[K comparable, V any] struct {
	m  atomic.Pointer[map[K]V]
	mu sync.Mutex // serialises misses
}

// get returns key's series, making it with newSeries the first time.
func (c *seriesCache[K, V]) get(key K, newSeries func() V) V {
	if m := c.m.Load(); m != nil {
		if s, ok := (*m)[key]; ok {
			return s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[K]V{}
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

// snapshot is every series made so far; the caller must not change it.
func (c *seriesCache[K, V]) snapshot() map[K]V {
	if m := c.m.Load(); m != nil {
		return *m
	}
	return nil
}
