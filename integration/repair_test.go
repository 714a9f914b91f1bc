package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/producers"
)

// switchable is a producer's adapter whose behaviour the test changes
// while Agora runs: it fails every provision, works, or hangs one.
type switchable struct {
	mu   sync.Mutex
	mode string // "fail", "ok" or "hang"
	hung chan struct{}
}

func (a *switchable) set(mode string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mode = mode
}

func (a *switchable) Provision(ctx context.Context, _ adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	a.mu.Lock()
	mode := a.mode
	a.mu.Unlock()
	switch mode {
	case "fail":
		return adapters.ProvisionResult{}, adapters.Terminal(adapters.Said("the backend's quota is exhausted"))
	case "hang":
		select {
		case a.hung <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return adapters.ProvisionResult{}, ctx.Err()
	}
	return adapters.ProvisionResult{}, nil
}

func (a *switchable) Deprovision(context.Context, adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	return adapters.DeprovisionResult{}, nil
}

func (a *switchable) Bind(context.Context, adapters.BindRequest) (adapters.BindResult, error) {
	return adapters.BindResult{Credentials: map[string]any{"token": "t"}}, nil
}

func (a *switchable) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}

var _ = Describe("the platform engineer's repairs", func() {
	It("finds a failed async provision with agora admin, retries it once the adapter is fixed, force-fails a stuck one, and audits each step", func(ctx SpecContext) {
		adapter := &switchable{mode: "fail", hung: make(chan struct{}, 1)}
		secret := randomHex(16)
		srv := httptest.NewServer(remote.Handler(adapter, remote.HandlerOptions{Name: "switchable", Secret: secret}))
		DeferCleanup(srv.Close)
		auditFile := filepath.Join(GinkgoT().TempDir(), "audit.log")
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), AuditFile: auditFile, Catalog: fmt.Sprintf(`
producers:
  - name: repair-team
    contact: repair@example.com
    offerings:
      - name: fragile
        description: Fails, works or hangs, as the test says.
        adapter: remote
        config: {url: %q, secret: %q, timeout: 2m}
        plans:
          - {name: async, description: In the background., async: true, operation_timeout: 10m}
`, srv.URL, secret)})
		serviceID := catalog.DeriveOfferingID("repair-team", "fragile")
		planID := catalog.DerivePlanID("repair-team", "fragile", "async")
		ops := newCLIUser()
		admin := func(args ...string) cliResult {
			return ops.Must(ctx, "", append(append([]string{"admin"}, args...), adminFlags(b)...)...)
		}

		By("an async provision fails at the adapter, terminally")
		failed := newGUID()
		resp := b.OSB.ProvisionWith(failed, map[string]any{"service_id": serviceID, "plan_id": planID}, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		Expect(b.OSB.AwaitOperation(failed, resp.Str("operation"), time.Minute).Str("state")).To(Equal("failed"))

		By("agora admin finds it")
		var page producers.InstancePage
		Expect(json.Unmarshal([]byte(admin("instances", "list", "--state", "failed", "-o", "json").Stdout), &page)).To(Succeed())
		Expect(page.Instances).To(HaveLen(1))
		Expect(page.Instances[0].ID).To(Equal(failed))
		Expect(page.Instances[0].Producer).To(Equal("repair-team"))
		shown := admin("instances", "show", failed)
		Expect(shown.Stdout).To(ContainSubstring("the backend's quota is exhausted"))

		By("the producer fixes her adapter; the platform engineer retries")
		adapter.set("ok")
		retried := admin("instances", "retry", failed)
		Expect(retried.Stdout).To(ContainSubstring("retried: operation"))
		Eventually(func() string { return b.OSB.LastOperation(failed, "").Str("state") }).WithTimeout(time.Minute).Should(Equal("succeeded"))
		Expect(b.OSB.GetInstance(failed).Status).To(Equal(http.StatusOK))

		By("another provision hangs at the adapter; the platform engineer force-fails it")
		adapter.set("hang")
		stuck := newGUID()
		resp = b.OSB.ProvisionWith(stuck, map[string]any{"service_id": serviceID, "plan_id": planID}, true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		Eventually(adapter.hung).WithTimeout(time.Minute).Should(Receive())
		Expect(json.Unmarshal([]byte(admin("instances", "list", "--state", "in_progress", "-o", "json").Stdout), &page)).To(Succeed())
		Expect(page.Instances).To(HaveLen(1))
		Expect(page.Instances[0].ID).To(Equal(stuck))
		refused := ops.Run(ctx, "", append([]string{"admin", "instances", "force-fail", stuck}, adminFlags(b)...)...)
		Expect(refused.Code).NotTo(BeZero(), "a force-fail without a reason")
		admin("instances", "force-fail", stuck, "--reason", "the backend is being rebuilt")
		last := b.OSB.LastOperation(stuck, "")
		Expect(last.Str("state")).To(Equal("failed"))
		Expect(last.Str("description")).To(ContainSubstring("stopped by the platform team: the backend is being rebuilt"))

		By("each step is in the audit log")
		var actions []string
		Eventually(func() []string {
			actions = nil
			for _, r := range readAudit(auditFile) {
				what := r["what"].(map[string]any)
				if what["surface"] == "admin" {
					actions = append(actions, fmt.Sprint(what["action"], " ", r["result"].(map[string]any)["status"]))
				}
			}
			return actions
		}).WithTimeout(5 * time.Second).Should(Equal([]string{"admin_retry 200", "admin_force_fail 409", "admin_force_fail 200"}))
	}, SpecTimeout(3*time.Minute))
})
