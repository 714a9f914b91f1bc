package broker_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

func TestUpdate(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision sync", e.provision("inst-u", planSync, nil, false), http.StatusCreated, "")
	expect(t, "provision fixed", e.provision("inst-x", planFixed, nil, false), http.StatusCreated, "")

	tests := []struct {
		name      string
		iid       string
		body      map[string]any
		status    int
		code      string
		fragments []string
		wantPlan  string // stored plan afterwards; "" when the instance must not exist
		adapter   int    // adapter update calls so far
	}{
		{
			name: "plan change to an updateable plan", iid: "inst-u",
			body:   map[string]any{"service_id": serviceID, "plan_id": planSyncLarge, "previous_values": map[string]any{"plan_id": planSync}},
			status: http.StatusOK, wantPlan: planSyncLarge, adapter: 1,
		},
		{
			name: "plan change from a plan that is not updateable", iid: "inst-x",
			body:   map[string]any{"service_id": serviceID, "plan_id": planSync},
			status: http.StatusUnprocessableEntity, code: "PlanChangeNotSupported", fragments: []string{`"fixed"`},
			wantPlan: planFixed, adapter: 1,
		},
		{
			name: "plan of another service", iid: "inst-u",
			body:   map[string]any{"service_id": serviceID, "plan_id": "plan-nope"},
			status: http.StatusBadRequest, fragments: []string{"plan-nope"},
			wantPlan: planSyncLarge, adapter: 1,
		},
		{
			name: "service that does not match the instance", iid: "inst-u",
			body:   map[string]any{"service_id": "svc-other", "plan_id": planSync},
			status: http.StatusBadRequest, fragments: []string{"svc-other"},
			wantPlan: planSyncLarge, adapter: 1,
		},
		{
			name: "parameters that are not an object", iid: "inst-u",
			body:   map[string]any{"service_id": serviceID, "parameters": []any{"x"}},
			status: http.StatusBadRequest, fragments: []string{"parameters must be a JSON object"},
			wantPlan: planSyncLarge, adapter: 1,
		},
		{
			name: "unknown instance", iid: "inst-none",
			body:   map[string]any{"service_id": serviceID, "plan_id": planSync},
			status: http.StatusNotFound, fragments: []string{"inst-none"}, adapter: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.storedInstance(tt.iid)
			r := e.update(tt.iid, tt.body, false)
			if tt.status >= 400 {
				expectFailure(t, "update", r, tt.status, tt.code, tt.fragments...)
			} else {
				expect(t, "update", r, tt.status, tt.code, tt.fragments...)
			}
			inst := e.storedInstance(tt.iid)
			switch {
			case tt.wantPlan == "" && inst != nil:
				t.Errorf("an instance record appeared: %+v", inst)
			case tt.wantPlan != "" && (inst == nil || inst.PlanID != tt.wantPlan || inst.State != broker.InstanceReady):
				t.Errorf("stored instance %+v, want ready on plan %s", inst, tt.wantPlan)
			}
			if tt.status >= 400 && before != nil && inst != nil && (inst.LastOp.ID != before.LastOp.ID || inst.UpdatedAt != before.UpdatedAt) {
				t.Errorf("a rejected update changed the record: last op %s -> %s", before.LastOp.ID, inst.LastOp.ID)
			}
			if n := e.adapter.count(adapters.OpUpdate); n != tt.adapter {
				t.Errorf("%d adapter update calls, want %d", n, tt.adapter)
			}
			if e.mr.Exists(lockKey(tt.iid)) {
				t.Error("the lock survived the request")
			}
		})
	}
	calls := e.adapter.callsOf(adapters.OpUpdate)
	if len(calls) != 1 || calls[0].Plan != planSyncLarge || calls[0].Previous != planSync {
		t.Errorf("adapter update calls %+v, want one from %s to %s", calls, planSync, planSyncLarge)
	}
}

func TestUpdateFailureKeepsTheOldPlan(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision", e.provision("inst-u", planSync, nil, false), http.StatusCreated, "")
	e.adapter.failNext(adapters.OpUpdate, adapters.Said("resize failed"))

	r := e.update("inst-u", map[string]any{"service_id": serviceID, "plan_id": planSyncLarge}, false)
	expectFailure(t, "failed update", r, http.StatusBadGateway, "", "resize failed", "producer test-team")
	inst := e.storedInstance("inst-u")
	if inst == nil || inst.PlanID != planSync || inst.State != broker.InstanceReady {
		t.Fatalf("instance after a failed update %+v, want ready on the old plan", inst)
	}
	if inst.LastOp.State != broker.OpFailed || !strings.Contains(inst.LastOp.Description, "resize failed") {
		t.Errorf("last op %+v", inst.LastOp)
	}
}
