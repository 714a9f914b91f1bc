package broker_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

func TestProvisionSyncIsIdempotent(t *testing.T) {
	e := newEnv(t)

	r := e.provision("inst-1", planSync, map[string]any{"tier": "gold"}, false)
	expect(t, "first provision", r, http.StatusCreated, "")
	if got := r.str("dashboard_url"); got != "https://dash.example.com/inst-1" {
		t.Errorf("dashboard_url %q", got)
	}
	inst := e.storedInstance("inst-1")
	if inst == nil {
		t.Fatal("no instance record after 201")
	}
	if inst.State != broker.InstanceReady || inst.PlanID != planSync || inst.ServiceID != serviceID {
		t.Errorf("stored instance state=%s plan=%s service=%s", inst.State, inst.PlanID, inst.ServiceID)
	}
	if inst.LastOp == nil || inst.LastOp.State != broker.OpSucceeded || inst.LastOp.Kind != adapters.OpProvision {
		t.Errorf("stored last op %+v", inst.LastOp)
	}
	if inst.Receipt["db"] != "db-inst-1" {
		t.Errorf("receipt %v not stored", inst.Receipt)
	}
	if e.mr.Exists(lockKey("inst-1")) {
		t.Error("the instance lock is still held after the request")
	}
	if calls := e.adapter.callsOf(adapters.OpProvision); len(calls) != 1 || calls[0].RequestID != r.requestID {
		t.Errorf("adapter provision calls %+v, want one carrying request id %s", calls, r.requestID)
	}
	// Parameters may hold secrets: only their fingerprint is stored.
	e.expectNotInRedis("gold")

	r = e.provision("inst-1", planSync, map[string]any{"tier": "gold"}, false)
	expect(t, "identical repeat", r, http.StatusOK, "")
	if got := r.str("dashboard_url"); got != "https://dash.example.com/inst-1" {
		t.Errorf("repeat: dashboard_url %q", got)
	}
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Errorf("an identical repeat reached the adapter: %d provision calls", n)
	}

	for _, tt := range []struct {
		name string
		body map[string]any
	}{
		{"other parameters", provisionBody(planSync, map[string]any{"tier": "silver"})},
		{"other plan", provisionBody(planSyncLarge, map[string]any{"tier": "gold"})},
		{"other space", func() map[string]any {
			b := provisionBody(planSync, map[string]any{"tier": "gold"})
			b["space_guid"] = "space-2"
			return b
		}()},
	} {
		r = e.do(http.MethodPut, instancePath("inst-1", false), tt.body)
		expectFailure(t, "repeat with "+tt.name, r, http.StatusConflict, "", "inst-1", "different attributes")
	}
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Errorf("a conflicting request reached the adapter: %d provision calls", n)
	}
	if got := e.storedInstance("inst-1"); got.Fingerprint != inst.Fingerprint || got.PlanID != planSync {
		t.Error("a conflicting request changed the stored instance")
	}

	r = e.deprovision("inst-1", planSync, false)
	expect(t, "deprovision", r, http.StatusOK, "")
	if r.raw != "{}" && strings.TrimSpace(r.raw) != "{}" {
		t.Errorf("deprovision body %q, want {}", r.raw)
	}
	if n := e.adapter.count(adapters.OpDeprovision); n != 1 {
		t.Errorf("%d adapter deprovision calls, want 1", n)
	}
	e.expectNoRecords("after deprovision", "inst-1")

	r = e.deprovision("inst-1", planSync, false)
	expect(t, "repeated deprovision", r, http.StatusGone, "")
	if n := e.adapter.count(adapters.OpDeprovision); n != 1 {
		t.Errorf("a DELETE of a gone instance reached the adapter (%d calls)", n)
	}
}

func TestProvisionAsync(t *testing.T) {
	// A lease far longer than the held call: on a loaded machine the
	// default 200ms one can lapse between heartbeats, and the job's
	// redelivery would be a second adapter call this test counts.
	e := newEnvWithLease(t, 10*time.Second)
	e.startWorkers("w1")
	held := e.adapter.hold(t, adapters.OpProvision)
	const secret = "param-SECRET-42"

	r := e.provision("inst-a", planAsync, map[string]any{"admin_password": secret}, false)
	expectFailure(t, "async plan without accepts_incomplete", r, http.StatusUnprocessableEntity, "AsyncRequired", "accepts_incomplete")
	e.expectNoRecords("after AsyncRequired", "inst-a")

	r = e.provision("inst-a", planAsync, map[string]any{"admin_password": secret}, true)
	expect(t, "async provision", r, http.StatusAccepted, "")
	opID := r.str("operation")
	if opID == "" {
		t.Fatalf("202 without an operation: %s", r.raw)
	}
	held.waitEntered(t)

	// Parameters of async work wait in the credential store, never in Redis.
	var paramRef string
	for _, ref := range e.creds.refs() {
		if strings.Contains(ref, "/operations/") {
			paramRef = ref
		}
	}
	if s, ok := e.creds.secret(paramRef); !ok || s["admin_password"] != secret {
		t.Errorf("async parameters not in the credential store: refs %v", e.creds.refs())
	}
	e.expectNotInRedis(secret)
	if op := e.storedOperation("inst-a", opID); op == nil || op.ParametersRef != paramRef || !op.Async || op.State != broker.OpInProgress {
		t.Errorf("stored operation %+v, want async, in progress, parameters at %q", op, paramRef)
	}

	r = e.provision("inst-a", planAsync, map[string]any{"admin_password": secret}, true)
	expect(t, "identical repeat while in progress", r, http.StatusAccepted, "")
	if got := r.str("operation"); got != opID {
		t.Errorf("repeat got operation %q, want the running %q", got, opID)
	}

	r = e.lastOperation("inst-a", opID)
	expect(t, "last_operation while running", r, http.StatusOK, "")
	if r.str("state") != "in progress" {
		t.Errorf("state %q, want in progress", r.str("state"))
	}
	if got := r.header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After %q, want 7", got)
	}

	held.open()
	r = e.waitState("inst-a", opID, "succeeded")
	if got := r.header.Get("Retry-After"); got != "7" {
		t.Errorf("Retry-After %q on the final poll, want 7", got)
	}
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Errorf("%d adapter provision calls, want 1", n)
	}
	if inst := e.storedInstance("inst-a"); inst == nil || inst.State != broker.InstanceReady {
		t.Errorf("instance after success: %+v", inst)
	}
	eventually(t, func() bool { _, ok := e.creds.secret(paramRef); return !ok },
		func() string {
			return "the async parameters stayed in the credential store after the operation finished"
		})
	eventually(t, e.queueDrained, func() string { return "the finished job is still in the queue" })

	r = e.deprovision("inst-a", planAsync, false)
	expectFailure(t, "async deprovision without accepts_incomplete", r, http.StatusUnprocessableEntity, "AsyncRequired")

	r = e.deprovision("inst-a", planAsync, true)
	expect(t, "async deprovision", r, http.StatusAccepted, "")
	delOp := r.str("operation")
	if delOp == "" || delOp == opID {
		t.Fatalf("deprovision operation %q", delOp)
	}
	eventually(t, func() bool { return e.lastOperation("inst-a", delOp).status == http.StatusGone },
		func() string { return "last_operation never answered 410 after the async delete" })
	if n := e.adapter.count(adapters.OpDeprovision); n != 1 {
		t.Errorf("%d adapter deprovision calls, want 1", n)
	}
	if e.mr.Exists(instanceKey("inst-a")) || e.mr.Exists(opsKey("inst-a")) {
		t.Error("instance records survived the async delete")
	}
	if !e.mr.Exists(tombstoneKey("inst-a")) {
		t.Error("no tombstone after the async delete")
	}
	expect(t, "last_operation without operation after the delete", e.lastOperation("inst-a", ""), http.StatusGone, "")
	expect(t, "repeated DELETE", e.deprovision("inst-a", planAsync, true), http.StatusGone, "")

	// The tombstone expires; afterwards the instance is simply unknown.
	e.mr.FastForward(25 * time.Hour)
	expect(t, "last_operation once the tombstone expired", e.lastOperation("inst-a", delOp), http.StatusNotFound, "")
}

func TestProvisionParametersAreValidatedBeforeAnythingIsStored(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct {
		name      string
		params    any
		fragments []string
	}{
		{"string", "size=3", []string{"parameters must be a JSON object"}},
		{"array", []any{1, 2}, []string{"parameters must be a JSON object"}},
		{"number", 3, []string{"parameters must be a JSON object"}},
		{"above maximum", map[string]any{"size": 11}, []string{"size", "must be <= 10"}},
		{"below minimum", map[string]any{"size": 0}, []string{"size", "must be >= 1"}},
		{"not an integer", map[string]any{"size": 2.5}, []string{"size", "integer"}},
		{"wrong type", map[string]any{"size": "big"}, []string{"size", "integer"}},
		{"unknown parameter", map[string]any{"size": 2, "colour": "red"}, []string{`unknown parameter "colour"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.provision("inst-p", planSchema, tt.params, false)
			expectFailure(t, "provision", r, http.StatusBadRequest, "", tt.fragments...)
			e.expectNoRecords("after a rejected provision", "inst-p")
		})
	}
	if n := e.adapter.count(adapters.OpProvision); n != 0 {
		t.Errorf("rejected requests reached the adapter %d times", n)
	}
	if len(e.mr.Keys()) != 0 {
		t.Errorf("rejected requests left keys in Redis: %v", e.mr.Keys())
	}

	expect(t, "valid parameters", e.provision("inst-p", planSchema, map[string]any{"size": 10, "name": "db"}, false), http.StatusCreated, "")
}

func TestProvisionMaintenanceInfo(t *testing.T) {
	e := newEnv(t)
	withMI := func(planID, version string) map[string]any {
		b := provisionBody(planID, nil)
		b["maintenance_info"] = map[string]any{"version": version}
		return b
	}
	r := e.do(http.MethodPut, instancePath("inst-m", false), withMI(planSync, "2.0.0"))
	expectFailure(t, "mismatched maintenance_info", r, http.StatusUnprocessableEntity, "MaintenanceInfoConflict", "maintenance_info")
	e.expectNoRecords("after the conflict", "inst-m")

	r = e.do(http.MethodPut, instancePath("inst-m", true), withMI(planAsync, "1.0.0"))
	expectFailure(t, "maintenance_info for a plan without one", r, http.StatusUnprocessableEntity, "MaintenanceInfoConflict", "maintenance_info")
	e.expectNoRecords("after the conflict", "inst-m")
	if n := e.adapter.count(adapters.OpProvision); n != 0 {
		t.Errorf("conflicting requests reached the adapter %d times", n)
	}

	r = e.do(http.MethodPut, instancePath("inst-m", false), withMI(planSync, "1.0.0"))
	expect(t, "matching maintenance_info", r, http.StatusCreated, "")
	if inst := e.storedInstance("inst-m"); inst == nil || inst.MaintenanceInfo != "1.0.0" {
		t.Errorf("stored instance %+v, want maintenance_info 1.0.0", inst)
	}
}

func TestConcurrentMutationGetsConcurrencyError(t *testing.T) {
	e := newEnv(t)
	held := e.adapter.hold(t, adapters.OpProvision)

	first := make(chan response, 1)
	go func() { first <- e.provision("inst-c", planSync, nil, false) }()
	held.waitEntered(t)
	if !e.mr.Exists(lockKey("inst-c")) {
		t.Fatal("no lock held while the adapter works")
	}

	for _, tt := range []struct {
		name string
		send func() response
	}{
		{"repeat provision", func() response { return e.provision("inst-c", planSync, nil, false) }},
		{"update", func() response {
			return e.update("inst-c", map[string]any{"service_id": serviceID, "plan_id": planSyncLarge}, false)
		}},
		{"deprovision", func() response { return e.deprovision("inst-c", planSync, false) }},
		{"bind", func() response { return e.bind("inst-c", "bind-c", planSync, "app-1") }},
	} {
		expectFailure(t, tt.name+" during a running provision", tt.send(), http.StatusUnprocessableEntity, "ConcurrencyError")
	}
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Errorf("%d provision calls reached the adapter, want 1", n)
	}
	for _, k := range []adapters.OperationKind{adapters.OpUpdate, adapters.OpDeprovision, adapters.OpBind} {
		if n := e.adapter.count(k); n != 0 {
			t.Errorf("%d %s calls reached the adapter while the instance was locked", n, k)
		}
	}

	held.open()
	select {
	case r := <-first:
		expect(t, "the held provision", r, http.StatusCreated, "")
	case <-time.After(waitTimeout):
		t.Fatal("the held provision never answered")
	}
	if inst := e.storedInstance("inst-c"); inst == nil || inst.State != broker.InstanceReady || inst.PlanID != planSync {
		t.Errorf("instance after the race: %+v", inst)
	}
	if e.mr.Exists(lockKey("inst-c")) {
		t.Error("lock still held after the request finished")
	}
}

func TestAdapterFailureDuringSyncProvision(t *testing.T) {
	e := newEnv(t)
	e.adapter.failNext(adapters.OpProvision, fmt.Errorf("POST http://10.1.2.3:9000/databases: %w", adapters.Said("backend exploded")))

	r := e.provision("inst-f", planSync, nil, false)
	expectFailure(t, "failed provision", r, http.StatusBadGateway, "",
		`"fake" adapter of offering "store"`, "producer test-team", "test-team@example.com", "backend exploded")
	inst := e.storedInstance("inst-f")
	if inst == nil || inst.State != broker.InstanceFailed || inst.LastOp == nil || inst.LastOp.State != broker.OpFailed {
		t.Fatalf("instance after a failed provision: %+v", inst)
	}
	if !strings.Contains(inst.LastOp.Description, "backend exploded") {
		t.Errorf("last op description %q does not say why", inst.LastOp.Description)
	}
	// Two audiences: the adapter's address is for the operator only.
	if strings.Contains(r.raw, "10.1.2.3") || strings.Contains(inst.LastOp.Description, "10.1.2.3") {
		t.Errorf("the app developer sees the adapter's internal address: %s / %s", r.raw, inst.LastOp.Description)
	}
	if op := e.storedOperation("inst-f", inst.LastOp.ID); op == nil || !strings.Contains(op.Detail, "http://10.1.2.3:9000/databases") {
		t.Errorf("the stored operation keeps no detail for the operator: %+v", op)
	}
	if e.mr.Exists(lockKey("inst-f")) {
		t.Error("the lock survived the failure")
	}
	lo := e.lastOperation("inst-f", "")
	expect(t, "last_operation of the failed provision", lo, http.StatusOK, "")
	if lo.str("state") != "failed" || !strings.Contains(lo.str("description"), "backend exploded") {
		t.Errorf("last_operation %s", lo.raw)
	}
	expect(t, "GET of a failed instance", e.do(http.MethodGet, instancePath("inst-f", false), nil), http.StatusNotFound, "")

	// Orphan mitigation: the platform deletes what failed, and the DELETE
	// must reach the adapter, which may hold half-created resources.
	r = e.deprovision("inst-f", planSync, false)
	expect(t, "orphan mitigation DELETE", r, http.StatusOK, "")
	if calls := e.adapter.callsOf(adapters.OpDeprovision); len(calls) != 1 || calls[0].InstanceID != "inst-f" {
		t.Errorf("adapter deprovision calls %+v, want one for inst-f", calls)
	}
	e.expectNoRecords("after orphan mitigation", "inst-f")
}

func TestAdapterRejectsParameters(t *testing.T) {
	e := newEnv(t)
	e.adapter.failNext(adapters.OpProvision, adapters.InvalidParameters("size 9 is not offered in region moon-1"))

	r := e.provision("inst-i", planSync, map[string]any{"size": 9}, false)
	expectFailure(t, "adapter-rejected parameters", r, http.StatusBadRequest, "", "size 9 is not offered in region moon-1")
	e.expectNoRecords("after an adapter rejected the parameters", "inst-i")

	// The request created nothing, so the same ID can be provisioned anew.
	expect(t, "provision after the rejection", e.provision("inst-i", planSync, map[string]any{"size": 2}, false), http.StatusCreated, "")
}

func TestRedisDown(t *testing.T) {
	e := newEnv(t)
	e.mr.Close()

	r := e.provision("inst-r", planSync, nil, false)
	expectFailure(t, "provision with Redis down", r, http.StatusServiceUnavailable, "", "state store (Redis)")
	if n := e.adapter.count(adapters.OpProvision); n != 0 {
		t.Errorf("the adapter was called %d times although no state could be recorded", n)
	}
	expectFailure(t, "last_operation with Redis down", e.lastOperation("inst-r", ""), http.StatusServiceUnavailable, "", "state store (Redis)")

	if err := e.mr.Restart(); err != nil {
		t.Fatal(err)
	}
	e.expectNoRecords("after Redis came back", "inst-r")
	expect(t, "provision once Redis is back", e.provision("inst-r", planSync, nil, false), http.StatusCreated, "")
}

func TestRedisDownMidProvision(t *testing.T) {
	e := newEnv(t)
	held := e.adapter.hold(t, adapters.OpProvision)
	first := make(chan response, 1)
	go func() { first <- e.provision("inst-r", planSync, nil, false) }()
	held.waitEntered(t)
	e.mr.Close()
	held.open()
	var r response
	select {
	case r = <-first:
	case <-time.After(waitTimeout):
		t.Fatal("no answer")
	}
	expectFailure(t, "provision whose outcome could not be recorded", r, http.StatusServiceUnavailable, "", "state store (Redis)")

	if err := e.mr.Restart(); err != nil {
		t.Fatal(err)
	}
	// What is left is the marker written before the adapter call: an
	// instance still provisioning, which nobody reports as provisioned.
	inst := e.storedInstance("inst-r")
	if inst == nil || inst.State != broker.InstanceProvisioning || inst.LastOp == nil || inst.LastOp.State != broker.OpInProgress {
		t.Fatalf("marker after the lost commit: %+v", inst)
	}
	expect(t, "GET of the unrecorded instance", e.do(http.MethodGet, instancePath("inst-r", false), nil), http.StatusNotFound, "")

	// Once the dead request's lock expires, the platform's retry finishes
	// the job through the idempotent adapter.
	e.mr.FastForward(time.Hour)
	expect(t, "retry once Redis is back", e.provision("inst-r", planSync, nil, false), http.StatusCreated, "")
	if inst := e.storedInstance("inst-r"); inst == nil || inst.State != broker.InstanceReady {
		t.Errorf("instance after the retry: %+v", inst)
	}
	if n := e.adapter.count(adapters.OpProvision); n != 2 {
		t.Errorf("%d adapter provision calls, want 2 (the lost one and the retry)", n)
	}
}

func TestLastOperationAndFetchOfUnknownOrUnfinishedInstances(t *testing.T) {
	e := newEnv(t)
	expectFailure(t, "last_operation of an unknown instance", e.lastOperation("nope", ""), http.StatusNotFound, "", "nope")
	expectFailure(t, "last_operation of an unknown instance with operation", e.lastOperation("nope", "op-1"), http.StatusNotFound, "", "nope")
	expectFailure(t, "GET of an unknown instance", e.do(http.MethodGet, instancePath("nope", false), nil), http.StatusNotFound, "", "nope")
	expect(t, "DELETE of an unknown instance", e.deprovision("nope", planSync, false), http.StatusGone, "")
	expectFailure(t, "PATCH of an unknown instance",
		e.update("nope", map[string]any{"service_id": serviceID, "plan_id": planSyncLarge}, false), http.StatusNotFound, "", "nope")
	if len(e.mr.Keys()) != 0 {
		t.Errorf("requests about an unknown instance left keys: %v", e.mr.Keys())
	}

	// An async provision in progress: GET answers 404 until it is done.
	e.startWorkers("w1")
	held := e.adapter.hold(t, adapters.OpProvision)
	r := e.provision("inst-g", planAsync, nil, true)
	expect(t, "async provision", r, http.StatusAccepted, "")
	held.waitEntered(t)
	expectFailure(t, "GET while provisioning", e.do(http.MethodGet, instancePath("inst-g", false), nil), http.StatusNotFound, "", "inst-g")
	expectFailure(t, "bind while provisioning", e.bind("inst-g", "b-1", planAsync, "app-1"), http.StatusUnprocessableEntity, "ConcurrencyError")
	expectFailure(t, "update while provisioning",
		e.update("inst-g", map[string]any{"service_id": serviceID, "parameters": map[string]any{"x": 1}}, true), http.StatusUnprocessableEntity, "ConcurrencyError")
	held.open()
	e.waitState("inst-g", r.str("operation"), "succeeded")
	got := e.do(http.MethodGet, instancePath("inst-g", false), nil)
	expect(t, "GET once provisioned", got, http.StatusOK, "")
	if got.str("service_id") != serviceID || got.str("plan_id") != planAsync {
		t.Errorf("GET body %s", got.raw)
	}
}

// An instance ID the store keeps for its shared keys is bad input: a 400
// before anything is written or the adapter is called.
func TestProvisionRefusesInstanceIDsTheStoreKeeps(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"expiries", "jobs"} {
		r := e.provision(id, planSync, nil, false)
		expectFailure(t, "provision "+id, r, http.StatusBadRequest, "", `instance ID "`+id+`"`, "GUIDs")
		e.expectNoRecords("after a refused ID", id)
	}
	if n := e.adapter.count(adapters.OpProvision); n != 0 {
		t.Errorf("refused IDs reached the adapter %d times", n)
	}
	if len(e.mr.Keys()) != 0 {
		t.Errorf("refused IDs left keys in Redis: %v", e.mr.Keys())
	}
	expect(t, "a word that is not kept", e.provision("expiries-2", planSync, nil, false), http.StatusCreated, "")
}
