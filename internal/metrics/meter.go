package metrics

import (
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// meterVec counts and times the calls every request and every Redis
// command make: a counter by a label set plus one label more (a request's
// status class, a store call's outcome) and a histogram of durations by
// the label set alone. It exposes exactly what a CounterVec and a
// HistogramVec would (agora_requests_total and
// agora_request_duration_seconds, say), but costs each call two atomic
// adds on cache lines its core mostly has to itself.
//
// Why not a CounterVec and a HistogramVec, as it was: each call moved five
// atomic words every core shares (the counter; the histogram's count,
// bucket, sum and hot index), and a word another core wrote last costs a
// cache-line transfer. With 2 cores serving, reporting a request took
// 320 ns against 102 ns alone (go test -bench RequestDone
// ./internal/metrics/), and it was most of what Agora's catalog cost
// beyond its floor in make bench. So a series keeps its counts in stripes,
// one per P as far as the runtime lets it (see stripes), derives the
// counter from the buckets rather than keeping it apart, and adds the
// stripes up only when scraped.
type meterVec[K meterKey] struct {
	calls, seconds *prometheus.Desc
	// bounds are the histogram's upper bounds (inclusive, as Prometheus'
	// "le"), and boundNanos the same in nanoseconds, which a call is
	// compared against.
	bounds     []float64
	boundNanos []int64
	// stride and sumWord lay out every meter's words (see meter).
	stride, sumWord int
	stripes         stripes[K]
	series          seriesCache[K, *meter]
	// onError counts a series Collect could not expose (a label value
	// Prometheus refuses): the scrape goes on without it.
	onError func(error)
}

// meterKey is a meterVec's label values: the histogram's, then the one the
// counter has more.
type meterKey interface {
	comparable
	labelValues() (histogram []string, extra string)
}

func newMeterVec[K meterKey](calls, seconds *prometheus.Desc, bounds []float64, onError func(error)) *meterVec[K] {
	v := &meterVec[K]{calls: calls, seconds: seconds, bounds: bounds, onError: onError}
	v.stripes.init()
	for _, b := range bounds {
		v.boundNanos = append(v.boundNanos, int64(math.Round(b*1e9)))
	}
	used := len(bounds) + 2 // the buckets, +Inf, the sum
	// A spare line between stripes keeps their words off each other's
	// lines whatever the slice's alignment.
	v.stride = (used+wordsPerLine-1)/wordsPerLine*wordsPerLine + wordsPerLine
	v.sumWord = used - 1
	return v
}

// observe records one call of key's series that took took.
func (v *meterVec[K]) observe(key K, took time.Duration) {
	st := v.stripes.get()
	// A P mostly reports the series it reported last (the catalog's,
	// a poll's: their labels name no plan), and comparing the key costs
	// less than hashing it into the map.
	m := st.last
	if m == nil || st.lastKey != key {
		m = v.series.get(key, v.newMeter)
		st.lastKey, st.last = key, m
	}
	nanos := max(int64(took), 0)
	// The first bucket whose bound the call does not exceed; len(bounds)
	// is +Inf. A linear scan: Prometheus switches to a binary search only
	// past 35 bounds, and Agora's have 15.
	bucket := 0
	for bucket < len(v.boundNanos) && nanos > v.boundNanos[bucket] {
		bucket++
	}
	w := m.words[st.index*v.stride:]
	w[bucket].Add(1)
	w[v.sumWord].Add(uint64(nanos))
	v.stripes.put(st)
}

// meter is one series' counts. Stripe i owns words[i*stride:][:sumWord+1]
// (stride and sumWord are its meterVec's): the calls per bucket (the last
// one +Inf) and, at sumWord, the sum of their durations in nanoseconds.
type meter struct {
	words []atomic.Uint64
}

// wordsPerLine is how many counters share a 64-byte cache line.
const wordsPerLine = 8

func (v *meterVec[K]) newMeter() *meter {
	return &meter{words: make([]atomic.Uint64, v.stride*v.stripes.n)}
}

// read adds m's stripes up: the calls per bucket (not cumulative) and the
// sum of their durations in nanoseconds.
func (v *meterVec[K]) read(m *meter, into []uint64) (sumNanos uint64) {
	for base := 0; base < len(m.words); base += v.stride {
		for i := range into {
			into[i] += m.words[base+i].Load()
		}
		sumNanos += m.words[base+v.sumWord].Load()
	}
	return sumNanos
}

// Describe implements prometheus.Collector.
func (v *meterVec[K]) Describe(ch chan<- *prometheus.Desc) {
	ch <- v.calls
	ch <- v.seconds
}

// Collect implements prometheus.Collector: a counter per series, and a
// histogram per label set, summed over the counter's extra label.
func (v *meterVec[K]) Collect(ch chan<- prometheus.Metric) {
	type histogram struct {
		labels   []string
		buckets  []uint64
		sumNanos uint64
	}
	histograms := map[string]*histogram{}
	for key, m := range v.series.snapshot() {
		labels, extra := key.labelValues()
		counts := make([]uint64, len(v.bounds)+1)
		sumNanos := v.read(m, counts)
		var calls uint64
		for _, c := range counts {
			calls += c
		}
		v.send(ch)(prometheus.NewConstMetric(v.calls, prometheus.CounterValue, float64(calls), slices.Concat(labels, []string{extra})...))
		id := strings.Join(labels, "\xff")
		h, ok := histograms[id]
		if !ok {
			h = &histogram{labels: labels, buckets: make([]uint64, len(counts))}
			histograms[id] = h
		}
		for i, c := range counts {
			h.buckets[i] += c
		}
		h.sumNanos += sumNanos
	}
	for _, h := range histograms {
		cumulative := make(map[float64]uint64, len(v.bounds))
		var count uint64
		for i, c := range h.buckets {
			count += c
			if i < len(v.bounds) {
				cumulative[v.bounds[i]] = count
			}
		}
		v.send(ch)(prometheus.NewConstHistogram(v.seconds, count, float64(h.sumNanos)/1e9, cumulative, h.labels...))
	}
}

// send returns what sends a metric just made to ch, or counts why it
// could not be made: send(ch)(prometheus.NewConstMetric(...)).
func (v *meterVec[K]) send(ch chan<- prometheus.Metric) func(prometheus.Metric, error) {
	return func(m prometheus.Metric, err error) {
		if err != nil {
			v.onError(err)
			return
		}
		ch <- m
	}
}

// stripes hands each call a stripe, mostly the same one to the calls on
// the same P: sync.Pool keeps one private item per P, so the stripe a
// call puts back is the one the next call on that P gets. When a garbage
// collection has emptied the pool, New deals the stripes out again, round
// robin; two Ps may then share one for a while, which costs speed, never
// counts, as every word is written with an atomic add.
type stripes[K comparable] struct {
	n     int
	pool  sync.Pool
	dealt atomic.Uint32
}

// stripe is a ticket to write a meter's words at index, held by one call
// at a time; it remembers the series its last holder wrote.
type stripe[K comparable] struct {
	index   int
	lastKey K
	last    *meter
}

// maxStripes bounds a series' memory on a large machine: past it, Ps
// share stripes (each stripe of a request series is a few hundred bytes).
const maxStripes = 16

func (s *stripes[K]) init() {
	s.n = min(runtime.GOMAXPROCS(0), maxStripes)
	s.pool.New = func() any { return &stripe[K]{index: int(s.dealt.Add(1)-1) % s.n} }
}

func (s *stripes[K]) get() *stripe[K]   { return s.pool.Get().(*stripe[K]) }
func (s *stripes[K]) put(st *stripe[K]) { s.pool.Put(st) }
