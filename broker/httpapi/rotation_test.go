package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"
)

// TestRotationBodyIsCompleted: OSB 2.17 lets a binding rotation send
// predecessor_binding_id alone (provider-osb does); brokerapi would answer
// "service_id missing" before the broker runs, so the edge fills in the
// instance's service and plan, and the broker reads them in the decoded
// body as if the platform had sent them.
func TestRotationBodyIsCompleted(t *testing.T) {
	var asked []string
	instancePlan := func(_ context.Context, instanceID string) (string, string, error) {
		asked = append(asked, instanceID)
		if instanceID == missingID {
			return "", "", apiresponses.NewFailureResponse(errors.New("service instance \"missing\" does not exist (request id r-1)"), http.StatusNotFound, "bind")
		}
		if instanceID == "broken" {
			return "", "", errors.New("redis: connection refused")
		}
		return "svc", "plan", nil
	}
	env := newTestEnv(t, func(o *Options) { o.InstancePlan = instancePlan })
	rotate := func(instanceID, body string) *http.Response {
		w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/"+instanceID+"/service_bindings/b1?accepts_incomplete=true", body,
			withHeader("X-Broker-API-Version", "2.17")))
		return w.Result()
	}

	if res := rotate("i%41", `{"predecessor_binding_id": "b0"}`); res.StatusCode != http.StatusCreated {
		t.Fatalf("predecessor-only body: status %d", res.StatusCode)
	}
	calls := env.broker.callsExcept("Services")
	if len(calls) != 1 || calls[0].method != "Bind" || calls[0].body == nil {
		t.Fatalf("broker calls %+v, want one bind with its body", calls)
	}
	if b := calls[0].body; b.ServiceID != "svc" || b.PlanID != "plan" || b.PredecessorBindingID != "b0" || !b.Has("service_id") || !b.Has("plan_id") {
		t.Errorf("the broker read %+v, want the instance's service and plan filled in beside the predecessor", b)
	}
	if len(asked) != 1 || asked[0] != "iA" {
		t.Errorf("asked for instances %q, want the decoded instance ID once", asked)
	}

	// A body that names its service and plan is passed on as it is.
	if res := rotate("i1", `{"predecessor_binding_id": "b0", "service_id": "svc", "plan_id": "plan"}`); res.StatusCode != http.StatusCreated {
		t.Fatalf("full rotation body: status %d", res.StatusCode)
	}
	if len(asked) != 1 {
		t.Errorf("a full body cost a read of the instance: %q", asked)
	}

	// The instance's failure is the answer, in the broker's words.
	w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/"+missingID+"/service_bindings/b1", `{"predecessor_binding_id": "b0"}`,
		withHeader("X-Broker-API-Version", "2.17")))
	if w.Code != http.StatusNotFound || !strings.Contains(description(t, w), `"missing" does not exist`) {
		t.Errorf("rotation on a missing instance: %d %s", w.Code, w.Body)
	}
	w = env.serve(osbRequest(http.MethodPut, "/v2/service_instances/broken/service_bindings/b1", `{"predecessor_binding_id": "b0"}`,
		withHeader("X-Broker-API-Version", "2.17")))
	if w.Code != http.StatusInternalServerError || strings.Contains(w.Body.String(), "redis") {
		t.Errorf("rotation whose instance cannot be read: %d %s, want a 500 without the internals", w.Code, w.Body)
	}
	if n := len(env.broker.callsExcept("Services")); n != 2 {
		t.Errorf("%d broker calls, want only the two good rotations", n)
	}
}

// TestRotationBodyWithoutCompletion: without InstancePlan the edge says
// what is missing, as for any bind.
func TestRotationBodyWithoutCompletion(t *testing.T) {
	env := newTestEnv(t, nil)
	w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/i1/service_bindings/b1", `{"predecessor_binding_id": "b0"}`))
	if w.Code != http.StatusBadRequest || !strings.Contains(description(t, w), "service_id is required") {
		t.Errorf("status %d %s, want 400 naming service_id", w.Code, w.Body)
	}
}
