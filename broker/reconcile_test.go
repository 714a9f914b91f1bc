package broker_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

// TestReconcileReadiesAFailedProvisionTheBackendHas: an async provision
// failed in Agora's eyes, but the backend has the instance after all (it
// finished after the adapter call gave up, say). The platform engineer's
// reconcile makes it ready, adopts the adapter's receipt, and the platform
// reads why; a bind then works.
func TestReconcileReadiesAFailedProvisionTheBackendHas(t *testing.T) {
	e := newEnv(t)
	e.adapter.failAlways(adapters.OpProvision, adapters.Terminal(errors.New("timed out talking to the backend")))
	e.startWorkers("w1")
	failedID := e.startAsyncProvision("inst-a")
	e.waitState("inst-a", failedID, "failed")
	e.adapter.failAlways(adapters.OpProvision, nil)
	e.adapter.setBackend("inst-a", true, nil)

	rec, err := e.broker.Reconcile(context.Background(), "inst-a")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Backend != broker.BackendExists || rec.Before != broker.InstanceFailed || rec.After != broker.InstanceReady || rec.Operation == nil {
		t.Fatalf("reconciliation %+v", rec)
	}
	inst := e.storedInstance("inst-a")
	if inst == nil || inst.State != broker.InstanceReady || inst.Receipt["db"] != "db-inst-a" {
		t.Fatalf("instance after reconcile: %+v", inst)
	}
	// The parameters the failed provision kept for a retry are now the
	// instance's.
	if got, _ := e.getParameters("inst-a", ""); got["size"] != number(3) {
		t.Errorf("parameters after reconcile: %v, want the provision's", got)
	}
	lo := e.lastOperation("inst-a", "")
	if lo.str("state") != "succeeded" || !strings.Contains(lo.str("description"), "reconciled") {
		t.Errorf("last_operation after reconcile: %s", lo.raw)
	}
	expect(t, "bind to the reconciled instance", e.bind("inst-a", "b1", planAsync, "app"), http.StatusCreated, "")

	again, err := e.broker.Reconcile(context.Background(), "inst-a")
	if err != nil {
		t.Fatal(err)
	}
	if again.Operation != nil || again.After != broker.InstanceReady {
		t.Errorf("a second reconcile changed an instance that agrees: %+v", again)
	}
}

// TestReconcileFailsAnInstanceTheBackendLost: someone dropped a ready
// instance's database behind Agora's back. Reconcile records it failed,
// so that no bind is handed out for nothing and the platform's delete
// cleans up.
func TestReconcileFailsAnInstanceTheBackendLost(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision", e.provision("inst-g", planSync, nil, false), http.StatusCreated, "")
	e.adapter.setBackend("inst-g", false, nil)

	rec, err := e.broker.Reconcile(context.Background(), "inst-g")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Backend != broker.BackendGone || rec.After != broker.InstanceFailed || rec.Operation == nil || rec.Operation.State != broker.OpFailed {
		t.Fatalf("reconciliation %+v", rec)
	}
	lo := e.lastOperation("inst-g", "")
	if lo.str("state") != "failed" || !strings.Contains(lo.str("description"), "no longer has it") {
		t.Errorf("last_operation after reconcile: %s", lo.raw)
	}
	expect(t, "bind to a lost instance", e.bind("inst-g", "b1", planSync, "app"), http.StatusUnprocessableEntity, "")
	expect(t, "deprovision a lost instance", e.deprovision("inst-g", planSync, false), http.StatusOK, "")
	e.expectNoRecords("after deprovision", "inst-g")
}

// TestReconcileChangesNothingItCannotJudge: an adapter that fails, says
// it cannot inspect, or an operation in progress leave the record as it
// was, with an error that says why.
func TestReconcileChangesNothingItCannotJudge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	expect(t, "provision", e.provision("inst-n", planSync, nil, false), http.StatusCreated, "")
	before := e.storedInstance("inst-n")

	e.adapter.setBackend("inst-n", false, errors.New("connection refused"))
	_, err := e.broker.Reconcile(ctx, "inst-n")
	if !errors.Is(err, broker.ErrAdapterUnanswered) || !strings.Contains(err.Error(), "producer") {
		t.Errorf("adapter failure: %v, want ErrAdapterUnanswered naming the producer", err)
	}
	e.adapter.setBackend("inst-n", false, adapters.ErrNotSupported)
	if _, err := e.broker.Reconcile(ctx, "inst-n"); !errors.Is(err, broker.ErrRepairRefused) {
		t.Errorf("adapter that cannot inspect: %v, want refused", err)
	}
	if after := e.storedInstance("inst-n"); after.State != before.State || after.LastOp.ID != before.LastOp.ID {
		t.Errorf("a failed reconcile changed the record: %+v", after)
	}
	if _, err := e.broker.Reconcile(ctx, "nope"); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("unknown instance: %v, want not found", err)
	}

	held := e.adapter.hold(t, adapters.OpProvision)
	e.startWorkers("w1")
	e.startAsyncProvision("inst-p")
	held.waitEntered(t)
	e.adapter.setBackend("inst-p", true, nil)
	if _, err := e.broker.Reconcile(ctx, "inst-p"); !errors.Is(err, broker.ErrRepairRefused) || !strings.Contains(err.Error(), "in progress") {
		t.Errorf("reconcile of an instance being provisioned: %v, want refused", err)
	}
	held.open()
}
