package producers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/broker/catalog"
)

const baseCatalog = `
producers:
  - name: data-team
    contact: data@example.com
    offerings:
      - name: db
        description: A database.
        adapter: remote
        config: {url: "http://db.example.com", secret: s}
        plans: [{name: small, description: Small.}]
`

// stubAdapter is what the stub remote factory builds: it does nothing.
type stubAdapter struct{}

func (stubAdapter) Provision(context.Context, adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	return adapters.ProvisionResult{}, nil
}

func (stubAdapter) Deprovision(context.Context, adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	return adapters.DeprovisionResult{}, nil
}

func (stubAdapter) Bind(context.Context, adapters.BindRequest) (adapters.BindResult, error) {
	return adapters.BindResult{}, nil
}

func (stubAdapter) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}

// stubRemote decodes the remote adapter's settings strictly, so a slice
// with a mistyped config field fails as it would in production.
func stubRemote() adapters.Factory {
	return adapters.Factory{Name: "remote", New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
		var s struct {
			URL          string   `json:"url"`
			Secret       string   `json:"secret"`
			Capabilities []string `json:"capabilities"`
		}
		if err := cfg.Settings.Decode(&s); err != nil {
			return nil, err
		}
		return stubAdapter{}, nil
	}}
}

type testService struct {
	*Service
	store   *memStore
	secrets *memSecrets
	gated   []GateRequest
	failing map[string]bool // URLs whose gate fails
	// failingPlans are plan names whose gate fails, whatever the URL.
	failingPlans map[string]bool
	// unverified are the credential types the gate reports it could not
	// verify, per URL.
	unverified map[string][]string
}

func newTestService(t *testing.T) *testService {
	t.Helper()
	base, err := catalog.ParseSource("catalog.yml", []byte(baseCatalog))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := adapters.NewRegistry(stubRemote())
	if err != nil {
		t.Fatal(err)
	}
	ts := &testService{store: newMemStore(), secrets: &memSecrets{values: map[string]string{}}, failing: map[string]bool{}, failingPlans: map[string]bool{}, unverified: map[string][]string{}}
	build := catalog.BuildOptions{Registry: reg, Resolve: ts.secrets.resolve}
	cat, err := catalog.Build(context.Background(), build, base)
	if err != nil {
		t.Fatal(err)
	}
	ts.Service, err = New(Config{
		Store: ts.store, Base: []*catalog.File{base}, Build: build, Secrets: ts.secrets, Instances: noInstances{},
		Catalog: func() *catalog.Catalog { return cat }, Gate: ts.gate,
		AllowUnverifiedTypes: []string{"x-allowed"},
		Egress: func(_ context.Context, rawURL string) error {
			if strings.Contains(rawURL, "127.0.0.1") {
				return errors.New("refused: 127.0.0.1 is a loopback address (rule: loopback is refused unless gate.egress.allow lists it)")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func (ts *testService) gate(_ context.Context, req GateRequest) (conformance.Report, error) {
	ts.gated = append(ts.gated, req)
	r := conformance.Report{Results: []conformance.CheckResult{{Name: "provision", Passed: true}}}
	if ts.failing[req.URL] || (len(req.Plans) > 0 && ts.failingPlans[req.Plans[0].Plan.Name]) {
		r.Results = append(r.Results, conformance.CheckResult{Name: "unbind", Detail: "credentials still work", Hint: "revoke them"})
	}
	r.Unverified = ts.unverified[req.URL]
	return r, nil
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name     string
		req      CreateRequest
		wantKind error
		wantPath string // a problem path the error must carry
		wantText string
	}{
		{"valid", CreateRequest{Name: "team-x", Contact: "x@example.com"}, nil, "", ""},
		{"own namespace", CreateRequest{Name: "team-y", Contact: "y@example.com", Namespace: "yy-"}, nil, "", ""},
		{"no name", CreateRequest{Contact: "c"}, ErrInvalid, "name", "is required"},
		{"bad name", CreateRequest{Name: "Team_X", Contact: "c"}, ErrInvalid, "name", "lowercase"},
		{"no contact", CreateRequest{Name: "team-z"}, ErrInvalid, "contact", "who to call"},
		{"bad namespace", CreateRequest{Name: "team-z", Contact: "c", Namespace: "zz"}, ErrInvalid, "namespace", `ending in "-"`},
		{"a catalog.yml section's name", CreateRequest{Name: "data-team", Contact: "c"}, ErrConflict, "", "catalog.yml"},
		{"taken", CreateRequest{Name: "team-x", Contact: "c", Namespace: "elsewhere-"}, ErrConflict, "", "already exists"},
		{"inside another's namespace", CreateRequest{Name: "team-x-db", Contact: "c"}, ErrConflict, "", "overlaps"},
		{"around another's namespace", CreateRequest{Name: "team", Contact: "c"}, ErrConflict, "", "overlaps"},
	}
	ts := newTestService(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created, err := ts.Create(context.Background(), tt.req)
			if tt.wantKind == nil {
				if err != nil {
					t.Fatal(err)
				}
				if created.Token == "" || created.Producer.State != StateActive {
					t.Errorf("created %+v", created)
				}
				return
			}
			var pe *Error
			if !errors.Is(err, tt.wantKind) || !errors.As(err, &pe) {
				t.Fatalf("err = %v, want %v", err, tt.wantKind)
			}
			text := pe.Message
			for _, p := range pe.Problems {
				text += " | " + p.Path + ": " + p.Message
			}
			if !strings.Contains(text, tt.wantText) || (tt.wantPath != "" && !strings.Contains(text, tt.wantPath+": ")) {
				t.Errorf("error %q does not name %q at %q", text, tt.wantText, tt.wantPath)
			}
		})
	}
}

func TestTokensAndStates(t *testing.T) {
	ctx := context.Background()
	ts := newTestService(t)
	reg, err := ts.Register(ctx, CreateRequest{Name: "self", Contact: "s@example.com", AutoApproveSlices: true})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Producer.State != StatePending || reg.Producer.AutoApproveSlices {
		t.Errorf("a self-registered producer is %+v, want pending and not trusted", reg.Producer)
	}
	if p, err := ts.Authenticate(ctx, reg.Token); err != nil || p.Name != "self" {
		t.Fatalf("Authenticate = %+v %v", p, err)
	}
	if _, err := ts.Apply(ctx, "self", "producer:self", []byte(sliceText("self-files", "http://files.example.com"))); !errors.Is(err, ErrForbidden) {
		t.Errorf("a pending producer applied a slice: %v", err)
	}
	if _, err := ts.Approve(ctx, "self", "admin:ops"); err != nil {
		t.Fatal(err)
	}
	rotated, err := ts.RotateToken(ctx, "self", "admin:ops")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Authenticate(ctx, reg.Token); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("the token before rotation still works: %v", err)
	}
	if _, err := ts.Authenticate(ctx, rotated.Token); err != nil {
		t.Errorf("the rotated token does not work: %v", err)
	}
	for _, bad := range []string{"", "agp_self_", "agp_nobody_abc", rotated.Token + "x"} {
		if _, err := ts.Authenticate(ctx, bad); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want unauthenticated", bad, err)
		}
	}
}

func sliceText(offering, url string) string {
	return `offerings:
  - name: ` + offering + `
    description: Files.
    adapter: remote
    config: {url: "` + url + `", secret: "protocol-secret"}
    plans: [{name: small, description: Small.}]
`
}

func TestApplyRules(t *testing.T) {
	tests := []struct {
		name     string
		slice    string
		wantPath string
		wantText string
	}{
		{"outside her namespace", sliceText("other-files", "http://f"), "offerings[0].name", `must start with "team-x-"`},
		{"not the remote adapter", strings.Replace(sliceText("team-x-files", "http://f"), "adapter: remote", "adapter: postgres", 1), "offerings[0].adapter", "remote"},
		{"a vault reference", sliceText("team-x-files", "vault:secret/x#y"), "offerings[0].config.url", "vault references are not allowed"},
		{"a vault secret", strings.Replace(sliceText("team-x-files", "http://f"), `secret: "protocol-secret"`, `secret: "vault:secret/x#k"`, 1), "offerings[0].config.secret", "plain value"},
		{"files on Agora's host", strings.Replace(sliceText("team-x-files", "http://f"), "secret: ", "tls: {ca_file: /etc/passwd}, secret: ", 1), "offerings[0].config.tls", "files on Agora's host"},
		{"another producer's name", "name: data-team\n" + sliceText("team-x-files", "http://f"), "name", `belongs to producer "team-x"`},
		{"an upstream broker", "upstream: {url: http://osb}\n" + sliceText("team-x-files", "http://f"), "upstream", "cannot import"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestService(t)
			ctx := context.Background()
			if _, err := ts.Create(ctx, CreateRequest{Name: "team-x", Contact: "x@example.com"}); err != nil {
				t.Fatal(err)
			}
			_, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(tt.slice))
			var pe *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &pe) {
				t.Fatalf("Apply = %v, want invalid", err)
			}
			found := false
			for _, p := range pe.Problems {
				found = found || (strings.HasPrefix(p.Path, tt.wantPath) && strings.Contains(p.Message, tt.wantText))
			}
			if !found {
				t.Errorf("problems %+v do not name %q at %q", pe.Problems, tt.wantText, tt.wantPath)
			}
			if len(ts.gated) != 0 {
				t.Error("an invalid slice reached the gate")
			}
			if vs, _ := ts.store.Versions(ctx, "team-x"); len(vs) != 0 {
				t.Errorf("an invalid slice was stored: %+v", vs)
			}
		})
	}
}

func TestApplyGatesStoresAndGoesLive(t *testing.T) {
	ctx := context.Background()
	ts := newTestService(t)
	if _, err := ts.Create(ctx, CreateRequest{Name: "team-x", Contact: "x@example.com"}); err != nil {
		t.Fatal(err)
	}

	ts.failing["http://broken"] = true
	res, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(sliceText("team-x-files", "http://broken")))
	if err != nil {
		t.Fatalf("Apply with a failing gate = %v, want the version stored pending with the report", err)
	}
	if res.Status != SlicePendingApproval || res.Gate == nil || !res.Gate.Failed || res.Gate.AutoApprovable() {
		t.Fatalf("Apply with a failing gate = %+v, want pending, failed, not auto-approvable", res)
	}
	if sv, _ := ts.store.Version(ctx, "team-x", res.Version); sv.Gate == nil || !sv.Gate.Failed || sv.Gate.Checks[1].Hint != "revoke them" {
		t.Fatalf("the stored version does not keep the failing report for the platform engineer: %+v", sv.Gate)
	}

	res, err = ts.Apply(ctx, "team-x", "producer:team-x", []byte(sliceText("team-x-files", "http://good")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != SlicePendingApproval || res.Version != 2 {
		t.Fatalf("result %+v, want version 2 pending", res)
	}
	stored, err := ts.store.Version(ctx, "team-x", res.Version)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored.Slice, "protocol-secret") || !strings.Contains(stored.Slice, "vault:secret/agora/producers/team-x/secret#v2.team-x-files") {
		t.Errorf("the stored slice keeps the secret or lacks its reference:\n%s", stored.Slice)
	}
	if gen, _ := ts.store.Generation(ctx); gen != 0 {
		t.Errorf("a pending version moved the generation to %d", gen)
	}

	if _, err := ts.ApproveSlice(ctx, "team-x", res.Version, "admin:ops"); err != nil {
		t.Fatal(err)
	}
	rec, _ := ts.store.Get(ctx, "team-x")
	if gen, _ := ts.store.Generation(ctx); rec.LiveVersion != 2 || gen != 1 {
		t.Errorf("after approval: live v%d, generation %d; want v2 and 1", rec.LiveVersion, gen)
	}
	if _, err := ts.RejectSlice(ctx, "team-x", res.Version, "admin:ops", "no"); !errors.Is(err, ErrConflict) {
		t.Errorf("rejecting the live version: %v, want a conflict", err)
	}
}

func TestTheGateRunsOnEveryApply(t *testing.T) {
	ctx := context.Background()
	ts := newTestService(t)
	if _, err := ts.Create(ctx, CreateRequest{Name: "team-x", Contact: "x@example.com", AutoApproveSlices: true}); err != nil {
		t.Fatal(err)
	}
	v1 := sliceText("team-x-files", "http://files")
	if res, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(v1)); err != nil || res.Status != SliceLive {
		t.Fatalf("v1: %+v %v", res, err)
	}
	// An adapter can break without its slice changing: a new description
	// sends it through the whole kit again.
	described := strings.Replace(v1, "description: Files.", "description: Files, now with a better description.", 1)
	ts.failing["http://files"] = true
	res, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(described))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts.gated) != 2 {
		t.Fatalf("gated %d times, want 2 (every apply)", len(ts.gated))
	}
	if res.Status != SlicePendingApproval {
		t.Errorf("v2 with a failing check is %s, want pending_approval although she is trusted", res.Status)
	}
	if !slices.ContainsFunc(res.Warnings, func(w string) bool {
		return strings.Contains(w, "not approved automatically") && strings.Contains(w, "unbind")
	}) {
		t.Errorf("the warnings %q do not say which check kept v2 from automatic approval", res.Warnings)
	}
	if rec, _ := ts.store.Get(ctx, "team-x"); rec.LiveVersion != 1 {
		t.Errorf("live version %d, want 1", rec.LiveVersion)
	}
	if st, err := ts.Status(ctx, "team-x"); err != nil || st.Latest == nil || st.Latest.Version != res.Version || !st.Latest.Gate.Failed {
		t.Errorf("her status does not carry the latest version's failing report: %+v %v", st, err)
	}
	// The platform engineer may still decide otherwise, with the report.
	ar, err := ts.ApproveSlice(ctx, "team-x", res.Version, "admin:ops")
	if err != nil || ar.Status != SliceLive || ar.Gate == nil || !ar.Gate.Failed {
		t.Errorf("approval of the failing version: %+v %v, want live with its report", ar, err)
	}
}

func TestAutoApprovalNeedsVerifiedCredentialTypes(t *testing.T) {
	ctx := context.Background()
	ts := newTestService(t)
	if _, err := ts.Create(ctx, CreateRequest{Name: "team-x", Contact: "x@example.com", AutoApproveSlices: true}); err != nil {
		t.Fatal(err)
	}
	ts.unverified["http://custom"] = []string{"x-custom"}
	res, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(sliceText("team-x-files", "http://custom")))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != SlicePendingApproval || res.Gate.Failed || !slices.Equal(res.Gate.Unverified, []string{"team-x-files: x-custom"}) {
		t.Fatalf("an unverified type: %+v (gate %+v), want pending, not failed, unverified named", res, res.Gate)
	}
	if len(res.Gate.NotAutoApprovable) != 1 || !strings.Contains(res.Gate.NotAutoApprovable[0], "gate.allow_unverified_types") {
		t.Errorf("the reason %q does not name the setting that allows the type", res.Gate.NotAutoApprovable)
	}
	ts.unverified["http://allowed"] = []string{"x-allowed"}
	res, err = ts.Apply(ctx, "team-x", "producer:team-x", []byte(sliceText("team-x-files", "http://allowed")))
	if err != nil || res.Status != SliceLive {
		t.Fatalf("a type the platform engineer allows: %+v %v, want live", res, err)
	}
	if !slices.Equal(res.Gate.Unverified, []string{"team-x-files: x-allowed"}) {
		t.Errorf("an allowed unverified type must still be shown: %+v", res.Gate.Unverified)
	}
}

func TestEgressRefusalIsA400BeforeAnyRequest(t *testing.T) {
	ctx := context.Background()
	ts := newTestService(t)
	if _, err := ts.Create(ctx, CreateRequest{Name: "team-x", Contact: "x@example.com", AutoApproveSlices: true}); err != nil {
		t.Fatal(err)
	}
	_, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(sliceText("team-x-files", "http://127.0.0.1:6379")))
	var pe *Error
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &pe) || len(pe.Problems) != 1 || pe.Problems[0].Path != "offerings[0].config.url" ||
		!strings.Contains(pe.Problems[0].Message, "rule") {
		t.Fatalf("Apply of a refused URL = %v, want 400 at offerings[0].config.url naming the rule", err)
	}
	if len(ts.gated) != 0 {
		t.Error("the gate called a refused URL")
	}
	if vs, _ := ts.store.Versions(ctx, "team-x"); len(vs) != 0 || len(ts.secrets.values) != 0 {
		t.Errorf("a refused slice left a version %v or a secret %v", vs, ts.secrets.values)
	}
}

// TestApplyReportsAnUnknownFieldWithEveryOtherProblem: an unknown field
// does not hide the slice's other problems, and nothing is stored.
func TestApplyReportsAnUnknownFieldWithEveryOtherProblem(t *testing.T) {
	ts := newTestService(t)
	ctx := context.Background()
	if _, err := ts.Create(ctx, CreateRequest{Name: "team-x", Contact: "x@example.com"}); err != nil {
		t.Fatal(err)
	}
	slice := strings.Replace(sliceText("other-files", "http://f"), "adapter: remote", "adapter: remote\n    colour: red", 1)
	_, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(slice))
	var pe *Error
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &pe) {
		t.Fatalf("Apply = %v, want invalid", err)
	}
	var got []string
	for _, p := range pe.Problems {
		got = append(got, fmt.Sprintf("%s (line %d): %s", p.Path, p.Line, p.Message))
	}
	want := []string{
		`offerings[0].name (line 2): "other-files" is outside your namespace`,
		`offerings[0].colour (line 5): unknown field "colour"`,
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("problems lack %q:\n%s", w, strings.Join(got, "\n"))
		}
	}
	if len(ts.gated) != 0 {
		t.Error("a slice with an unknown field reached the gate")
	}
	if vs, _ := ts.store.Versions(ctx, "team-x"); len(vs) != 0 {
		t.Errorf("a slice with an unknown field was stored: %+v", vs)
	}
}

// TestTheGateGetsThePlansProvisionSchemas: the kit derives invalid
// parameters from a plan's schemas.service_instance.create.parameters,
// so the gate must receive them, by plan ID, in JSON's shapes.
func TestTheGateGetsThePlansProvisionSchemas(t *testing.T) {
	ctx := context.Background()
	ts := newTestService(t)
	if _, err := ts.Create(ctx, CreateRequest{Name: "team-x", Contact: "x@example.com"}); err != nil {
		t.Fatal(err)
	}
	slice := strings.Replace(sliceText("team-x-files", "http://files"), "    plans: [{name: small, description: Small.}]\n", `    plans:
      - name: small
        description: Small.
        schemas:
          service_instance:
            create:
              parameters:
                $schema: "http://json-schema.org/draft-04/schema#"
                type: object
                properties:
                  size: {type: integer, maximum: 10}
      - name: large
        description: Large, no parameters.
`, 1)
	if _, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(slice)); err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			t.Fatalf("%v: %+v", err, pe.Problems)
		}
		t.Fatal(err)
	}
	if len(ts.gated) != 2 {
		t.Fatalf("gated %d times, want once per plan", len(ts.gated))
	}
	for i, want := range []string{"small", "large"} {
		if req := ts.gated[i]; len(req.Plans) != 1 || req.Plans[0].Plan.Name != want {
			t.Fatalf("run %d judged plans %+v, want only %s", i, req.Plans, want)
		}
	}
	small := ts.gated[0].ProvisionSchemas[ts.gated[0].Plans[0].Plan.ID]
	props, _ := small["properties"].(map[string]any)
	size, _ := props["size"].(map[string]any)
	if size["maximum"] != 10.0 {
		t.Errorf("small's schema %#v, want properties.size.maximum 10 as JSON decodes it", small)
	}
	if len(ts.gated[1].ProvisionSchemas) != 0 {
		t.Errorf("large has no schema, yet its run got one: %#v", ts.gated[1].ProvisionSchemas)
	}
}

// TestTheGateJudgesEveryPlan: a slice whose first plan passes and whose
// second fails is not approved automatically, and the report and the
// reason name the failing plan.
func TestTheGateJudgesEveryPlan(t *testing.T) {
	ctx := context.Background()
	ts := newTestService(t)
	if _, err := ts.Create(ctx, CreateRequest{Name: "team-x", Contact: "x@example.com", AutoApproveSlices: true}); err != nil {
		t.Fatal(err)
	}
	ts.failingPlans["large"] = true
	slice := strings.Replace(sliceText("team-x-files", "http://files"), "    plans: [{name: small, description: Small.}]\n",
		"    plans: [{name: small, description: Small.}, {name: large, description: Large.}]\n", 1)
	res, err := ts.Apply(ctx, "team-x", "producer:team-x", []byte(slice))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != SlicePendingApproval || !res.Gate.Failed || res.Gate.AutoApprovable() {
		t.Fatalf("a failing second plan: %+v (gate %+v), want pending, failed, not auto-approvable", res, res.Gate)
	}
	if len(res.Gate.NotAutoApprovable) != 1 || !strings.Contains(res.Gate.NotAutoApprovable[0], "offering team-x-files plan large") {
		t.Errorf("the reasons %q do not name offering and plan", res.Gate.NotAutoApprovable)
	}
	var failedOn []string
	for _, c := range res.Gate.Checks {
		if c.Offering != "team-x-files" || (c.Plan != "small" && c.Plan != "large") {
			t.Errorf("check %+v does not say its offering and plan", c)
		}
		if c.Result == "fail" {
			failedOn = append(failedOn, c.Plan+"/"+c.Name)
		}
	}
	if !slices.Equal(failedOn, []string{"large/unbind"}) {
		t.Errorf("failed checks %v, want only large/unbind", failedOn)
	}
}
