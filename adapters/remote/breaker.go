package remote

import (
	"sync"
	"time"
)

// breaker is a per-Client circuit breaker. After threshold consecutive
// failed attempts (network errors, timeouts, 5xx, 429) it opens for
// cooldown: calls fail at once instead of each waiting out its timeout
// against an adapter that is down, which would hold the broker's workers
// and instance locks. After cooldown one probe goes through (half open);
// its outcome closes the breaker or opens it again.
//
// Answers that prove the adapter is up (any 2xx or 4xx) count as success:
// an adapter that rejects a request is working.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu        sync.Mutex
	failures  int // consecutive
	openUntil time.Time
	probing   bool
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown}
}

// allow reports whether an attempt may go out now. A true answer while
// half open makes the caller the probe; it must then call done.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.failures < b.threshold:
		return true
	case now.Before(b.openUntil), b.probing:
		return false
	}
	b.probing = true
	return true
}

// outcome of one attempt, as the breaker sees it.
type outcome int

const (
	// neutral: the attempt says nothing about the adapter (the caller
	// cancelled it).
	neutral outcome = iota
	succeeded
	failed
)

func (b *breaker) done(o outcome, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
	switch o {
	case succeeded:
		b.failures = 0
	case failed:
		b.failures++
		if b.failures >= b.threshold {
			b.openUntil = now.Add(b.cooldown)
		}
	}
}

// Circuit states, as BreakerState reports them.
const (
	CircuitClosed   = "closed"
	CircuitOpen     = "open"
	CircuitHalfOpen = "half_open"
)

// state is the breaker's state at now.
func (b *breaker) state(now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.failures < b.threshold:
		return CircuitClosed
	case now.Before(b.openUntil):
		return CircuitOpen
	}
	return CircuitHalfOpen
}

// BreakerState reports the client's circuit breaker: CircuitClosed while
// calls go out, CircuitOpen while they fail at once, CircuitHalfOpen when
// a probe may go out. For metrics.
func (c *Client) BreakerState() string { return c.breaker.state(c.now()) }
