package integration

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("asynchronous operations", func() {
	It("provisions, binds and deprovisions an async plan the way a platform polls it", func(ctx SpecContext) {
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix()})
		osb, prefix := b.OSB, b.Prefix
		iid, bid, bid2 := newGUID(), newGUID(), newGUID()

		By("without accepts_incomplete: 422 AsyncRequired, and nothing is recorded")
		resp := osb.Provision(iid, asyncPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusUnprocessableEntity), resp.String())
		Expect(resp.Str("error")).To(Equal("AsyncRequired"))
		Expect(instanceKeys(ctx, prefix, iid)).To(BeEmpty())

		By("with accepts_incomplete: 202 with an operation")
		resp = osb.Provision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		op := resp.Str("operation")
		Expect(op).NotTo(BeEmpty())

		By("last_operation (with Retry-After on every 200) reaches succeeded")
		resp = osb.AwaitOperation(iid, op, 30*time.Second)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(resp.Str("state")).To(Equal("succeeded"), resp.String())
		Expect(osb.GetInstance(iid).Status).To(Equal(http.StatusOK))

		By("a bind without accepts_incomplete runs inline: 201 with working credentials")
		resp = osb.Bind(iid, bid, asyncPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		token, err := appLogin(ctx, resp.Credentials())
		Expect(err).NotTo(HaveOccurred())
		Expect(appWriteRead(ctx, resp.Credentials(), token, "k", "v")).To(Succeed())

		By("a bind with accepts_incomplete: 202, binding last_operation succeeded, GET binding returns working credentials")
		resp = osb.Bind(iid, bid2, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		bop := resp.Str("operation")
		resp = osb.AwaitBindingOperation(iid, bid2, bop, 30*time.Second)
		Expect(resp.Str("state")).To(Equal("succeeded"), resp.String())
		resp = osb.GetBinding(iid, bid2)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		creds2 := resp.Credentials()
		_, err = appLogin(ctx, creds2)
		Expect(err).NotTo(HaveOccurred())
		expectBindingSecret(ctx, vault.Addr, iid, bid2, true)
		expectNoSecretsInRedis(ctx, prefix, creds2["secret_id"].(string))

		By("deprovision without accepts_incomplete: 422 AsyncRequired, the instance stays")
		resp = osb.Deprovision(iid, asyncPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusUnprocessableEntity), resp.String())
		Expect(osb.GetInstance(iid).Status).To(Equal(http.StatusOK))

		By("deprovision with accepts_incomplete: 202, then last_operation answers 410 Gone")
		resp = osb.Deprovision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		dop := resp.Str("operation")
		resp = osb.AwaitOperation(iid, dop, 30*time.Second)
		Expect(resp.Status).To(Equal(http.StatusGone), resp.String())
		Expect(osb.Deprovision(iid, asyncPlanID, true).Status).To(Equal(http.StatusGone))

		By("both bindings went with the instance: revoked, gone from Vault")
		_, err = appLogin(ctx, creds2)
		Expect(err).To(HaveOccurred())
		expectBindingSecret(ctx, vault.Addr, iid, bid, false)
		expectBindingSecret(ctx, vault.Addr, iid, bid2, false)

		By("Redis keeps only the instance's tombstone, which expires")
		Expect(instanceKeys(ctx, prefix, iid)).To(ConsistOf(prefix + ":{" + iid + "}:status"))
		ttl, err := rdb.PTTL(ctx, prefix+":{"+iid+"}:status").Result()
		Expect(err).NotTo(HaveOccurred())
		Expect(ttl).To(BeNumerically(">", 0), "the tombstone never expires")
		Expect(rdb.XLen(ctx, jobStream(prefix)).Val()).To(BeZero())
		Expect(pendingJobs(ctx, prefix)).To(BeEmpty())
	}, SpecTimeout(2*time.Minute))
})

var _ = Describe("idempotency of mutating requests", func() {
	var (
		b   *Broker
		osb *OSBClient
	)
	BeforeEach(func(ctx SpecContext) {
		// The adapter reaches Vault through the gate proxy, so a spec can
		// keep an async operation running as long as it needs.
		b = StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), AdapterVaultAddr: vaultProxy.URL})
		osb = b.OSB
	})

	It("answers an identical sync PUT 200, a different one 409, and a DELETE of something absent 410", func(ctx SpecContext) {
		iid, bid := newGUID(), newGUID()
		Expect(osb.Provision(iid, standardPlanID, false).Status).To(Equal(http.StatusCreated))
		resp := osb.Provision(iid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())

		different := ProvisionBody(standardPlanID)
		different["space_guid"] = "another-space"
		resp = osb.ProvisionWith(iid, different, false)
		Expect(resp.Status).To(Equal(http.StatusConflict), resp.String())
		resp = osb.Provision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusConflict), resp.String())

		Expect(osb.Bind(iid, bid, standardPlanID, false).Status).To(Equal(http.StatusCreated))
		Expect(osb.Bind(iid, bid, standardPlanID, false).Status).To(Equal(http.StatusOK))
		resp = osb.Do(http.MethodPut, bindingPath(iid, bid), map[string]any{
			"service_id": secretsServiceID, "plan_id": standardPlanID, "app_guid": "another-app",
			"bind_resource": map[string]any{"app_guid": "another-app"},
		})
		Expect(resp.Status).To(Equal(http.StatusConflict), resp.String())

		By("DELETEs of what is absent: 410")
		Expect(osb.Unbind(iid, newGUID(), standardPlanID, false).Status).To(Equal(http.StatusGone))
		Expect(osb.Deprovision(newGUID(), standardPlanID, false).Status).To(Equal(http.StatusGone))
		Expect(osb.Unbind(newGUID(), newGUID(), standardPlanID, false).Status).To(Equal(http.StatusGone))

		Expect(osb.Unbind(iid, bid, standardPlanID, false).Status).To(Equal(http.StatusOK))
		Expect(osb.Unbind(iid, bid, standardPlanID, false).Status).To(Equal(http.StatusGone))
		Expect(osb.Deprovision(iid, standardPlanID, false).Status).To(Equal(http.StatusOK))
		Expect(osb.Deprovision(iid, standardPlanID, false).Status).To(Equal(http.StatusGone))
	}, SpecTimeout(60*time.Second))

	It("answers an identical async PUT 202 with the same operation while it runs, then 200; a different one 409", func(ctx SpecContext) {
		iid := newGUID()
		gate := vaultProxy.Hold("/sys/policies/acl/agora-secrets-" + iid)

		resp := osb.Provision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		op := resp.Str("operation")
		Eventually(gate.Reached()).WithTimeout(15*time.Second).Should(BeClosed(), "the worker never reached the adapter's Vault call")

		By("while the adapter works: same operation for an identical PUT, 409 for a different one")
		resp = osb.Provision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		Expect(resp.Str("operation")).To(Equal(op))
		different := ProvisionBody(asyncPlanID)
		different["organization_guid"] = "another-org"
		resp = osb.ProvisionWith(iid, different, true)
		Expect(resp.Status).To(Equal(http.StatusConflict), resp.String())
		resp = osb.LastOperation(iid, op)
		Expect(resp.Str("state")).To(Equal("in progress"), resp.String())
		resp = osb.Deprovision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusUnprocessableEntity), resp.String())
		Expect(resp.Str("error")).To(Equal("ConcurrencyError"))

		By("once it finished: 200 for an identical PUT, still 409 for a different one")
		gate.Release()
		Expect(osb.AwaitOperation(iid, op, 30*time.Second).Str("state")).To(Equal("succeeded"))
		resp = osb.Provision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(osb.ProvisionWith(iid, different, true).Status).To(Equal(http.StatusConflict))

		By("the job ran once: one success logged, the queue is empty")
		Expect(b.LogRecords("async operation succeeded")).To(HaveLen(1))
		Expect(pendingJobs(ctx, b.Prefix)).To(BeEmpty())

		resp = osb.Deprovision(iid, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		Expect(osb.AwaitOperation(iid, resp.Str("operation"), 30*time.Second).Status).To(Equal(http.StatusGone))
	}, SpecTimeout(60*time.Second))
})
