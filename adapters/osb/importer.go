package osb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/broker/catalog"
)

// Importer returns the catalog.Importer that cmd/agora passes as
// catalog.BuildOptions.Import. It fetches the upstream's GET /v2/catalog
// and turns each upstream offering into an offering served by this
// adapter. httpClient nil means a client of the importer's own; its
// timeout is the upstream's `timeout` (default 60s), per request.
//
// What is kept: names, descriptions, bindable, plan_updateable,
// allow_context_updates, tags, requires, metadata, free, schemas,
// maintenance_info and maximum_polling_duration. What is not: the
// upstream's IDs (Agora derives its own from the producer and the names,
// so two upstreams may use the same IDs), instances_retrievable and
// bindings_retrievable (Agora answers those fetches from its own state),
// and dashboard_client (not supported by Agora).
//
// Every plan is imported as async: OSB has no flag that says whether a
// broker will answer 202, so Agora always runs the work in the background
// and passes the upstream's async through. Its operation_timeout is the
// plan's maximum_polling_duration when it has one, else Agora's default.
func Importer(httpClient *http.Client) catalog.Importer {
	if httpClient == nil {
		httpClient = newHTTPClient()
	}
	return func(ctx context.Context, req catalog.ImportRequest) ([]catalog.OfferingSpec, error) {
		up := req.Upstream
		ep, err := parseEndpoint(up.URL, up.Username, req.Password, up.APIVersion, up.Timeout)
		if err != nil {
			return nil, err
		}
		cl := &client{ep: ep, http: httpClient}
		c := call{method: http.MethodGet, path: "/v2/catalog"}
		resp, err := cl.do(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("fetch the catalog: %w", err)
		}
		if resp.status != http.StatusOK {
			return nil, fmt.Errorf("fetch the catalog: %w", cl.failure(c, resp))
		}
		var cat upstreamCatalog
		if err := json.Unmarshal(resp.body, &cat); err != nil {
			return nil, fmt.Errorf("upstream broker %s: GET /v2/catalog: the body is not an OSB catalog: %w", ep, err)
		}
		specs, err := cat.specs(up)
		if err != nil {
			return nil, fmt.Errorf("upstream broker %s: GET /v2/catalog: %w", ep, err)
		}
		return specs, nil
	}
}

// The upstream's catalog, as the OSB spec words it. Objects Agora passes
// on without looking inside (metadata, schemas) stay raw JSON.
type upstreamCatalog struct {
	Services []upstreamService `json:"services"`
}

type upstreamService struct {
	Name                string          `json:"name"`
	ID                  string          `json:"id"`
	Description         string          `json:"description"`
	Tags                []string        `json:"tags"`
	Requires            []string        `json:"requires"`
	Bindable            bool            `json:"bindable"`
	PlanUpdateable      bool            `json:"plan_updateable"`
	AllowContextUpdates bool            `json:"allow_context_updates"`
	Metadata            json.RawMessage `json:"metadata"`
	Plans               []upstreamPlan  `json:"plans"`
}

type upstreamPlan struct {
	ID                     string           `json:"id"`
	Name                   string           `json:"name"`
	Description            string           `json:"description"`
	Free                   *bool            `json:"free"`
	Bindable               *bool            `json:"bindable"`
	PlanUpdateable         *bool            `json:"plan_updateable"`
	Metadata               json.RawMessage  `json:"metadata"`
	Schemas                *upstreamSchemas `json:"schemas"`
	MaximumPollingDuration *int             `json:"maximum_polling_duration"`
	MaintenanceInfo        *struct {
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"maintenance_info"`
}

type upstreamSchemas struct {
	ServiceInstance *struct {
		Create *upstreamParameters `json:"create"`
		Update *upstreamParameters `json:"update"`
	} `json:"service_instance"`
	ServiceBinding *struct {
		Create *upstreamParameters `json:"create"`
	} `json:"service_binding"`
}

type upstreamParameters struct {
	Parameters json.RawMessage `json:"parameters"`
}

// specs converts the catalog. Names, descriptions and schemas are left for
// catalog.Build to judge, so the upstream's problems are reported with the
// same rules and words as a hand-written offering's; only what Agora needs
// to forward requests (the upstream IDs) is checked here.
func (cat upstreamCatalog) specs(up catalog.UpstreamSpec) ([]catalog.OfferingSpec, error) {
	var errs []error
	specs := make([]catalog.OfferingSpec, 0, len(cat.Services))
	for i, s := range cat.Services {
		where := fmt.Sprintf("services[%d] (%s)", i, s.Name)
		if s.ID == "" {
			errs = append(errs, fmt.Errorf("%s: the offering has no id", where))
		}
		config := map[string]any{"url": up.URL, "upstream_service_id": s.ID}
		// The password goes in as written (usually a vault reference):
		// Build resolves it like any config value.
		for k, v := range map[string]string{"username": up.Username, "password": up.Password, "api_version": up.APIVersion, "timeout": up.Timeout} {
			if v != "" {
				config[k] = v
			}
		}
		spec := catalog.OfferingSpec{
			Name:                s.Name,
			Description:         s.Description,
			Adapter:             Name,
			Bindable:            &s.Bindable,
			PlanUpdateable:      s.PlanUpdateable,
			AllowContextUpdates: s.AllowContextUpdates,
			Tags:                s.Tags,
			Requires:            s.Requires,
		}
		var err error
		if err = spec.Config.Encode(config); err != nil {
			errs = append(errs, fmt.Errorf("%s: config: %w", where, err))
		}
		if spec.Metadata, err = jsonNode(s.Metadata); err != nil {
			errs = append(errs, fmt.Errorf("%s: metadata: %w", where, err))
		}
		for j, p := range s.Plans {
			ps, err := p.spec()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: plans[%d] (%s): %w", where, j, p.Name, err))
			}
			spec.Plans = append(spec.Plans, ps)
		}
		specs = append(specs, spec)
	}
	return specs, errors.Join(errs...)
}

func (p upstreamPlan) spec() (catalog.PlanSpec, error) {
	var errs []error
	if p.ID == "" {
		errs = append(errs, errors.New("the plan has no id"))
	}
	ps := catalog.PlanSpec{
		Name:                   p.Name,
		Description:            p.Description,
		Free:                   p.Free,
		Bindable:               p.Bindable,
		PlanUpdateable:         p.PlanUpdateable,
		Async:                  true,
		MaximumPollingDuration: p.MaximumPollingDuration,
	}
	if mpd := p.MaximumPollingDuration; mpd != nil && *mpd > 0 {
		// The platform gives up polling after this long, so Agora must
		// report the outcome by then: catalog.Build insists on it.
		ps.OperationTimeout = fmt.Sprintf("%ds", *mpd)
	}
	if mi := p.MaintenanceInfo; mi != nil {
		ps.MaintenanceInfo = &catalog.MaintenanceInfoSpec{Version: mi.Version, Description: mi.Description}
	}
	if err := ps.Config.Encode(map[string]string{"upstream_plan_id": p.ID}); err != nil {
		errs = append(errs, fmt.Errorf("config: %w", err))
	}
	var err error
	if ps.Metadata, err = jsonNode(p.Metadata); err != nil {
		errs = append(errs, fmt.Errorf("metadata: %w", err))
	}
	if s := p.Schemas; s != nil {
		schema := func(up *upstreamParameters, field string) *catalog.ParametersSpec {
			if up == nil {
				return nil
			}
			n, err := jsonNode(up.Parameters)
			if err != nil {
				errs = append(errs, fmt.Errorf("schemas.%s.parameters: %w", field, err))
				return nil
			}
			if n.Kind == 0 || (n.Kind == yaml.MappingNode && len(n.Content) == 0) {
				// brokerapi prints unset schemas as null, others as {}:
				// both mean "no schema", which is what Agora calls it.
				return nil
			}
			return &catalog.ParametersSpec{Parameters: n}
		}
		var out catalog.SchemasSpec
		if si := s.ServiceInstance; si != nil {
			create, update := schema(si.Create, "service_instance.create"), schema(si.Update, "service_instance.update")
			if create != nil || update != nil {
				out.ServiceInstance = &catalog.InstanceSchemasSpec{Create: create, Update: update}
			}
		}
		if sb := s.ServiceBinding; sb != nil {
			if create := schema(sb.Create, "service_binding.create"); create != nil {
				out.ServiceBinding = &catalog.BindingSchemasSpec{Create: create}
			}
		}
		if out.ServiceInstance != nil || out.ServiceBinding != nil {
			ps.Schemas = &out
		}
	}
	return ps, errors.Join(errs...)
}

// jsonNode turns a JSON value into the YAML node catalog specs hold; an
// absent or null value is the zero node ("left out"). Decoding into Go
// values first, rather than parsing the JSON as YAML, keeps JSON's escapes
// and number forms out of YAML's hands.
func jsonNode(raw json.RawMessage) (yaml.Node, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return yaml.Node{}, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return yaml.Node{}, err
	}
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return yaml.Node{}, err
	}
	return n, nil
}
