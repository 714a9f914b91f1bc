package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/broker/catalog"
)

// crossplaneCatalog serves the secrets offering the way a platform team
// would for Crossplane: bindings rotatable, credentials that expire after
// secret_id_ttl, and no endpoints (provider-osb's OSB client decodes
// endpoints[].ports as numbers and fails on the spec's strings).
const crossplaneCatalog = `
producers:
  - name: platform-team
    contact: platform@example.com
    offerings:
      - name: secrets
        description: A private folder in Vault's KV store, with an AppRole login for it per binding.
        adapter: secrets
        config:
          vault_addr: %s
          token: vault:secret/agora-config/secrets-adapter#token
        instances_retrievable: true
        bindings_retrievable: true
        omit_binding_endpoints: true
        plans:
          - name: rotating
            description: Credentials that expire, and rotate before they do.
            binding_rotatable: true
            config:
              token_ttl: 10m
              secret_id_ttl: 20s
              renew_window: 10s
`

// providerOSB plays Crossplane's provider-osb (orange-cloudfoundry/
// provider-osb and its go-open-service-broker-client fork), as read from
// its source: API version 2.17, a Kubernetes originating identity,
// accepts_incomplete=true on every mutation, GET instance and GET binding
// on every reconcile, a PATCH whenever the instance's parameters differ
// from its spec, rotation with a body of predecessor_binding_id alone
// once renew_before has passed, and the predecessor never unbound.
type providerOSB struct {
	osb      *OSBClient
	identity string
	patches  int
	// statusContext is the context last sent, which provider-osb keeps
	// in the resource's status and compares with the spec's.
	statusContext any
}

// providerTimeLayout is how provider-osb parses renew_before and
// expires_at (util.Iso8601dateFormat).
const providerTimeLayout = "2006-01-02T15:04:05.9Z"

func newProviderOSB(osb *OSBClient) *providerOSB {
	oid, _ := json.Marshal(map[string]any{"username": "system:serviceaccount:crossplane-system:provider-osb",
		"uid": "2f1c", "groups": []string{"system:serviceaccounts"}, "extra": map[string]any{}})
	return &providerOSB{osb: osb, identity: "kubernetes " + base64.StdEncoding.EncodeToString(oid)}
}

func (p *providerOSB) send(method, path string, body any) Response {
	GinkgoHelper()
	return p.osb.Raw(method, path, jsonBody(body), http.Header{
		"X-Broker-Api-Version":              {"2.17"},
		"X-Broker-Api-Originating-Identity": {p.identity},
	})
}

// reconcileInstance is one Observe (GET) and, as provider-osb's
// CompareSpecWithOSB decides, one Update (PATCH with the whole spec) when
// the parameters the broker reports differ from the spec's (missing
// counts as different) or the spec's context differs from the one last
// sent.
func (p *providerOSB) reconcileInstance(iid string, spec map[string]any) Response {
	GinkgoHelper()
	got := p.send(http.MethodGet, instancePath(iid), nil)
	Expect(got.Status).To(Equal(http.StatusOK), got.String())
	params, ok := got.JSON["parameters"]
	if !ok || !reflect.DeepEqual(params, spec["parameters"]) || !reflect.DeepEqual(spec["context"], p.statusContext) {
		p.patches++
		r := p.send(http.MethodPatch, instancePath(iid)+query(true), map[string]any{
			"service_id": spec["service_id"], "plan_id": spec["plan_id"], "context": spec["context"], "parameters": spec["parameters"],
		})
		Expect(r.Status).To(BeElementOf(http.StatusOK, http.StatusAccepted), r.String())
		p.statusContext = spec["context"]
	}
	return got
}

// observeBinding is the binding's Observe: GET binding for credentials,
// parameters and metadata, with the times parsed as provider-osb does.
func (p *providerOSB) observeBinding(iid, bid string) (Response, time.Time, time.Time) {
	GinkgoHelper()
	r := p.send(http.MethodGet, bindingPath(iid, bid), nil)
	Expect(r.Status).To(Equal(http.StatusOK), r.String())
	meta, _ := r.JSON["metadata"].(map[string]any)
	Expect(meta).NotTo(BeNil(), "GET binding without metadata: %s", r)
	renew, err := time.Parse(providerTimeLayout, meta["renew_before"].(string))
	Expect(err).NotTo(HaveOccurred())
	expires, err := time.Parse(providerTimeLayout, meta["expires_at"].(string))
	Expect(err).NotTo(HaveOccurred())
	Expect(renew.After(expires)).To(BeFalse(), "renew_before after expires_at: %s", r)
	return r, renew, expires
}

var _ = Describe("Crossplane's provider-osb as a platform", func() {
	It("reconciles an instance without PATCHing forever, reads bindings back, rotates with the predecessor-only body, and the predecessor stops working at its expires_at", func(ctx SpecContext) {
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), Catalog: fmt.Sprintf(crossplaneCatalog, vault.Addr)})
		p := newProviderOSB(b.OSB)
		serviceID := catalog.DeriveOfferingID("platform-team", "secrets")
		planID := catalog.DerivePlanID("platform-team", "secrets", "rotating")
		iid, oldID, newID := newGUID(), newGUID(), newGUID()
		k8sContext := map[string]any{"platform": "kubernetes", "namespace": "team-a", "clusterid": "c-1", "instance_name": "vault-space"}

		By("the catalog announces the rotatable plan")
		cat := p.send(http.MethodGet, "/v2/catalog", nil)
		Expect(cat.Body).To(ContainSubstring(`"binding_rotatable":true`))

		By("Create: PUT instance with the spec, accepts_incomplete=true")
		spec := map[string]any{"service_id": serviceID, "plan_id": planID, "organization_guid": "org-1", "space_guid": "space-1",
			"context": k8sContext, "parameters": map[string]any{}}
		r := p.send(http.MethodPut, instancePath(iid)+query(true), spec)
		Expect(r.Status).To(Equal(http.StatusCreated), r.String())
		p.statusContext = spec["context"]

		By("Observe on every reconcile: GET instance returns parameters {}, so no PATCH is needed")
		for range 3 {
			got := p.reconcileInstance(iid, spec)
			Expect(got.JSON).To(HaveKeyWithValue("parameters", map[string]any{}))
		}
		Expect(p.patches).To(BeZero(), "provider-osb would PATCH on every reconcile")

		By("a renamed resource changes the context: one PATCH, parameters still {}, and the next reconcile is quiet")
		spec["context"] = map[string]any{"platform": "kubernetes", "namespace": "team-a", "clusterid": "c-1", "instance_name": "renamed"}
		p.reconcileInstance(iid, spec)
		Expect(p.patches).To(Equal(1))
		got := p.reconcileInstance(iid, spec)
		Expect(got.JSON).To(HaveKeyWithValue("parameters", map[string]any{}))
		Expect(p.patches).To(Equal(1))

		By("Create binding: bind_resource with an empty route, the context, parameters {}")
		r = p.send(http.MethodPut, bindingPath(iid, oldID)+query(true), map[string]any{
			"service_id": serviceID, "plan_id": planID, "bind_resource": map[string]any{"route": ""},
			"context": k8sContext, "parameters": map[string]any{},
		})
		Expect(r.Status).To(Equal(http.StatusCreated), r.String())
		Expect(r.JSON).NotTo(HaveKey("endpoints"), "endpoints would break provider-osb's client")
		Expect(r.JSON["metadata"]).To(HaveKey("expires_at"))

		By("Observe binding: credentials, parameters {} and metadata")
		old, renewOld, expiresOld := p.observeBinding(iid, oldID)
		Expect(old.JSON).To(HaveKeyWithValue("parameters", map[string]any{}))
		Expect(expiresOld).To(BeTemporally("~", time.Now().Add(20*time.Second), 3*time.Second))
		oldCreds := old.Credentials()
		oldToken, err := appLogin(ctx, oldCreds)
		Expect(err).NotTo(HaveOccurred())
		Expect(appWriteRead(ctx, oldCreds, oldToken, "db", "s3cret")).To(Succeed())

		By("reconciling until renew_before has passed, then rotating with the predecessor's ID alone")
		Eventually(func() bool {
			_, renew, _ := p.observeBinding(iid, oldID)
			return time.Now().After(renew)
		}).WithTimeout(20*time.Second).WithPolling(500*time.Millisecond).Should(BeTrue(), "renew_before %s never passed", renewOld)
		r = p.send(http.MethodPut, bindingPath(iid, newID)+query(true), map[string]any{"predecessor_binding_id": oldID})
		Expect(r.Status).To(Equal(http.StatusCreated), r.String())
		newCreds := r.Credentials()
		Expect(newCreds["secret_id"]).NotTo(Equal(oldCreds["secret_id"]))
		Expect(newCreds["path"]).To(Equal(oldCreds["path"]), "the successor must have the predecessor's access")

		By("Observe the successor: its own credentials, the predecessor's parameters, later metadata")
		succ, _, expiresNew := p.observeBinding(iid, newID)
		Expect(succ.JSON).To(HaveKeyWithValue("parameters", map[string]any{}))
		Expect(succ.Credentials()).To(Equal(newCreds))
		Expect(expiresNew.After(expiresOld)).To(BeTrue())

		By("both credentials work against Vault in parallel")
		newToken, err := appLogin(ctx, newCreds)
		Expect(err).NotTo(HaveOccurred())
		Expect(appWriteRead(ctx, newCreds, newToken, "db", "rotated")).To(Succeed())
		Expect(appWriteRead(ctx, oldCreds, oldToken, "db", "still-old")).To(Succeed())
		_, err = appLogin(ctx, oldCreds)
		Expect(err).NotTo(HaveOccurred(), "the predecessor stopped working at the rotation")

		By("nobody unbinds the predecessor: Agora revokes it at its expires_at, by itself")
		Eventually(func() error { return appWriteRead(ctx, oldCreds, oldToken, "db", "after-expiry") }).
			WithTimeout(time.Until(expiresOld) + 10*time.Second).WithPolling(250 * time.Millisecond).Should(HaveOccurred())
		revokedAt := time.Now()
		Expect(revokedAt).To(BeTemporally(">=", expiresOld), "revoked before its expires_at")
		_, err = appLogin(ctx, oldCreds)
		Expect(err).To(HaveOccurred(), "the predecessor's secret_id still logs in")
		Expect(p.send(http.MethodGet, bindingPath(iid, oldID), nil).Status).To(Equal(http.StatusNotFound))
		fmt.Fprintf(GinkgoWriter, "predecessor revoked %s after its expires_at\n", revokedAt.Sub(expiresOld).Round(time.Millisecond))

		By("the successor keeps working")
		Expect(time.Now().Before(expiresNew)).To(BeTrue(), "the test ran past the successor's own expiry; it proves nothing")
		Expect(appWriteRead(ctx, newCreds, newToken, "db", "successor")).To(Succeed())
		_, err = appLogin(ctx, newCreds)
		Expect(err).NotTo(HaveOccurred())

		By("Delete: unbind the successor, deprovision; nothing is left in Redis for the instance")
		Expect(p.send(http.MethodDelete, bindingPath(iid, newID)+query(true, "service_id", serviceID, "plan_id", planID), nil).Status).To(Equal(http.StatusOK))
		Expect(p.send(http.MethodDelete, instancePath(iid)+query(true, "service_id", serviceID, "plan_id", planID), nil).Status).To(Equal(http.StatusOK))
		Expect(expiryEntries(ctx, b.Prefix)).To(BeEmpty())
	}, SpecTimeout(2*time.Minute))
})

// expiryEntries lists the broker's expiry index (broker/redisstore/doc.go).
func expiryEntries(ctx context.Context, prefix string) []string {
	GinkgoHelper()
	members, err := rdb.ZRange(ctx, prefix+":{expiries}:bindings", 0, -1).Result()
	Expect(err).NotTo(HaveOccurred())
	return members
}
