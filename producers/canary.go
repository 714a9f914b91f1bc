package producers

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
)

// CanaryResult is the canary's latest verdict on one live offering of a
// producer: the conformance kit run against her running adapter on a
// schedule. It is the offering's health.
type CanaryResult struct {
	OfferingID string `json:"offering_id"`
	Producer   string `json:"producer"`
	Offering   string `json:"offering"`
	// Plan is the plan this run judged: the canary judges one plan per
	// run, the next in the offering's order after the last run's.
	Plan   string    `json:"plan,omitempty"`
	At     time.Time `json:"at"`
	Passed bool      `json:"passed"`
	// Summary counts the checks ("21 passed, 1 failed, 3 skipped").
	Summary string `json:"summary"`
	// Failed are the checks that failed, each "name: detail".
	Failed []string `json:"failed,omitempty"`
	// Unverified are credential types the kit could not verify.
	Unverified []string `json:"unverified,omitempty"`
	// Error says why the kit could not run at all (egress refused, the
	// secret unreadable); Passed is then false.
	Error string `json:"error,omitempty"`
	// LastSuccess is when the canary last passed on this offering (zero
	// when never).
	LastSuccess time.Time `json:"last_success,omitzero"`
	// DurationMS is how long the run took.
	DurationMS int64 `json:"duration_ms"`
}

// LiveOffering is one remote offering of a producer's live slice, as the
// canary needs it: what the gate got for it on apply, the secret read
// back from Vault.
type LiveOffering struct {
	ID      string
	Request GateRequest
}

// NextPlan is the index of the plan the canary judges next in req,
// after the plan named last (the previous run's): the offering's plans
// in turn, one per run, starting over after the last and at the first
// when last is gone or empty. It is -1 for an offering without plans.
func NextPlan(req GateRequest, last string) int {
	if len(req.Plans) == 0 {
		return -1
	}
	for j := range req.Plans {
		if req.Plans[j].Plan.Name == last {
			return (j + 1) % len(req.Plans)
		}
	}
	return 0
}

// LiveRemoteOfferings returns every offering of every active producer's
// live slice, ready for the gate's kit. An offering whose secret cannot
// be read is returned with Err set, so the canary reports it rather than
// skipping it silently.
func (s *Service) LiveRemoteOfferings(ctx context.Context) ([]LiveOffering, map[string]error, error) {
	lives, err := s.store.LiveSlices(ctx)
	if err != nil {
		return nil, nil, storeErr(err)
	}
	var out []LiveOffering
	problems := map[string]error{}
	for _, l := range lives {
		rec, err := s.store.Get(ctx, l.Producer)
		if err != nil {
			return nil, nil, storeErr(err)
		}
		if rec.State != StateActive {
			continue // a suspended producer's offerings serve old instances only
		}
		sl, err := parseSlice(liveSource(l.Producer, l.Version), []byte(l.Slice))
		if err != nil {
			return nil, nil, err
		}
		for i := range sl.producer().Offerings {
			o := &sl.producer().Offerings[i]
			id := offeringID(l.Producer, o)
			req, err := s.gateRequest(ctx, rec.Producer, sl, i, func(n *yaml.Node) (string, error) { return s.resolveRef(ctx, n.Value) })
			if err != nil {
				problems[id] = err
			}
			out = append(out, LiveOffering{ID: id, Request: req})
		}
	}
	return out, problems, nil
}

// gateRequest is what the gate gets for offering i of sl.
func (s *Service) gateRequest(ctx context.Context, p Producer, sl *slice, i int, secretOf func(*yaml.Node) (string, error)) (GateRequest, error) {
	o := &sl.producer().Offerings[i]
	req := GateRequest{Producer: p.Name, Offering: o.Name, Dial: s.dial}
	cfg := mapValue(sl.offeringNode(i), "config")
	settings := map[string]any{}
	if cfg != nil && cfg.Kind == yaml.MappingNode {
		if err := cfg.Decode(&settings); err != nil {
			return req, invalid([]FieldProblem{{Path: fmt.Sprintf("offerings[%d].config", i), Line: cfg.Line, Message: err.Error()}})
		}
	}
	if sn := mapValue(cfg, "secret"); sn != nil {
		v, err := secretOf(sn)
		if err != nil {
			return req, Unavailable(err, "Vault is unavailable: the protocol secret of offering %q could not be read for the gate", o.Name)
		}
		req.Secret = v
		settings["secret"] = v
	}
	req.Settings = settings
	req.URL, _ = settings["url"].(string)
	if t, ok := settings["timeout"]; ok {
		req.Timeout = fmt.Sprint(t)
	}
	req.Plans = make([]adapters.PlanConfig, len(o.Plans))
	for j := range o.Plans {
		pc := adapters.PlanConfig{Plan: adapters.Plan{ID: planID(p.Name, o, &o.Plans[j]), Name: o.Plans[j].Name}}
		pc.Settings = adapters.JSONSettings(nil)
		if !isAbsentNode(&o.Plans[j].Config) {
			var m map[string]any
			if err := o.Plans[j].Config.Decode(&m); err == nil {
				if raw, err := json.Marshal(m); err == nil {
					pc.Settings = adapters.JSONSettings(raw)
				}
			}
		}
		req.Plans[j] = pc
		if schema := provisionSchema(&o.Plans[j]); schema != nil {
			if req.ProvisionSchemas == nil {
				req.ProvisionSchemas = map[string]map[string]any{}
			}
			req.ProvisionSchemas[pc.Plan.ID] = schema
		}
	}
	return req, nil
}

// provisionSchema is the plan's schemas.service_instance.create.parameters
// as JSON decodes it, or nil when the plan has none. The slice was
// validated before (the catalog build compiles every schema), so a
// schema that does not decode is left out rather than reported twice.
func provisionSchema(p *catalog.PlanSpec) map[string]any {
	if p.Schemas == nil || p.Schemas.ServiceInstance == nil || p.Schemas.ServiceInstance.Create == nil {
		return nil
	}
	n := &p.Schemas.ServiceInstance.Create.Parameters
	if isAbsentNode(n) {
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return nil
	}
	// Through JSON: the kit reads the schema as the broker's JSON schema
	// validator does (numbers as float64), not in YAML's shapes.
	raw, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil
	}
	return out
}

// CheckEgress applies the platform engineer's egress rules to an adapter
// URL (nil when none are configured).
func (s *Service) CheckEgress(ctx context.Context, rawURL string) error {
	if s.egress == nil {
		return nil
	}
	return s.egress(ctx, rawURL)
}

// Health returns the canary's latest verdict on every offering it checks,
// by producer and offering name: the platform engineer's view. Empty
// when no canary runs.
func (s *Service) Health(ctx context.Context) ([]CanaryResult, error) {
	out := []CanaryResult{}
	if s.health == nil {
		return out, nil
	}
	all, err := s.health(ctx)
	if err != nil {
		return nil, Unavailable(err, "Redis is unavailable: the canary's results could not be read")
	}
	for _, r := range all {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Producer != out[j].Producer {
			return out[i].Producer < out[j].Producer
		}
		return out[i].Offering < out[j].Offering
	})
	return out, nil
}
