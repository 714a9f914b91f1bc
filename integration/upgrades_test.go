package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/broker/catalog"
)

// Upgrades through maintenance_info (docs/upgrades.md): a producer
// publishes a new version of a plan in catalog.yml (the replicas are
// restarted on it, as a rollout would), a platform's PATCH upgrades one
// instance with real adapter work, and a bulk upgrade brings 50 instances
// over while a replica is killed.

// publishVersion returns catalog text with the maintenance_info version of
// the first plan after marker moved from 1.0.0 to to.
func publishVersion(text, marker, to string) string {
	GinkgoHelper()
	at := strings.Index(text, marker)
	Expect(at).To(BeNumerically(">=", 0), "no %q in the catalog", marker)
	head, tail := text[:at], text[at:]
	Expect(tail).To(ContainSubstring("version: 1.0.0"))
	return head + strings.Replace(tail, "version: 1.0.0", "version: "+to, 1)
}

// upgradeBody is what `cf update-service --upgrade` sends.
func upgradeBody(serviceID, planID, version string) map[string]any {
	return map[string]any{
		"service_id": serviceID, "plan_id": planID,
		"maintenance_info": map[string]any{"version": version},
		"previous_values":  map[string]any{"plan_id": planID},
	}
}

// instanceVersion is GET instance's maintenance_info.version.
func instanceVersion(c *OSBClient, iid string) string {
	GinkgoHelper()
	resp := c.GetInstance(iid)
	Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
	mi, _ := resp.JSON["maintenance_info"].(map[string]any)
	v, _ := mi["version"].(string)
	return v
}

// planVersion is the catalog's maintenance_info.version of a plan.
func planVersion(c *OSBClient, offering, plan string) string {
	GinkgoHelper()
	cat := c.Catalog()
	Expect(cat.Status).To(Equal(http.StatusOK), cat.String())
	services, _ := cat.JSON["services"].([]any)
	for _, s := range services {
		if svc := s.(map[string]any); svc["name"] == offering {
			for _, p := range svc["plans"].([]any) {
				if pl := p.(map[string]any); pl["name"] == plan {
					mi, _ := pl["maintenance_info"].(map[string]any)
					v, _ := mi["version"].(string)
					return v
				}
			}
		}
	}
	Fail(fmt.Sprintf("no plan %s/%s in the catalog", offering, plan))
	return ""
}

var _ = Describe("an upgrade through OSB PATCH", func() {
	It("brings a postgres instance and a Python remote adapter's instance from 1.0.0 to 1.1.0 with real work, and refuses a downgrade", func(ctx SpecContext) {
		prefix := specPrefix()
		seedBackendSecrets(ctx, vault.Addr)
		she := newCLIUser()
		py := initPyAdapter(ctx, she, "py-team-files")
		pyOffering := fmt.Sprintf(`  - name: py-team
    contact: py@example.com
    offerings:
      - name: py-team-files
        description: The Python example adapter, over the remote protocol.
        adapter: remote
        config:
          url: %s
          secret: %s
          capabilities: [update]
        plans:
          - name: standard
            description: One directory.
            maintenance_info: {version: 1.0.0, description: A private directory.}
`, py.URL, py.Secret)
		v100 := repoCatalog() + "\n" + pyOffering

		By("the catalog publishes 1.0.0: new instances run it and GET instance says so")
		a := StartBroker(ctx, BrokerOptions{Name: "A", Prefix: prefix, Catalog: v100})
		pg, files := offeringFromCatalog(a.OSB, "postgres"), offeringFromCatalog(a.OSB, "py-team-files")
		pgID, pyID := newGUID(), newGUID()
		Expect(pg.Provision(pgID, "small", nil, false).Status).To(Equal(http.StatusCreated))
		Expect(files.Provision(pyID, "standard", nil, false).Status).To(Equal(http.StatusCreated))
		Expect(instanceVersion(a.OSB, pgID)).To(Equal("1.0.0"))
		Expect(instanceVersion(a.OSB, pyID)).To(Equal("1.0.0"))
		database := pgInstancePrefix(pgID)
		extensions := func() []string {
			var db string
			Expect(pgAdmin(ctx).QueryRow(ctx, `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`, database).Scan(&db)).To(Succeed())
			c, err := pgConnect(ctx, strings.Replace(pgAdminURI, "/postgres?", "/"+db+"?", 1))
			Expect(err).NotTo(HaveOccurred())
			defer func() { _ = c.Close(ctx) }()
			rows, err := c.Query(ctx, `SELECT extname FROM pg_extension ORDER BY extname`)
			Expect(err).NotTo(HaveOccurred())
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			Expect(err).NotTo(HaveOccurred())
			return names
		}
		Expect(extensions()).NotTo(ContainElement("pg_trgm"))
		Expect(filepath.Join(py.InstanceDir(pyID), "public")).NotTo(BeADirectory())

		By("the producer publishes 1.1.0 in catalog.yml; the replica restarts on it and the catalog offers it")
		v110 := publishVersion(publishVersion(v100, "adapter: postgres", "1.1.0"), "name: py-team-files", "1.1.0")
		a.Stop()
		b := StartBroker(ctx, BrokerOptions{Name: "B", Prefix: prefix, Catalog: v110})
		Expect(planVersion(b.OSB, "postgres", "small")).To(Equal("1.1.0"))
		Expect(instanceVersion(b.OSB, pgID)).To(Equal("1.0.0"), "publishing alone changed the instance")

		By("a platform with the old catalog gets 422 MaintenanceInfoConflict")
		resp := b.OSB.Do(http.MethodPatch, instancePath(pgID), upgradeBody(pg.ServiceID, pg.PlanIDs["small"], "1.0.0"))
		Expect(resp.Status).To(Equal(http.StatusUnprocessableEntity), resp.String())
		Expect(resp.Str("error")).To(Equal("MaintenanceInfoConflict"))

		By("cf update-service --upgrade: PATCH with the new maintenance_info reaches the adapters, which do the version's work")
		for _, c := range []struct {
			o   *OfferingClient
			iid string
			pl  string
		}{{pg, pgID, "small"}, {files, pyID, "standard"}} {
			resp = b.OSB.Do(http.MethodPatch, instancePath(c.iid), upgradeBody(c.o.ServiceID, c.o.PlanIDs[c.pl], "1.1.0"))
			Expect(resp.Status).To(Equal(http.StatusOK), resp.String())
			Expect(instanceVersion(b.OSB, c.iid)).To(Equal("1.1.0"))
		}
		Expect(extensions()).To(ContainElement("pg_trgm"), "the postgres adapter did not create 1.1.0's extension")
		Expect(filepath.Join(py.InstanceDir(pyID), "public")).To(BeADirectory(), "the Python example did not do 1.1.0's work")

		By("the producer goes back to 1.0.0: a PATCH to it is a downgrade, refused with 422, and nothing changes")
		b.Stop()
		c := StartBroker(ctx, BrokerOptions{Name: "C", Prefix: prefix, Catalog: v100})
		resp = c.OSB.Do(http.MethodPatch, instancePath(pgID), upgradeBody(pg.ServiceID, pg.PlanIDs["small"], "1.0.0"))
		Expect(resp.Status).To(Equal(http.StatusUnprocessableEntity), resp.String())
		Expect(resp.Str("error")).To(Equal("MaintenanceInfoConflict"))
		Expect(resp.Str("description")).To(ContainSubstring("downgrade"))
		Expect(instanceVersion(c.OSB, pgID)).To(Equal("1.1.0"))

		By("both instances are deprovisioned; the database is gone")
		Expect(offeringFromCatalog(c.OSB, "postgres").Deprovision(pgID, "small", false).Status).To(Equal(http.StatusOK))
		Expect(offeringFromCatalog(c.OSB, "py-team-files").Deprovision(pyID, "standard", false).Status).To(Equal(http.StatusOK))
		Expect(pgLeftovers(ctx, pgID)).To(BeEmpty())
	}, SpecTimeout(3*time.Minute))
})

// slowUpdater adds an Update that takes a while to the scripted adapter,
// recording each call in updates, so a replica can be killed in the
// middle of a run and overlapping calls show.
type slowUpdater struct {
	*scriptedAdapter
	took    time.Duration
	updates *scriptedAdapter
}

func (s *slowUpdater) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	err := s.updates.record(req.InstanceID, func() error {
		if req.Maintenance.Requested.Version != "1.1.0" || req.Maintenance.Current.Version != "1.0.0" {
			return adapters.Terminal(fmt.Errorf("update carried %+v, not the upgrade 1.0.0 -> 1.1.0", req.Maintenance))
		}
		select {
		case <-time.After(s.took):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return adapters.UpdateResult{}, err
}

// overlapping lists the instances of ids whose update calls overlapped.
func (s *slowUpdater) overlapping(ids []string) []string {
	var out []string
	for _, iid := range ids {
		calls := s.updates.callsOf(iid)
		for j := 1; j < len(calls); j++ {
			if calls[j-1].End.IsZero() || calls[j].Start.Before(calls[j-1].End) {
				out = append(out, fmt.Sprintf("%s: %v", iid, calls))
			}
		}
	}
	return out
}

// succeeded counts the update calls that ended well.
func (s *slowUpdater) succeeded() int {
	s.updates.mu.Lock()
	defer s.updates.mu.Unlock()
	n := 0
	for _, c := range s.updates.calls {
		if !c.End.IsZero() && c.Err == "" {
			n++
		}
	}
	return n
}

var progressRE = regexp.MustCompile(`done (\d+)  failed (\d+)  remaining (\d+)`)

var _ = Describe("a bulk upgrade of 50 instances", func() {
	It("reports 50 upgraded through `agora admin upgrade` while a replica is killed with kill -9 halfway, never upgrading an instance twice at once", func(ctx SpecContext) {
		const n = 50
		prefix := specPrefix()
		none := func(context.Context, string) error { return nil }
		updater := &slowUpdater{scriptedAdapter: &scriptedAdapter{provision: none}, updates: &scriptedAdapter{}, took: 300 * time.Millisecond}
		secret := randomHex(16)
		url := serveLocal(remote.Handler(updater, remote.HandlerOptions{Name: "slow", Version: "1.1.0", Secret: secret}))
		producer, offering := "bulk-team", "bulk-team-db"
		text := func(version string) string {
			return fmt.Sprintf(`producers:
  - name: %s
    contact: bulk@example.com
    offerings:
      - name: %s
        description: An offering whose adapter upgrades slowly.
        adapter: remote
        config:
          url: %s
          secret: %s
          timeout: 60s
          capabilities: [update]
        plans:
          - name: standard
            description: Inline provisions; upgrades run on the async engine.
            maintenance_info: {version: %s, description: Version %s.}
`, producer, offering, url, secret, version, version)
		}
		serviceID := catalog.DeriveOfferingID(producer, offering)
		planID := catalog.DerivePlanID(producer, offering, "standard")

		By(fmt.Sprintf("%d instances on 1.0.0", n))
		old := StartBroker(ctx, BrokerOptions{Name: "old", Prefix: prefix, Catalog: text("1.0.0")})
		ids := make([]string, n)
		for i := range ids {
			ids[i] = newGUID()
			body := map[string]any{"service_id": serviceID, "plan_id": planID, "organization_guid": "org", "space_guid": "space"}
			resp := old.OSB.ProvisionWith(ids[i], body, false)
			Expect(resp.Status).To(Equal(http.StatusCreated), resp.String())
		}
		old.Stop()

		By("1.1.0 is published; two replicas serve it")
		a := StartBroker(ctx, BrokerOptions{Name: "A", Prefix: prefix, Catalog: text("1.1.0"), Concurrency: 4})
		auditB := filepath.Join(GinkgoT().TempDir(), "audit-b.log")
		b := StartBroker(ctx, BrokerOptions{Name: "B", Prefix: prefix, Catalog: text("1.1.0"), Concurrency: 4, AuditFile: auditB})

		By("a dry run lists the 50 and changes nothing")
		admin := newCLIUser()
		res := admin.Must(ctx, "", append([]string{"admin", "upgrade", offering, "standard", "--dry-run", "-o", "json"}, adminFlags(b)...)...)
		var dry struct {
			State     string `json:"state"`
			Instances []any  `json:"instances"`
		}
		Expect(json.Unmarshal([]byte(res.Stdout), &dry)).To(Succeed(), res.String())
		Expect(dry.State).To(Equal("dry_run"))
		Expect(dry.Instances).To(HaveLen(n))
		Expect(updater.succeeded()).To(BeZero())

		By("the platform engineer starts the bulk upgrade with the CLI against replica B and waits; A is killed once 20 are done")
		started := time.Now()
		done := make(chan cliResult, 1)
		go func() {
			defer GinkgoRecover()
			done <- admin.Run(ctx, "", append([]string{"admin", "upgrade", offering, "standard", "--concurrency", "5", "--interval", "500ms"}, adminFlags(b)...)...)
		}()
		Eventually(updater.succeeded).WithContext(ctx).WithTimeout(90 * time.Second).WithPolling(50 * time.Millisecond).Should(BeNumerically(">=", n*2/5))
		a.Kill()
		killedAt := updater.succeeded()
		var out cliResult
		Eventually(done).WithContext(ctx).WithTimeout(3 * time.Minute).Should(Receive(&out))
		took := time.Since(started)
		Expect(out.Code).To(BeZero(), out.String())
		fmt.Fprintf(GinkgoWriter, "bulk upgrade of %d instances (concurrency 5, adapter 300ms per upgrade, replica A killed after %d): %s\n%s",
			n, killedAt, took.Round(100*time.Millisecond), out.Stdout)

		By("the CLI printed progress while it waited, and the run reports 50 upgraded")
		lines := progressRE.FindAllStringSubmatch(out.Stdout, -1)
		Expect(len(lines)).To(BeNumerically(">=", 3), "no progress while waiting:\n%s", out.Stdout)
		Expect(lines[len(lines)-1][1:]).To(Equal([]string{"50", "0", "0"}))
		Expect(out.Stdout).To(MatchRegexp(`upgraded 50\s+failed 0\s+remaining 0\s+of 50`))

		By("every instance runs 1.1.0; no instance's upgrade ran twice at once")
		for _, iid := range ids {
			Expect(instanceVersion(b.OSB, iid)).To(Equal("1.1.0"), "instance %s", iid)
		}
		Expect(updater.overlapping(ids)).To(BeEmpty())
		Expect(updater.succeeded()).To(BeNumerically(">=", n))
		Eventually(func() bool { return queueIsEmpty(ctx, rdb, prefix) }).WithTimeout(10 * time.Second).Should(BeTrue())

		By("the dry run and the start are audited with who, the offering and the plan")
		var starts []map[string]any
		for _, r := range readAudit(auditB) {
			if what := r["what"].(map[string]any); what["action"] == "admin_start_upgrade" {
				Expect(what["target"]).To(And(HaveKeyWithValue("offering", offering), HaveKeyWithValue("plan", "standard")))
				Expect(r["who"]).To(HaveKeyWithValue("principal", HavePrefix("admin:")))
				Expect(r["result"]).To(HaveKeyWithValue("status", BeNumerically("<", 300)))
				starts = append(starts, r)
			}
		}
		Expect(starts).To(HaveLen(2), "the dry run's and the run's audit lines")
	}, SpecTimeout(5*time.Minute))
})

// setSliceVersion sets maintenance_info.version of every plan in the
// slice file at path, as the producer edits her slice.yml.
func setSliceVersion(path, version string) {
	GinkgoHelper()
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	var slice map[string]any
	Expect(yaml.Unmarshal(data, &slice)).To(Succeed())
	for _, o := range slice["offerings"].([]any) {
		for _, p := range o.(map[string]any)["plans"].([]any) {
			p.(map[string]any)["maintenance_info"] = map[string]any{"version": version, "description": "Version " + version + "."}
		}
	}
	out, err := yaml.Marshal(slice)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(path, out, 0o600)).To(Succeed())
}

var _ = Describe("a producer's own bulk upgrade", func() {
	It("publishes 1.1.0 in her slice and upgrades her Python adapter's instances with agora producer upgrade", func(ctx SpecContext) {
		const n = 3
		prefix := specPrefix()
		name := "up-" + randomHex(3)
		offName := name + "-files"
		a := StartBroker(ctx, BrokerOptions{Name: "A", Prefix: prefix})

		By("the platform engineer creates her, with slices going live once the gate passes")
		admin := newCLIUser()
		res := admin.Must(ctx, "", append([]string{"admin", "producers", "create", name, "--contact", "up@example.com", "--auto-approve"}, adminFlags(a)...)...)
		token := producerTokenRE.FindString(res.Stdout)
		Expect(token).NotTo(BeEmpty(), res.String())

		By("her slice publishes 1.0.0; instances are created on it")
		she := newCLIUser()
		adapter := initPyAdapter(ctx, she, offName)
		she.Must(ctx, token+"\n", "producer", "login", "--url", a.URL, "--name", name)
		slicePath := adapter.EditSlice("standard")
		setSliceVersion(slicePath, "1.0.0")
		she.Must(ctx, "", "producer", "apply", "-f", slicePath)
		awaitVisible(time.Now(), 15*time.Second, hasPlan(offName, "standard"), a)
		off := mustOffering(a, offName)
		ids := make([]string, n)
		for i := range ids {
			ids[i] = newGUID()
			Expect(off.Provision(a.OSB, ids[i], off.plan("standard"), false).Status).To(Equal(http.StatusCreated))
			Expect(filepath.Join(adapter.InstanceDir(ids[i]), "public")).NotTo(BeADirectory())
		}

		By("she publishes 1.1.0 in her slice; the catalog offers it")
		setSliceVersion(slicePath, "1.1.0")
		she.Must(ctx, "", "producer", "apply", "-f", slicePath)
		Eventually(func() string { return planVersion(a.OSB, offName, "standard") }).WithTimeout(15 * time.Second).Should(Equal("1.1.0"))

		By("agora producer upgrade brings all her instances to 1.1.0 with the adapter's work")
		res = she.Must(ctx, "", "producer", "upgrade", offName, "standard", "--interval", "200ms")
		Expect(res.Stdout).To(MatchRegexp(`upgraded %d\s+failed 0\s+remaining 0\s+of %d`, n, n))
		for _, iid := range ids {
			Expect(instanceVersion(a.OSB, iid)).To(Equal("1.1.0"))
			Expect(filepath.Join(adapter.InstanceDir(iid), "public")).To(BeADirectory())
		}

		By("another producer cannot upgrade her plan")
		rivalName := "rival-" + randomHex(3)
		res = admin.Must(ctx, "", append([]string{"admin", "producers", "create", rivalName, "--contact", "x@example.com"}, adminFlags(a)...)...)
		rival := newCLIUser()
		rival.Must(ctx, producerTokenRE.FindString(res.Stdout)+"\n", "producer", "login", "--url", a.URL, "--name", rivalName)
		res = rival.Run(ctx, "", "producer", "upgrade", offName, "standard", "--dry-run")
		Expect(res.Code).NotTo(BeZero(), res.String())
		Expect(res.Stderr).To(ContainSubstring("403"))
	}, SpecTimeout(2*time.Minute))
})
