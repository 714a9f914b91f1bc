package integration

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/internal/zoo"
	"github.com/agora-osb/agora/producers"
)

// zooBackend serves a zoo adapter (internal/zoo) from the test process:
// real Redis credentials, an ACL user per binding, which the kit verifies
// by using them. Its Redis is a private redis-server on a free loopback
// port, not the suite's: the broker keeps its state in the suite's Redis,
// and the egress rules refuse Agora's own Redis to the gate and the canary
// (rightly: a credential there is never dialled). A producer's backend is
// somewhere else than Agora's state, and so is this one; the spec's
// allow-list (127.0.0.0/8) lets the kit reach it.
func zooBackend(ctx context.Context, defect zoo.Defect) (*zoo.Adapter, *pyAdapter) {
	GinkgoHelper()
	r := startPrivateRedis(ctx)
	a := zoo.New(r.Client, r.Addr, "agoratest-gate-"+randomHex(4), defect)
	secret := randomHex(32)
	srv := httptest.NewServer(zoo.Handler(a, secret))
	DeferCleanup(srv.Close)
	return a, &pyAdapter{URL: srv.URL, Secret: secret}
}

var _ = Describe("the gate and the canary", func() {
	It("keep a broken adapter from automatic approval, refuse egress to Agora's own services, and catch an adapter that breaks after approval", func(ctx SpecContext) {
		prefix := specPrefix()
		ada := "gate-" + randomHex(3)
		offName := ada + "-keys"
		const interval = 5 * time.Second
		b := StartBroker(ctx, BrokerOptions{Name: "gate", Prefix: prefix,
			Gate: "gate:\n  egress:\n    allow: [127.0.0.0/8]\n  canary:\n    interval: 5s\n"})

		By("a trusted producer (auto_approve_slices) with a Redis adapter whose unbind revokes nothing")
		created, err := adminClient(b).CreateProducer(ctx, producers.CreateRequest{Name: ada, Contact: "ada@example.com", AutoApproveSlices: true})
		Expect(err).NotTo(HaveOccurred())
		zooAdapter, adapter := zooBackend(ctx, zoo.UnbindRevokesNothing)
		she := newCLIUser()
		she.Must(ctx, created.Token+"\n", "producer", "login", "--url", b.URL, "--name", ada)
		slicePath := filepath.Join(she.Home, "slice.yml")
		Expect(os.WriteFile(slicePath, []byte(producerSlice(offName, adapter, "small")), 0o600)).To(Succeed())

		By("she applies: the version is stored, the gate refuses automatic approval, and the report says why: the credentials outlive their unbind")
		res := she.Must(ctx, "", "producer", "apply", "-f", slicePath)
		Expect(res.Stdout).To(ContainSubstring("version 1: pending_approval"))
		Expect(res.Stdout).To(MatchRegexp(`(?m)^  FAIL credentials-revoked: credentials still work after Unbind`))
		Expect(res.Stdout).To(MatchRegexp(`user agoratest-gate-\S+ still authenticates at 127\.0\.0\.1:\d+`))
		Expect(res.Stdout).To(MatchRegexp(`(?m)^        hint: `))
		Expect(res.Stdout).To(ContainSubstring("not approved automatically: offering " + offName + " plan small: 1 check(s) failed: credentials-revoked"))
		Expect(res.Stdout).NotTo(ContainSubstring("unverified"), "the kit must verify redis credentials")
		Expect(res.Stdout).NotTo(ContainSubstring(adapter.Secret))
		res = she.Must(ctx, "", "producer", "status")
		Expect(res.Stdout).To(MatchRegexp(`(?m)^gate\s+v1 \(pending_approval\): \d+ passed, 1 failed`))
		Expect(res.Stdout).To(MatchRegexp(`(?m)^\s+FAIL ` + offName + `/small/credentials-revoked: `))
		Expect(res.Stdout).To(MatchRegexp(`(?m)^\s+hint: `))
		Expect(res.Stdout).To(ContainSubstring("not approved automatically"))

		By("the platform engineer sees the same report before she decides")
		admin := newCLIUser()
		res = admin.Must(ctx, "", append([]string{"admin", "slices", "list", ada}, adminFlags(b)...)...)
		Expect(res.Stdout).To(ContainSubstring("needs the platform engineer"))
		res = admin.Must(ctx, "", append([]string{"admin", "slices", "show", ada, "1"}, adminFlags(b)...)...)
		Expect(res.Stdout).To(MatchRegexp(`(?m)^  FAIL credentials-revoked: `))
		Expect(res.Stdout).To(ContainSubstring("not approved automatically"))
		offs, err := catalogOfferings(b)
		Expect(err).NotTo(HaveOccurred())
		Expect(offs).NotTo(HaveKey(offName), "a failing slice went live")

		By("a slice that points the gate at Agora's own Redis or Vault is a 400 naming the rule, and stores nothing")
		pc := adminClient(b)
		pc.Username, pc.Password, pc.Token = "", "", created.Token
		for what, u := range map[string]string{"Agora's Redis": "http://" + redisAddr, "Agora's Vault": vault.Addr} {
			_, err := pc.Apply(ctx, ada, []byte(producerSlice(offName, &pyAdapter{URL: u, Secret: adapter.Secret}, "small")))
			Expect(apiStatus(err)).To(Equal(http.StatusBadRequest), "%s: %v", what, err)
			Expect(err.Error()).To(ContainSubstring(what))
			Expect(err.Error()).To(ContainSubstring("rule"))
		}
		vs, err := pc.Versions(ctx, ada)
		Expect(err).NotTo(HaveOccurred())
		Expect(vs).To(HaveLen(1), "a refused slice was stored")

		By("she fixes her adapter and applies again: every credential verified, it goes live at once; the canary reports it healthy")
		zooAdapter.Break(zoo.None)
		ar, err := pc.Apply(ctx, ada, []byte(producerSlice(offName, adapter, "small")))
		Expect(err).NotTo(HaveOccurred())
		Expect(ar.Gate.Failed).To(BeFalse(), "%+v", ar.Gate)
		Expect(ar.Gate.Unverified).To(BeEmpty())
		Expect(ar.Status).To(Equal(producers.SliceLive), "%+v", ar.Gate)
		health := func() *producers.CanaryResult {
			all, err := adminClient(b).Canary(ctx)
			Expect(err).NotTo(HaveOccurred())
			for _, h := range all {
				if h.Producer == ada && h.Offering == offName {
					return &h
				}
			}
			return nil
		}
		Eventually(func() bool { h := health(); return h != nil && h.Passed }).WithTimeout(60*time.Second).WithPolling(250*time.Millisecond).
			Should(BeTrue(), "the canary never reported the fixed adapter healthy: %+v", health())

		By("her adapter breaks while live (its unbind stops revoking): the canary's first run after that reports it")
		brokeAt := time.Now().UTC()
		zooAdapter.Break(zoo.UnbindRevokesNothing)
		var after *producers.CanaryResult
		Eventually(func() bool { after = health(); return after != nil && after.At.After(brokeAt) }).
			WithTimeout(interval + 60*time.Second).WithPolling(250 * time.Millisecond).Should(BeTrue())
		Expect(after.Passed).To(BeFalse(), "the first canary run after the breakage passed: %+v", after)
		Expect(after.Failed).To(ContainElement(HavePrefix("credentials-revoked: ")), "%+v", after)
		Expect(after.Unverified).To(BeEmpty())
		Expect(after.LastSuccess).NotTo(BeZero())
		Expect(after.LastSuccess.Before(brokeAt)).To(BeTrue())

		By("she sees it in agora producer status; the platform engineer in agora admin canary and /metrics")
		res = she.Must(ctx, "", "producer", "status")
		Expect(res.Stdout).To(MatchRegexp(`(?m)^canary\s+` + offName + ` plan small: FAILING`))
		res = admin.Must(ctx, "", append([]string{"admin", "canary"}, adminFlags(b)...)...)
		Expect(res.Stdout).To(MatchRegexp(ada + `\s+` + offName + `\s+small\s+FAILING`))
		status, _, page := getPage(b.URL+"/marketplace", basicAuth(b.OSB.user, b.OSB.pass))
		Expect(status).To(Equal(http.StatusOK))
		Expect(page).To(ContainSubstring(`data-canary="failed"`), "the marketplace page does not show the failing canary")
		families := scrape(b.URL)
		labels := map[string]string{"producer": ada, "offering": offName}
		Expect(gauge(families, "agora_canary_healthy", labels)).To(BeZero())
		Expect(gauge(families, "agora_canary_last_success_timestamp_seconds", labels)).To(BeNumerically(">", 0))
		Expect(counter(families, "agora_canary_runs_total", with(labels, map[string]string{"result": "fail"}))).To(BeNumerically(">=", 1))
		Expect(counter(families, "agora_canary_runs_total", with(labels, map[string]string{"result": "pass"}))).To(BeNumerically(">=", 1))
		Expect(counter(families, "agora_gate_runs_total", map[string]string{"producer": ada, "result": "fail"})).To(BeNumerically(">=", 1))
		Expect(counter(families, "agora_gate_runs_total", map[string]string{"producer": ada, "result": "refused"})).To(BeNumerically(">=", 2))
	}, SpecTimeout(4*time.Minute))

	It("refuses loopback adapters by default, before any request reaches them", func(ctx SpecContext) {
		prefix := specPrefix()
		ada := "egress-" + randomHex(3)
		offName := ada + "-files"
		b := StartBroker(ctx, BrokerOptions{Name: "default-egress", Prefix: prefix, Gate: "gate:\n  canary:\n    interval: 0s\n"})
		created, err := adminClient(b).CreateProducer(ctx, producers.CreateRequest{Name: ada, Contact: "ada@example.com", AutoApproveSlices: true})
		Expect(err).NotTo(HaveOccurred())
		// Whatever listens there would answer the gate's first request
		// (GET /v1/capabilities); it must never see one.
		var hits atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
		DeferCleanup(srv.Close)
		she := newCLIUser()
		she.Must(ctx, created.Token+"\n", "producer", "login", "--url", b.URL, "--name", ada)
		slicePath := filepath.Join(she.Home, "slice.yml")
		Expect(os.WriteFile(slicePath, []byte(producerSlice(offName, &pyAdapter{URL: srv.URL, Secret: strings.Repeat("ab", 32)}, "small")), 0o600)).To(Succeed())
		res := she.Run(ctx, "", "producer", "apply", "-f", slicePath)
		Expect(res.Code).To(Equal(1), res.String())
		Expect(res.Stdout + res.Stderr).To(ContainSubstring("400"))
		Expect(res.Stdout + res.Stderr).To(ContainSubstring("loopback"))
		Expect(res.Stdout + res.Stderr).To(ContainSubstring("gate.egress.allow"))
		Expect(hits.Load()).To(BeZero(), "the gate called a refused URL")
	}, SpecTimeout(2*time.Minute))
})
