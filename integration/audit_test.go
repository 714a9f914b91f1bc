package integration

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/producers"
)

var _ = Describe("the audit log", func() {
	It("has one line per mutation, naming who, what and the result, and never a secret", func(ctx SpecContext) {
		file := filepath.Join(GinkgoT().TempDir(), "audit.log")
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix(), AuditFile: file})
		iid, bid := newGUID(), newGUID()
		identity := http.Header{"X-Broker-API-Originating-Identity": {"cloudfoundry " + base64.StdEncoding.EncodeToString([]byte(`{"user_id":"dev-42"}`))}}

		provision, err := json.Marshal(ProvisionBody(standardPlanID))
		Expect(err).NotTo(HaveOccurred())
		Expect(b.OSB.Raw(http.MethodPut, instancePath(iid), provision, identity).Status).To(Equal(http.StatusCreated))
		bound := b.OSB.Bind(iid, bid, standardPlanID, false)
		Expect(bound.Status).To(Equal(http.StatusCreated))
		secretID, _ := bound.Credentials()["secret_id"].(string)
		Expect(secretID).NotTo(BeEmpty())
		Expect(b.OSB.LastOperation(iid, "").Status).To(Equal(http.StatusOK)) // a read: not audited
		Expect(b.OSB.Unbind(iid, bid, standardPlanID, false).Status).To(Equal(http.StatusOK))
		Expect(b.OSB.Deprovision(iid, standardPlanID, false).Status).To(Equal(http.StatusOK))
		Expect(b.OSB.Deprovision(iid, standardPlanID, false).Status).To(Equal(http.StatusGone)) // a refusal is audited too
		_, err = adminClient(b).CreateProducer(ctx, producers.CreateRequest{Name: "audit-team", Contact: "audit@example.com"})
		Expect(err).NotTo(HaveOccurred())

		var records []map[string]any
		Eventually(func() int {
			records = readAudit(file)
			return len(records)
		}).WithTimeout(5 * time.Second).Should(Equal(6))
		actions := []string{}
		for _, r := range records {
			what := r["what"].(map[string]any)
			actions = append(actions, what["action"].(string))
			Expect(r["request_id"]).NotTo(BeEmpty())
			Expect(r["audit"]).To(BeTrue())
		}
		Expect(actions).To(Equal([]string{"provision", "bind", "unbind", "deprovision", "deprovision", "admin_create_producer"}))

		first := records[0]
		Expect(first["who"]).To(Equal(map[string]any{"principal": "platform:platform", "platform": "cloudfoundry", "user": "dev-42"}))
		what := first["what"].(map[string]any)
		Expect(what["offering"]).To(Equal("secrets"))
		Expect(what["plan"]).To(Equal("standard"))
		Expect(what["producer"]).To(Equal("platform-team"))
		Expect(what["target"]).To(HaveKeyWithValue("instance_id", iid))
		Expect(records[1]["what"].(map[string]any)["target"]).To(HaveKeyWithValue("binding_id", bid))
		Expect(records[4]["result"]).To(HaveKeyWithValue("status", BeNumerically("==", 410)))
		Expect(records[5]["who"]).To(HaveKeyWithValue("principal", "admin:platform"))

		raw, err := os.ReadFile(file)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring(secretID))
		Expect(string(raw)).NotTo(ContainSubstring("agp_")) // the producer's token
		info, err := os.Stat(file)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.Mode().Perm()).To(Equal(os.FileMode(0o600)))
	}, SpecTimeout(60*time.Second))
})

func readAudit(path string) []map[string]any {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		Expect(json.Unmarshal(sc.Bytes(), &rec)).To(Succeed())
		out = append(out, rec)
	}
	return out
}
