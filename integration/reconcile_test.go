package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
)

// lateAdapter's backend finishes provisions that the adapter reports as
// failed (a timeout after the work was done): the case a reconcile is for.
type lateAdapter struct {
	mu        sync.Mutex
	instances map[string]bool
}

func (a *lateAdapter) Provision(_ context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.instances[req.InstanceID] = true
	return adapters.ProvisionResult{}, adapters.Terminal(adapters.Said("the backend did not answer in time"))
}

func (a *lateAdapter) Deprovision(_ context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.instances, req.InstanceID)
	return adapters.DeprovisionResult{}, nil
}

func (a *lateAdapter) Bind(context.Context, adapters.BindRequest) (adapters.BindResult, error) {
	return adapters.BindResult{Credentials: map[string]any{"token": "t"}}, nil
}

func (a *lateAdapter) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}

func (a *lateAdapter) Inspect(_ context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.instances[req.InstanceID] {
		return adapters.InspectResult{Detail: "no such instance"}, nil
	}
	return adapters.InspectResult{Exists: true, Detail: "instance is up", Receipt: adapters.Receipt{"slot": "7"}}, nil
}

var _ = Describe("reconcile", func() {
	reconcile := func(ctx context.Context, b *Broker, iid string) broker.Reconciliation {
		GinkgoHelper()
		res := newCLIUser().Must(ctx, "", append([]string{"admin", "instances", "reconcile", iid, "-o", "json"}, adminFlags(b)...)...)
		var rec broker.Reconciliation
		Expect(json.Unmarshal([]byte(res.Stdout), &rec)).To(Succeed(), res.String())
		return rec
	}

	It("records failed a postgres instance whose database was dropped behind Agora's back; its delete then cleans up", func(ctx SpecContext) {
		seedBackendSecrets(ctx, vault.Addr)
		b := StartBroker(ctx, BrokerOptions{Name: "reconcile-pg", Prefix: specPrefix(), Catalog: repoCatalog()})
		pg := offeringFromCatalog(b.OSB, "postgres")
		iid := newGUID()
		pg.DeprovisionLater(iid, "small")
		Expect(pg.Provision(iid, "small", nil, false).Status).To(Equal(http.StatusCreated))

		By("reconciling a healthy instance changes nothing")
		rec := reconcile(ctx, b, iid)
		Expect(rec.Backend).To(Equal(broker.BackendExists))
		Expect(rec.Operation).To(BeNil())
		Expect(rec.After).To(Equal(broker.InstanceReady))

		By("a DBA drops the database by hand")
		dbs := pgStrings(ctx, `SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)`, pgInstancePrefix(iid))
		Expect(dbs).To(HaveLen(1))
		_, err := pgAdmin(ctx).Exec(ctx, "DROP DATABASE "+pgx.Identifier{dbs[0]}.Sanitize()+" WITH (FORCE)")
		Expect(err).NotTo(HaveOccurred())

		rec = reconcile(ctx, b, iid)
		Expect(rec.Backend).To(Equal(broker.BackendGone))
		Expect(rec.Detail).To(ContainSubstring("missing"))
		Expect([]broker.InstanceState{rec.Before, rec.After}).To(Equal([]broker.InstanceState{broker.InstanceReady, broker.InstanceFailed}))
		last := b.OSB.LastOperation(iid, "")
		Expect(last.Str("state")).To(Equal("failed"))
		Expect(last.Str("description")).To(ContainSubstring("no longer has it"))

		By("no binding is handed out for it; the platform's delete removes what is left")
		Expect(pg.Bind(iid, newGUID(), "small", false).Status).To(Equal(http.StatusUnprocessableEntity))
		Expect(pg.Deprovision(iid, "small", false).Status).To(Equal(http.StatusOK))
		Expect(pgLeftovers(ctx, iid)).To(BeEmpty())
	}, SpecTimeout(2*time.Minute))

	It("readies a failed async provision that a remote adapter's backend finished after all, over the protocol's inspect", func(ctx SpecContext) {
		adapter := &lateAdapter{instances: map[string]bool{}}
		secret := randomHex(16)
		srv := httptest.NewServer(remote.Handler(adapter, remote.HandlerOptions{Name: "late", Secret: secret}))
		DeferCleanup(srv.Close)
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), Catalog: fmt.Sprintf(`
producers:
  - name: late-team
    contact: late@example.com
    offerings:
      - name: late
        description: Reports failure, finishes anyway.
        adapter: remote
        config: {url: %q, secret: %q, capabilities: [inspect], timeout: 5s}
        bindable: true
        plans:
          - {name: async, description: In the background., async: true}
`, srv.URL, secret)})
		body := map[string]any{"service_id": catalog.DeriveOfferingID("late-team", "late"), "plan_id": catalog.DerivePlanID("late-team", "late", "async")}
		iid := newGUID()
		resp := b.OSB.ProvisionWith(iid, body, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		Expect(b.OSB.AwaitOperation(iid, resp.Str("operation"), time.Minute).Str("state")).To(Equal("failed"))

		rec := reconcile(ctx, b, iid)
		Expect(rec.Backend).To(Equal(broker.BackendExists))
		Expect([]broker.InstanceState{rec.Before, rec.After}).To(Equal([]broker.InstanceState{broker.InstanceFailed, broker.InstanceReady}))
		Expect(b.OSB.LastOperation(iid, "").Str("state")).To(Equal("succeeded"))
		Expect(b.OSB.Do(http.MethodPut, bindingPath(iid, newGUID()), body).Status).To(Equal(http.StatusCreated))

		By("an adapter whose backend is down gets a 503 naming it, and nothing changes")
		srv.Close()
		res := newCLIUser().Run(ctx, "", append([]string{"admin", "instances", "reconcile", iid}, adminFlags(b)...)...)
		Expect(res.Code).NotTo(BeZero())
		Expect(res.Stderr).To(ContainSubstring("late-team"))
		Expect(b.OSB.LastOperation(iid, "").Str("state")).To(Equal("succeeded"))
	}, SpecTimeout(2*time.Minute))
})
