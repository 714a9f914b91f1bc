package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

// producerSlice is a producer's slice: one offering on the remote adapter
// with the given plans.
func producerSlice(offering string, a *pyAdapter, plans ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `offerings:
  - name: %s
    description: A private directory per instance, a token per binding.
    adapter: remote
    config:
      url: %s
      secret: %s
      timeout: 10s
    plans:
`, offering, a.URL, a.Secret)
	for _, p := range plans {
		fmt.Fprintf(&b, "      - name: %s\n        description: The %s plan.\n", p, p)
	}
	return b.String()
}

var producerTokenRE = regexp.MustCompile(`agp_[a-z0-9-]+_[A-Za-z0-9_-]{20,}`)

// kitSummaryRE is the conformance kit's last line (credential types it
// could not use follow the counts).
var kitSummaryRE = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed, (\d+) skipped(?:, unverified: .*)?$`)

var _ = Describe("a producer's whole journey, on two replicas sharing real Redis and Vault", func() {
	It("goes from nothing to a served, provisioned, bound, deprecated and removed offering, seen only by her", func(ctx SpecContext) {
		m := newMeasurements("producer journey (2 replicas, catalog poll 1s)")
		DeferCleanup(m.report)

		prefix := specPrefix()
		suffix := randomHex(3)
		ada, rival := "ada-"+suffix, "rival-"+suffix
		offName, rivalOff := ada+"-files", rival+"-files"

		By("two agora serve replicas share one Redis prefix and the suite's Vault")
		repA := StartBroker(ctx, BrokerOptions{Name: "A", Prefix: prefix})
		repB := StartBroker(ctx, BrokerOptions{Name: "B", Prefix: prefix})
		both := []*Broker{repA, repB}

		By("the platform engineer creates producer " + ada + " with the CLI; her token is shown once")
		admin := newCLIUser()
		res := admin.Must(ctx, "", append([]string{"admin", "producers", "create", ada, "--contact", "ada@example.com"}, adminFlags(repA)...)...)
		Expect(res.Stdout).To(ContainSubstring("shown only this once"))
		token := producerTokenRE.FindString(res.Stdout)
		Expect(token).To(HavePrefix("agp_"+ada+"_"), res.String())
		res = admin.Must(ctx, "", append([]string{"admin", "producers", "list", "-o", "json"}, adminFlags(repB)...)...)
		Expect(res.Stdout).To(ContainSubstring(`"name": "` + ada + `"`))
		Expect(res.Stdout).NotTo(ContainSubstring(token), "the token is shown again")
		expectNoSecretsInRedis(ctx, prefix, token)

		By("she makes her Python adapter with agora adapter init, starts its ./run, and the conformance kit passes against it")
		she := newCLIUser()
		adapter := initPyAdapter(ctx, she, offName)
		res = she.Must(ctx, "", "adapter", "test", "--url", adapter.URL, "--secret", adapter.Secret)
		sum := kitSummaryRE.FindStringSubmatch(res.Stdout)
		Expect(sum).NotTo(BeNil(), "no summary line: %s", res)
		Expect(sum[2]).To(Equal("0"), "failed checks: %s", res)
		Expect(strconv.Atoi(sum[1])).To(BeNumerically(">", 10))

		By("she logs in (token on stdin) and applies the generated slice.yml with the CLI: the gate passes, the version waits for approval")
		res = she.Must(ctx, token+"\n", "producer", "login", "--url", repA.URL, "--name", ada)
		loginFile := filepath.Join(she.Home, ".config", "agora", "producer.json")
		fi, err := os.Stat(loginFile)
		Expect(err).NotTo(HaveOccurred(), "the login is not where the docs say")
		Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o600)))
		slicePath := adapter.EditSlice("small", "large")
		res = she.Must(ctx, "", "producer", "apply", "-f", slicePath)
		// The gate judges every plan, each in its own kit run.
		Expect(res.Stdout).To(ContainSubstring("conformance of " + offName + " plan small:"))
		Expect(res.Stdout).To(ContainSubstring("conformance of " + offName + " plan large:"))
		Expect(res.Stdout).To(ContainSubstring("PASS capabilities"))
		Expect(res.Stdout).NotTo(ContainSubstring("FAIL"))
		sum = kitSummaryRE.FindStringSubmatch(res.Stdout)
		Expect(sum).NotTo(BeNil(), "the gate report has no summary: %s", res)
		Expect(sum[2]).To(Equal("0"))
		Expect(res.Stdout).To(ContainSubstring("version 1: pending_approval"))
		Expect(res.Stdout).NotTo(ContainSubstring(adapter.Secret))

		By("her protocol secret went to Agora's Vault, and Redis holds only its reference")
		sec, err := rootClient(vault.Addr).KVv2("secret").Get(ctx, vaultPrefix()+"/producers/"+ada+"/secret")
		Expect(err).NotTo(HaveOccurred())
		Expect(sec.Data).To(HaveKeyWithValue("v1."+offName, adapter.Secret))
		expectNoSecretsInRedis(ctx, prefix, adapter.Secret, token)

		By("nothing is served before approval")
		for _, r := range both {
			offs, err := catalogOfferings(r)
			Expect(err).NotTo(HaveOccurred())
			Expect(offs).NotTo(HaveKey(offName), "replica %s serves a slice nobody approved", r.Name)
		}

		By("the platform engineer approves with the CLI; both replicas serve the offering")
		res = admin.Must(ctx, "", append([]string{"admin", "slices", "list", ada}, adminFlags(repB)...)...)
		Expect(res.Stdout).To(MatchRegexp(`(?m)^1\s+pending_approval`))
		dephase()
		start := time.Now()
		res = admin.Must(ctx, "", append([]string{"admin", "slices", "approve", ada, "1"}, adminFlags(repA)...)...)
		Expect(res.Stdout).To(ContainSubstring("version 1: live"))
		vis := awaitVisible(start, 15*time.Second, hasPlan(offName, "large"), both...)
		fmt.Fprintf(GinkgoWriter, "approve (CLI) -> visible: %v\n", vis.PerReplica)
		m.add("approve->visible-on-both", vis.Both)
		for _, r := range both {
			o := mustOffering(r, offName)
			Expect(o.ID).To(Equal(catalog.DeriveOfferingID(ada, offName)))
			Expect(o.Plans).To(Equal(map[string]string{
				"small": catalog.DerivePlanID(ada, offName, "small"),
				"large": catalog.DerivePlanID(ada, offName, "large"),
			}))
		}
		off := mustOffering(repB, offName)
		small, large := off.plan("small"), off.plan("large")

		By("a platform provisions through replica A and binds through replica B")
		iid, bid := newGUID(), newGUID()
		resp := off.Provision(repA.OSB, iid, small, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		Expect(adapter.InstanceDir(iid)).To(BeADirectory(), "the adapter created no directory for the instance")
		resp = off.Bind(repB.OSB, iid, bid, small, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		creds := resp.Credentials()
		Expect(creds).To(HaveKeyWithValue("path", adapter.InstanceDir(iid)))
		credToken, _ := creds["token"].(string)
		Expect(credToken).NotTo(BeEmpty(), "no token in %v", creds)

		By("the credentials are real: the adapter's token file holds them")
		onDisk, err := os.ReadFile(adapter.TokenFile(iid, bid))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(onDisk)).To(Equal(credToken))

		By("they are in Vault at the documented binding path, and nowhere in Redis")
		Expect(expectBindingSecret(ctx, vault.Addr, iid, bid, true)).To(Equal(creds))
		expectNoSecretsInRedis(ctx, prefix, credToken, adapter.Secret, token)
		resp = repA.OSB.GetBinding(iid, bid)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(resp.Credentials()).To(Equal(creds))

		By("she sees her instance and its binding with the CLI, never the credentials")
		res = she.Must(ctx, "", "producer", "instances", "-o", "json")
		Expect(res.Stdout).NotTo(ContainSubstring(credToken))
		var insts []producers.InstanceView
		Expect(json.Unmarshal([]byte(res.Stdout), &insts)).To(Succeed(), res.String())
		Expect(insts).To(HaveLen(1))
		Expect(insts[0].ID).To(Equal(iid))
		Expect(insts[0].Offering).To(Equal(offName))
		Expect(insts[0].Plan).To(Equal("small"))
		Expect(insts[0].Bindings).To(HaveLen(1))
		Expect(insts[0].Bindings[0].ID).To(Equal(bid))
		res = she.Must(ctx, "", "producer", "status")
		Expect(res.Stdout).To(MatchRegexp(`(?m)^` + regexp.QuoteMeta(offName) + `\s+small, large\s+1\s+true`))

		By("a second producer, created by the admin, can neither see nor change any of it")
		created, err := adminClient(repB).CreateProducer(ctx, producers.CreateRequest{Name: rival, Contact: "rival@example.com", AutoApproveSlices: true})
		Expect(err).NotTo(HaveOccurred())
		rc := &producerapi.Client{BaseURL: repB.URL, Token: created.Token}
		forbidden := map[string]error{}
		_, forbidden["status"] = rc.Status(ctx, ada)
		_, forbidden["live slice"] = rc.Live(ctx, ada)
		_, forbidden["versions"] = rc.Versions(ctx, ada)
		_, forbidden["offerings"] = rc.Offerings(ctx, ada)
		_, forbidden["instances"] = rc.Instances(ctx, ada)
		_, forbidden["operations"] = rc.Operations(ctx, ada, false)
		_, forbidden["apply"] = rc.Apply(ctx, ada, []byte(producerSlice(offName, adapter, "small")))
		_, forbidden["restore"] = rc.Restore(ctx, ada, 1)
		_, forbidden["deprecate"] = rc.Deprecate(ctx, ada, offName, "small")
		_, forbidden["remove"] = rc.RemoveOffering(ctx, ada, offName)
		_, forbidden["admin approve"] = rc.ApproveSlice(ctx, ada, 1)
		for what, err := range forbidden {
			Expect(apiStatus(err)).To(Equal(http.StatusForbidden), "%s of %s's with %s's token: %v", what, ada, rival, err)
		}
		rivalCLI := newCLIUser("AGORA_URL="+repA.URL, "AGORA_PRODUCER="+ada, "AGORA_PRODUCER_TOKEN="+created.Token)
		res = rivalCLI.Run(ctx, "", "producer", "instances")
		Expect(res.Code).To(Equal(1), res.String())
		Expect(res.Stderr).To(ContainSubstring("403"))
		Expect(res.Stdout + res.Stderr).NotTo(ContainSubstring(iid))
		st, err := (&producerapi.Client{BaseURL: repA.URL, Token: token}).Status(ctx, ada)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Producer.LiveVersion).To(Equal(1), "the rival's attempts changed %s's slice", ada)
		for _, r := range both {
			Expect(hasPlan(offName, "small")(mustGet(catalogOfferings(r)))).To(BeTrue())
		}

		By("measuring apply->visible: the rival is auto-approved, each apply goes live at once")
		rivalPlans := []string{"p1"}
		for i := range 3 {
			if i > 0 {
				rivalPlans = append(rivalPlans, fmt.Sprintf("p%d", i+1))
			}
			dephase()
			start := time.Now()
			ar, err := rc.Apply(ctx, rival, []byte(producerSlice(rivalOff, adapter, rivalPlans...)))
			applied := time.Since(start)
			Expect(err).NotTo(HaveOccurred())
			Expect(ar.Status).To(Equal(producers.SliceLive), "%+v", ar)
			vis := awaitVisible(start, 15*time.Second, hasPlan(rivalOff, rivalPlans[i]), both...)
			fmt.Fprintf(GinkgoWriter, "apply v%d (auto-approve; the call took %s) -> visible: %v\n", ar.Version, applied.Round(time.Millisecond), vis.PerReplica)
			m.add("apply->visible-on-both(auto-approve)", vis.Both)
		}
		By("and approve->visible twice more: auto-approval off, the admin approves each version")
		admin.Must(ctx, "", append([]string{"admin", "producers", "auto-approve", rival, "false"}, adminFlags(repB)...)...)
		for i := 3; i < 5; i++ {
			rivalPlans = append(rivalPlans, fmt.Sprintf("p%d", i+1))
			ar, err := rc.Apply(ctx, rival, []byte(producerSlice(rivalOff, adapter, rivalPlans...)))
			Expect(err).NotTo(HaveOccurred())
			Expect(ar.Status).To(Equal(producers.SlicePendingApproval), "%+v", ar)
			dephase()
			start := time.Now()
			_, err = adminClient(repA).ApproveSlice(ctx, rival, ar.Version)
			Expect(err).NotTo(HaveOccurred())
			vis := awaitVisible(start, 15*time.Second, hasPlan(rivalOff, rivalPlans[i]), both...)
			fmt.Fprintf(GinkgoWriter, "approve v%d -> visible: %v\n", ar.Version, vis.PerReplica)
			m.add("approve->visible-on-both", vis.Both)
		}
		By("the rival removes her offering (no instances): gone from both replicas")
		dephase()
		start = time.Now()
		_, err = rc.RemoveOffering(ctx, rival, rivalOff)
		Expect(err).NotTo(HaveOccurred())
		m.add("remove->gone-on-both", awaitVisible(start, 15*time.Second, lacksOffering(rivalOff), both...).Both)

		By("she deprecates plan small with the CLI: gone from both catalogs within seconds, large stays")
		dephase()
		start = time.Now()
		res = she.Must(ctx, "", "producer", "deprecate", offName, "small")
		Expect(res.Stdout).To(MatchRegexp(`version \d+: live`))
		vis = awaitVisible(start, 15*time.Second, func(offs map[string]osbOffering) bool {
			return lacksPlan(offName, "small")(offs) && hasPlan(offName, "large")(offs)
		}, both...)
		m.add("deprecate->gone-on-both", vis.Both)

		By("a new provision on the deprecated plan: 400 on both replicas, nothing created")
		for _, r := range both {
			newIID := newGUID()
			resp = off.Provision(r.OSB, newIID, small, false)
			Expect(resp.Status).To(Equal(http.StatusBadRequest), "replica %s: %s", r.Name, resp)
			// brokerapi refuses it before Agora sees it ("plan-id not in
			// the catalog"): Services() leaves deprecated plans out.
			fmt.Fprintf(GinkgoWriter, "provision on the deprecated plan via %s: %s\n", r.Name, resp)
			Expect(adapter.InstanceDir(newIID)).NotTo(BeAnExistingFile())
			Expect(instanceKeys(ctx, prefix, newIID)).To(BeEmpty())
		}
		iid2 := newGUID()
		resp = off.Provision(repB.OSB, iid2, large, false)
		Expect(resp.Status).To(Equal(http.StatusCreated), "plan large, not deprecated, must still take new instances: %s", resp)

		By("the existing instance still works: unbind through A")
		resp = off.Unbind(repA.OSB, iid, bid, small, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		Expect(adapter.TokenFile(iid, bid)).NotTo(BeAnExistingFile(), "the adapter still holds the token")
		expectBindingSecret(ctx, vault.Addr, iid, bid, false)

		By("removing the offering while it has instances: 409 naming them, and nothing changes")
		res = she.Run(ctx, "", "producer", "remove", offName)
		Expect(res.Code).To(Equal(1), res.String())
		Expect(res.Stderr).To(ContainSubstring("409"))
		Expect(res.Stderr).To(ContainSubstring(iid))
		for _, r := range both {
			Expect(hasPlan(offName, "large")(mustGet(catalogOfferings(r)))).To(BeTrue())
		}

		By("deprovision through B (the deprecated plan) and A: the adapter's directories are gone")
		resp = off.Deprovision(repB.OSB, iid, small, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		resp = off.Deprovision(repA.OSB, iid2, large, false)
		Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
		for _, id := range []string{iid, iid2} {
			Expect(adapter.InstanceDir(id)).NotTo(BeAnExistingFile())
			Expect(instanceKeys(ctx, prefix, id)).To(BeEmpty())
		}

		By("now she removes the offering with the CLI: 200, and it leaves both replicas' catalogs")
		dephase()
		start = time.Now()
		res = she.Must(ctx, "", "producer", "remove", offName, "-o", "json")
		var removed producers.ApplyResult
		Expect(json.Unmarshal([]byte(res.Stdout), &removed)).To(Succeed(), res.String())
		Expect(removed.Status).To(Equal(producers.SliceLive))
		m.add("remove->gone-on-both", awaitVisible(start, 15*time.Second, lacksOffering(offName), both...).Both)
		resp = off.Provision(repA.OSB, newGUID(), large, false)
		Expect(resp.Status).To(Equal(http.StatusBadRequest), "a removed offering still takes instances: %s", resp)
		expectNoSecretsInRedis(ctx, prefix, credToken, adapter.Secret, token, created.Token)
	}, SpecTimeout(2*time.Minute))
})

// mustGet returns v, failing the spec on err.
func mustGet[T any](v T, err error) T {
	GinkgoHelper()
	Expect(err).NotTo(HaveOccurred())
	return v
}
