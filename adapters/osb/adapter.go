package osb

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/agora-osb/agora/adapters"
)

// Name is what catalog.yml uses in `adapter:` (imported offerings get it
// automatically).
const Name = "osb"

// Factory returns the factory catalog.yml refers to as `adapter: osb`
// (imported offerings get it automatically).
func Factory() adapters.Factory {
	return adapters.Factory{
		Name:        Name,
		Description: "An existing OSB broker: requests are forwarded upstream, async passes through (any producer)",
		New:         adapters.Constructor(New),
		Check:       adapters.CheckConfig[Settings, PlanSettings, Adapter](),
	}
}

// Adapter forwards one catalog offering's requests to its upstream broker.
type Adapter struct {
	client    *client
	serviceID string
	// plans holds each plan's upstream plan ID.
	plans  adapters.PlanSettings[PlanSettings]
	logger *slog.Logger
}

// New decodes and validates cfg, reporting every problem at once. It does
// not contact the upstream: a broker that is down at startup is reported
// by Ping.
func New(_ context.Context, cfg adapters.Config) (*Adapter, error) {
	s, plans, err := adapters.DecodeConfig[Settings, PlanSettings](cfg)
	if err != nil {
		return nil, err // as is: see DecodeConfig
	}
	ep, _ := s.endpoint() // validated above
	return &Adapter{
		client:    &client{ep: ep, http: newHTTPClient()},
		serviceID: s.UpstreamServiceID,
		plans:     plans,
		logger:    cfg.Logger,
	}, nil
}

// newHTTPClient gives each adapter its own connection pool, so Close
// releases exactly its own connections. Timeouts come from each call's
// context, not from the client.
func newHTTPClient() *http.Client {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return &http.Client{Transport: t.Clone()}
	}
	return &http.Client{}
}

// upstreamPlan returns the upstream's ID for an Agora plan.
func (a *Adapter) upstreamPlan(p adapters.Plan) (string, error) {
	ps, err := a.plans.Lookup(p)
	if err != nil {
		return "", err
	}
	return ps.UpstreamPlanID, nil
}

func instancePath(instanceID string) string {
	return "/v2/service_instances/" + url.PathEscape(instanceID)
}

func bindingPath(instanceID, bindingID string) string {
	return instancePath(instanceID) + "/service_bindings/" + url.PathEscape(bindingID)
}

// ids is the service_id/plan_id query of deletes and polls.
func (a *Adapter) ids(planID string) url.Values {
	return url.Values{"service_id": {a.serviceID}, "plan_id": {planID}}
}

// asyncQuery is ids plus accepts_incomplete=true, which Agora always
// sends: Agora's own async engine follows whatever the upstream decides.
func (a *Adapter) asyncQuery(planID string) url.Values {
	q := a.ids(planID)
	q.Set("accepts_incomplete", "true")
	return q
}

// instanceBody is the PUT (provision) and PATCH (update) request body.
type instanceBody struct {
	ServiceID        string          `json:"service_id"`
	PlanID           string          `json:"plan_id,omitempty"`
	OrganizationGUID string          `json:"organization_guid,omitempty"`
	SpaceGUID        string          `json:"space_guid,omitempty"`
	Context          json.RawMessage `json:"context,omitempty"`
	Parameters       map[string]any  `json:"parameters,omitempty"`
	PreviousValues   *previousValues `json:"previous_values,omitempty"`
}

type previousValues struct {
	ServiceID      string `json:"service_id,omitempty"`
	PlanID         string `json:"plan_id,omitempty"`
	OrganizationID string `json:"organization_id,omitempty"`
	SpaceID        string `json:"space_id,omitempty"`
}

// instanceResponse is the success body of provision, update and
// deprovision (each uses what applies to it).
type instanceResponse struct {
	DashboardURL string            `json:"dashboard_url"`
	Operation    string            `json:"operation"`
	Metadata     adapters.Metadata `json:"metadata"`
}

// Provision implements adapters.Adapter: PUT /v2/service_instances/:id.
func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	planID, err := a.upstreamPlan(req.Plan)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	org, space := tenant(req.Origin)
	c := call{
		method: http.MethodPut, path: instancePath(req.InstanceID), query: url.Values{"accepts_incomplete": {"true"}}, origin: &req.Origin,
		body: instanceBody{
			ServiceID: a.serviceID, PlanID: planID, OrganizationGUID: org, SpaceGUID: space,
			Context: requestContext(req.Origin), Parameters: req.Parameters,
		},
	}
	resp, err := a.client.do(ctx, c)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	var body instanceResponse
	switch resp.status {
	case http.StatusOK, http.StatusCreated:
		if err := a.client.decode(c, resp, &body); err != nil {
			return adapters.ProvisionResult{}, err
		}
		return adapters.ProvisionResult{DashboardURL: body.DashboardURL, Metadata: body.Metadata}, nil
	case http.StatusAccepted:
		if err := a.client.decode(c, resp, &body); err != nil {
			return adapters.ProvisionResult{}, err
		}
		// The spec has the dashboard URL arrive with the 202, not later;
		// the broker keeps it when Poll reports no Instance.
		return adapters.ProvisionResult{
			DashboardURL: body.DashboardURL, Metadata: body.Metadata,
			Pending: true, OperationToken: opToken{Kind: adapters.OpProvision, Operation: body.Operation}.encode(),
		}, nil
	}
	return adapters.ProvisionResult{}, a.client.failure(c, resp)
}

// Update implements adapters.Updater: PATCH /v2/service_instances/:id.
// plan_id is sent only for a plan change, since some brokers refuse any
// plan_id on plans that are not plan_updateable.
func (a *Adapter) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	planID, err := a.upstreamPlan(req.Plan)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	prevPlanID := planID
	if req.PreviousPlan.ID != "" || req.PreviousPlan.Name != "" {
		if prevPlanID, err = a.upstreamPlan(req.PreviousPlan); err != nil {
			return adapters.UpdateResult{}, err
		}
	}
	org, space := tenant(req.Origin)
	body := instanceBody{
		ServiceID: a.serviceID, Context: requestContext(req.Origin), Parameters: req.Parameters,
		PreviousValues: &previousValues{ServiceID: a.serviceID, PlanID: prevPlanID, OrganizationID: org, SpaceID: space},
	}
	if planID != prevPlanID {
		body.PlanID = planID
	}
	c := call{method: http.MethodPatch, path: instancePath(req.InstanceID), query: url.Values{"accepts_incomplete": {"true"}}, origin: &req.Origin, body: body}
	resp, err := a.client.do(ctx, c)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	var out instanceResponse
	switch resp.status {
	case http.StatusOK:
		if err := a.client.decode(c, resp, &out); err != nil {
			return adapters.UpdateResult{}, err
		}
		return adapters.UpdateResult{DashboardURL: out.DashboardURL, Metadata: out.Metadata}, nil
	case http.StatusAccepted:
		if err := a.client.decode(c, resp, &out); err != nil {
			return adapters.UpdateResult{}, err
		}
		return adapters.UpdateResult{
			DashboardURL: out.DashboardURL, Metadata: out.Metadata, Pending: true,
			OperationToken: opToken{Kind: adapters.OpUpdate, Operation: out.Operation, PlanID: prevPlanID}.encode(),
		}, nil
	}
	return adapters.UpdateResult{}, a.client.failure(c, resp)
}

// Deprovision implements adapters.Adapter: DELETE /v2/service_instances/:id.
// 410 Gone means already removed, which the contract reports as ErrNotFound.
func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	planID, err := a.upstreamPlan(req.Plan)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	c := call{method: http.MethodDelete, path: instancePath(req.InstanceID), query: a.asyncQuery(planID), origin: &req.Origin}
	resp, err := a.client.do(ctx, c)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	switch resp.status {
	case http.StatusOK:
		return adapters.DeprovisionResult{}, nil
	case http.StatusAccepted:
		var out instanceResponse
		if err := a.client.decode(c, resp, &out); err != nil {
			return adapters.DeprovisionResult{}, err
		}
		return adapters.DeprovisionResult{Pending: true, OperationToken: opToken{Kind: adapters.OpDeprovision, Operation: out.Operation}.encode()}, nil
	}
	return adapters.DeprovisionResult{}, a.client.failure(c, resp)
}

// bindBody is the PUT binding request body.
type bindBody struct {
	ServiceID    string          `json:"service_id"`
	PlanID       string          `json:"plan_id"`
	AppGUID      string          `json:"app_guid,omitempty"`
	BindResource *bindResource   `json:"bind_resource,omitempty"`
	Context      json.RawMessage `json:"context,omitempty"`
	Parameters   map[string]any  `json:"parameters,omitempty"`
}

type bindResource struct {
	AppGUID string `json:"app_guid,omitempty"`
}

// bindingResponse is the success body of bind and of fetching a binding.
type bindingResponse struct {
	Credentials     map[string]any      `json:"credentials"`
	SyslogDrainURL  string              `json:"syslog_drain_url"`
	RouteServiceURL string              `json:"route_service_url"`
	Endpoints       []adapters.Endpoint `json:"endpoints"`
	VolumeMounts    []json.RawMessage   `json:"volume_mounts"`
	Operation       string              `json:"operation"`
}

// result is what Agora keeps of a binding. Volume mounts have no place in
// the adapter contract, so they are dropped, loudly.
func (a *Adapter) result(b bindingResponse, instanceID, bindingID string) adapters.BindResult {
	if len(b.VolumeMounts) > 0 {
		a.logger.Warn("upstream returned volume_mounts, which Agora cannot pass on; they are dropped",
			"upstream", a.client.ep.String(), "instance_id", instanceID, "binding_id", bindingID)
	}
	return adapters.BindResult{
		Credentials: b.Credentials, Endpoints: b.Endpoints,
		SyslogDrainURL: b.SyslogDrainURL, RouteServiceURL: b.RouteServiceURL,
	}
}

// decodeBinding decodes a body that holds credentials: its decode error
// is described without json's text, which could quote part of the body.
func (a *Adapter) decodeBinding(c call, resp response) (bindingResponse, error) {
	var b bindingResponse
	if err := json.Unmarshal(resp.body, &b); err != nil {
		return bindingResponse{}, fmt.Errorf("upstream broker %s answered %s with %d and a body that is not an OSB binding", a.client.ep, c, resp.status)
	}
	return b, nil
}

// Bind implements adapters.Adapter: PUT .../service_bindings/:binding_id.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	planID, err := a.upstreamPlan(req.Plan)
	if err != nil {
		return adapters.BindResult{}, err
	}
	body := bindBody{
		ServiceID: a.serviceID, PlanID: planID, AppGUID: req.AppGUID,
		Context: requestContext(req.Origin), Parameters: req.Parameters,
	}
	if req.AppGUID != "" {
		body.BindResource = &bindResource{AppGUID: req.AppGUID}
	}
	c := call{method: http.MethodPut, path: bindingPath(req.InstanceID, req.BindingID), query: url.Values{"accepts_incomplete": {"true"}}, origin: &req.Origin, body: body}
	resp, err := a.client.do(ctx, c)
	if err != nil {
		return adapters.BindResult{}, err
	}
	switch resp.status {
	case http.StatusOK, http.StatusCreated:
		b, err := a.decodeBinding(c, resp)
		if err != nil {
			return adapters.BindResult{}, err
		}
		return a.result(b, req.InstanceID, req.BindingID), nil
	case http.StatusAccepted:
		var out instanceResponse
		if err := a.client.decode(c, resp, &out); err != nil {
			return adapters.BindResult{}, err
		}
		return adapters.BindResult{Pending: true, OperationToken: opToken{Kind: adapters.OpBind, Operation: out.Operation}.encode()}, nil
	case http.StatusNotFound:
		// OSB defines no 404 for a bind, but brokers answer it for an
		// instance they do not have; the adapters contract calls that
		// ErrNotFound, and a bind fails either way.
		return adapters.BindResult{}, fmt.Errorf("%w: %w", adapters.ErrNotFound, a.client.failure(c, resp))
	}
	return adapters.BindResult{}, a.client.failure(c, resp)
}

// Unbind implements adapters.Adapter: DELETE .../service_bindings/:binding_id.
func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	planID, err := a.upstreamPlan(req.Plan)
	if err != nil {
		return adapters.UnbindResult{}, err
	}
	c := call{method: http.MethodDelete, path: bindingPath(req.InstanceID, req.BindingID), query: a.asyncQuery(planID), origin: &req.Origin}
	resp, err := a.client.do(ctx, c)
	if err != nil {
		return adapters.UnbindResult{}, err
	}
	switch resp.status {
	case http.StatusOK:
		return adapters.UnbindResult{}, nil
	case http.StatusAccepted:
		var out instanceResponse
		if err := a.client.decode(c, resp, &out); err != nil {
			return adapters.UnbindResult{}, err
		}
		return adapters.UnbindResult{Pending: true, OperationToken: opToken{Kind: adapters.OpUnbind, Operation: out.Operation}.encode()}, nil
	}
	return adapters.UnbindResult{}, a.client.failure(c, resp)
}

// lastOperation is the last_operation response body.
type lastOperation struct {
	State       string `json:"state"`
	Description string `json:"description"`
}

// Poll implements adapters.Poller through the upstream's last_operation
// endpoints. A pending bind that succeeded is fetched with GET binding,
// since the spec keeps credentials out of the 202.
func (a *Adapter) Poll(ctx context.Context, req adapters.PollRequest) (adapters.PollResult, error) {
	tok, err := decodeToken(req.Token, req.Kind)
	if err != nil {
		return adapters.PollResult{}, err
	}
	planID := tok.PlanID
	if planID == "" {
		if planID, err = a.upstreamPlan(req.Plan); err != nil {
			return adapters.PollResult{}, err
		}
	}
	q := a.ids(planID)
	if tok.Operation != "" {
		q.Set("operation", tok.Operation)
	}
	var path string
	deleting := false
	switch tok.Kind {
	case adapters.OpProvision, adapters.OpUpdate:
		path = instancePath(req.InstanceID)
	case adapters.OpDeprovision:
		path, deleting = instancePath(req.InstanceID), true
	case adapters.OpBind, adapters.OpUnbind:
		if req.BindingID == "" {
			return adapters.PollResult{}, adapters.Terminal(fmt.Errorf("poll of a pending %s without a binding ID", tok.Kind))
		}
		path, deleting = bindingPath(req.InstanceID, req.BindingID), tok.Kind == adapters.OpUnbind
	default:
		return adapters.PollResult{}, adapters.Terminal(fmt.Errorf("poll of unknown operation kind %q", tok.Kind))
	}
	c := call{method: http.MethodGet, path: path + "/last_operation", query: q, origin: &req.Origin}
	resp, err := a.client.do(ctx, c)
	if err != nil {
		return adapters.PollResult{}, err
	}
	if resp.status == http.StatusGone && deleting {
		// The spec: the platform MUST consider 410 a success of a delete.
		return adapters.PollResult{State: adapters.Succeeded}, nil
	}
	if resp.status != http.StatusOK {
		// Anything else (410 while creating included) is not an answer;
		// Agora retries, which re-sends the idempotent request.
		return adapters.PollResult{}, a.client.failure(c, resp)
	}
	var lo lastOperation
	if err := a.client.decode(c, resp, &lo); err != nil {
		return adapters.PollResult{}, err
	}
	switch adapters.PollState(lo.State) {
	case adapters.InProgress:
		return adapters.PollResult{State: adapters.InProgress, Description: lo.Description}, nil
	case adapters.Failed:
		desc := lo.Description
		if desc == "" {
			desc = fmt.Sprintf("the upstream broker reports the %s failed", tok.Kind)
		}
		return adapters.PollResult{State: adapters.Failed, Description: desc}, nil
	case adapters.Succeeded:
		res := adapters.PollResult{State: adapters.Succeeded, Description: lo.Description}
		if tok.Kind == adapters.OpBind {
			b, err := a.fetchBinding(ctx, req, planID)
			if err != nil {
				return adapters.PollResult{}, err
			}
			res.Bind = &b
		}
		return res, nil
	}
	return adapters.PollResult{}, fmt.Errorf("upstream broker %s answered %s with unknown state %q", a.client.ep, c, lo.State)
}

// fetchBinding reads a finished binding: GET .../service_bindings/:id.
func (a *Adapter) fetchBinding(ctx context.Context, req adapters.PollRequest, planID string) (adapters.BindResult, error) {
	c := call{method: http.MethodGet, path: bindingPath(req.InstanceID, req.BindingID), query: a.ids(planID), origin: &req.Origin}
	resp, err := a.client.do(ctx, c)
	if err != nil {
		return adapters.BindResult{}, err
	}
	if resp.status != http.StatusOK {
		return adapters.BindResult{}, a.client.failure(c, resp)
	}
	b, err := a.decodeBinding(c, resp)
	if err != nil {
		return adapters.BindResult{}, err
	}
	return a.result(b, req.InstanceID, req.BindingID), nil
}

// Ping implements adapters.Pinger: the upstream answers GET /v2/catalog
// with Agora's credentials.
func (a *Adapter) Ping(ctx context.Context) error {
	c := call{method: http.MethodGet, path: "/v2/catalog"}
	resp, err := a.client.do(ctx, c)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return a.client.failure(c, resp)
	}
	return nil
}

// Close implements adapters.Closer: it releases the adapter's idle
// connections to the upstream.
func (a *Adapter) Close() error {
	a.client.http.CloseIdleConnections()
	return nil
}

// Compile-time guards: the capabilities Agora finds by type assertion.
var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Updater = (*Adapter)(nil)
	_ adapters.Poller  = (*Adapter)(nil)
	_ adapters.Pinger  = (*Adapter)(nil)
	_ adapters.Closer  = (*Adapter)(nil)
)
