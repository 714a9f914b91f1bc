package integration

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/broker/catalog"
)

// paramsAdapter is a producer's adapter that takes parameters: what a
// platform sends may hold passwords, and this adapter accepts them (and
// rejects a "weak" one with its own words, as the contract asks).
type paramsAdapter struct {
	mu        sync.Mutex
	instances map[string]bool
}

func (a *paramsAdapter) check(params map[string]any) error {
	if p, _ := params["password"].(string); strings.Contains(p, "weak") {
		return adapters.InvalidParameters("the password is too weak")
	}
	return nil
}

func (a *paramsAdapter) Provision(_ context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	if err := a.check(req.Parameters); err != nil {
		return adapters.ProvisionResult{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.instances[req.InstanceID] = true
	return adapters.ProvisionResult{}, nil
}

func (a *paramsAdapter) Update(_ context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	return adapters.UpdateResult{}, a.check(req.Parameters)
}

func (a *paramsAdapter) Deprovision(_ context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.instances, req.InstanceID)
	return adapters.DeprovisionResult{}, nil
}

func (a *paramsAdapter) Bind(_ context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	if err := a.check(req.Parameters); err != nil {
		return adapters.BindResult{}, err
	}
	return adapters.BindResult{Credentials: map[string]any{"token": "tok-" + req.BindingID}}, nil
}

func (a *paramsAdapter) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}

// paramsCatalog offers the adapter with schemas on every parameter
// object, a sync and an async plan.
func paramsCatalog(url, secret string) string {
	schema := `{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "additionalProperties": false,
                "properties": {"password": {"type": "string", "maxLength": 40}}}`
	return fmt.Sprintf(`
producers:
  - name: logs-team
    contact: logs@example.com
    offerings:
      - name: with-params
        description: Takes a password as a parameter.
        adapter: remote
        config: {url: %q, secret: %q, capabilities: [update]}
        plans:
          - name: sync
            description: Answers at once.
            schemas:
              service_instance: {create: {parameters: %s}, update: {parameters: %s}}
              service_binding: {create: {parameters: %s}}
          - name: async
            description: Works in the background.
            async: true
            operation_timeout: 1m
            schemas:
              service_instance: {create: {parameters: %s}}
`, url, secret, schema, schema, schema, schema)
}

var _ = Describe("what the logs and Redis never hold", func() {
	for _, format := range []string{"json", "text"} {
		It("keeps a parameter value out of the "+format+" logs and out of Redis, for failed and successful requests", func(ctx SpecContext) {
			secret := randomHex(16)
			adapterSrv := httptest.NewServer(remote.Handler(&paramsAdapter{instances: map[string]bool{}}, remote.HandlerOptions{Name: "params", Secret: secret}))
			DeferCleanup(adapterSrv.Close)
			b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), Catalog: paramsCatalog(adapterSrv.URL, secret), LogFormat: format, LogLevel: "debug"})

			var raw [8]byte
			_, _ = rand.Read(raw[:])
			marker := "MARKER" + hex.EncodeToString(raw[:])
			serviceID := catalog.DeriveOfferingID("logs-team", "with-params")
			syncPlan := catalog.DerivePlanID("logs-team", "with-params", "sync")
			asyncPlan := catalog.DerivePlanID("logs-team", "with-params", "async")
			provision := func(iid, plan string, params map[string]any, async bool) Response {
				return b.OSB.ProvisionWith(iid, map[string]any{"service_id": serviceID, "plan_id": plan, "parameters": params}, async)
			}
			bind := func(iid, bid string, params map[string]any) Response {
				return b.OSB.Do(http.MethodPut, bindingPath(iid, bid), map[string]any{"service_id": serviceID, "plan_id": syncPlan, "parameters": params})
			}
			update := func(iid string, params map[string]any) Response {
				return b.OSB.Do(http.MethodPatch, instancePath(iid), map[string]any{"service_id": serviceID, "parameters": params})
			}
			tooLong := map[string]any{"password": marker + strings.Repeat("x", 40)}
			unknownField := map[string]any{"password": marker, "extra": marker}
			weak := map[string]any{"password": marker + "weak"}
			good := map[string]any{"password": marker}

			By("requests whose parameters fail validation: the schema's, and the adapter's own")
			Expect(provision(newGUID(), syncPlan, tooLong, false).Status).To(Equal(http.StatusBadRequest))
			Expect(provision(newGUID(), syncPlan, unknownField, false).Status).To(Equal(http.StatusBadRequest))
			Expect(provision(newGUID(), syncPlan, weak, false).Status).To(Equal(http.StatusBadRequest))
			Expect(provision(newGUID(), asyncPlan, tooLong, true).Status).To(Equal(http.StatusBadRequest))

			By("the same requests, succeeding")
			iid := newGUID()
			Expect(provision(iid, syncPlan, good, false).Status).To(Equal(http.StatusCreated))
			Expect(bind(iid, newGUID(), tooLong).Status).To(Equal(http.StatusBadRequest))
			Expect(bind(iid, newGUID(), weak).Status).To(Equal(http.StatusBadRequest))
			Expect(bind(iid, newGUID(), good).Status).To(Equal(http.StatusCreated))
			Expect(update(iid, tooLong).Status).To(Equal(http.StatusBadRequest))
			Expect(update(iid, weak).Status).To(Equal(http.StatusBadRequest))
			Expect(update(iid, good).Status).To(Equal(http.StatusOK))
			async := newGUID()
			resp := provision(async, asyncPlan, good, true)
			Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
			Expect(b.OSB.AwaitOperation(async, resp.Str("operation"), 30*time.Second).Str("state")).To(Equal("succeeded"))

			By("the marker is nowhere in the broker's log or in Redis")
			Expect(b.Log()).To(ContainSubstring(`request`), "the broker logged nothing: the check below would prove nothing")
			Expect(b.Log()).NotTo(ContainSubstring(marker))
			for key, value := range dumpValues(ctx, b.Prefix) {
				Expect(value).NotTo(ContainSubstring(marker), "Redis key %s", key)
			}
		}, SpecTimeout(2*time.Minute))
	}

	It("writes no ERROR line for 1,000 requests that end in expected 4xx answers", func(ctx SpecContext) {
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix()})
		iid := newGUID()
		Expect(b.OSB.Provision(iid, standardPlanID, false).Status).To(Equal(http.StatusCreated))
		absent := newGUID()
		body := func(s string) []byte { return []byte(s) }
		kinds := []struct {
			name   string
			send   func() Response
			status int
		}{
			{"a wrong JSON type", func() Response {
				return b.OSB.Raw(http.MethodPut, instancePath(newGUID()), body(`{"service_id":5,"plan_id":"p"}`), nil)
			}, http.StatusBadRequest},
			{"malformed JSON", func() Response {
				return b.OSB.Raw(http.MethodPut, instancePath(newGUID()), body(`{"service_id":`), nil)
			}, http.StatusBadRequest},
			{"an unknown plan", func() Response {
				return b.OSB.ProvisionWith(newGUID(), map[string]any{"service_id": secretsServiceID, "plan_id": "nope"}, false)
			}, http.StatusBadRequest},
			{"a repeated DELETE", func() Response { return b.OSB.Deprovision(absent, standardPlanID, false) }, http.StatusGone},
			{"a poll of an unknown instance", func() Response { return b.OSB.LastOperation(absent, "") }, http.StatusNotFound},
			{"an unsupported API version", func() Response {
				return b.OSB.Raw(http.MethodGet, "/v2/catalog", nil, http.Header{"X-Broker-API-Version": {"2.12"}})
			}, http.StatusPreconditionFailed},
			{"an async plan without accepts_incomplete", func() Response { return b.OSB.Provision(newGUID(), asyncPlanID, false) }, http.StatusUnprocessableEntity},
			{"a bind to an unknown instance", func() Response { return b.OSB.Bind(absent, newGUID(), standardPlanID, false) }, http.StatusNotFound},
			{"a different provision on an existing ID", func() Response {
				other := ProvisionBody(standardPlanID)
				other["organization_guid"] = "another-org"
				return b.OSB.ProvisionWith(iid, other, false)
			}, http.StatusConflict},
			{"a GET of an unknown instance", func() Response { return b.OSB.GetInstance(absent) }, http.StatusNotFound},
			{"an unknown route", func() Response { return b.OSB.Do(http.MethodGet, "/v2/nope", nil) }, http.StatusNotFound},
			{"a wrong content type", func() Response {
				return b.OSB.Raw(http.MethodPut, instancePath(newGUID()), body(`{}`), http.Header{"Content-Type": {"text/plain"}})
			}, http.StatusUnsupportedMediaType},
		}
		for i := range 1000 {
			k := kinds[i%len(kinds)]
			resp := k.send()
			Expect(resp.Status).To(Equal(k.status), "%s: %s", k.name, resp)
			if resp.Status != http.StatusGone { // the spec's 410 body is {}
				Expect(resp.Str("description")).To(ContainSubstring("(request id "), "%s: %s", k.name, resp)
			}
		}
		Eventually(func() int { return len(b.LogRecords("request")) }).WithTimeout(10 * time.Second).Should(BeNumerically(">=", 1001))
		Expect(b.Log()).NotTo(ContainSubstring(`"level":"ERROR"`))
	}, SpecTimeout(5*time.Minute))
})
