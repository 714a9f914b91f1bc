package producerapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

var ctx = context.Background()

func TestCreateShowsTheTokenOnceAndStoresOnlyItsHash(t *testing.T) {
	f := newFixture(t)
	created, err := f.admin.CreateProducer(ctx, producers.CreateRequest{Name: "team-x", Contact: "x@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Token, "agp_team-x_") || len(created.Token) < len("agp_team-x_")+43 {
		t.Fatalf("token %q: want agp_team-x_ and 32 random bytes", created.Token)
	}
	if created.Producer.Namespace != "team-x-" || created.Producer.State != producers.StateActive {
		t.Fatalf("producer %+v: want namespace team-x- and state active", created.Producer)
	}
	sum := sha256.Sum256([]byte(created.Token))
	if !f.redisHolds(hex.EncodeToString(sum[:])) {
		t.Fatal("the token's sha256 is not in Redis")
	}
	if f.redisHolds(created.Token) || f.redisHolds(strings.TrimPrefix(created.Token, "agp_team-x_")) {
		t.Fatal("Redis holds the token itself")
	}
	// Never shown again: not by a read, not by the listing.
	for _, path := range []string{"/admin/producers", "/admin/producers/team-x"} {
		body := rawGet(t, f.srv.URL+path, adminUser, adminPass)
		if strings.Contains(body, created.Token) || strings.Contains(body, "token") {
			t.Fatalf("GET %s shows the token or its hash: %s", path, body)
		}
	}
	// And the token works.
	x := &producerapi.Client{BaseURL: f.srv.URL, Token: created.Token}
	if _, err := x.Status(ctx, "team-x"); err != nil {
		t.Fatalf("the new token does not work: %v", err)
	}
	// A second producer with an overlapping namespace is refused.
	_, err = f.admin.CreateProducer(ctx, producers.CreateRequest{Name: "team", Contact: "t@example.com"})
	apiErr(t, err, http.StatusConflict)
	// A catalog.yml producer's name cannot be taken.
	_, err = f.admin.CreateProducer(ctx, producers.CreateRequest{Name: "data-team", Contact: "d@example.com"})
	apiErr(t, err, http.StatusConflict)
}

func TestTokensAuthenticateOneProducerOnly(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", false)
	y := f.producer("team-y", false)

	anon := &producerapi.Client{BaseURL: f.srv.URL}
	_, err := anon.Status(ctx, "team-x")
	apiErr(t, err, http.StatusUnauthorized)

	forged := &producerapi.Client{BaseURL: f.srv.URL, Token: "agp_team-x_" + strings.Repeat("A", 43)}
	_, err = forged.Status(ctx, "team-x")
	apiErr(t, err, http.StatusUnauthorized)

	// team-y's token cannot read or change team-x.
	_, err = y.Status(ctx, "team-x")
	apiErr(t, err, http.StatusForbidden)
	_, err = y.Instances(ctx, "team-x")
	apiErr(t, err, http.StatusForbidden)
	_, err = y.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml"))
	apiErr(t, err, http.StatusForbidden)

	// A producer token is no admin credential.
	tokenAsAdmin := &producerapi.Client{BaseURL: f.srv.URL, Token: x.Token}
	_, err = tokenAsAdmin.ListProducers(ctx)
	apiErr(t, err, http.StatusForbidden)

	// A rotated token replaces the old one at once.
	rotated, err := f.admin.RotateToken(ctx, "team-x")
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.Status(ctx, "team-x")
	apiErr(t, err, http.StatusUnauthorized)
	x.Token = rotated.Token
	if _, err := x.Status(ctx, "team-x"); err != nil {
		t.Fatal(err)
	}

	// Suspended: the token stops working.
	if _, err := f.admin.SuspendProducer(ctx, "team-x"); err != nil {
		t.Fatal(err)
	}
	_, err = x.Status(ctx, "team-x")
	apiErr(t, err, http.StatusForbidden)
}

func TestSelfRegistrationWaitsForApproval(t *testing.T) {
	f := newFixture(t)
	anon := &producerapi.Client{BaseURL: f.srv.URL}
	created, err := anon.Register(ctx, producers.CreateRequest{Name: "team-x", Contact: "x@example.com", AutoApproveSlices: true})
	if err != nil {
		t.Fatal(err)
	}
	if created.Producer.State != producers.StatePending || created.Producer.AutoApproveSlices {
		t.Fatalf("registered %+v: want pending, and no self-granted auto-approval", created.Producer)
	}
	x := &producerapi.Client{BaseURL: f.srv.URL, Token: created.Token}
	_, err = x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml"))
	apiErr(t, err, http.StatusForbidden)

	if _, err := f.admin.ApproveProducer(ctx, "team-x"); err != nil {
		t.Fatal(err)
	}
	res, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || res.Status != producers.SlicePendingApproval {
		t.Fatalf("apply: %+v, want v1 pending_approval", res)
	}
}

func TestValidationReportsEveryProblemWithItsPath(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", false)
	_, err := x.Apply(ctx, "team-x", readFile(t, "testdata/bad.yml"))
	ae := apiErr(t, err, http.StatusBadRequest)
	got := map[string]string{}
	for _, p := range ae.Problems {
		got[p.Path] += p.Message + " | "
		if p.Line == 0 {
			t.Errorf("problem without a line: %+v", p)
		}
	}
	want := map[string]string{
		"offerings[0].name":                 "outside your namespace",
		"offerings[0].adapter":              `"remote"`,
		"offerings[0].config.secret":        "plain value",
		"offerings[0].plans[0].description": "is required",
		"offerings[1].id":                   "duplicate of catalog.yml: producers[0].offerings[0].id",
		"offerings[1].name":                 "duplicate of catalog.yml: producers[0].offerings[1].name",
		"offerings[1].config.token":         "vault references are not allowed",
	}
	for path, msg := range want {
		if !strings.Contains(got[path], msg) {
			t.Errorf("%s: want a problem containing %q, got %q (all: %v)", path, msg, got[path], got)
		}
	}
	// Lines are the slice's own: offerings[1].id is on line 13 of bad.yml.
	for _, p := range ae.Problems {
		if p.Path == "offerings[1].id" && p.Line != 13 {
			t.Errorf("offerings[1].id on line %d, want 13", p.Line)
		}
	}
	if len(f.gate.seen) != 0 {
		t.Fatal("the gate ran on an invalid slice")
	}
	vs, err := x.Versions(ctx, "team-x")
	if err != nil || len(vs) != 0 {
		t.Fatalf("versions after a rejected slice: %v %v", vs, err)
	}
}

func TestSliceAsJSONWithoutNameOrContact(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", true)
	body := `{"offerings":[{"name":"team-x-q","description":"Queue.","adapter":"remote",
	  "config":{"url":"http://q.team-x.test","secret":"json-secret"},
	  "plans":[{"name":"basic","description":"Basic."}]}]}`
	res, err := x.Apply(ctx, "team-x", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != producers.SliceLive {
		t.Fatalf("auto-approved apply: %+v, want live", res)
	}
	live, err := x.Live(ctx, "team-x")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(live.Slice, "name: team-x\n") || !strings.Contains(live.Slice, "contact: team-x@example.com") {
		t.Fatalf("stored slice lacks the filled-in name and contact:\n%s", live.Slice)
	}
}

func TestFailedGateStoresPendingWithTheReportForTheAdmin(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", true)
	f.gate.failURLs["http://adapter.team-x.test"] = true
	res, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// She is trusted (auto_approve_slices), yet a failing check keeps the
	// version for the platform engineer, who sees the same report. The
	// gate ran once per plan (team-x-db has two), each failing bind.
	if res.Status != producers.SlicePendingApproval || res.Gate == nil || !res.Gate.Failed || res.Gate.Summary != "4 passed, 2 failed, 0 skipped" {
		t.Fatalf("apply result %+v, gate %+v", res, res.Gate)
	}
	vs, err := f.admin.AdminVersions(ctx, "team-x")
	if err != nil || len(vs) != 1 || vs[0].Gate == nil || len(vs[0].Gate.NotAutoApprovable) != 2 {
		t.Fatalf("the admin's listing %+v %v does not carry the reason it waits", vs, err)
	}
	var bind producers.GateCheck
	for _, c := range res.Gate.Checks {
		if c.Name == "bind" {
			bind = c
		}
	}
	if bind.Result != "fail" || bind.Offering != "team-x-db" || bind.Plan == "" || bind.Hint != "return credentials" {
		t.Fatalf("bind check %+v", bind)
	}
	if strings.Contains(bind.Detail, "s3cr3t-protocol-secret-x") {
		t.Fatalf("the gate report echoes the protocol secret: %q", bind.Detail)
	}
	ar, err := f.admin.ApproveSlice(ctx, "team-x", res.Version)
	if err != nil || ar.Gate == nil || !ar.Gate.Failed {
		t.Fatalf("approval %+v %v: the admin must see the failing report", ar, err)
	}
}

func TestWithoutAGateNoSliceIsAccepted(t *testing.T) {
	// The gate is never skipped: a Service without one refuses slices.
	f := newFixture(t, func(c *producers.Config) { c.Gate = nil })
	x := f.producer("team-x", true)
	_, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml"))
	ae := apiErr(t, err, http.StatusServiceUnavailable)
	if !strings.Contains(ae.Description, "conformance gate") {
		t.Fatalf("503 without naming the gate: %s", ae.Description)
	}
	if vs, _ := x.Versions(ctx, "team-x"); len(vs) != 0 {
		t.Fatalf("a slice was stored without a gate: %+v", vs)
	}
}

func TestApplyApproveAndTheCatalogFollows(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", false)
	res, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || res.Status != producers.SlicePendingApproval || res.Gate.Summary != "6 passed, 0 failed, 0 skipped" {
		t.Fatalf("apply: %+v", res)
	}
	if got := f.gate.last(); got.Secret != "s3cr3t-protocol-secret-x" || got.URL != "http://adapter.team-x.test" || len(got.Plans) != 1 {
		t.Fatalf("the gate got %+v", got)
	}
	// The secret is in Vault, and Redis has the reference only.
	if f.redisHolds("s3cr3t-protocol-secret-x") {
		t.Fatal("Redis holds the protocol secret")
	}
	v1, err := x.Version(ctx, "team-x", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(v1.Slice, "secret: vault:secret/agora/producers/team-x/secret#v1.team-x-db") {
		t.Fatalf("stored slice:\n%s", v1.Slice)
	}

	// Pending: not in the catalog yet, whatever the replicas do.
	f.reload()
	if strings.Contains(string(f.broker.Catalog().JSON()), "team-x-db") {
		t.Fatal("a pending slice is in the catalog")
	}
	gen0, _ := f.admin.CatalogStatus(ctx)

	if _, err := f.admin.ApproveSlice(ctx, "team-x", 1); err != nil {
		t.Fatal(err)
	}
	gen1, _ := f.admin.CatalogStatus(ctx)
	if gen1.Generation != gen0.Generation+1 {
		t.Fatalf("generation %d after approval, want %d", gen1.Generation, gen0.Generation+1)
	}
	f.reload()
	body := rawGet(t, f.srv.URL+"/v2/catalog", adminUser, adminPass)
	if !strings.Contains(body, `"name":"team-x-db"`) || !strings.Contains(body, `"name":"shared-cache"`) {
		t.Fatalf("catalog after approval lacks team-x-db or catalog.yml's offerings: %s", body)
	}
	if st := f.loader.Status(); st.Generation != gen1.Generation {
		t.Fatalf("replica at generation %d, want %d", st.Generation, gen1.Generation)
	}

	// Approving again is harmless; approving a superseded one is not allowed.
	if _, err := f.admin.ApproveSlice(ctx, "team-x", 1); err != nil {
		t.Fatalf("re-approving the live version: %v", err)
	}
	res2, err := x.Apply(ctx, "team-x", []byte(strings.Replace(string(readFile(t, "testdata/team-x.yml")), "X's database.", "X's better database.", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.ApproveSlice(ctx, "team-x", res2.Version); err != nil {
		t.Fatal(err)
	}
	_, err = f.admin.ApproveSlice(ctx, "team-x", 1)
	apiErr(t, err, http.StatusConflict)

	vs, err := x.Versions(ctx, "team-x")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Status != producers.SliceLive || vs[1].Status != producers.SliceSuperseded ||
		vs[0].Author != "producer:team-x" || vs[0].DecidedBy != "admin:"+adminUser || vs[0].Gate == nil || vs[0].Slice != "" {
		t.Fatalf("history: %+v", vs)
	}

	// Rejection closes a pending version.
	res3, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.RejectSlice(ctx, "team-x", res3.Version, "not today"); err != nil {
		t.Fatal(err)
	}
	_, err = f.admin.ApproveSlice(ctx, "team-x", res3.Version)
	apiErr(t, err, http.StatusConflict)
}

func TestRestoreReValidatesAndReGates(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", false)
	if _, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.ApproveSlice(ctx, "team-x", 1); err != nil {
		t.Fatal(err)
	}
	v2 := strings.Replace(string(readFile(t, "testdata/team-x.yml")), "s3cr3t-protocol-secret-x", "second-secret", 1)
	if _, err := x.Apply(ctx, "team-x", []byte(v2)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.ApproveSlice(ctx, "team-x", 2); err != nil {
		t.Fatal(err)
	}
	// v1 was approved before: restoring it rolls back at once, gated with
	// v1's own secret, read back from Vault.
	res, err := x.Restore(ctx, "team-x", 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 3 || res.Status != producers.SliceLive {
		t.Fatalf("restore: %+v, want v3 live", res)
	}
	if got := f.gate.last().Secret; got != "s3cr3t-protocol-secret-x" {
		t.Fatalf("the gate of the restore got secret %q, want v1's", got)
	}
	v3, _ := x.Version(ctx, "team-x", 3)
	if v3.Action != "restore of v1" || !strings.Contains(v3.Slice, "#v1.team-x-db") {
		t.Fatalf("v3: %+v", v3)
	}
	// A version that never went live waits for approval again.
	if _, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.RejectSlice(ctx, "team-x", 4, ""); err != nil {
		t.Fatal(err)
	}
	res, err = x.Restore(ctx, "team-x", 4)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != producers.SlicePendingApproval {
		t.Fatalf("restore of a rejected version: %+v, want pending_approval", res)
	}
	// With Vault down the gate cannot get the secret: 503, nothing stored.
	f.secrets.setDown(true)
	_, err = x.Restore(ctx, "team-x", 1)
	apiErr(t, err, http.StatusServiceUnavailable)
}

func TestDeprecationHidesThePlanButExistingInstancesKeepWorking(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", true)
	if _, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml")); err != nil {
		t.Fatal(err)
	}
	f.reload()
	offs, err := x.Offerings(ctx, "team-x")
	if err != nil || len(offs) != 1 || !offs[0].InCatalog {
		t.Fatalf("offerings: %+v %v", offs, err)
	}
	svc, small := offs[0].ID, offs[0].Plans[0].ID
	osb(t, f, http.MethodPut, "/v2/service_instances/inst-1", map[string]any{"service_id": svc, "plan_id": small, "organization_guid": "o", "space_guid": "s"}, http.StatusCreated)
	osb(t, f, http.MethodPut, "/v2/service_instances/inst-1/service_bindings/bind-1", map[string]any{"service_id": svc, "plan_id": small}, http.StatusCreated)

	res, err := x.Deprecate(ctx, "team-x", "team-x-db", "small")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != producers.SliceLive {
		t.Fatalf("deprecate: %+v", res)
	}
	f.reload()
	cat := f.broker.Catalog()
	if strings.Contains(string(cat.JSON()), small) {
		t.Fatal("the deprecated plan is still in GET /v2/catalog")
	}
	if _, p, ok := cat.Plan(svc, small); !ok || !p.Deprecated {
		t.Fatalf("Plan() no longer resolves the deprecated plan (ok=%t)", ok)
	}
	// New instances: refused by the broker, with a description that says
	// the plan is deprecated.
	body := osb(t, f, http.MethodPut, "/v2/service_instances/inst-2", map[string]any{"service_id": svc, "plan_id": small, "organization_guid": "o", "space_guid": "s"}, http.StatusBadRequest)
	if !strings.Contains(body, "deprecated") {
		t.Fatalf("provision on a deprecated plan: %v", body)
	}
	_, perr := f.broker.Provision(ctx, "inst-3", domain.ProvisionDetails{ServiceID: svc, PlanID: small, OrganizationGUID: "o", SpaceGUID: "s"}, false)
	var fr *apiresponses.FailureResponse
	if fr, _ = perr.(*apiresponses.FailureResponse); fr == nil || fr.ValidatedStatusCode(nil) != http.StatusBadRequest || !strings.Contains(fr.Error(), "deprecated") {
		t.Fatalf("Provision on a deprecated plan: %v", perr)
	}
	// The existing instance keeps working: it is listed, can be unbound
	// and deleted.
	insts, err := x.Instances(ctx, "team-x")
	if err != nil || len(insts) != 1 || insts[0].Plan != "small" || len(insts[0].Bindings) != 1 {
		t.Fatalf("instances: %+v %v", insts, err)
	}
	raw := rawGetToken(t, f.srv.URL+"/producers/team-x/instances", x.Token)
	if strings.Contains(raw, "bound-secret") || strings.Contains(raw, "credential") {
		t.Fatalf("the instances view shows credentials: %s", raw)
	}
	// A slice that drops the plan while it has an instance is refused.
	noSmall := strings.Replace(string(readFile(t, "testdata/team-x.yml")), "      - name: small\n        description: Small.\n", "", 1)
	_, err = x.Apply(ctx, "team-x", []byte(noSmall))
	ae := apiErr(t, err, http.StatusBadRequest)
	if len(ae.Problems) != 1 || ae.Problems[0].Path != "offerings[0].plans" || !strings.Contains(ae.Problems[0].Message, "1 instance") {
		t.Fatalf("problems: %+v", ae.Problems)
	}
	// Re-offering it is allowed, with a warning.
	res, err = x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml"))
	if err != nil || len(res.Warnings) == 0 || !strings.Contains(res.Warnings[0], "team-x-db/small") {
		t.Fatalf("undeprecating apply: %+v %v", res, err)
	}
	osb(t, f, http.MethodDelete, "/v2/service_instances/inst-1/service_bindings/bind-1?service_id="+svc+"&plan_id="+small, nil, http.StatusOK)
	osb(t, f, http.MethodDelete, "/v2/service_instances/inst-1?service_id="+svc+"&plan_id="+small, nil, http.StatusOK)
}

func TestRemovingAnOfferingWaitsForItsInstances(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", true)
	if _, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml")); err != nil {
		t.Fatal(err)
	}
	f.reload()
	offs, _ := x.Offerings(ctx, "team-x")
	svc, plan := offs[0].ID, offs[0].Plans[1].ID
	osb(t, f, http.MethodPut, "/v2/service_instances/inst-1", map[string]any{"service_id": svc, "plan_id": plan, "organization_guid": "o", "space_guid": "s"}, http.StatusCreated)
	if ids, _, _ := f.state.ScanOfferingInstances(ctx, svc, "", 10); len(ids) != 1 || ids[0].InstanceID != "inst-1" {
		t.Fatalf("index after provision: %v", ids)
	}
	_, err := x.RemoveOffering(ctx, "team-x", "team-x-db")
	ae := apiErr(t, err, http.StatusConflict)
	if !strings.Contains(ae.Description, "inst-1") {
		t.Fatalf("409 does not name the instance: %s", ae.Description)
	}
	// A failed provision is visible to her, with its reason.
	osb(t, f, http.MethodDelete, "/v2/service_instances/inst-1?service_id="+svc+"&plan_id="+plan, nil, http.StatusOK)
	if ids, _, _ := f.state.ScanOfferingInstances(ctx, svc, "", 10); len(ids) != 0 {
		t.Fatalf("index after deprovision: %v", ids)
	}
	res, err := x.RemoveOffering(ctx, "team-x", "team-x-db")
	if err != nil || res.Status != producers.SliceLive {
		t.Fatalf("remove: %+v %v", res, err)
	}
	f.reload()
	if _, ok := f.broker.Catalog().Offering(svc); ok {
		t.Fatal("the removed offering is still in the catalog")
	}
}

func TestAFailedRebuildKeepsTheCatalogInForce(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", true)
	if _, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml")); err != nil {
		t.Fatal(err)
	}
	f.reload()
	before := f.broker.Catalog()
	f.secrets.setDown(true)
	if err := f.loader.Reload(ctx); err == nil {
		t.Fatal("reload with Vault down succeeded")
	}
	if f.broker.Catalog() != before {
		t.Fatal("a failed rebuild replaced the catalog")
	}
	if st := f.loader.Status(); st.LastError == "" {
		t.Fatal("the loader does not report the failed rebuild")
	}
	// Going live needs the catalog to build: with Vault unreadable, an
	// auto-approved slice is stored but stays pending, and says why.
	f.secrets.setDown(false)
	f.secrets.setReadsDown(true)
	res, err := x.Apply(ctx, "team-x", []byte(strings.Replace(string(readFile(t, "testdata/team-x.yml")), "Large.", "Larger.", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != producers.SlicePendingApproval || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "vault is down") {
		t.Fatalf("apply while Vault reads fail: %+v", res)
	}
	// Once Vault is back, the admin approves it.
	f.secrets.setReadsDown(false)
	if _, err := f.admin.ApproveSlice(ctx, "team-x", res.Version); err != nil {
		t.Fatal(err)
	}
}

func TestStatusAndOperations(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", true)
	if _, err := x.Apply(ctx, "team-x", readFile(t, "testdata/team-x.yml")); err != nil {
		t.Fatal(err)
	}
	f.reload()
	offs, _ := x.Offerings(ctx, "team-x")
	osb(t, f, http.MethodPut, "/v2/service_instances/inst-1", map[string]any{"service_id": offs[0].ID, "plan_id": offs[0].Plans[0].ID, "organization_guid": "o", "space_guid": "s"}, http.StatusCreated)
	st, err := x.Status(ctx, "team-x")
	if err != nil {
		t.Fatal(err)
	}
	if st.Producer.LiveVersion != 1 || len(st.Offerings) != 1 || st.Offerings[0].Instances != 1 || st.Failures != 0 {
		t.Fatalf("status: %+v", st)
	}
	ops, err := x.Operations(ctx, "team-x", false)
	if err != nil || len(ops) != 1 || ops[0].Kind != "provision" || ops[0].State != "succeeded" {
		t.Fatalf("operations: %+v %v", ops, err)
	}
	failed, err := x.Operations(ctx, "team-x", true)
	if err != nil || len(failed) != 0 {
		t.Fatalf("failed operations: %+v %v", failed, err)
	}
}

// ---------------------------------------------------------------------------

func rawGet(t *testing.T, url, user, pass string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth(user, pass)
	req.Header.Set("X-Broker-API-Version", "2.17")
	return do(t, req, http.StatusOK)
}

func rawGetToken(t *testing.T, url, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, req, http.StatusOK)
}

// osb sends an OSB request as a platform would.
func osb(t *testing.T, f *fixture, method, path string, body map[string]any, want int) string {
	t.Helper()
	var r io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		r = strings.NewReader(string(data))
	}
	req, _ := http.NewRequest(method, f.srv.URL+path, r)
	req.SetBasicAuth(adminUser, adminPass)
	req.Header.Set("X-Broker-API-Version", "2.17")
	req.Header.Set("Content-Type", "application/json")
	return do(t, req, want)
}

func do(t *testing.T, req *http.Request, want int) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s, want %d", req.Method, req.URL.Path, resp.StatusCode, data, want)
	}
	return string(data)
}

var _ = catalog.DeriveOfferingID
