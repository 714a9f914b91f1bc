package integration

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/broker/catalog"
)

var _ = Describe("the synchronous lifecycle of a secrets instance", func() {
	var (
		b        *Broker
		osb      *OSBClient
		iid, bid string
	)

	BeforeEach(func(ctx SpecContext) {
		b = StartBroker(ctx, BrokerOptions{Prefix: specPrefix()})
		osb = b.OSB
		iid, bid = newGUID(), newGUID()
	})

	It("serves the secrets offering with stable IDs and works end to end: the credentials log in to Vault until unbind", func(ctx SpecContext) {
		By("GET /v2/catalog lists the secrets offering with its derived, documented IDs")
		cat := osb.Catalog()
		Expect(cat.Status).To(Equal(http.StatusOK), cat.String())
		Expect(secretsServiceID).To(Equal(catalog.DeriveOfferingID("platform-team", "secrets")))
		services, _ := cat.JSON["services"].([]any)
		var secrets map[string]any
		for _, s := range services {
			if s.(map[string]any)["name"] == "secrets" {
				secrets = s.(map[string]any)
			}
		}
		Expect(secrets).NotTo(BeNil(), "no secrets offering in %s", cat.Body)
		Expect(secrets["id"]).To(Equal(secretsServiceID))
		planIDs := map[string]any{}
		for _, p := range secrets["plans"].([]any) {
			plan := p.(map[string]any)
			planIDs[plan["name"].(string)] = plan["id"]
			Expect(plan).NotTo(HaveKey("config"), "adapter config leaked into the catalog")
		}
		Expect(planIDs).To(Equal(map[string]any{"standard": standardPlanID, "async": asyncPlanID}))
		Expect(string(cat.Body)).NotTo(ContainSubstring("vault:secret/agora-config"), "the catalog shows adapter config")

		By("a second replica (a restart) serves the very same catalog")
		other := StartBroker(ctx, BrokerOptions{Name: "restart", Prefix: b.Prefix})
		Expect(other.OSB.Catalog().Body).To(MatchJSON(cat.Body))
		other.Stop()

		By("provision: 201, then GET instance: 200 with the plan")
		resp := osb.Provision(iid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		resp = osb.GetInstance(iid)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(resp.Str("service_id")).To(Equal(secretsServiceID))
		Expect(resp.Str("plan_id")).To(Equal(standardPlanID))

		By("bind: 201 with AppRole credentials")
		resp = osb.Bind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		creds := resp.Credentials()
		Expect(creds).To(HaveKey("role_id"))
		Expect(creds).To(HaveKey("secret_id"))
		Expect(creds["vault_addr"]).To(Equal(vault.Addr))
		Expect(creds["kv_mount"]).To(Equal("secret"))
		Expect(creds["path"]).To(Equal("agora-secrets/" + iid))

		By("the credentials work: AppRole login, then write and read a secret in the instance's folder")
		token, err := appLogin(ctx, creds)
		Expect(err).NotTo(HaveOccurred())
		Expect(appWriteRead(ctx, creds, token, "db", "s3cret")).To(Succeed())

		By("and they reach nothing outside the instance's folder")
		outside := map[string]any{"vault_addr": creds["vault_addr"], "kv_mount": "secret", "path": "agora-secrets/" + newGUID()}
		Expect(appWriteRead(ctx, outside, token, "db", "x")).To(MatchError(ContainSubstring("403")))

		By("GET binding: 200 with the same credentials")
		resp = osb.GetBinding(iid, bid)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(resp.Credentials()).To(Equal(creds))

		By("an identical bind repeat: 200 with the same credentials")
		resp = osb.Bind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(resp.Credentials()).To(Equal(creds))

		By("unbind: 200; the secret_id no longer logs in and the issued token is refused")
		resp = osb.Unbind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		_, err = appLogin(ctx, creds)
		Expect(err).To(HaveOccurred(), "the secret_id still logs in after unbind")
		Expect(appWriteRead(ctx, creds, token, "db", "after-unbind")).NotTo(Succeed(), "a token issued before unbind still works")
		resp = osb.GetBinding(iid, bid)
		Expect(resp.Status).To(Equal(http.StatusNotFound), resp.String())
		resp = osb.Unbind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusGone), resp.String())

		By("deprovision: 200, then 410 on a repeat and 404 on GET")
		resp = osb.Deprovision(iid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		resp = osb.Deprovision(iid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusGone), resp.String())
		resp = osb.GetInstance(iid)
		Expect(resp.Status).To(Equal(http.StatusNotFound), resp.String())

		By("the instance's folder is gone from Vault with every secret in it")
		Expect(vaultStatus(ctx, vault.Addr, "secret/metadata/agora-secrets/"+iid+"/db")).To(Equal(http.StatusNotFound))
		Expect(vaultStatus(ctx, vault.Addr, "sys/policies/acl/agora-secrets-"+iid)).To(Equal(http.StatusNotFound))
	}, SpecTimeout(90*time.Second))

	It("keeps only references in Redis and the credentials in Vault, exactly while the binding exists", func(ctx SpecContext) {
		prefix := b.Prefix
		ref := bindingSecretPath(iid, bid)

		By("provision: an instance record, no binding, nothing in Vault")
		Expect(osb.Provision(iid, standardPlanID, false).Status).To(Equal(http.StatusCreated))
		Expect(instanceKeys(ctx, prefix, iid)).To(ContainElement(prefix + ":{" + iid + "}:instance"))
		Expect(bindingRecord(ctx, prefix, iid, bid)).To(BeNil())
		expectBindingSecret(ctx, vault.Addr, iid, bid, false)

		By("bind: the credentials are in Vault at the documented path, Redis holds the reference only")
		resp := osb.Bind(iid, bid, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		creds := resp.Credentials()
		stored := expectBindingSecret(ctx, vault.Addr, iid, bid, true)
		Expect(stored).To(Equal(creds))
		rec := bindingRecord(ctx, prefix, iid, bid)
		Expect(rec).NotTo(BeNil())
		Expect(*rec).To(MatchRegexp(`"credential_ref":"` + ref + `"`))
		expectNoSecretsInRedis(ctx, prefix, creds["secret_id"].(string), creds["role_id"].(string))
		Expect(dumpValues(ctx, prefix)).NotTo(ContainElement(ContainSubstring(`"secret_id":`)))

		By("GET binding reads them back from Vault, still not copying them to Redis")
		Expect(osb.GetBinding(iid, bid).Status).To(Equal(http.StatusOK))
		expectNoSecretsInRedis(ctx, prefix, creds["secret_id"].(string), creds["role_id"].(string))

		By("unbind: the secret and all its versions are gone from Vault, the record from Redis")
		Expect(osb.Unbind(iid, bid, standardPlanID, false).Status).To(Equal(http.StatusOK))
		expectBindingSecret(ctx, vault.Addr, iid, bid, false)
		Expect(bindingRecord(ctx, prefix, iid, bid)).To(BeNil())

		By("bind again and deprovision without unbinding (the cascade): Vault and Redis are clean")
		bid2 := newGUID()
		resp = osb.Bind(iid, bid2, standardPlanID, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		creds2 := resp.Credentials()
		expectBindingSecret(ctx, vault.Addr, iid, bid2, true)
		Expect(osb.Deprovision(iid, standardPlanID, false).Status).To(Equal(http.StatusOK))
		expectBindingSecret(ctx, vault.Addr, iid, bid2, false)
		_, err := appLogin(ctx, creds2)
		Expect(err).To(HaveOccurred(), "a binding removed by deprovision still logs in")
		Expect(vaultStatus(ctx, vault.Addr, "auth/approle/role/agora-"+bid2)).To(Equal(http.StatusNotFound))

		By("a synchronous deprovision leaves no key of the instance at all")
		Expect(instanceKeys(ctx, prefix, iid)).To(BeEmpty())
		expectNoSecretsInRedis(ctx, prefix, creds["secret_id"].(string), creds2["secret_id"].(string))
	}, SpecTimeout(60*time.Second))
})

var _ = Describe("the Redis prefix after deprovision", func() {
	It("holds no key of a deleted instance but the async tombstone, which expires", func(ctx SpecContext) {
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix()})
		osb, prefix := b.OSB, b.Prefix
		syncID, asyncID := newGUID(), newGUID()

		By("a sync and an async instance, each with a binding left in place")
		Expect(osb.Provision(syncID, standardPlanID, false).Status).To(Equal(http.StatusCreated))
		Expect(osb.Bind(syncID, newGUID(), standardPlanID, false).Status).To(Equal(http.StatusCreated))
		resp := osb.Provision(asyncID, asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		Expect(osb.AwaitOperation(asyncID, resp.Str("operation"), 30*time.Second).Str("state")).To(Equal("succeeded"))
		resp = osb.Bind(asyncID, newGUID(), asyncPlanID, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())

		By("deprovision both (the async bind may still be settling: retry on 422 like a platform)")
		Expect(osb.Deprovision(syncID, standardPlanID, false).Status).To(Equal(http.StatusOK))
		var dop string
		Eventually(func(g Gomega) {
			r := osb.Deprovision(asyncID, asyncPlanID, true)
			g.Expect(r.Status).To(Equal(http.StatusAccepted), r.String())
			dop = r.Str("operation")
		}).WithTimeout(20 * time.Second).Should(Succeed())
		Expect(osb.AwaitOperation(asyncID, dop, 30*time.Second).Status).To(Equal(http.StatusGone))

		By("only the job queue's stream and consumers and the async instance's expiring tombstone remain")
		tombstone := prefix + ":{" + asyncID + "}:status"
		Eventually(func() []string { return prefixKeys(ctx, prefix) }).WithTimeout(5 * time.Second).
			Should(ConsistOf(jobStream(prefix), jobConsumers(prefix), tombstone))
		ttl, err := rdb.PTTL(ctx, tombstone).Result()
		Expect(err).NotTo(HaveOccurred())
		Expect(ttl).To(BeNumerically(">", 0), "the tombstone never expires")
		Expect(ttl).To(BeNumerically("<=", 24*time.Hour))
		Expect(rdb.XLen(ctx, jobStream(prefix)).Val()).To(BeZero())
	}, SpecTimeout(90*time.Second))
})
