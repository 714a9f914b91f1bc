package osb_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/osb"
	"github.com/agora-osb/agora/broker/catalog"
)

const passwordRef = "vault:agora/upstreams/legacy#password"

func TestImporterTurnsTheUpstreamCatalogIntoSpecs(t *testing.T) {
	srv := newFakeBroker().serve(t)
	specs, err := osb.Importer(nil)(context.Background(), catalog.ImportRequest{
		Producer: "legacy",
		Upstream: catalog.UpstreamSpec{URL: srv.URL + "/", Username: upUser, Password: passwordRef, APIVersion: "2.14"},
		Password: upPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 1 {
		t.Fatalf("got %d specs, want 1", len(specs))
	}
	s := specs[0]
	if s.Name != "legacy-db" || s.ID != "" || s.Adapter != osb.Name || s.Description != "The legacy team's database." ||
		s.Bindable == nil || !*s.Bindable || !s.PlanUpdateable || strings.Join(s.Tags, ",") != "sql,legacy" {
		t.Errorf("offering spec = %+v", s)
	}
	var config map[string]string
	if err := s.Config.Decode(&config); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"url": srv.URL + "/", "username": upUser, "password": passwordRef, "api_version": "2.14", "upstream_service_id": upServiceID}
	if len(config) != len(want) {
		t.Errorf("config = %v, want %v", config, want)
	}
	for k, v := range want {
		if config[k] != v {
			t.Errorf("config.%s = %q, want %q (the password as written, for Build to resolve)", k, config[k], v)
		}
	}
	var meta map[string]any
	if err := s.Metadata.Decode(&meta); err != nil || meta["displayName"] != "Legacy DB" {
		t.Errorf("metadata = %v (%v)", meta, err)
	}

	if len(s.Plans) != 2 {
		t.Fatalf("plans = %+v", s.Plans)
	}
	small, large := s.Plans[0], s.Plans[1]
	for _, p := range s.Plans {
		if !p.Async || p.ID != "" {
			t.Errorf("plan %s: async %v, id %q; want every plan async with its ID left to Agora", p.Name, p.Async, p.ID)
		}
	}
	var planConfig map[string]string
	if err := small.Config.Decode(&planConfig); err != nil || planConfig["upstream_plan_id"] != upSmallID || len(planConfig) != 1 {
		t.Errorf("small's config = %v (%v)", planConfig, err)
	}
	if small.MaintenanceInfo == nil || small.MaintenanceInfo.Version != "1.2.3" {
		t.Errorf("small's maintenance_info = %+v", small.MaintenanceInfo)
	}
	if small.Schemas == nil || small.Schemas.ServiceInstance == nil || small.Schemas.ServiceInstance.Create == nil || small.Schemas.ServiceInstance.Update == nil {
		t.Fatalf("small's schemas = %+v", small.Schemas)
	}
	var create map[string]any
	if err := small.Schemas.ServiceInstance.Create.Parameters.Decode(&create); err != nil || create["$schema"] != "http://json-schema.org/draft-04/schema#" {
		t.Errorf("small's create schema = %v (%v)", create, err)
	}
	if small.Schemas.ServiceBinding != nil {
		t.Errorf("small has a binding schema the upstream did not publish: %+v", small.Schemas.ServiceBinding)
	}
	if large.Free == nil || *large.Free || large.MaximumPollingDuration == nil || *large.MaximumPollingDuration != 1800 || large.OperationTimeout != "1800s" {
		t.Errorf("large = free %v, maximum_polling_duration %v, operation_timeout %q", large.Free, large.MaximumPollingDuration, large.OperationTimeout)
	}
	if large.Schemas != nil {
		t.Errorf("large's empty schemas became %+v", large.Schemas)
	}
}

func TestImporterErrorsNameTheUpstream(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	tests := []struct {
		name, url, password string
		want                []string
	}{
		{"down", downURL, upPassword, []string{downURL, "GET /v2/catalog"}},
		{"wrong password", newFakeBroker().serve(t).URL, "wrong-pw", []string{"rejected Agora's credentials", "401"}},
		{"not a broker", scripted(t, 200, `<html>hello</html>`).URL, upPassword, []string{"not an OSB catalog"}},
		{"bad settings", "ftp://x", upPassword, []string{"url:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := osb.Importer(nil)(context.Background(), catalog.ImportRequest{
				Producer: "legacy",
				Upstream: catalog.UpstreamSpec{URL: tt.url, Username: upUser, Password: passwordRef},
				Password: tt.password,
			})
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), tt.password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

// buildOptions is what cmd/agora passes: the real factory in a registry,
// the real importer, and a resolver for the upstream's password.
func buildOptions(t *testing.T) catalog.BuildOptions {
	t.Helper()
	reg, err := adapters.NewRegistry(osb.Factory())
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(_ context.Context, path, key string) (string, error) {
		if path+"#"+key == "agora/upstreams/legacy#password" {
			return upPassword, nil
		}
		return "", errors.New("no such secret")
	}
	return catalog.BuildOptions{Registry: reg, Resolve: resolve, Import: osb.Importer(nil)}
}

func upstreamProducer(name, url string) string {
	return `
  - name: ` + name + `
    contact: ` + name + `@example.com
    upstream:
      url: ` + url + `/
      username: agora
      password: "` + passwordRef + `"
`
}

func TestBuildServesTheImportedCatalog(t *testing.T) {
	fb := newFakeBroker()
	srv := fb.serve(t)
	file, err := catalog.ParseSource("catalog.yml", []byte("producers:"+upstreamProducer("legacy-team", srv.URL)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Build(context.Background(), buildOptions(t), file)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var body struct {
		Services []struct {
			ID, Name       string
			PlanUpdateable bool `json:"plan_updateable"`
			Metadata       map[string]any
			Plans          []struct {
				ID, Name        string
				Free            bool
				Schemas         json.RawMessage
				MaintenanceInfo *struct{ Version string } `json:"maintenance_info"`
			}
		}
	}
	if err := json.Unmarshal(c.JSON(), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Services) != 1 {
		t.Fatalf("catalog = %s", c.JSON())
	}
	svc := body.Services[0]
	if svc.Name != "legacy-db" || svc.ID != catalog.DeriveOfferingID("legacy-team", "legacy-db") || !svc.PlanUpdateable || svc.Metadata["displayName"] != "Legacy DB" {
		t.Errorf("service = %+v", svc)
	}
	if len(svc.Plans) != 2 || svc.Plans[0].ID != catalog.DerivePlanID("legacy-team", "legacy-db", "small") || svc.Plans[1].Free {
		t.Errorf("plans = %+v", svc.Plans)
	}
	if !strings.Contains(string(svc.Plans[0].Schemas), `"minimum":1`) || svc.Plans[0].MaintenanceInfo == nil || svc.Plans[0].MaintenanceInfo.Version != "1.2.3" {
		t.Errorf("small plan = %+v (schemas %s)", svc.Plans[0], svc.Plans[0].Schemas)
	}
	for _, leak := range []string{upServiceID, upSmallID, upPassword, "upstream_plan_id", srv.URL} {
		if strings.Contains(string(c.JSON()), leak) {
			t.Errorf("the catalog the platform sees contains %q: %s", leak, c.JSON())
		}
	}

	// The built adapter reaches the upstream with the resolved password
	// and the upstream's own IDs.
	off, plan, ok := c.Plan(svc.ID, svc.Plans[0].ID)
	if !ok || !plan.Async || off.AdapterName != osb.Name {
		t.Fatalf("offering %+v plan %+v", off, plan)
	}
	if _, err := off.Adapter.Provision(context.Background(), adapters.ProvisionRequest{InstanceID: "i-1", Offering: off.Name, Plan: plan.Ref()}); err != nil {
		t.Fatalf("Provision through the imported offering: %v", err)
	}
	put := fb.received(http.MethodPut, "/v2/service_instances/i-1")
	var sent struct {
		ServiceID string `json:"service_id"`
		PlanID    string `json:"plan_id"`
	}
	if err := json.Unmarshal(put[0].Body, &sent); err != nil || sent.ServiceID != upServiceID || sent.PlanID != upSmallID {
		t.Errorf("upstream got %s", put[0].Body)
	}
	// The parameters are checked against the upstream's own schema before
	// the upstream ever sees them.
	if err := plan.ValidateProvisionParameters(map[string]any{"size": 0}); !errors.Is(err, adapters.ErrInvalidParameters) {
		t.Errorf("size 0 against the imported schema: %v", err)
	}
}

func TestBuildReportsUpstreamCollisionsAndOutages(t *testing.T) {
	one, two := newFakeBroker(), newFakeBroker()
	srvOne, srvTwo := one.serve(t), two.serve(t)

	t.Run("same names collide", func(t *testing.T) {
		file, err := catalog.ParseSource("catalog.yml", []byte("producers:"+upstreamProducer("team-one", srvOne.URL)+upstreamProducer("team-two", srvTwo.URL)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = catalog.Build(context.Background(), buildOptions(t), file)
		var ve *catalog.ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) != 1 {
			t.Fatalf("Build: %v, want one validation error", err)
		}
		fe := ve.Errors[0]
		if fe.Path != "producers[1].upstream.services[0].name" || !strings.Contains(fe.Message, `duplicate of producers[0].upstream.services[0].name ("legacy-db")`) || fe.Line != 11 {
			t.Errorf("error = %s", fe)
		}
	})

	t.Run("same upstream IDs do not", func(t *testing.T) {
		// Both upstreams use up-svc-1 and up-plan-small; Agora's IDs come
		// from its own names, so only the offering names must differ.
		two.name = "other-db"
		file, err := catalog.ParseSource("catalog.yml", []byte("producers:"+upstreamProducer("team-one", srvOne.URL)+upstreamProducer("team-two", srvTwo.URL)))
		if err != nil {
			t.Fatal(err)
		}
		c, err := catalog.Build(context.Background(), buildOptions(t), file)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if len(c.Offerings()) != 2 {
			t.Errorf("offerings = %v", c.Offerings())
		}
	})

	t.Run("upstream down", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		downURL := down.URL
		down.Close()
		file, err := catalog.ParseSource("catalog.yml", []byte("producers:"+upstreamProducer("legacy", downURL)))
		if err != nil {
			t.Fatal(err)
		}
		_, err = catalog.Build(context.Background(), buildOptions(t), file)
		var ve *catalog.ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) == 0 {
			t.Fatalf("Build: %v, want a validation error", err)
		}
		if fe := ve.Errors[0]; fe.Path != "producers[0].upstream" || !strings.Contains(fe.Message, downURL) {
			t.Errorf("error = %s, want it at producers[0].upstream naming %s", fe, downURL)
		}
	})
}

// The generated config node round-trips through YAML, as Build reads it.
func TestImportedConfigIsAMapping(t *testing.T) {
	srv := newFakeBroker().serve(t)
	specs, err := osb.Importer(nil)(context.Background(), catalog.ImportRequest{
		Upstream: catalog.UpstreamSpec{URL: srv.URL, Username: upUser, Password: upPassword}, Password: upPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	if specs[0].Config.Kind != yaml.MappingNode || specs[0].Plans[0].Config.Kind != yaml.MappingNode {
		t.Errorf("config kinds = %v, %v", specs[0].Config.Kind, specs[0].Plans[0].Config.Kind)
	}
}
