package broker_test

import (
	"errors"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

func TestBindKeepsCredentialsOutOfRedis(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision", e.provision("inst-b", planSync, nil, false), http.StatusCreated, "")

	r := e.bind("inst-b", "bind-1", planSync, "app-1")
	expect(t, "bind", r, http.StatusCreated, "")
	wantCreds := map[string]any{"username": "user-bind-1", "password": password("bind-1")}
	if got, _ := r.body["credentials"].(map[string]any); !reflect.DeepEqual(got, wantCreds) {
		t.Errorf("credentials %v, want %v", got, wantCreds)
	}
	if eps, _ := r.body["endpoints"].([]any); len(eps) != 1 {
		t.Errorf("endpoints %v, want the adapter's one", r.body["endpoints"])
	}

	ref := e.creds.BindingRef("inst-b", "bind-1")
	if s, ok := e.creds.secret(ref); !ok || !reflect.DeepEqual(s, wantCreds) {
		t.Errorf("credential store holds %v at %s, want %v", s, ref, wantCreds)
	}
	bnd := e.storedBinding("inst-b", "bind-1")
	if bnd == nil || bnd.State != broker.BindingBound || bnd.CredentialRef != ref || bnd.AppGUID != "app-1" {
		t.Fatalf("binding record %+v", bnd)
	}
	if bnd.Receipt["role"] != "role-bind-1" {
		t.Errorf("binding receipt %v not stored", bnd.Receipt)
	}
	e.expectNotInRedis(password("bind-1"))

	r = e.bind("inst-b", "bind-1", planSync, "app-1")
	expect(t, "identical repeat", r, http.StatusOK, "")
	if got, _ := r.body["credentials"].(map[string]any); !reflect.DeepEqual(got, wantCreds) {
		t.Errorf("repeat credentials %v, want the same %v", got, wantCreds)
	}
	if n := e.adapter.count(adapters.OpBind); n != 1 {
		t.Errorf("%d adapter bind calls, want 1", n)
	}

	r = e.bind("inst-b", "bind-1", planSync, "app-2")
	expectFailure(t, "repeat for another app", r, http.StatusConflict, "", "bind-1")
	if n := e.adapter.count(adapters.OpBind); n != 1 {
		t.Errorf("a conflicting bind reached the adapter (%d calls)", n)
	}

	r = e.do(http.MethodGet, bindingPath("inst-b", "bind-1"), nil)
	expect(t, "GET binding", r, http.StatusOK, "")
	if got, _ := r.body["credentials"].(map[string]any); !reflect.DeepEqual(got, wantCreds) {
		t.Errorf("GET credentials %v, want %v", got, wantCreds)
	}
	expectFailure(t, "GET of an unknown binding", e.do(http.MethodGet, bindingPath("inst-b", "bind-x"), nil), http.StatusNotFound, "", "bind-x")

	r = e.unbind("inst-b", "bind-1", planSync)
	expect(t, "unbind", r, http.StatusOK, "")
	if calls := e.adapter.callsOf(adapters.OpUnbind); len(calls) != 1 || calls[0].BindingID != "bind-1" {
		t.Errorf("adapter unbind calls %+v", calls)
	}
	if _, ok := e.creds.secret(ref); ok {
		t.Error("the credentials stayed in the credential store after unbind")
	}
	if e.storedBinding("inst-b", "bind-1") != nil {
		t.Error("the binding record survived unbind")
	}
	expect(t, "repeated unbind", e.unbind("inst-b", "bind-1", planSync), http.StatusGone, "")
	if n := e.adapter.count(adapters.OpUnbind); n != 1 {
		t.Errorf("a repeated unbind reached the adapter (%d calls)", n)
	}
	expectFailure(t, "GET of the deleted binding", e.do(http.MethodGet, bindingPath("inst-b", "bind-1"), nil), http.StatusNotFound, "", "bind-1")
	if inst := e.storedInstance("inst-b"); inst == nil || inst.State != broker.InstanceReady {
		t.Errorf("the instance changed with its binding: %+v", inst)
	}
	// Only the instance's own operation is left on record.
	if ops, _ := e.mr.HKeys(opsKey("inst-b")); len(ops) != 1 {
		t.Errorf("operations left after bind and unbind: %v", ops)
	}
}

func TestBindToUnknownInstance(t *testing.T) {
	e := newEnv(t)
	// brokerapi words this 404 itself, without Agora's request id.
	expect(t, "bind to an unknown instance", e.bind("nope", "bind-1", planSync, "app-1"), http.StatusNotFound, "", "does not exist")
	if len(e.mr.Keys()) != 0 {
		t.Errorf("keys left: %v", e.mr.Keys())
	}
}

func TestBindWhenVaultFails(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision", e.provision("inst-v", planSync, nil, false), http.StatusCreated, "")
	e.creds.setFailPut(true)

	r := e.bind("inst-v", "bind-1", planSync, "app-1")
	expectFailure(t, "bind with Vault down", r, http.StatusServiceUnavailable, "", "credential store (Vault)", "platform team")
	if strings.Contains(r.raw, "connection refused") || strings.Contains(r.raw, "127.0.0.1") {
		t.Errorf("the app developer sees Vault's internals: %s", r.raw)
	}
	if r.body["credentials"] != nil {
		t.Errorf("credentials leaked in a failed response: %s", r.raw)
	}
	// Compensation: what the adapter issued is revoked again.
	if calls := e.adapter.callsOf(adapters.OpUnbind); len(calls) != 1 || calls[0].BindingID != "bind-1" {
		t.Errorf("adapter unbind calls %+v, want one compensating call for bind-1", calls)
	}
	if e.storedBinding("inst-v", "bind-1") != nil {
		t.Error("a binding record was kept although nothing exists at the backend")
	}
	if ops, _ := e.mr.HKeys(opsKey("inst-v")); len(ops) != 1 {
		t.Errorf("the failed bind left operation records: %v", ops)
	}
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("credential store holds %v", refs)
	}
	if e.mr.Exists(lockKey("inst-v")) {
		t.Error("the lock survived the failure")
	}
	e.expectNotInRedis(password("bind-1"))

	// Vault is back: the platform's retry works.
	e.creds.setFailPut(false)
	expect(t, "bind once Vault is back", e.bind("inst-v", "bind-1", planSync, "app-1"), http.StatusCreated, "")
}

func TestBindWhenVaultAndCompensationFail(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision", e.provision("inst-v", planSync, nil, false), http.StatusCreated, "")
	e.creds.setFailPut(true)
	e.adapter.failNext(adapters.OpUnbind, errors.New("backend unreachable"))

	r := e.bind("inst-v", "bind-1", planSync, "app-1")
	expectFailure(t, "bind with Vault down and a failing compensation", r, http.StatusServiceUnavailable, "", "credential store (Vault)")
	// The adapter may still hold live credentials: the binding stays on
	// record as failed, so that a DELETE can finish the cleanup.
	bnd := e.storedBinding("inst-v", "bind-1")
	if bnd == nil || bnd.State != broker.BindingFailed {
		t.Fatalf("binding record %+v, want one in state failed", bnd)
	}
	e.creds.setFailPut(false)
	expect(t, "DELETE of the failed binding", e.unbind("inst-v", "bind-1", planSync), http.StatusOK, "")
	if n := e.adapter.count(adapters.OpUnbind); n != 2 {
		t.Errorf("%d adapter unbind calls, want 2 (compensation, DELETE)", n)
	}
	if e.storedBinding("inst-v", "bind-1") != nil {
		t.Error("the binding record survived its DELETE")
	}
}

func TestDeprovisionCascadesToBindings(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision", e.provision("inst-d", planSync, nil, false), http.StatusCreated, "")
	for _, bid := range []string{"bind-1", "bind-2"} {
		expect(t, "bind "+bid, e.bind("inst-d", bid, planSync, "app-"+bid), http.StatusCreated, "")
	}
	if n := len(e.creds.refs()); n != 2 {
		t.Fatalf("credential store holds %d secrets, want 2", n)
	}

	expect(t, "deprovision with bindings", e.deprovision("inst-d", planSync, false), http.StatusOK, "")
	var unbound []string
	for _, c := range e.adapter.callsOf(adapters.OpUnbind) {
		unbound = append(unbound, c.BindingID)
	}
	slices.Sort(unbound)
	if !slices.Equal(unbound, []string{"bind-1", "bind-2"}) {
		t.Errorf("adapter unbind calls for %v, want bind-1 and bind-2", unbound)
	}
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("credentials left in the credential store: %v", refs)
	}
	if n := e.adapter.count(adapters.OpDeprovision); n != 1 {
		t.Errorf("%d adapter deprovision calls, want 1", n)
	}
	e.expectNoRecords("after the cascade", "inst-d")
}

func TestDeprovisionWaitsForAsyncBind(t *testing.T) {
	e := newEnv(t)
	e.startWorkers("w1")
	r := e.provision("inst-ab", planAsync, nil, true)
	expect(t, "async provision", r, http.StatusAccepted, "")
	e.waitState("inst-ab", r.str("operation"), "succeeded")

	held := e.adapter.hold(t, adapters.OpBind)
	r = e.do(http.MethodPut, bindingPath("inst-ab", "bind-1")+"?accepts_incomplete=true", bindBody(planAsync, "app-1"))
	expect(t, "async bind", r, http.StatusAccepted, "")
	bindOp := r.str("operation")
	held.waitEntered(t)

	// Deleting the instance now would race the bind: its credentials
	// would land in Vault after the cascade, with nothing pointing at them.
	r = e.deprovision("inst-ab", planAsync, true)
	expectFailure(t, "deprovision during an async bind", r, http.StatusUnprocessableEntity, "ConcurrencyError")

	held.open()
	eventually(t, func() bool {
		b := e.storedBinding("inst-ab", "bind-1")
		return b != nil && b.State == broker.BindingBound
	}, func() string { return "the async bind never finished" })
	lo := e.do(http.MethodGet, bindingPath("inst-ab", "bind-1")+"/last_operation?operation="+bindOp, nil)
	expect(t, "binding last_operation", lo, http.StatusOK, "")
	if lo.str("state") != "succeeded" {
		t.Errorf("binding last_operation %s", lo.raw)
	}

	r = e.deprovision("inst-ab", planAsync, true)
	expect(t, "deprovision once the bind finished", r, http.StatusAccepted, "")
	eventually(t, func() bool { return e.lastOperation("inst-ab", r.str("operation")).status == http.StatusGone },
		func() string { return "the async deprovision never finished" })
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("credentials left in the credential store: %v", refs)
	}
	if n := e.adapter.count(adapters.OpUnbind); n != 1 {
		t.Errorf("%d adapter unbind calls, want 1", n)
	}
}

func TestAsyncBindAndUnbind(t *testing.T) {
	e := newEnv(t)
	e.startWorkers("w1")
	r := e.provision("inst-ab", planAsync, nil, true)
	expect(t, "async provision", r, http.StatusAccepted, "")
	e.waitState("inst-ab", r.str("operation"), "succeeded")
	bindingOp := func(bid, op string) response {
		return e.do(http.MethodGet, bindingPath("inst-ab", bid)+"/last_operation?operation="+op, nil)
	}

	held := e.adapter.hold(t, adapters.OpBind)
	r = e.do(http.MethodPut, bindingPath("inst-ab", "bind-1")+"?accepts_incomplete=true", bindBody(planAsync, "app-1"))
	expect(t, "async bind", r, http.StatusAccepted, "")
	bindOp := r.str("operation")
	held.waitEntered(t)
	expectFailure(t, "GET of a binding still being created", e.do(http.MethodGet, bindingPath("inst-ab", "bind-1"), nil), http.StatusNotFound, "", "bind-1")
	lo := bindingOp("bind-1", bindOp)
	expect(t, "binding last_operation while running", lo, http.StatusOK, "")
	if lo.str("state") != "in progress" {
		t.Errorf("binding last_operation %s", lo.raw)
	}
	r = e.do(http.MethodPut, bindingPath("inst-ab", "bind-1")+"?accepts_incomplete=true", bindBody(planAsync, "app-1"))
	expect(t, "identical repeat of the running bind", r, http.StatusAccepted, "")
	if r.str("operation") != bindOp {
		t.Errorf("repeat got operation %q, want %q", r.str("operation"), bindOp)
	}
	expectFailure(t, "unbind of a binding still being created", e.unbind("inst-ab", "bind-1", planAsync), http.StatusUnprocessableEntity, "ConcurrencyError")
	held.open()

	eventually(t, func() bool { lo = bindingOp("bind-1", bindOp); return lo.str("state") == "succeeded" },
		func() string { return "the async bind never succeeded: " + lo.raw })
	r = e.do(http.MethodGet, bindingPath("inst-ab", "bind-1"), nil)
	expect(t, "GET of the bound binding", r, http.StatusOK, "")
	if got, _ := r.body["credentials"].(map[string]any); got["password"] != password("bind-1") {
		t.Errorf("GET credentials %v", got)
	}
	e.expectNotInRedis(password("bind-1"))

	r = e.do(http.MethodDelete, bindingPath("inst-ab", "bind-1")+"?accepts_incomplete=true&service_id="+serviceID+"&plan_id="+planAsync, nil)
	expect(t, "async unbind", r, http.StatusAccepted, "")
	unbindOp := r.str("operation")
	eventually(t, func() bool { return bindingOp("bind-1", unbindOp).status == http.StatusGone },
		func() string { return "binding last_operation never answered 410 after the async unbind" })
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("credentials left in the credential store: %v", refs)
	}
	if e.storedBinding("inst-ab", "bind-1") != nil {
		t.Error("the binding record survived the async unbind")
	}
	expect(t, "repeated unbind", e.unbind("inst-ab", "bind-1", planAsync), http.StatusGone, "")
	// The instance's history does not keep the binding's operations: the
	// binding tombstone answers for the unbind.
	ops, _ := e.mr.HKeys(opsKey("inst-ab"))
	inst := e.storedInstance("inst-ab")
	if len(ops) != 1 || ops[0] != inst.LastOp.ID {
		t.Errorf("operation records left after bind and unbind: %v, want only the instance's %s", ops, inst.LastOp.ID)
	}
}

func TestDeprovisionCascadeWhenVaultFails(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision", e.provision("inst-dv", planSync, nil, false), http.StatusCreated, "")
	expect(t, "bind", e.bind("inst-dv", "bind-1", planSync, "app-1"), http.StatusCreated, "")
	e.creds.setFailAll(true)

	r := e.deprovision("inst-dv", planSync, false)
	expectFailure(t, "deprovision with Vault down", r, http.StatusServiceUnavailable, "", "credential store (Vault)")
	// The binding's secret is still in Vault, so its record stays to point
	// at it, and the instance stays as it was for the platform to retry.
	if bnd := e.storedBinding("inst-dv", "bind-1"); bnd == nil || bnd.CredentialRef == "" {
		t.Fatalf("binding record %+v, want it kept with its credential reference", bnd)
	}
	if inst := e.storedInstance("inst-dv"); inst == nil || inst.State != broker.InstanceReady || inst.LastOp.State != broker.OpFailed {
		t.Fatalf("instance after the failed delete: %+v", inst)
	}
	if n := e.adapter.count(adapters.OpDeprovision); n != 0 {
		t.Errorf("the instance was deprovisioned at the adapter although its binding was not cleaned up (%d calls)", n)
	}

	e.creds.setFailAll(false)
	expect(t, "retried deprovision", e.deprovision("inst-dv", planSync, false), http.StatusOK, "")
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("credentials left in the credential store: %v", refs)
	}
	e.expectNoRecords("after the retried delete", "inst-dv")
}
