package broker_test

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

// rotate sends the body provider-osb sends to rotate a binding: the
// predecessor's ID and nothing else, with API version 2.17.
func (e *env) rotate(iid, bid, predecessor string, async bool) response {
	e.t.Helper()
	path := bindingPath(iid, bid)
	if async {
		path += "?accepts_incomplete=true"
	}
	return e.doAs("2.17", http.MethodPut, path, map[string]any{"predecessor_binding_id": predecessor})
}

// boundWithParameters provisions iid on plan and binds bid with a
// parameter, a bind_resource and a context, as a platform would. On the
// async plan it waits for both, so the workers must run.
func (e *env) boundWithParameters(iid, bid, plan string) {
	e.t.Helper()
	async := plan == planRotatableAsync
	r := e.provision(iid, plan, nil, async)
	if async {
		expect(e.t, "provision", r, http.StatusAccepted, "")
		e.waitState(iid, r.str("operation"), "succeeded")
	} else {
		expect(e.t, "provision", r, http.StatusCreated, "")
	}
	body := bindBody(plan, "app-1")
	body["parameters"] = map[string]any{"role": "reader"}
	body["context"] = map[string]any{"platform": "kubernetes", "namespace": "team-a"}
	path := bindingPath(iid, bid)
	if async {
		path += "?accepts_incomplete=true"
	}
	r = e.doAs("2.17", http.MethodPut, path, body)
	if !async {
		expect(e.t, "bind", r, http.StatusCreated, "")
		return
	}
	expect(e.t, "bind", r, http.StatusAccepted, "")
	e.waitBinding(iid, bid, r.str("operation"), "succeeded")
}

// waitBinding polls a binding's last_operation until it reports state.
func (e *env) waitBinding(iid, bid, op, state string) {
	e.t.Helper()
	var last response
	eventually(e.t, func() bool {
		last = e.doAs("2.17", http.MethodGet, bindingPath(iid, bid)+"/last_operation?operation="+op, nil)
		return last.str("state") == state
	}, func() string { return "binding " + bid + " never reported " + state + "; last answer " + last.raw })
}

// TestRotationWithPredecessorOnlyBody: the successor takes the
// predecessor's plan, parameters, app and context, the adapter is told
// what it rotates, and both bindings stay valid.
func TestRotationWithPredecessorOnlyBody(t *testing.T) {
	e := newEnv(t)
	e.adapter.expireBindingsAfter(e.clock, time.Hour)
	e.boundWithParameters("inst-r", "old", planRotatable)
	oldRecord := e.storedBinding("inst-r", "old")
	oldCreds, _ := e.creds.secret(oldRecord.CredentialRef)

	r := e.do(http.MethodGet, bindingPath("inst-r", "old"), nil)
	meta, _ := r.body["metadata"].(map[string]any)
	if meta["expires_at"] != oldRecord.ExpiresAt.Format("2006-01-02T15:04:05.0Z") || meta["renew_before"] == nil {
		t.Errorf("GET binding metadata %v, want expires_at %s and renew_before", meta, oldRecord.ExpiresAt)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.9Z", meta["renew_before"].(string)); err != nil {
		t.Errorf("renew_before %v does not parse in provider-osb's layout: %v", meta["renew_before"], err)
	}

	r = e.rotate("inst-r", "new", "old", false)
	expect(t, "rotation", r, http.StatusCreated, "")
	if creds, _ := r.body["credentials"].(map[string]any); creds["password"] != password("new") {
		t.Errorf("rotation answered credentials %v, want the successor's", creds)
	}
	if meta, _ := r.body["metadata"].(map[string]any); meta["expires_at"] == nil {
		t.Errorf("the bind answer carries no metadata: %s", r.raw)
	}
	calls := e.adapter.callsOf(adapters.OpBind)
	last := calls[len(calls)-1]
	if last.BindingID != "new" || last.Plan != planRotatable || !reflect.DeepEqual(last.Parameters, map[string]any{"role": "reader"}) {
		t.Errorf("the adapter's bind %+v, want binding new on the rotatable plan with the predecessor's parameters", last)
	}
	if want := (&adapters.Predecessor{BindingID: "old", Receipt: adapters.Receipt{"role": "role-old"}}); !reflect.DeepEqual(last.Predecessor, want) {
		t.Errorf("the adapter was told predecessor %+v, want %+v", last.Predecessor, want)
	}
	succ := e.storedBinding("inst-r", "new")
	if succ == nil || succ.State != broker.BindingBound || succ.AppGUID != "app-1" || succ.Predecessor == nil || succ.Predecessor.BindingID != "old" {
		t.Fatalf("successor record %+v", succ)
	}
	if string(succ.Context) != string(oldRecord.Context) {
		t.Errorf("successor context %s, want the predecessor's %s", succ.Context, oldRecord.Context)
	}
	if got, _ := e.getParameters("inst-r", "new"); !reflect.DeepEqual(got, map[string]any{"role": "reader"}) {
		t.Errorf("GET successor parameters %v", got)
	}

	// The predecessor is untouched: its record, its credentials, no
	// unbind at the adapter, and GET still serves it.
	if now := e.storedBinding("inst-r", "old"); !reflect.DeepEqual(now, oldRecord) {
		t.Errorf("the predecessor's record changed:\n%+v\n%+v", oldRecord, now)
	}
	if creds, _ := e.creds.secret(oldRecord.CredentialRef); !reflect.DeepEqual(creds, oldCreds) {
		t.Error("the predecessor's credentials changed in Vault")
	}
	if n := e.adapter.count(adapters.OpUnbind); n != 0 {
		t.Errorf("%d unbind calls at the adapter, want none", n)
	}
	expect(t, "GET predecessor", e.do(http.MethodGet, bindingPath("inst-r", "old"), nil), http.StatusOK, "")

	// Repeats: the same rotation is 200 with the same credentials; a
	// different request for the same binding ID is a conflict.
	binds := e.adapter.count(adapters.OpBind)
	r = e.rotate("inst-r", "new", "old", false)
	expect(t, "repeated rotation", r, http.StatusOK, "")
	if creds, _ := r.body["credentials"].(map[string]any); creds["password"] != password("new") || e.adapter.count(adapters.OpBind) != binds {
		t.Errorf("a repeated rotation reached the adapter or changed the credentials: %s", r.raw)
	}
	expectFailure(t, "plain bind on the successor's ID", e.doAs("2.17", http.MethodPut, bindingPath("inst-r", "new"), bindBody(planRotatable, "app-1")), http.StatusConflict, "")
}

// TestRotationRefusals: every way a rotation can be wrong gets a clear
// 400 or 422, and changes nothing.
func TestRotationRefusals(t *testing.T) {
	e := newEnv(t)
	e.adapter.expireBindingsAfter(e.clock, time.Hour)
	e.boundWithParameters("inst-r", "old", planRotatable)
	e.boundWithParameters("inst-s", "plain", planSync)
	binds := e.adapter.count(adapters.OpBind)

	tests := []struct {
		name      string
		send      func() response
		status    int
		fragments []string
	}{
		{"unknown predecessor", func() response { return e.rotate("inst-r", "new", "nope", false) }, http.StatusBadRequest,
			[]string{`"nope" is not a binding of service instance "inst-r"`}},
		{"predecessor of another instance", func() response { return e.rotate("inst-r", "new", "plain", false) }, http.StatusBadRequest,
			[]string{`"plain" is not a binding`}},
		{"plan not rotatable", func() response { return e.rotate("inst-s", "new", "plain", false) }, http.StatusBadRequest,
			[]string{"does not allow binding rotation"}},
		{"itself", func() response { return e.rotate("inst-r", "old", "old", false) }, http.StatusBadRequest,
			[]string{"names the binding being created"}},
		{"before 2.17", func() response {
			return e.do(http.MethodPut, bindingPath("inst-r", "new"), map[string]any{"predecessor_binding_id": "old"})
		}, http.StatusBadRequest, []string{"2.17"}},
		{"with parameters", func() response {
			return e.doAs("2.17", http.MethodPut, bindingPath("inst-r", "new"), map[string]any{"predecessor_binding_id": "old", "parameters": map[string]any{"role": "writer"}})
		}, http.StatusBadRequest, []string{"takes the parameters of binding"}},
		{"unknown instance", func() response { return e.rotate("inst-nope", "new", "old", false) }, http.StatusNotFound,
			[]string{`"inst-nope" does not exist`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expectFailure(t, tc.name, tc.send(), tc.status, "", tc.fragments...)
		})
	}

	// Expired: past expires_at the predecessor can no longer be rotated.
	e.clock.advance(2 * time.Hour)
	expectFailure(t, "expired predecessor", e.rotate("inst-r", "new", "old", false), http.StatusBadRequest, "", "expired at")
	if n := e.adapter.count(adapters.OpBind); n != binds {
		t.Errorf("%d refused rotations reached the adapter", n-binds)
	}
	if e.storedBinding("inst-r", "new") != nil {
		t.Error("a refused rotation left a binding record")
	}
}

// TestRotationOfABindingBeingDeleted: a predecessor whose unbind runs is
// refused with 422.
func TestRotationOfABindingBeingDeleted(t *testing.T) {
	e := newEnv(t)
	e.startWorkers("w1")
	e.boundWithParameters("inst-d", "old", planRotatableAsync)
	held := e.adapter.hold(t, adapters.OpUnbind)
	r := e.do(http.MethodDelete, bindingPath("inst-d", "old")+"?service_id="+serviceID+"&plan_id="+planRotatableAsync+"&accepts_incomplete=true", nil)
	expect(t, "async unbind", r, http.StatusAccepted, "")
	held.waitEntered(t)
	expectFailure(t, "rotation of a binding being deleted", e.rotate("inst-d", "new", "old", true), http.StatusUnprocessableEntity, "", "being deleted")
	held.open()
}

// TestFailedRotationLeavesThePredecessor: the adapter cannot issue the
// successor; the predecessor stays exactly as it was and keeps working,
// and the rotation can be sent again.
func TestFailedRotationLeavesThePredecessor(t *testing.T) {
	e := newEnv(t)
	e.boundWithParameters("inst-f", "old", planRotatable)
	oldRecord := e.storedBinding("inst-f", "old")
	e.adapter.failNext(adapters.OpBind, errors.New("backend: connection reset"))

	r := e.rotate("inst-f", "new", "old", false)
	expectFailure(t, "rotation whose adapter call fails", r, http.StatusBadGateway, "", `"fake" adapter`)
	if now := e.storedBinding("inst-f", "old"); !reflect.DeepEqual(now, oldRecord) {
		t.Errorf("the failed rotation changed the predecessor:\n%+v\n%+v", oldRecord, now)
	}
	if _, ok := e.creds.secret(oldRecord.CredentialRef); !ok {
		t.Error("the failed rotation deleted the predecessor's credentials")
	}
	for _, c := range e.adapter.callsOf(adapters.OpUnbind) {
		if c.BindingID == "old" {
			t.Error("the failed rotation unbound the predecessor")
		}
	}
	expect(t, "GET predecessor", e.do(http.MethodGet, bindingPath("inst-f", "old"), nil), http.StatusOK, "")

	expect(t, "rotation again", e.rotate("inst-f", "new", "old", false), http.StatusCreated, "")
	if bnd := e.storedBinding("inst-f", "new"); bnd == nil || bnd.State != broker.BindingBound {
		t.Errorf("successor after the second try: %+v", bnd)
	}
}

// TestAsyncRotation: on an async plan the worker runs the bind, with the
// predecessor and its parameters, and GET binding then serves it.
func TestAsyncRotation(t *testing.T) {
	e := newEnv(t)
	e.startWorkers("w1")
	e.boundWithParameters("inst-a", "old", planRotatableAsync)
	r := e.rotate("inst-a", "new", "old", true)
	expect(t, "async rotation", r, http.StatusAccepted, "")
	e.waitBinding("inst-a", "new", r.str("operation"), "succeeded")
	calls := e.adapter.callsOf(adapters.OpBind)
	last := calls[len(calls)-1]
	if last.BindingID != "new" || last.Predecessor == nil || last.Predecessor.BindingID != "old" || last.Parameters["role"] != "reader" {
		t.Errorf("the worker's bind %+v, want the predecessor and its parameters", last)
	}
	r = e.do(http.MethodGet, bindingPath("inst-a", "new"), nil)
	if creds, _ := r.body["credentials"].(map[string]any); creds["password"] != password("new") {
		t.Errorf("GET successor: %s", r.raw)
	}
	e.expectNotInRedis("reader")
}
