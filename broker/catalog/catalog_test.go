package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/agora-osb/agora/adapters"
)

func parseFixture(tb testing.TB, name string) *File {
	tb.Helper()
	f, err := ParseFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatalf("parse %s: %v", name, err)
	}
	return f
}

func goodVault() *fakeVault {
	return &fakeVault{secrets: map[string]string{
		"agora/admin/kv#password":  "kv-admin-pw",
		"agora/admin/svc#password": "svc-admin-pw",
	}}
}

func buildGood(t *testing.T) (*Catalog, *fakes) {
	t.Helper()
	rec := &fakes{}
	c, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: goodVault().resolve}, parseFixture(t, "good.yml"))
	if err != nil {
		t.Fatalf("Build(good.yml): %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, rec
}

func validationErrors(t *testing.T, err error) []FieldError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T: %v", err, err)
	}
	return ve.Errors
}

// wantError is one expected problem: its exact path and a telling part of
// its message.
type wantError struct {
	path, msg string
	line      int
}

func checkErrors(t *testing.T, got []FieldError, want []wantError) {
	t.Helper()
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			t.Errorf("missing error %d: %s: ...%s...", i, want[i].path, want[i].msg)
		case i >= len(want):
			t.Errorf("unexpected error %d: %s", i, got[i])
		default:
			if got[i].Path != want[i].path || !strings.Contains(got[i].Message, want[i].msg) {
				t.Errorf("error %d:\n got  %s\n want %s: ...%s...", i, got[i], want[i].path, want[i].msg)
			}
			if want[i].line != 0 && got[i].Line != want[i].line {
				t.Errorf("error %d (%s): line %d, want %d", i, got[i].Path, got[i].Line, want[i].line)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		fixture string
		want    []wantError
	}{
		{"bad_unknown_field.yml", []wantError{
			{"producers[0].offerings[0].plans[0].colour", `unknown field "colour"`, 11},
			{"producers[0].offerings[0].plans[0].sync", `unknown field "sync"`, 12},
		}},
		{"bad_wrong_type.yml", []wantError{
			{"producers[0].offerings[0].bindable", "cannot unmarshal !!str `maybe` into bool", 8},
			// A block value: yaml.v3 names the line of its first entry.
			{"producers[0].offerings[0].plans", "cannot unmarshal !!map into a list", 10},
		}},
		{"bad_syntax.yml", []wantError{
			{"", "YAML syntax error: did not find expected '-' indicator", 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			path := filepath.Join("testdata", tt.fixture)
			_, err := ParseFile(path)
			got := validationErrors(t, err)
			checkErrors(t, got, tt.want)
			for _, fe := range got {
				if fe.Source != path {
					t.Errorf("source = %q, want %q", fe.Source, path)
				}
			}
		})
	}
}

func TestParseAcceptsJSONAndEmpty(t *testing.T) {
	f, err := ParseSource("slice.json", []byte(`{"producers":[{"name":"t","contact":"c","offerings":[{"name":"o","description":"d","adapter":"fake","config":{"region":"x"},"plans":[{"name":"p","description":"d"}]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Producers[0].Offerings[0].Plans[0].Name; got != "p" {
		t.Errorf("plan name = %q", got)
	}
	if _, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, &fakes{})}, f); err != nil {
		t.Errorf("Build(JSON slice): %v", err)
	}

	empty, err := Parse([]byte("# nothing yet\n"))
	if err != nil || len(empty.Producers) != 0 {
		t.Fatalf("Parse(comment only) = %v, %v", empty, err)
	}
	c, err := Build(context.Background(), BuildOptions{}, empty)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(c.JSON()); got != `{"services":[]}` {
		t.Errorf("empty catalog body = %s", got)
	}

	if _, err := Parse([]byte("producers: []\n---\nproducers: []\n")); err == nil {
		t.Error("two YAML documents were accepted")
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		fixture string
		want    []wantError
	}{
		{"bad_duplicate_producer.yml", []wantError{
			{"producers[1].name", `duplicate of producers[0].name ("team-a")`, 4},
		}},
		{"bad_duplicate_offering_name.yml", []wantError{
			{"producers[1].offerings[0].name", `duplicate of producers[0].offerings[0].name ("svc")`, 13},
		}},
		{"bad_duplicate_plan_id.yml", []wantError{
			{"producers[0].offerings[1].plans[0].id", `duplicate of producers[0].offerings[0].plans[0].id ("shared-plan-id")`, 14},
		}},
		{"bad_id_shared_by_offering_and_plan.yml", []wantError{
			{"producers[0].offerings[0].plans[0].id", `duplicate of producers[0].offerings[0].id ("same-id")`, 10},
		}},
		// Same plan name twice in one offering: the name clashes, and so
		// does the ID derived from it, which has no line of its own.
		{"bad_duplicate_plan_name.yml", []wantError{
			{"producers[0].offerings[0].plans[1].name", `duplicate of producers[0].offerings[0].plans[0].name ("basic")`, 10},
			{"producers[0].offerings[0].plans[1].id", `duplicate of producers[0].offerings[0].plans[0].id ("` + DerivePlanID("team-a", "svc", "basic") + `")`, 10},
		}},
		{"bad_missing_required.yml", []wantError{
			{"producers[0].contact", "is required", 2},
			{"producers[0].offerings[0].description", "is required", 4},
			{"producers[0].offerings[0].plans[0].description", "is required", 7},
		}},
		{"bad_names.yml", []wantError{
			{"producers[0].name", `"Team_A" must be lowercase letters, digits and inner hyphens`, 2},
			{"producers[0].offerings[0].name", `"My Service" must be lowercase`, 5},
			{"producers[0].offerings[0].plans[0].name", `"-" must be letters, digits, periods and inner hyphens`, 9},
		}},
		{"bad_id_chars.yml", []wantError{
			{"producers[0].offerings[0].id", `"svc/with slash" must be only letters, digits and . _ ~ - (URL-safe)`, 6},
		}},
		{"bad_unregistered_adapter.yml", []wantError{
			{"producers[0].offerings[0].adapter", `adapter "postgres" is not registered (registered: fake, fake-updater, secrets)`, 7},
		}},
		// errors.Join from the factory: one line per problem.
		{"bad_adapter_config.yml", []wantError{
			{"producers[0].offerings[0].config", `adapter "fake": region is required`, 8},
			{"producers[0].offerings[0].config", `adapter "fake": port must be between 1 and 65535`, 8},
		}},
		{"bad_adapter_unknown_setting.yml", []wantError{
			{"producers[0].offerings[0].config", `unknown field "regoin"`, 8},
		}},
		{"bad_schema_no_dollar_schema.yml", []wantError{
			{"producers[0].offerings[0].plans[0].schemas.service_instance.create.parameters", `$schema is required and must be "http://json-schema.org/draft-04/schema#"`, 14},
		}},
		{"bad_schema_wrong_draft.yml", []wantError{
			{"producers[0].offerings[0].plans[0].schemas.service_binding.create.parameters.$schema", `got "https://json-schema.org/draft/2020-12/schema"`, 15},
		}},
		{"bad_schema_external_ref.yml", []wantError{
			{"producers[0].offerings[0].plans[0].schemas.service_instance.create.parameters.properties.size.$ref", `external reference "https://example.com/size.json" not allowed`, 18},
		}},
		{"bad_schema_invalid.yml", []wantError{
			{"producers[0].offerings[0].plans[0].schemas.service_instance.update.parameters.properties.size.type", "invalid JSON schema (draft-04): value must be one of 'array'", 18},
		}},
		{"bad_semver.yml", []wantError{
			{"producers[0].offerings[0].plans[0].maintenance_info.version", `"v1.0" is not a semantic version`, 11},
		}},
		{"bad_timeout.yml", []wantError{
			{"producers[0].offerings[0].plans[0].operation_timeout", `"1 hour" is not a duration`, 9},
			{"producers[0].offerings[0].plans[1].operation_timeout", "must be greater than zero", 10},
			{"producers[0].offerings[0].plans[2].maximum_polling_duration", "600s is shorter than operation_timeout (2h0m0s)", 11},
		}},
		{"bad_requires.yml", []wantError{
			{"producers[0].offerings[0].requires[1]", `"network_access" is not an OSB permission`, 8},
		}},
		{"bad_no_plans.yml", []wantError{
			{"producers[0].offerings[0].plans", "at least one plan", 8},
		}},
		{"bad_updater.yml", []wantError{
			{"producers[0].offerings[0].plans[0].plan_updateable", `must be false: adapter "fake" cannot update instances`, 9},
		}},
		// Rotation needs bindings: judged on the plan's effective bindable.
		{"bad_rotatable.yml", []wantError{
			{"producers[0].offerings[0].plans[0].binding_rotatable", "must be false: the plan is not bindable", 10},
		}},
		{"bad_vault_malformed.yml", []wantError{
			{"producers[0].offerings[0].config.password", "is not of the form vault:<path>#<key>", 9},
		}},
		{"bad_metadata.yml", []wantError{
			{"producers[0].offerings[0].metadata", "must be a mapping", 8},
			{"producers[0].offerings[0].plans[0].metadata", "does not follow the OSB metadata conventions: costs.amount must be a number, not string", 12},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			rec := &fakes{}
			_, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: goodVault().resolve}, parseFixture(t, tt.fixture))
			checkErrors(t, validationErrors(t, err), tt.want)
			for _, a := range rec.built {
				if a.closeCount() != 1 {
					t.Errorf("adapter of %q closed %d times after a failed Build, want 1", a.offering, a.closeCount())
				}
			}
		})
	}
}

// TestEveryErrorReportedAtOnce pins the whole report for a catalog with
// many problems: all of them, each with its path and line, in file order.
func TestEveryErrorReportedAtOnce(t *testing.T) {
	_, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, &fakes{})}, parseFixture(t, "many_errors.yml"))
	if err == nil {
		t.Fatal("Build(many_errors.yml) succeeded")
	}
	want := strings.Join([]string{
		`testdata/many_errors.yml: producers[0].offerings[0].config: adapter "fake": region is required (line 8)`,
		`testdata/many_errors.yml: producers[0].offerings[0].plans[0].maintenance_info.version: "1.0" is not a semantic version (such as 1.2.3) (line 14)`,
		`testdata/many_errors.yml: producers[0].offerings[0].plans[1].name: duplicate of producers[0].offerings[0].plans[0].name ("basic") (line 15)`,
		`testdata/many_errors.yml: producers[0].offerings[0].plans[1].operation_timeout: "soon" is not a duration such as 30m or 2h (line 17)`,
		`testdata/many_errors.yml: producers[1].name: duplicate of producers[0].name ("team-a") (line 18)`,
		`testdata/many_errors.yml: producers[1].contact: is required (line 19)`,
		`testdata/many_errors.yml: producers[1].offerings[0].name: duplicate of producers[0].offerings[0].name ("svc") (line 21)`,
		`testdata/many_errors.yml: producers[1].offerings[0].id: duplicate of producers[0].offerings[0].plans[0].id ("plan-one") (line 22)`,
		`testdata/many_errors.yml: producers[1].offerings[0].description: is required (line 23)`,
		`testdata/many_errors.yml: producers[1].offerings[0].adapter: adapter "missing" is not registered (registered: fake, fake-updater, secrets) (line 24)`,
		`testdata/many_errors.yml: producers[1].offerings[0].requires[0]: "teleport" is not an OSB permission (syslog_drain, route_forwarding, volume_mount) (line 25)`,
		`testdata/many_errors.yml: producers[1].offerings[0].plans[0].schemas.service_instance.create.parameters: $schema is required and must be "http://json-schema.org/draft-04/schema#" (line 32)`,
		`testdata/many_errors.yml: producers[1].offerings[0].plans[0].schemas.service_instance.create.parameters.properties.x.$ref: external reference "other.json#/x" not allowed; only local references (#/...) are (line 35)`,
		`testdata/many_errors.yml: producers[1].offerings[1].plans: an offering needs at least one plan (line 36)`,
	}, "\n")
	if got := err.Error(); got != want {
		t.Errorf("report:\n%s\n\nwant:\n%s", got, want)
	}
}

func TestMultipleSources(t *testing.T) {
	base := parseFixture(t, "good.yml")
	slice, err := ParseSource("redis:analytics", []byte(`
producers:
  - name: analytics
    contact: analytics@example.com
    offerings:
      - name: kv
        description: Clashes with platform-team's kv.
        adapter: fake
        plans:
          - name: small
            id: 7f0c8a4e-large-plan-fixed-id
            description: Reuses a plan ID from catalog.yml.
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, &fakes{}), Resolve: goodVault().resolve}, base, slice)
	want := strings.Join([]string{
		`redis:analytics: producers[0].offerings[0].name: duplicate of testdata/good.yml: producers[0].offerings[0].name ("kv") (line 6)`,
		`redis:analytics: producers[0].offerings[0].plans[0].id: duplicate of testdata/good.yml: producers[0].offerings[0].plans[1].id ("7f0c8a4e-large-plan-fixed-id") (line 11)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("report:\n%v\n\nwant:\n%s", err, want)
	}
}

// The golden values below are what platforms already know; if this test
// fails, every derived ID in every deployment has changed.
func TestDerivedIDsAreStable(t *testing.T) {
	tests := []struct{ got, want string }{
		{DeriveOfferingID("platform-team", "secrets"), "06a8a546-bcf9-58b0-92c9-b2ffc466192b"},
		{DerivePlanID("platform-team", "secrets", "standard"), "334db4bf-b21d-5684-84c9-1ae27476cc1c"},
		{DerivePlanID("platform-team", "secrets", "async"), "12e63523-239a-56e5-9405-eca2a4173ad6"},
		{DeriveOfferingID("platform-team", "kv"), "363166f8-d5ad-5159-8594-0f9f72d7e2a6"},
		{DerivePlanID("platform-team", "kv", "small"), "04bd899a-0800-5645-910f-1a7026ad16be"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("derived ID %s, want %s", tt.got, tt.want)
		}
		if u := uuid.MustParse(tt.got); u.Version() != 5 {
			t.Errorf("%s is UUID version %d, want 5", tt.got, u.Version())
		}
	}

	// And Build uses them, identically on every build (every replica).
	c1, _ := buildGood(t)
	c2, _ := buildGood(t)
	if !bytes.Equal(c1.JSON(), c2.JSON()) {
		t.Error("two builds of the same catalog produced different bodies")
	}
	if _, ok := c1.Offering("363166f8-d5ad-5159-8594-0f9f72d7e2a6"); !ok {
		t.Error("offering kv not found under its derived ID")
	}
}

func TestBuildGood(t *testing.T) {
	c, rec := buildGood(t)

	offerings := c.Offerings()
	if len(offerings) != 2 || offerings[0].Name != "kv" || offerings[1].Name != "queue" {
		t.Fatalf("offerings = %v", offerings)
	}
	kv, queue := offerings[0], offerings[1]
	if kv.ID != DeriveOfferingID("platform-team", "kv") || queue.ID != "queue-offering-fixed-id" {
		t.Errorf("offering IDs = %s, %s", kv.ID, queue.ID)
	}
	if kv.Producer != "platform-team" || kv.Contact != "platform@example.com" || kv.AdapterName != "fake" || kv.Adapter == nil {
		t.Errorf("kv = %+v", kv)
	}
	// Defaults: bindable, instances_retrievable, bindings_retrievable are
	// true unless said otherwise.
	if !kv.Bindable || !kv.InstancesRetrievable || !kv.BindingsRetrievable || kv.PlanUpdateable || kv.AllowContextUpdates {
		t.Errorf("kv flags = %+v", kv)
	}
	if queue.Bindable || queue.InstancesRetrievable || queue.BindingsRetrievable || !queue.PlanUpdateable || !queue.AllowContextUpdates {
		t.Errorf("queue flags = %+v", queue)
	}

	small, large := kv.Plans[0], kv.Plans[1]
	if small.ID != DerivePlanID("platform-team", "kv", "small") || large.ID != "7f0c8a4e-large-plan-fixed-id" {
		t.Errorf("plan IDs = %s, %s", small.ID, large.ID)
	}
	if small.Async || small.OperationTimeout != time.Hour || !small.Bindable || !small.Free || small.MaximumPollingDuration != 0 {
		t.Errorf("small = %+v", small)
	}
	if !large.Async || large.OperationTimeout != 30*time.Minute || large.Bindable || large.Free || large.MaximumPollingDuration != time.Hour {
		t.Errorf("large = %+v", large)
	}
	if small.MaintenanceInfo == nil || small.MaintenanceInfo.Version != "1.2.3+build.7" {
		t.Errorf("small maintenance info = %+v", small.MaintenanceInfo)
	}
	if shared := queue.Plans[0]; shared.PlanUpdateable || shared.Bindable {
		t.Errorf("shared plan effective flags: plan_updateable %v (plan says false), bindable %v (offering says false)", shared.PlanUpdateable, shared.Bindable)
	}
	if !small.BindingRotatable || !small.SensitiveParameters || large.BindingRotatable || large.SensitiveParameters {
		t.Errorf("rotation and sensitive flags: small %v %v (both set), large %v %v (neither)",
			small.BindingRotatable, small.SensitiveParameters, large.BindingRotatable, large.SensitiveParameters)
	}
	if !kv.OmitBindingEndpoints || queue.OmitBindingEndpoints {
		t.Errorf("omit_binding_endpoints: kv %v (set), queue %v (not)", kv.OmitBindingEndpoints, queue.OmitBindingEndpoints)
	}
	if got := small.Ref(); got != (adapters.Plan{ID: small.ID, Name: "small"}) {
		t.Errorf("Ref() = %+v", got)
	}

	// Lookups: a plan is found only with its own offering.
	if o, p, ok := c.Plan(kv.ID, large.ID); !ok || o != kv || p != large {
		t.Errorf("Plan(kv, large) = %v, %v, %v", o, p, ok)
	}
	if _, _, ok := c.Plan(queue.ID, large.ID); ok {
		t.Error("Plan(queue, kv's plan) was found")
	}
	if _, _, ok := c.Plan("nope", large.ID); ok {
		t.Error("Plan(unknown service) was found")
	}
	if _, ok := c.Offering("nope"); ok {
		t.Error("Offering(unknown) was found")
	}

	// The factory saw the decoded config, with plan IDs already derived.
	a := rec.byOffering(t, "kv")
	if a.settings.Region != "eu-west-1" || a.plans["small"].Size != 1 || a.plans["large"].Size != 8 {
		t.Errorf("adapter config = %+v %+v", a.settings, a.plans)
	}
	if a.planIDs["small"] != small.ID {
		t.Errorf("factory saw plan ID %q, catalog has %q", a.planIDs["small"], small.ID)
	}

	// brokerapi's view carries the same IDs and flags.
	services := c.Services()
	if len(services) != 2 || services[0].ID != kv.ID || services[0].Plans[1].ID != large.ID {
		t.Fatalf("Services() = %+v", services)
	}
	if *services[0].Plans[1].Free || *services[0].Plans[1].Bindable {
		t.Error("domain plan large: free and bindable must be false")
	}
	if md := services[0].Metadata; md == nil || md.DisplayName != "Key Value" || md.Shareable == nil || !*md.Shareable {
		t.Errorf("domain metadata = %+v", md)
	}
	if services[0].Plans[0].Schemas == nil || services[0].Plans[0].Schemas.Instance.Create.Parameters["$schema"] != draft04 {
		t.Error("domain schema for small missing")
	}
}

// TestCatalogJSONMatchesSpec decodes the body and checks it against the OSB
// catalog shape (testdata/osb_catalog_schema.json, from openapi.yaml),
// closed so no Agora-only field leaks, and for the absence of nulls.
func TestCatalogJSONMatchesSpec(t *testing.T) {
	c, _ := buildGood(t)
	body := c.JSON()

	if bytes.Contains(body, []byte("null")) {
		t.Errorf("body contains null: %s", body)
	}
	compiler := jsonschema.NewCompiler()
	spec, err := compiler.Compile("testdata/osb_catalog_schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := spec.Validate(doc); err != nil {
		t.Fatalf("body does not match the OSB catalog shape: %v\n%s", err, body)
	}

	var got struct {
		Services []map[string]json.RawMessage `json:"services"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	kv, queue := got.Services[0], got.Services[1]
	var plans []map[string]json.RawMessage
	if err := json.Unmarshal(kv["plans"], &plans); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name string
		raw  json.RawMessage
		want string
	}{
		{"kv.id", kv["id"], `"363166f8-d5ad-5159-8594-0f9f72d7e2a6"`},
		{"kv.bindable", kv["bindable"], `true`},
		{"kv.instances_retrievable", kv["instances_retrievable"], `true`},
		{"kv.requires", kv["requires"], `["syslog_drain"]`},
		{"kv.tags", kv["tags"], `["kv","cache"]`},
		// Metadata passes through, conventions and custom fields alike.
		{"kv.metadata", kv["metadata"], `{"custom_field":"kept","displayName":"Key Value","imageUrl":"https://example.com/kv.png","shareable":true}`},
		{"kv.plan_updateable (false is left out)", kv["plan_updateable"], ``},
		{"kv.config (never on the wire)", kv["config"], ``},
		{"queue.bindable (required even when false)", queue["bindable"], `false`},
		{"queue.plan_updateable", queue["plan_updateable"], `true`},
		{"small.free", plans[0]["free"], `true`},
		{"small.bindable (resolved from the offering: Korifi reads plans only)", plans[0]["bindable"], `true`},
		{"small.plan_updateable (resolved from the offering)", plans[0]["plan_updateable"], `false`},
		{"small.maintenance_info", plans[0]["maintenance_info"], `{"version":"1.2.3+build.7","description":"OS image update."}`},
		{"small.metadata", plans[0]["metadata"], `{"bullets":["1 GB"],"costs":[{"amount":{"usd":9.5},"unit":"MONTHLY"}],"displayName":"Small"}`},
		{"large.free", plans[1]["free"], `false`},
		{"large.bindable (overridden)", plans[1]["bindable"], `false`},
		{"large.maximum_polling_duration", plans[1]["maximum_polling_duration"], `3600`},
		{"large.schemas (none: left out)", plans[1]["schemas"], ``},
		{"large.async (Agora-only)", plans[1]["async"], ``},
		{"small.binding_rotatable", plans[0]["binding_rotatable"], `true`},
		{"large.binding_rotatable (false is left out)", plans[1]["binding_rotatable"], ``},
		{"small.sensitive_parameters (Agora-only)", plans[0]["sensitive_parameters"], ``},
		{"kv.omit_binding_endpoints (Agora-only)", kv["omit_binding_endpoints"], ``},
	}
	for _, ck := range checks {
		if string(ck.raw) != ck.want {
			t.Errorf("%s = %s, want %s", ck.name, ck.raw, ck.want)
		}
	}
	var schemas struct {
		ServiceInstance map[string]struct {
			Parameters map[string]any `json:"parameters"`
		} `json:"service_instance"`
		ServiceBinding map[string]struct {
			Parameters map[string]any `json:"parameters"`
		} `json:"service_binding"`
	}
	if err := json.Unmarshal(plans[0]["schemas"], &schemas); err != nil {
		t.Fatal(err)
	}
	if _, ok := schemas.ServiceInstance["update"]; ok {
		t.Error("small has no update schema, yet schemas.service_instance.update is present")
	}
	if schemas.ServiceInstance["create"].Parameters["$schema"] != draft04 || schemas.ServiceBinding["create"].Parameters["$schema"] != draft04 {
		t.Errorf("schemas = %s", plans[0]["schemas"])
	}

	if etag := c.ETag(); !strings.HasPrefix(etag, `"`) || len(etag) != 34 {
		t.Errorf("ETag() = %s", etag)
	}
}

func TestVaultReferences(t *testing.T) {
	t.Run("resolved before the adapter sees them, once per reference", func(t *testing.T) {
		vault := goodVault()
		rec := &fakes{}
		c, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: vault.resolve}, parseFixture(t, "vault.yml"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, name := range []string{"svc", "svc-two"} {
			if got := rec.byOffering(t, name).settings.Password; got != "svc-admin-pw" {
				t.Errorf("%s: adapter got password %q", name, got)
			}
		}
		if vault.calls != 1 {
			t.Errorf("resolver called %d times for one reference, want 1", vault.calls)
		}
		if bytes.Contains(c.JSON(), []byte("svc-admin-pw")) || bytes.Contains(c.JSON(), []byte("vault:")) {
			t.Error("catalog body carries adapter config")
		}
	})
	t.Run("no resolver", func(t *testing.T) {
		_, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, &fakes{})}, parseFixture(t, "vault.yml"))
		checkErrors(t, validationErrors(t, err), []wantError{
			{"producers[0].offerings[0].config.password", `vault reference "vault:agora/admin/svc#password" needs a secret resolver, and none is configured`, 10},
			{"producers[0].offerings[1].config.password", "needs a secret resolver", 20},
		})
	})
	t.Run("resolver fails", func(t *testing.T) {
		empty := &fakeVault{}
		_, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, &fakes{}), Resolve: empty.resolve}, parseFixture(t, "vault.yml"))
		checkErrors(t, validationErrors(t, err), []wantError{
			{"producers[0].offerings[0].config.password", `resolve vault reference "vault:agora/admin/svc#password": no secret password at agora/admin/svc`, 10},
			{"producers[0].offerings[1].config.password", "resolve vault reference", 20},
		})
	})
	t.Run("a factory echoing a secret is scrubbed", func(t *testing.T) {
		reg, err := adapters.NewRegistry(adapters.Factory{Name: "fake", New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
			var s fakeSettings
			_ = cfg.Settings.Decode(&s)
			return nil, fmt.Errorf("cannot log in with password %q", s.Password)
		}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Build(context.Background(), BuildOptions{Registry: reg, Resolve: goodVault().resolve}, parseFixture(t, "vault.yml"))
		if err == nil || strings.Contains(err.Error(), "svc-admin-pw") || !strings.Contains(err.Error(), `password "<redacted>"`) {
			t.Errorf("report leaks or lost the message:\n%v", err)
		}
	})
}

func TestParameterValidation(t *testing.T) {
	c, _ := buildGood(t)
	kv, _ := c.Offering(DeriveOfferingID("platform-team", "kv"))
	small, large := kv.Plans[0], kv.Plans[1]
	_, shared, _ := c.Plan("queue-offering-fixed-id", c.Offerings()[1].Plans[0].ID)

	tests := []struct {
		name     string
		validate func(map[string]any) error
		params   string
		want     string // the full message; "" means valid
	}{
		{"valid", small.ValidateProvisionParameters, `{"size": 3, "name": "abc", "limits": {"max": 99.5}, "servers": [{"host": "db.example.com"}]}`, ""},
		{"maximum", small.ValidateProvisionParameters, `{"size": 20}`, "parameters.size: must be <= 10 (got 20)"},
		{"minimum", small.ValidateProvisionParameters, `{"size": 0}`, "parameters.size: must be >= 1 (got 0)"},
		{"draft-04 exclusiveMaximum", small.ValidateProvisionParameters, `{"size": 1, "limits": {"max": 100}}`, "parameters.limits.max: must be < 100 (got 100)"},
		{"unknown parameter", small.ValidateProvisionParameters, `{"size": 1, "colour": "red"}`, `parameters: unknown parameter "colour" (additionalProperties not allowed)`},
		{"missing required", small.ValidateProvisionParameters, `{}`, `parameters: missing required parameter "size"`},
		{"nil params are an empty object", small.ValidateProvisionParameters, ``, `parameters: missing required parameter "size"`},
		{"type", small.ValidateProvisionParameters, `{"size": "big"}`, "parameters.size: must be of type integer (got string)"},
		{"string values are not echoed", small.ValidateProvisionParameters, `{"size": 1, "name": "Hunter2-Secret"}`, `parameters.name: must be at most 8 characters long (got 14); parameters.name: must match the pattern "^[a-z]+$"`},
		{"array index and local $ref", small.ValidateProvisionParameters, `{"size": 1, "servers": [{"host": "ok.example.com"}, {"host": "not a host!"}]}`, "parameters.servers[1].host: must be a valid hostname"},
		{"several violations, sorted by field", small.ValidateProvisionParameters, `{"size": 11, "colour": "red", "limits": {"max": "x"}}`,
			`parameters: unknown parameter "colour" (additionalProperties not allowed); parameters.limits.max: must be of type number (got string); parameters.size: must be <= 10 (got 11)`},
		{"enum on bind", small.ValidateBindParameters, `{"role": "admin"}`, `parameters.role: must be one of "reader", "writer"`},
		{"enum echoes numbers", small.ValidateBindParameters, `{"role": 7}`, `parameters.role: must be one of "reader", "writer" (got 7)`},
		{"no update schema accepts anything", small.ValidateUpdateParameters, `{"anything": [1, 2]}`, ""},
		{"plan without schemas accepts anything", large.ValidateProvisionParameters, `{"x": 1}`, ""},
		{"update schema", shared.ValidateUpdateParameters, `{"x": 1}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var params map[string]any
			if tt.params != "" {
				if err := json.Unmarshal([]byte(tt.params), &params); err != nil {
					t.Fatal(err)
				}
			}
			err := tt.validate(params)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var pe *ParameterError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParameterError, got %T: %v", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("message:\n got  %s\n want %s", err, tt.want)
			}
			if first := pe.Violations[0]; pe.Field != first.Field || pe.Reason != first.Reason || pe.Reason == "" {
				t.Errorf("Field/Reason = %q/%q, first violation %+v", pe.Field, pe.Reason, first)
			}
			if !errors.Is(err, adapters.ErrInvalidParameters) {
				t.Error("ParameterError does not wrap adapters.ErrInvalidParameters")
			}
			if strings.Contains(err.Error(), "Hunter2") {
				t.Error("a string parameter value was echoed")
			}
		})
	}
}

func TestSchemaSizeLimit(t *testing.T) {
	var props strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&props, "        p%04d: {type: string, description: padding padding}\n", i)
	}
	src := `producers:
  - name: team-a
    contact: a@example.com
    offerings:
      - name: svc
        description: Service.
        adapter: fake
        plans:
          - name: basic
            description: Basic.
            schemas:
              service_binding:
                create:
                  parameters:
                    $schema: http://json-schema.org/draft-04/schema#
                    properties:
` + strings.ReplaceAll(props.String(), "        p", "                      p")
	f, err := ParseSource("big.yml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Build(context.Background(), BuildOptions{Registry: newFakeRegistry(t, &fakes{})}, f)
	checkErrors(t, validationErrors(t, err), []wantError{
		{"producers[0].offerings[0].plans[0].schemas.service_binding.create.parameters", "bytes serialized; the OSB limit is 65536", 14},
	})
}

func TestAdaptersClosed(t *testing.T) {
	t.Run("Check builds nothing and reads no secret", func(t *testing.T) {
		rec := &fakes{}
		vault := goodVault()
		if err := Check(BuildOptions{Registry: newFakeRegistry(t, rec), Resolve: vault.resolve}, parseFixture(t, "good.yml")); err != nil {
			t.Fatal(err)
		}
		if len(rec.built) != 0 || vault.calls != 0 {
			t.Fatalf("Check built %d adapters and read %d secrets, want none", len(rec.built), vault.calls)
		}
	})
	t.Run("Catalog.Close closes once", func(t *testing.T) {
		c, rec := buildGood(t)
		for range 2 {
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range rec.built {
			if a.closeCount() != 1 {
				t.Errorf("%s closed %d times, want 1", a.offering, a.closeCount())
			}
		}
	})
	t.Run("a panicking factory is reported, not fatal", func(t *testing.T) {
		reg, _ := adapters.NewRegistry(adapters.Factory{Name: "fake", New: func(context.Context, adapters.Config) (adapters.Adapter, error) {
			panic("boom")
		}})
		_, err := Build(context.Background(), BuildOptions{Registry: reg}, parseFixture(t, "bad_no_plans.yml"))
		// No config: section, so the error sits at the offering's line.
		checkErrors(t, validationErrors(t, err), []wantError{
			{"producers[0].offerings[0].config", `adapter "fake": factory panicked: boom`, 5},
			{"producers[0].offerings[0].plans", "at least one plan", 8},
		})
	})
}

func TestConcurrentReads(t *testing.T) {
	c, _ := buildGood(t)
	kv := c.Offerings()[0]
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_ = kv.Plans[0].ValidateProvisionParameters(map[string]any{"size": 20})
				_ = c.JSON()
				_ = c.Services()
				_, _, _ = c.Plan(kv.ID, kv.Plans[1].ID)
			}
		}()
	}
	wg.Wait()
}

func BenchmarkValidateProvisionParameters(b *testing.B) {
	rec := &fakes{}
	c, err := Build(context.Background(), BuildOptions{Registry: newFakeRegistry(b, rec), Resolve: goodVault().resolve}, parseFixture(b, "good.yml"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	plan := c.Offerings()[0].Plans[0]
	valid := map[string]any{"size": 3.0, "name": "abc", "limits": map[string]any{"max": 50.0}}
	invalid := map[string]any{"size": 30.0, "colour": "red"}
	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := plan.ValidateProvisionParameters(valid); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("invalid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := plan.ValidateProvisionParameters(invalid); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
