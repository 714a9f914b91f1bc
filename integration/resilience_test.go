package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"
)

// jobsExactlyOnce sends 20 async provisions, then their deprovisions, to
// two replicas sharing prefix, alternating, all at once; each is polled
// on the other replica, and each job must have run exactly once, leaving
// the queue (read through r: the shared Redis, or a Cluster) empty. It
// returns the instance IDs.
func jobsExactlyOnce(ctx context.Context, replicas []*Broker, prefix string, r redis.Cmdable) []string {
	GinkgoHelper()
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newGUID()
	}
	// fire sends one request per instance, alternating replicas, all at
	// once, and returns the operations.
	fire := func(send func(r *Broker, iid string) Response) []string {
		ops := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				defer GinkgoRecover()
				resp := send(replicas[i%2], ids[i])
				Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
				ops[i] = resp.Str("operation")
			})
		}
		wg.Wait()
		return ops
	}
	pending := func() int {
		p, err := r.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: jobStream(prefix), Group: "agora-workers", Start: "-", End: "+", Count: 1000,
		}).Result()
		Expect(err).NotTo(HaveOccurred())
		return len(p)
	}
	expectOnce := func(ops []string) {
		got := successes(replicas...)
		perReplica := map[string]int{}
		for _, op := range ops {
			Expect(got[op]).To(HaveLen(1), "operation %s succeeded %d times (%v)", op, len(got[op]), got[op])
			perReplica[got[op][0]]++
		}
		fmt.Fprintf(GinkgoWriter, "jobs run per replica: %v\n", perReplica)
		Eventually(pending).WithTimeout(5 * time.Second).Should(BeZero())
		Expect(r.XLen(ctx, jobStream(prefix)).Val()).To(BeZero())
	}

	By("20 async provisions, alternating replicas; each polled on the other replica")
	ops := fire(func(r *Broker, iid string) Response { return r.OSB.Provision(iid, asyncPlanID, true) })
	for i, op := range ops {
		resp := replicas[(i+1)%2].OSB.AwaitOperation(ids[i], op, 60*time.Second)
		Expect(resp.Str("state")).To(Equal("succeeded"), "instance %s: %s", ids[i], resp)
	}
	expectOnce(ops)

	By("20 async deprovisions, alternating replicas")
	dops := fire(func(r *Broker, iid string) Response { return r.OSB.Deprovision(iid, asyncPlanID, true) })
	for i, op := range dops {
		resp := replicas[i%2].OSB.AwaitOperation(ids[i], op, 60*time.Second)
		Expect(resp.Status).To(Equal(http.StatusGone), "instance %s: %s", ids[i], resp)
	}
	expectOnce(dops)
	return ids
}

// successes counts "async operation succeeded" log records per
// operation_id across replicas.
func successes(replicas ...*Broker) map[string][]string {
	out := map[string][]string{}
	for _, r := range replicas {
		for _, rec := range r.LogRecords("async operation succeeded") {
			id, _ := rec["operation_id"].(string)
			out[id] = append(out[id], r.Name)
		}
	}
	return out
}

var _ = Describe("a replica that dies during an async provision", func() {
	DescribeTable("leaves the job to another replica, which finishes it exactly once within claim_idle",
		func(ctx SpecContext, how string, stop func(*Broker)) {
			prefix := specPrefix()
			iid := newGUID()
			// Hold the adapter's one writing Vault call, so replica A is
			// provably in the middle of the work when it goes away.
			gate := vaultProxy.Hold("/sys/policies/acl/agora-secrets-" + iid)
			a := StartBroker(ctx, BrokerOptions{Name: "A", Prefix: prefix, AdapterVaultAddr: vaultProxy.URL, Concurrency: 1})

			resp := a.OSB.Provision(iid, asyncPlanID, true)
			Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
			op := resp.Str("operation")
			Eventually(gate.Reached()).WithTimeout(15*time.Second).Should(BeClosed(), "replica A's worker never called the adapter")

			By(how + " replica A while its worker is inside the adapter call")
			stop(a)
			pending := pendingJobs(ctx, prefix)
			Expect(pending).To(HaveLen(1), "the job must stay pending in the consumer group")
			Expect(pending[0].Consumer).To(ContainSubstring(fmt.Sprintf("-%d-", a.Pid())), "the pending job belongs to A's consumer")
			inst, err := rdb.Get(ctx, prefix+":{"+iid+"}:instance").Result()
			Expect(err).NotTo(HaveOccurred())
			Expect(inst).To(ContainSubstring(`"state":"in progress"`), "the operation finished before A went away")
			gate.Release()

			By("replica B starts on the same Redis and takes the job over")
			started := time.Now()
			b := StartBroker(ctx, BrokerOptions{Name: "B", Prefix: prefix, AdapterVaultAddr: vaultProxy.URL})
			resp = b.OSB.AwaitOperation(iid, op, claimIdle+15*time.Second)
			Expect(resp.Str("state")).To(Equal("succeeded"), resp.String())
			fmt.Fprintf(GinkgoWriter, "B finished A's operation %s after it started (claim_idle %s); adapter calls: %d\n",
				time.Since(started).Round(100*time.Millisecond), claimIdle, gate.Hits())

			By("exactly once: one success, logged by B; the queue is empty")
			// B logs the success just after the commit that last_operation
			// reads, so the line may trail the answer by a moment.
			Eventually(func() map[string][]string { return successes(a, b) }).WithTimeout(5 * time.Second).
				Should(Equal(map[string][]string{op: {"B"}}))
			Expect(gate.Hits()).To(Equal(2), "A's interrupted call and B's: no third attempt")
			Eventually(func() int { return len(pendingJobs(ctx, prefix)) }).WithTimeout(5 * time.Second).Should(BeZero())
			Expect(rdb.XLen(ctx, jobStream(prefix)).Val()).To(BeZero())

			By("the adapter's state is consistent: the instance's policy exists and bindings work")
			Expect(vaultStatus(ctx, vault.Addr, "sys/policies/acl/agora-secrets-"+iid)).To(Equal(http.StatusOK))
			resp = b.OSB.Bind(iid, newGUID(), asyncPlanID, false)
			Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
			var token string
			token, err = appLogin(ctx, resp.Credentials())
			Expect(err).NotTo(HaveOccurred())
			Expect(appWriteRead(ctx, resp.Credentials(), token, "k", "v")).To(Succeed())

			resp = b.OSB.Deprovision(iid, asyncPlanID, true)
			Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
			Expect(b.OSB.AwaitOperation(iid, resp.Str("operation"), 30*time.Second).Status).To(Equal(http.StatusGone))
		},
		Entry("killed with kill -9", "kill -9", (*Broker).Kill, SpecTimeout(90*time.Second)),
		Entry("stopped with SIGTERM (a rolling restart)", "SIGTERM", (*Broker).Stop, SpecTimeout(90*time.Second)),
	)
})

var _ = Describe("two replicas on one Redis", func() {
	It("run 20 async provisions and their deprovisions, each job exactly once", func(ctx SpecContext) {
		prefix := specPrefix()
		replicas := []*Broker{
			StartBroker(ctx, BrokerOptions{Name: "replica-1", Prefix: prefix}),
			StartBroker(ctx, BrokerOptions{Name: "replica-2", Prefix: prefix}),
		}
		ids := jobsExactlyOnce(ctx, replicas, prefix, rdb)

		By("the prefix holds nothing but the tombstones, the (empty) job stream and its consumers")
		want := []string{jobStream(prefix), jobConsumers(prefix)}
		for _, iid := range ids {
			want = append(want, prefix+":{"+iid+"}:status")
		}
		Expect(prefixKeys(ctx, prefix)).To(ConsistOf(want))
	}, SpecTimeout(3*time.Minute))

	It("never hands a long-running job to the other replica while its worker heartbeats", func(ctx SpecContext) {
		prefix := specPrefix()
		one := StartBroker(ctx, BrokerOptions{Name: "replica-1", Prefix: prefix, AdapterVaultAddr: vaultProxy.URL})
		two := StartBroker(ctx, BrokerOptions{Name: "replica-2", Prefix: prefix, AdapterVaultAddr: vaultProxy.URL})
		iid := newGUID()
		gate := vaultProxy.Hold("/sys/policies/acl/agora-secrets-" + iid)
		resp := one.OSB.Provision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		op := resp.Str("operation")
		Eventually(gate.Reached()).WithTimeout(15 * time.Second).Should(BeClosed())

		By("the adapter call takes three times claim_idle")
		Consistently(gate.Hits).WithTimeout(3*claimIdle).WithPolling(200*time.Millisecond).Should(Equal(1),
			"another worker started the same job while the first one was alive")
		gate.Release()
		Expect(two.OSB.AwaitOperation(iid, op, 30*time.Second).Str("state")).To(Equal("succeeded"))
		// The worker logs its success just after the commit a poll sees,
		// so the line may come a moment after the poll's answer.
		Eventually(func() []string { return successes(one, two)[op] }).WithTimeout(5 * time.Second).Should(HaveLen(1))
		Expect(gate.Hits()).To(Equal(1))
		Eventually(func() int { return len(pendingJobs(ctx, prefix)) }).WithTimeout(5 * time.Second).Should(BeZero())
	}, SpecTimeout(60*time.Second))
})

var _ = Describe("Vault failing during a bind", func() {
	It("answers 503 naming Vault when the broker's credential store dies, keeps no record, and revokes what the adapter created", func(ctx SpecContext) {
		// The broker's credential store gets a Vault of its own; the
		// adapter keeps working on the suite's Vault, so the failure is
		// the broker's write of the credentials.
		credVault := startVault(ctx)
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), VaultAddr: credVault.Addr})
		iid, bid := newGUID(), newGUID()
		Expect(b.OSB.Provision(iid, standardPlanID, false).Status).To(Equal(http.StatusCreated))

		By("kill -9 the broker's Vault, then bind")
		Expect(credVault.Kill()).To(Succeed())
		resp := b.OSB.Bind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusServiceUnavailable), resp.String())
		Expect(resp.Str("description")).To(ContainSubstring("Vault"))
		By("two audiences: the app developer is told who owns the fix, the operator's log holds where")
		Expect(resp.String()).NotTo(ContainSubstring(credVault.Addr))
		line := requestLogLine(b, resp)
		Expect(line).To(HaveKeyWithValue("level", "ERROR"))
		Expect(line).To(HaveKeyWithValue("owner", "vault"))
		Expect(line["error"]).To(ContainSubstring(credVault.Addr))

		By("no binding record and no credentials in Redis; the adapter's AppRole was revoked again")
		Expect(bindingRecord(ctx, b.Prefix, iid, bid)).To(BeNil())
		Expect(dumpValues(ctx, b.Prefix)).NotTo(ContainElement(ContainSubstring(`"secret_id":`)))
		Expect(vaultStatus(ctx, vault.Addr, "auth/approle/role/agora-"+bid)).To(Equal(http.StatusNotFound))
		Expect(vaultStatus(ctx, vault.Addr, "identity/entity/name/agora-"+bid)).To(Equal(http.StatusNotFound))
		Expect(b.OSB.GetBinding(iid, bid).Status).To(Equal(http.StatusNotFound))

		By("/readyz answers 503 naming vault")
		status, body := b.Readyz()
		Expect(status).To(Equal(http.StatusServiceUnavailable), body)
		Expect(body).To(MatchRegexp(`"vault":"error: [^"]*` + strings.ReplaceAll(credVault.Addr, ".", `\.`)))

		By("Vault back (same address, empty): the platform's retry binds, with working credentials")
		restarted := startVaultAt(ctx, strings.TrimPrefix(credVault.Addr, "http://"))
		Eventually(func() int { s, _ := b.Readyz(); return s }).WithTimeout(10 * time.Second).Should(Equal(http.StatusOK))
		resp = b.OSB.Bind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		token, err := appLogin(ctx, resp.Credentials())
		Expect(err).NotTo(HaveOccurred())
		Expect(appWriteRead(ctx, resp.Credentials(), token, "k", "v")).To(Succeed())
		Expect(expectBindingSecret(ctx, restarted.Addr, iid, bid, true)).To(Equal(resp.Credentials()))
	}, SpecTimeout(90*time.Second))

	It("answers 5xx naming the adapter's owner when the one Vault both the adapter and the broker use dies", func(ctx SpecContext) {
		only := startVault(ctx)
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), VaultAddr: only.Addr, AdapterVaultAddr: only.Addr})
		iid, bid := newGUID(), newGUID()
		Expect(b.OSB.Provision(iid, standardPlanID, false).Status).To(Equal(http.StatusCreated))

		Expect(only.Kill()).To(Succeed())
		resp := b.OSB.Bind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(BeNumerically(">=", 500), resp.String())
		// The secrets adapter fails first: its producer owns the fix.
		Expect(resp.Str("description")).To(ContainSubstring(`"secrets" adapter`))
		Expect(resp.Str("description")).To(ContainSubstring("platform-team"))
		Expect(resp.String()).NotTo(ContainSubstring(only.Addr))
		Expect(requestLogLine(b, resp)["error"]).To(ContainSubstring(only.Addr))

		// The adapter fails before it created anything, so either no
		// record or a failed one (for a later DELETE) is fine; never a
		// bound one, and never credentials.
		rec := bindingRecord(ctx, b.Prefix, iid, bid)
		if rec != nil {
			Expect(*rec).To(ContainSubstring(`"state":"failed"`))
			Expect(*rec).NotTo(ContainSubstring(`"credential_ref"`))
		}
		fmt.Fprintf(GinkgoWriter, "observed: bind answered %d; binding record: %v\n", resp.Status, rec != nil)
		Expect(dumpValues(ctx, b.Prefix)).NotTo(ContainElement(ContainSubstring(`"secret_id":`)))
		Expect(b.OSB.GetBinding(iid, bid).Status).To(Equal(http.StatusNotFound))

		status, body := b.Readyz()
		Expect(status).To(Equal(http.StatusServiceUnavailable), body)
		Expect(body).To(ContainSubstring(`"vault":"error:`))
	}, SpecTimeout(90*time.Second))
})

// requestLogLine is the broker's one access-log line for the request that
// got resp, found by the request id the broker echoed.
func requestLogLine(b *Broker, resp Response) map[string]any {
	GinkgoHelper()
	id := resp.Header.Get("X-Broker-API-Request-Identity")
	Expect(id).NotTo(BeEmpty(), "the broker echoes a request id")
	var found map[string]any
	Eventually(func() map[string]any {
		for _, rec := range b.LogRecords("request") {
			if rec["request_id"] == id {
				found = rec
			}
		}
		return found
	}).WithTimeout(5*time.Second).ShouldNot(BeNil(), "no access-log line for request "+id)
	return found
}
