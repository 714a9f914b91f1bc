package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/agora-osb/agora/adapters"
)

// Inspect sends GET /v1/instances/{id} (capability "inspect"), for the
// platform engineer's reconcile. Every remote adapter's type has it, since
// no catalog rule depends on it: without "inspect" in config.capabilities
// it answers adapters.ErrNotSupported, with how to gain it. The receipt
// travels JSON-encoded in the query (a GET has no body), signed with the
// rest of the request target.
func (c *Client) Inspect(ctx context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	if !slices.Contains(c.configured, CapabilityInspect) {
		return adapters.InspectResult{}, fmt.Errorf("%s: %w: %s", c.who, adapters.ErrNotSupported, missingCapabilityHint(CapabilityInspect))
	}
	cs, err := c.capabilities(ctx)
	if err != nil {
		return adapters.InspectResult{}, err
	}
	if !slices.Contains(cs.result.Capabilities, CapabilityInspect) {
		return adapters.InspectResult{}, c.mismatch(cs, []string{CapabilityInspect}, "inspect "+req.InstanceID)
	}
	q := url.Values{}
	for k, v := range map[string]string{"offering": req.Offering, "plan_id": req.Plan.ID, "plan_name": req.Plan.Name} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if len(req.Receipt) > 0 {
		raw, err := json.Marshal(req.Receipt)
		if err != nil {
			return adapters.InspectResult{}, fmt.Errorf("%s: inspect %s: encode receipt: %w", c.who, req.InstanceID, err)
		}
		q.Set("receipt", string(raw))
	}
	cl := call{method: http.MethodGet, path: instancePath(req.InstanceID), query: q, requestID: req.Origin.RequestID}
	var res inspectResult
	if err := c.do(ctx, cl, &res); err != nil {
		return adapters.InspectResult{}, err
	}
	return adapters.InspectResult{Exists: res.Exists, DashboardURL: res.DashboardURL, Metadata: res.Metadata, Receipt: res.Receipt, Detail: res.Detail}, nil
}

// inspect serves GET /v1/instances/{id} for an adapters.Inspector.
func (h *handler) inspect(w http.ResponseWriter, r *http.Request) {
	inspector, ok := h.adapter.(adapters.Inspector)
	if !ok {
		writeError(w, http.StatusNotImplemented, CodeNotSupported, "this adapter cannot say whether an instance exists")
		return
	}
	q := r.URL.Query()
	req := adapters.InspectRequest{
		InstanceID: r.PathValue("instance_id"), Offering: q.Get("offering"),
		Plan:   adapters.Plan{ID: q.Get("plan_id"), Name: q.Get("plan_name")},
		Origin: adapters.Origin{RequestID: r.Header.Get(HeaderRequestID)},
	}
	if raw := q.Get("receipt"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &req.Receipt); err != nil {
			writeError(w, http.StatusBadRequest, CodeTerminal, "receipt must be a JSON object of strings")
			return
		}
	}
	res, err := inspector.Inspect(r.Context(), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, inspectResult{Exists: res.Exists, DashboardURL: res.DashboardURL, Metadata: res.Metadata, Receipt: res.Receipt, Detail: res.Detail})
}

var _ adapters.Inspector = (*Client)(nil)
