package integration

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// workFor is a Provision that takes d, or stops when its context does.
func workFor(d time.Duration) func(context.Context, string) error {
	return func(ctx context.Context, _ string) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

var _ = Describe("a Redis outage longer than claim_idle while async jobs run", func() {
	It("never has two workers call the adapter for one operation at once, and finishes each operation exactly once", func(ctx SpecContext) {
		const jobs = 4
		// The adapter's work outlasts the outage: a worker that kept
		// calling through it would still be calling when another replica
		// takes its job over.
		work := 5 * claimIdle
		outage := 2*claimIdle + 2*time.Second
		red := startPrivateRedis(ctx)
		slow := serveAdapter(&scriptedAdapter{provision: workFor(work)})
		off := remoteOffering{Producer: "slow-team", Name: "slow-" + randomHex(3), Adapter: slow}
		prefix := "agora-outage-" + randomHex(3)
		cat := remoteCatalog(off)
		replicas := []*Broker{
			StartBroker(ctx, BrokerOptions{Name: "A", Prefix: prefix, RedisAddr: red.Addr, Catalog: cat}),
			StartBroker(ctx, BrokerOptions{Name: "B", Prefix: prefix, RedisAddr: red.Addr, Catalog: cat}),
		}
		ids, ops := make([]string, jobs), make([]string, jobs)
		for i := range ids {
			ids[i] = newGUID()
			ops[i] = provisionAsync(replicas[i%2].OSB, off, ids[i])
		}
		By("every job's adapter call is under way")
		Eventually(slow.running).WithTimeout(20 * time.Second).WithPolling(50 * time.Millisecond).Should(Equal(jobs))

		By(fmt.Sprintf("Redis frozen (SIGSTOP) for %s; claim_idle is %s", outage, claimIdle))
		red.Pause()
		paused := time.Now()
		select {
		case <-time.After(outage):
		case <-ctx.Done():
		}
		red.Resume()
		resumed := time.Now()

		By("every operation succeeds")
		for i := range ids {
			awaitSucceeded(replicas[(i+1)%2].OSB, ids[i], ops[i], work+60*time.Second)
		}

		By("no two calls for one operation overlapped: the interrupted one ended during the outage, before any takeover")
		for _, iid := range ids {
			calls := slow.callsOf(iid)
			fmt.Fprintf(GinkgoWriter, "instance %s: calls %v; first ended %s after Redis froze\n",
				iid, calls, calls[0].End.Sub(paused).Round(time.Millisecond))
			Expect(len(calls)).To(BeNumerically(">=", 2), "the outage did not interrupt the call for %s: %v", iid, calls)
			Expect(calls[0].End).To(BeTemporally("<", resumed), "instance %s: the worker kept calling the adapter through the outage: %v", iid, calls)
			for j := 1; j < len(calls); j++ {
				Expect(calls[j].Start).NotTo(BeTemporally("<", calls[j-1].End),
					"instance %s: call %d started while call %d was still running: %v", iid, j, j-1, calls)
			}
		}

		By("each operation succeeded exactly once, and the queue is empty")
		got := successes(replicas...)
		for _, op := range ops {
			Expect(got[op]).To(HaveLen(1), "operation %s succeeded %d times (%v)", op, len(got[op]), got[op])
		}
		Eventually(func() bool { return queueIsEmpty(ctx, red.Client, prefix) }).WithTimeout(10 * time.Second).Should(BeTrue())
	}, SpecTimeout(3*time.Minute))
})

var _ = Describe("a producer whose adapter fails for a minute", func() {
	It("does not hold up another producer's async operations on the same replica", func(ctx SpecContext) {
		const n = 8
		suffix := randomHex(3)
		healthy := remoteOffering{Producer: "steady-" + suffix, Name: "steady-" + suffix, Adapter: serveAdapter(&scriptedAdapter{provision: workFor(300 * time.Millisecond)})}
		flaky := remoteOffering{Producer: "shaky-" + suffix, Name: "shaky-" + suffix, Adapter: serveAdapter(&scriptedAdapter{provision: workFor(300 * time.Millisecond)})}
		// Default slots: workers.concurrency 4, per_producer 2.
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), Catalog: remoteCatalog(healthy, flaky)})
		m := newMeasurements("async fairness: healthy producer's async provision, 8 at once, one replica with default slots")
		DeferCleanup(m.report)

		// measure provisions n instances of the healthy offering at once
		// and returns how long each took to be reported succeeded.
		measure := func(label string) []time.Duration {
			took := make([]time.Duration, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					defer GinkgoRecover()
					iid, start := newGUID(), time.Now()
					op := provisionAsync(b.OSB, healthy, iid)
					took[i] = awaitSucceeded(b.OSB, iid, op, 3*time.Minute).Sub(start)
				})
			}
			wg.Wait()
			for _, d := range took {
				m.add(label, d)
			}
			return took
		}

		By("the healthy producer alone")
		alone := measure("alone")

		By("the flaky producer's adapter answers 503 for a minute, with 8 async provisions of its own queued")
		downUntil := time.Now().Add(time.Minute)
		flaky.Adapter.downUntil.Store(downUntil.UnixNano())
		flakyIDs, flakyOps := make([]string, n), make([]string, n)
		for i := range flakyIDs {
			flakyIDs[i] = newGUID()
			flakyOps[i] = provisionAsync(b.OSB, flaky, flakyIDs[i])
		}
		// Every one of them has failed at least once, so all are in the
		// retry cycle while the healthy producer is measured.
		Eventually(func() int { return len(failedAttempts(b, flakyOps)) }).WithTimeout(60*time.Second).WithPolling(200*time.Millisecond).
			Should(Equal(n), "not every flaky job was tried")

		By("the healthy producer beside it")
		beside := measure("beside a producer failing for a minute")
		Expect(time.Now()).To(BeTemporally("<", downUntil), "the flaky adapter recovered before the measurement ended; it proves nothing")

		p50Alone, p50Beside := medianOf(alone), medianOf(beside)
		fmt.Fprintf(GinkgoWriter, "healthy producer's async provision p50: alone %s, beside the flaky producer %s (flaky adapter refused %d calls, %d failed attempts so far)\n",
			p50Alone.Round(time.Millisecond), p50Beside.Round(time.Millisecond), flaky.Adapter.refusals.Load(), sum(failedAttempts(b, flakyOps)))
		Expect(p50Beside).To(BeNumerically("<", 3*p50Alone+3*time.Second),
			"the flaky producer held up the healthy one: p50 %s beside it, %s alone", p50Beside, p50Alone)

		By("once its backend is back, the flaky producer's operations succeed too")
		for i := range flakyIDs {
			awaitSucceeded(b.OSB, flakyIDs[i], flakyOps[i], 3*time.Minute)
		}
		Expect(b.LogRecords("async operation hit a transient failure; retrying")).NotTo(BeEmpty())
	}, SpecTimeout(6*time.Minute))
})

// failedAttempts counts the transient failures b logged per operation, for
// the operations in ops.
func failedAttempts(b *Broker, ops []string) map[string]int {
	out := map[string]int{}
	for _, rec := range b.LogRecords("async operation hit a transient failure; retrying") {
		if id, _ := rec["operation_id"].(string); slices.Contains(ops, id) {
			out[id]++
		}
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
