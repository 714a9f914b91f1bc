package integration

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// korifi drives a broker the way Korifi's controllers do (cloudfoundry/
// korifi, controllers/controllers/services): API version 2.17,
// accepts_incomplete=true on every call, no originating identity and no
// context; on every requeue the same PUT or DELETE again until the
// operation is done, polling last_operation with the operation the latest
// answer carried, Retry-After ignored; and, after an async bind, the
// credentials fetched by sending the bind PUT once more.
type korifi struct {
	osb               *OSBClient
	serviceID, planID string
	// answers records every status the broker gave, per call, for the
	// test to judge the pattern as a whole.
	answers map[string][]int
}

const korifiRequeue = 100 * time.Millisecond

func (k *korifi) send(call, method, path string, body any) Response {
	GinkgoHelper()
	var raw []byte
	if body != nil {
		var err error
		raw, err = json.Marshal(body)
		Expect(err).NotTo(HaveOccurred())
	}
	r := k.osb.Raw(method, path, raw, http.Header{"X-Broker-API-Version": {"2.17"}})
	k.answers[call] = append(k.answers[call], r.Status)
	return r
}

// converge repeats attempt (one reconcile) until it says done, as
// controller-runtime requeues a resource that is not ready.
func (k *korifi) converge(what string, attempt func() bool) {
	GinkgoHelper()
	deadline := time.Now().Add(2 * time.Minute)
	for !attempt() {
		Expect(time.Now()).To(BeTemporally("<", deadline), "%s did not converge", what)
		time.Sleep(korifiRequeue)
	}
}

// provision is Korifi's managed service instance reconcile: PUT, and
// while it is async, last_operation with the operation of that PUT.
func (k *korifi) provision(iid string) (operations []string) {
	GinkgoHelper()
	body := map[string]any{"service_id": k.serviceID, "plan_id": k.planID,
		"space_guid": "space-" + iid, "organization_guid": "org-" + iid, "parameters": nil}
	k.converge("provision", func() bool {
		r := k.send("provision", http.MethodPut, instancePath(iid)+query(true), body)
		switch r.Status {
		case http.StatusOK, http.StatusCreated:
			return true
		case http.StatusAccepted:
			operations = append(operations, r.Str("operation"))
			lo := k.send("last_operation", http.MethodGet, instancePath(iid)+"/last_operation"+
				query(false, "service_id", k.serviceID, "plan_id", k.planID, "operation", r.Str("operation")), nil)
			Expect(lo.Status).To(Equal(http.StatusOK), lo.String())
			Expect(lo.Str("state")).NotTo(Equal("failed"), lo.String())
			return lo.Str("state") == "succeeded"
		}
		Fail("provision answered " + r.String())
		return false
	})
	return operations
}

// bind is Korifi's managed binding reconcile: PUT; while async, the
// binding's last_operation; once it succeeded, the same PUT again for
// the credentials, which must then come back with a 200.
func (k *korifi) bind(iid, bid string) map[string]any {
	GinkgoHelper()
	body := map[string]any{"service_id": k.serviceID, "plan_id": k.planID, "app_guid": "app-" + bid,
		"bind_resource": map[string]any{"app_guid": "app-" + bid}, "parameters": nil}
	var creds map[string]any
	k.converge("bind", func() bool {
		r := k.send("bind", http.MethodPut, bindingPath(iid, bid)+query(true), body)
		switch r.Status {
		case http.StatusOK, http.StatusCreated:
			creds = r.Credentials()
			return true
		case http.StatusAccepted:
			lo := k.send("binding_last_operation", http.MethodGet, bindingPath(iid, bid)+"/last_operation"+
				query(false, "service_id", k.serviceID, "plan_id", k.planID, "operation", r.Str("operation")), nil)
			Expect(lo.Status).To(Equal(http.StatusOK), lo.String())
			Expect(lo.Str("state")).NotTo(Equal("failed"), lo.String())
			return false // succeeded or not, the next reconcile sends the PUT again
		}
		Fail("bind answered " + r.String())
		return false
	})
	return creds
}

// remove is Korifi's finalizer: DELETE, polled while async, until the
// broker says it is done or gone.
func (k *korifi) remove(call, path string) {
	GinkgoHelper()
	q := query(true, "service_id", k.serviceID, "plan_id", k.planID)
	k.converge(call, func() bool {
		r := k.send(call, http.MethodDelete, path+q, nil)
		switch r.Status {
		case http.StatusOK, http.StatusGone:
			return true
		case http.StatusAccepted:
			lo := k.send(call+"_last_operation", http.MethodGet, path+"/last_operation"+
				query(false, "service_id", k.serviceID, "plan_id", k.planID, "operation", r.Str("operation")), nil)
			if lo.Status == http.StatusGone {
				return true
			}
			Expect(lo.Status).To(Equal(http.StatusOK), lo.String())
			Expect(lo.Str("state")).NotTo(Equal("failed"), lo.String())
			return lo.Str("state") == "succeeded"
		}
		Fail(call + " answered " + r.String())
		return false
	})
}

var _ = Describe("Korifi's call pattern", func() {
	It("provisions, binds, unbinds and deprovisions an async postgres plan by re-sending the same requests, with credentials that work", func(ctx SpecContext) {
		seedBackendSecrets(ctx, vault.Addr)
		b := StartBroker(ctx, BrokerOptions{Name: "korifi", Prefix: specPrefix(), Catalog: repoCatalog()})
		pg := offeringFromCatalog(b.OSB, "postgres")

		By("its catalog mapper reads bindable and plan_updateable on the plan itself")
		for _, s := range b.OSB.Catalog().JSON["services"].([]any) {
			for _, p := range s.(map[string]any)["plans"].([]any) {
				plan := p.(map[string]any)
				Expect(plan).To(HaveKeyWithValue("bindable", BeAssignableToTypeOf(true)), "plan %v", plan["name"])
				Expect(plan).To(HaveKeyWithValue("plan_updateable", BeAssignableToTypeOf(true)), "plan %v", plan["name"])
			}
		}

		k := &korifi{osb: b.OSB, serviceID: pg.ServiceID, planID: pg.planID("large"), answers: map[string][]int{}}
		iid, bid := newGUID(), newGUID()
		DeferCleanup(func() { pg.Deprovision(iid, "large", true) })

		By("provision: the same PUT on every requeue gets the same operation until it is done")
		ops := k.provision(iid)
		Expect(ops).NotTo(BeEmpty(), "the async plan answered the first PUT synchronously: the pattern was not exercised")
		for _, op := range ops {
			Expect(op).To(Equal(ops[0]), "a repeated PUT started another operation")
		}
		Expect(k.send("provision", http.MethodPut, instancePath(iid)+query(true), map[string]any{"service_id": k.serviceID, "plan_id": k.planID,
			"space_guid": "space-" + iid, "organization_guid": "org-" + iid, "parameters": nil}).Status).To(Equal(http.StatusOK),
			"a finished provision, sent again, is 200")

		By("bind: async, then the credentials from the same PUT sent again; they work")
		creds := k.bind(iid, bid)
		Expect(k.answers["bind"]).To(ContainElement(http.StatusAccepted), "the bind was not async: the pattern was not exercised")
		Expect(k.answers["bind"][len(k.answers["bind"])-1]).To(Equal(http.StatusOK))
		Expect(pgWork(ctx, creds)).To(Succeed())

		By("unbind and deprovision: DELETE again on every requeue until done; then the credentials are refused and nothing is left")
		k.remove("unbind", bindingPath(iid, bid))
		Expect(pgRejected(ctx, creds)).To(Succeed())
		k.remove("deprovision", instancePath(iid))
		Expect(k.send("deprovision", http.MethodDelete, instancePath(iid)+query(true, "service_id", k.serviceID, "plan_id", k.planID), nil).Status).
			To(Equal(http.StatusGone), "a finished deprovision, sent again, is 410")
		Expect(pgLeftovers(ctx, iid)).To(BeEmpty())
	}, SpecTimeout(4*time.Minute))
})
