package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/vaultstore"
)

var _ = Describe("the orphan sweep", func() {
	It("finds Vault secrets without a record and bindings without their secret, changes nothing until --apply, then repairs both", func(ctx SpecContext) {
		adapter := &switchable{mode: "ok"}
		secret := randomHex(16)
		srv := httptest.NewServer(remote.Handler(adapter, remote.HandlerOptions{Name: "switchable", Secret: secret}))
		DeferCleanup(srv.Close)
		// A Vault prefix of its own: the sweep lists everything under it.
		prefix := specPrefix()
		b := StartBroker(ctx, BrokerOptions{Prefix: prefix, VaultPrefix: prefix, Catalog: fmt.Sprintf(`
producers:
  - name: sweep-team
    contact: sweep@example.com
    offerings:
      - name: tidy
        description: Works; the test loses and plants its secrets.
        adapter: remote
        config: {url: %q, secret: %q}
        plans:
          - {name: standard, description: Standard.}
`, srv.URL, secret)})
		serviceID := catalog.DeriveOfferingID("sweep-team", "tidy")
		planID := catalog.DerivePlanID("sweep-team", "tidy", "standard")
		body := map[string]any{"service_id": serviceID, "plan_id": planID}
		kv := rootClient(vault.Addr).KVv2("secret")

		By("an instance with parameters and two bindings, and a second instance")
		iid, kept, lost := newGUID(), newGUID(), newGUID()
		withParams := map[string]any{"service_id": serviceID, "plan_id": planID, "parameters": map[string]any{"size": 3}}
		Expect(b.OSB.ProvisionWith(iid, withParams, false).Status).To(Equal(http.StatusCreated))
		Expect(b.OSB.ProvisionWith(newGUID(), body, false).Status).To(Equal(http.StatusCreated))
		for _, bid := range []string{kept, lost} {
			Expect(b.OSB.Do(http.MethodPut, bindingPath(iid, bid), body).Status).To(Equal(http.StatusCreated))
		}

		By("one binding's credentials vanish from Vault; two stray secrets appear")
		Expect(kv.DeleteMetadata(ctx, bindingSecretPathUnder(prefix, iid, lost))).To(Succeed())
		stray := bindingSecretPathUnder(prefix, iid, "stray-"+newGUID())
		ghost := bindingSecretPathUnder(prefix, "ghost-"+newGUID(), "b")
		// Parameters of an operation that never committed them.
		strayParams := prefix + "/instances/" + vaultstore.Segment(iid) + "/parameters/" + randomHex(16)
		for _, path := range []string{stray, ghost, strayParams} {
			_, err := kv.Put(ctx, path, map[string]any{"password": "nobody-uses-me"})
			Expect(err).NotTo(HaveOccurred())
		}

		ops := newCLIUser()
		sweep := func(args ...string) []broker.Orphan {
			res := ops.Must(ctx, "", append(append([]string{"admin", "orphans", "-o", "json"}, args...), adminFlags(b)...)...)
			Expect(res.Stderr).To(ContainSubstring("instance(s) checked from the vault"))
			var found []broker.Orphan
			Expect(json.Unmarshal([]byte(res.Stdout), &found)).To(Succeed(), res.String())
			return found
		}
		finding := func(kind, ref string, fixed bool) OmegaMatcher {
			return And(HaveField("Kind", kind), HaveField("Ref", ref), HaveField("Fixed", fixed))
		}

		By("the report names each of the four once (the instance's folder is seen from both sides), not the parameters in force, and changes nothing")
		report := sweep()
		Expect(report).To(ConsistOf(
			finding(broker.OrphanRecord, "", false),
			finding(broker.OrphanSecret, stray, false),
			finding(broker.OrphanSecret, ghost, false),
			finding(broker.OrphanSecret, strayParams, false),
		))
		for _, path := range []string{stray, ghost, strayParams} {
			_, err := kv.Get(ctx, path)
			Expect(err).NotTo(HaveOccurred(), "a report deleted %s", path)
		}
		Expect(b.OSB.GetBinding(iid, kept).Status).To(Equal(http.StatusOK))

		By("--apply deletes the strays and fails the binding that lost its credentials")
		Expect(sweep("--apply")).To(ConsistOf(
			finding(broker.OrphanRecord, "", true),
			finding(broker.OrphanSecret, stray, true),
			finding(broker.OrphanSecret, ghost, true),
			finding(broker.OrphanSecret, strayParams, true),
		))
		for _, path := range []string{stray, ghost, strayParams} {
			_, err := kv.Get(ctx, path)
			Expect(err).To(HaveOccurred(), "%s survived --apply", path)
		}
		Expect(b.OSB.GetBinding(iid, lost).Status).To(Equal(http.StatusNotFound))
		Expect(b.OSB.GetBinding(iid, kept).Status).To(Equal(http.StatusOK), "the sweep touched a healthy binding")
		inst := b.OSB.GetInstance(iid)
		Expect(inst.JSON["parameters"]).To(Equal(map[string]any{"size": 3.0}), "the sweep touched the parameters in force: %s", inst)

		By("the platform's unbind cleans up the failed binding; the next sweep finds nothing")
		Expect(b.OSB.Do(http.MethodDelete, bindingPath(iid, lost)+query(false, "service_id", serviceID, "plan_id", planID), nil).Status).To(Equal(http.StatusOK))
		Expect(sweep()).To(BeEmpty())
	}, SpecTimeout(2*time.Minute))
})
