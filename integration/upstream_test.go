package integration

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/broker/catalog"
)

var _ = Describe("an upstream OSB broker aggregated into Agora's catalog", func() {
	It("imports its offering under Agora's own IDs and passes provision, bind, unbind and deprovision through", func(ctx SpecContext) {
		By("the upstream: another agora serve, with a Redis prefix and a Vault of its own, serving the secrets offering")
		upVault := startVault(ctx)
		upstream := StartBroker(ctx, BrokerOptions{Name: "upstream", Prefix: specPrefix(), VaultAddr: upVault.Addr})

		By("the upstream's password is seeded in the main Agora's Vault; catalog.yml holds only the reference")
		producer := "legacy-" + randomHex(3)
		secretPath := runPrefix + "/upstreams/" + producer
		_, err := rootClient(vault.Addr).KVv2("secret").Put(ctx, secretPath, map[string]any{"password": upstream.OSB.pass})
		Expect(err).NotTo(HaveOccurred())
		mainPrefix := specPrefix()
		main := StartBroker(ctx, BrokerOptions{Name: "main", Prefix: mainPrefix, Catalog: fmt.Sprintf(`
producers:
  - name: %s
    contact: legacy@example.com
    upstream:
      url: %s
      username: %s
      password: vault:secret/%s#password
      timeout: 20s
`, producer, upstream.URL, upstream.OSB.user, secretPath)})

		By("the main catalog lists the imported offering: the upstream's name, an ID Agora derived")
		off := mustOffering(main, "secrets")
		Expect(off.ID).To(Equal(catalog.DeriveOfferingID(producer, "secrets")))
		Expect(off.ID).NotTo(Equal(secretsServiceID), "the upstream's ID was kept")
		Expect(off.Plans).To(Equal(map[string]string{
			"standard": catalog.DerivePlanID(producer, "secrets", "standard"),
			"async":    catalog.DerivePlanID(producer, "secrets", "async"),
		}))
		upOff := mustOffering(upstream, "secrets")
		Expect(upOff.ID).To(Equal(secretsServiceID))
		cat := main.OSB.Catalog()
		Expect(string(cat.Body)).NotTo(ContainSubstring(upstream.OSB.pass), "the upstream's password is in the catalog")
		Expect(string(cat.Body)).NotTo(ContainSubstring(upstream.URL), "the upstream's URL (adapter config) is in the catalog")
		plan := off.plan("standard")

		By("provision (the upstream's plan is sync): Agora answers 202 and last_operation reaches succeeded")
		iid, bid := newGUID(), newGUID()
		resp := off.Provision(main.OSB, iid, plan, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		resp = main.OSB.AwaitOperation(iid, resp.Str("operation"), 30*time.Second)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(resp.Str("state")).To(Equal("succeeded"), resp.String())
		resp = upstream.OSB.GetInstance(iid)
		Expect(resp.Status).To(Equal(http.StatusOK), "the upstream has no such instance: %s", resp)
		Expect(resp.Str("service_id")).To(Equal(secretsServiceID), "the upstream was not sent its own IDs")
		Expect(resp.Str("plan_id")).To(Equal(standardPlanID))

		By("bind through the main Agora: 201 with the upstream's credentials, which log in to Vault and work")
		resp = off.Bind(main.OSB, iid, bid, plan, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		creds := resp.Credentials()
		Expect(creds).To(HaveKey("secret_id"))
		Expect(creds["path"]).To(Equal("agora-secrets/" + iid))
		appToken, err := appLogin(ctx, creds)
		Expect(err).NotTo(HaveOccurred())
		Expect(appWriteRead(ctx, creds, appToken, "db", "through-two-brokers")).To(Succeed())

		By("the main Agora keeps them in its own Vault (the upstream in its own), and none in the main Redis")
		Expect(expectBindingSecret(ctx, vault.Addr, iid, bid, true)).To(Equal(creds))
		Expect(expectBindingSecret(ctx, upVault.Addr, iid, bid, true)).To(Equal(creds))
		expectNoSecretsInRedis(ctx, mainPrefix, creds["secret_id"].(string), creds["role_id"].(string), upstream.OSB.pass)
		resp = main.OSB.GetBinding(iid, bid)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(resp.Credentials()).To(Equal(creds))

		By("unbind passes through: the upstream's binding and both Vault copies are gone, the login fails")
		resp = off.Unbind(main.OSB, iid, bid, plan, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		resp = upstream.OSB.GetBinding(iid, bid)
		Expect(resp.Status).To(Equal(http.StatusNotFound), "the upstream still has the binding: %s", resp)
		expectBindingSecret(ctx, vault.Addr, iid, bid, false)
		expectBindingSecret(ctx, upVault.Addr, iid, bid, false)
		_, err = appLogin(ctx, creds)
		Expect(err).To(HaveOccurred(), "the credentials still log in after unbind")

		By("deprovision passes through (async): 202, then last_operation 410; the upstream's instance is gone")
		resp = off.Deprovision(main.OSB, iid, plan, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		resp = main.OSB.AwaitOperation(iid, resp.Str("operation"), 30*time.Second)
		Expect(resp.Status).To(Equal(http.StatusGone), resp.String())
		resp = upstream.OSB.GetInstance(iid)
		Expect(resp.Status).To(Equal(http.StatusNotFound), "the upstream still has the instance: %s", resp)
		Expect(vaultStatus(ctx, vault.Addr, "sys/policies/acl/agora-secrets-"+iid)).To(Equal(http.StatusNotFound), "the backend still has the instance's policy")
		// An async delete leaves its tombstone (last_operation answers 410 from it).
		Expect(instanceKeys(ctx, mainPrefix, iid)).To(ConsistOf(mainPrefix + ":{" + iid + "}:status"))
		Expect(instanceKeys(ctx, upstream.Prefix, iid)).To(BeEmpty())
	}, SpecTimeout(90*time.Second))
})
