package broker_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

// startAsyncProvision accepts an async provision while no worker runs, and
// returns its operation ID.
func (e *env) startAsyncProvision(iid string) string {
	e.t.Helper()
	r := e.provision(iid, planAsync, map[string]any{"size": 3}, true)
	expect(e.t, "async provision", r, http.StatusAccepted, "")
	if r.str("operation") == "" {
		e.t.Fatalf("no operation in %s", r.raw)
	}
	return r.str("operation")
}

func TestDeadWorkersJobIsReclaimed(t *testing.T) {
	e := newEnv(t)
	opID := e.startAsyncProvision("inst-dead")

	// A replica takes the job and dies: it never heartbeats or acknowledges.
	job, err := e.queue.Next(context.Background(), "dead")
	if err != nil {
		t.Fatalf("the dead worker could not take the job: %v", err)
	}
	if job.OperationID != opID || job.InstanceID != "inst-dead" {
		t.Fatalf("dead worker took %+v, want operation %s", job, opID)
	}

	e.startWorkers("alive")
	r := e.waitState("inst-dead", opID, "succeeded")
	if desc := r.str("description"); !strings.Contains(desc, "provision succeeded") {
		t.Errorf("description %q", desc)
	}
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Errorf("%d adapter provision calls, want 1", n)
	}
	eventually(t, e.queueDrained, func() string { return "the reclaimed job was not acknowledged" })
	if inst := e.storedInstance("inst-dead"); inst == nil || inst.State != broker.InstanceReady {
		t.Errorf("instance %+v", inst)
	}
}

func TestAsyncTransientFailuresAreRetried(t *testing.T) {
	e := newEnv(t)
	e.adapter.failNext(adapters.OpProvision, errors.New("connection reset"), errors.New("connection reset"))
	e.startWorkers("w1")
	opID := e.startAsyncProvision("inst-t")

	e.waitState("inst-t", opID, "succeeded")
	if n := e.adapter.count(adapters.OpProvision); n != 3 {
		t.Errorf("%d adapter provision calls, want 3 (two transient failures, one success)", n)
	}
	if inst := e.storedInstance("inst-t"); inst == nil || inst.State != broker.InstanceReady {
		t.Errorf("instance %+v", inst)
	}
	eventually(t, e.queueDrained, func() string { return "the job was not acknowledged" })
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("parameters left in the credential store: %v", refs)
	}
}

func TestAsyncTerminalFailure(t *testing.T) {
	e := newEnv(t)
	e.adapter.failAlways(adapters.OpProvision, adapters.Terminal(adapters.Said("quota of 5 databases exceeded")))
	e.startWorkers("w1")
	opID := e.startAsyncProvision("inst-q")

	r := e.waitState("inst-q", opID, "failed")
	desc := r.str("description")
	for _, want := range []string{"quota of 5 databases exceeded", `"fake" adapter of offering "store"`, "test-team"} {
		if !strings.Contains(desc, want) {
			t.Errorf("description %q does not mention %q", desc, want)
		}
	}
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Errorf("a terminal error was retried: %d adapter calls", n)
	}
	inst := e.storedInstance("inst-q")
	if inst == nil || inst.State != broker.InstanceFailed {
		t.Errorf("instance %+v, want failed", inst)
	}
	if op := e.storedOperation("inst-q", opID); op == nil || op.State != broker.OpFailed {
		t.Errorf("operation %+v, want failed", op)
	}
	eventually(t, e.queueDrained, func() string { return "the failed job was not acknowledged" })
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("parameters left in the credential store: %v", refs)
	}

	// Orphan mitigation of the failed async instance reaches the adapter.
	r = e.deprovision("inst-q", planAsync, true)
	expect(t, "DELETE of the failed instance", r, http.StatusAccepted, "")
	eventually(t, func() bool { return e.lastOperation("inst-q", r.str("operation")).status == http.StatusGone },
		func() string { return "the delete never finished" })
	if n := e.adapter.count(adapters.OpDeprovision); n != 1 {
		t.Errorf("%d adapter deprovision calls, want 1", n)
	}
}

func TestAsyncOperationPastItsDeadlineFails(t *testing.T) {
	e := newEnv(t)
	opID := e.startAsyncProvision("inst-late")
	// The plan allows one minute; all replicas were down for 90 seconds.
	// Within the grace period last_operation still trusts the record.
	e.clock.advance(90 * time.Second)
	r := e.lastOperation("inst-late", opID)
	if r.status != http.StatusOK || r.str("state") != "in progress" {
		t.Fatalf("last_operation before any worker ran: %d %s", r.status, r.raw)
	}

	e.startWorkers("w1")
	r = e.waitState("inst-late", opID, "failed")
	if desc := r.str("description"); !strings.Contains(desc, "did not answer in time during provision") {
		t.Errorf("description %q does not say the deadline passed", desc)
	}
	if n := e.adapter.count(adapters.OpProvision); n != 0 {
		t.Errorf("the adapter was called %d times after the deadline", n)
	}
	if op := e.storedOperation("inst-late", opID); op == nil || op.State != broker.OpFailed {
		t.Errorf("stored operation %+v, want failed", op)
	}
	eventually(t, e.queueDrained, func() string { return "the job was not acknowledged" })
}

func TestOverdueOperationIsReportedFailedWithoutAWorker(t *testing.T) {
	e := newEnv(t)
	opID := e.startAsyncProvision("inst-overdue")
	e.clock.advance(time.Hour)
	r := e.lastOperation("inst-overdue", opID)
	expect(t, "last_operation long past the deadline", r, http.StatusOK, "")
	if r.str("state") != "failed" || !strings.Contains(r.str("description"), "did not finish by its deadline") {
		t.Errorf("last_operation %s", r.raw)
	}
}

func TestJobDeliveredTwiceRunsToOneOutcome(t *testing.T) {
	e := newEnv(t)
	opID := e.startAsyncProvision("inst-twice")
	if err := e.queue.Enqueue(context.Background(), broker.Job{InstanceID: "inst-twice", OperationID: opID}); err != nil {
		t.Fatal(err)
	}
	e.startWorkers("w1")
	e.waitState("inst-twice", opID, "succeeded")
	eventually(t, e.queueDrained, func() string { return "the jobs were not both acknowledged" })
	calls := e.adapter.count(adapters.OpProvision)
	if calls < 1 || calls > 2 {
		t.Errorf("%d adapter provision calls for two deliveries, want 1 or 2", calls)
	}
	before := e.storedOperation("inst-twice", opID)
	if before == nil || before.State != broker.OpSucceeded {
		t.Fatalf("operation %+v", before)
	}

	// A late third delivery, with an adapter that would now fail: the
	// finished operation must not run again, nor flip to failed.
	e.adapter.failAlways(adapters.OpProvision, adapters.Terminal(errors.New("must not be called")))
	if err := e.queue.Enqueue(context.Background(), broker.Job{InstanceID: "inst-twice", OperationID: opID}); err != nil {
		t.Fatal(err)
	}
	eventually(t, e.queueDrained, func() string { return "the late job was not acknowledged" })
	if n := e.adapter.count(adapters.OpProvision); n != calls {
		t.Errorf("a finished operation ran again: %d adapter calls, was %d", n, calls)
	}
	after := e.storedOperation("inst-twice", opID)
	if after == nil || after.State != broker.OpSucceeded || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("operation changed by a late delivery: %+v", after)
	}
	if inst := e.storedInstance("inst-twice"); inst == nil || inst.State != broker.InstanceReady {
		t.Errorf("instance %+v", inst)
	}
}

func TestJobForAnOperationThatWasNeverRecordedIsDropped(t *testing.T) {
	e := newEnv(t)
	if err := e.queue.Enqueue(context.Background(), broker.Job{InstanceID: "inst-ghost", OperationID: "op-ghost"}); err != nil {
		t.Fatal(err)
	}
	e.startWorkers("w1")
	eventually(t, e.queueDrained, func() string { return "the orphan job stayed in the queue" })
	e.expectNoRecords("after dropping the orphan job", "inst-ghost")
}

func TestAsyncPendingAdapterIsPolled(t *testing.T) {
	e := newEnv(t)
	e.adapter.setPending(adapters.OpProvision)
	e.startWorkers("w1")
	opID := e.startAsyncProvision("inst-poll")
	e.waitState("inst-poll", opID, "succeeded")
	inst := e.storedInstance("inst-poll")
	if inst == nil || inst.DashboardURL != "https://dash.example.com/polled/inst-poll" {
		t.Errorf("instance %+v, want the dashboard the poll reported", inst)
	}

	e.adapter.setPending(adapters.OpUpdate, adapters.PollResult{State: adapters.Failed, Description: "disk full"})
	r := e.update("inst-poll", map[string]any{"service_id": serviceID, "parameters": map[string]any{"size": 4}}, true)
	expect(t, "async update", r, http.StatusAccepted, "")
	lo := e.waitState("inst-poll", r.str("operation"), "failed")
	if !strings.Contains(lo.str("description"), "disk full") {
		t.Errorf("description %q does not carry the adapter's reason", lo.str("description"))
	}
	if inst := e.storedInstance("inst-poll"); inst == nil || inst.State != broker.InstanceReady || inst.PlanID != planAsync {
		t.Errorf("instance after a failed update %+v, want ready on its plan", inst)
	}
}

func TestAsyncJobWaitsOutAVaultOutage(t *testing.T) {
	e := newEnv(t)
	opID := e.startAsyncProvision("inst-vault")
	e.creds.setFailAll(true)
	e.startWorkers("w1")
	// The job cannot read its parameters: it stays unacknowledged, and is
	// delivered again once its worker stops heartbeating it.
	eventually(t, func() bool { return e.creds.getCount() >= 2 },
		func() string { return "the job was not tried again during the outage" })
	if n := e.adapter.count(adapters.OpProvision); n != 0 {
		t.Fatalf("the adapter ran without the request's parameters (%d calls)", n)
	}
	if r := e.lastOperation("inst-vault", opID); r.str("state") != "in progress" {
		t.Fatalf("last_operation during the outage: %s", r.raw)
	}
	e.creds.setFailAll(false)
	e.waitState("inst-vault", opID, "succeeded")
	eventually(t, e.queueDrained, func() string { return "the job was not acknowledged" })
}

func TestAsyncJobWhoseParametersAreLostFails(t *testing.T) {
	e := newEnv(t)
	opID := e.startAsyncProvision("inst-lost")
	op := e.storedOperation("inst-lost", opID)
	if op == nil || op.ParametersRef == "" {
		t.Fatalf("operation %+v has no parameters reference", op)
	}
	if err := e.creds.Delete(context.Background(), op.ParametersRef); err != nil {
		t.Fatal(err)
	}
	e.startWorkers("w1")
	// Retrying cannot bring the parameters back: the operation fails for
	// good instead of being redelivered forever.
	r := e.waitState("inst-lost", opID, "failed")
	if desc := r.str("description"); !strings.Contains(desc, "Vault") {
		t.Errorf("description %q does not name the credential store", desc)
	}
	if n := e.adapter.count(adapters.OpProvision); n != 0 {
		t.Errorf("the adapter ran without the request's parameters (%d calls)", n)
	}
	eventually(t, e.queueDrained, func() string { return "the failed job was not acknowledged" })
}

func TestAsyncDeprovisionFailureRestoresTheInstance(t *testing.T) {
	e := newEnv(t)
	e.startWorkers("w1")
	r := e.provision("inst-df", planAsync, nil, true)
	expect(t, "async provision", r, http.StatusAccepted, "")
	e.waitState("inst-df", r.str("operation"), "succeeded")

	e.adapter.failNext(adapters.OpDeprovision, adapters.Terminal(adapters.Said("volume is attached")))
	r = e.deprovision("inst-df", planAsync, true)
	expect(t, "async deprovision", r, http.StatusAccepted, "")
	lo := e.waitState("inst-df", r.str("operation"), "failed")
	if !strings.Contains(lo.str("description"), "volume is attached") {
		t.Errorf("description %q", lo.str("description"))
	}
	if inst := e.storedInstance("inst-df"); inst == nil || inst.State != broker.InstanceReady {
		t.Fatalf("instance after a failed delete %+v, want ready", inst)
	}
	expect(t, "GET after a failed delete", e.do(http.MethodGet, instancePath("inst-df", false), nil), http.StatusOK, "")

	r = e.deprovision("inst-df", planAsync, true)
	expect(t, "retried deprovision", r, http.StatusAccepted, "")
	eventually(t, func() bool { return e.lastOperation("inst-df", r.str("operation")).status == http.StatusGone },
		func() string { return "the retried delete never finished" })
}

func TestAsyncUpdateRepeat(t *testing.T) {
	e := newEnv(t)
	e.startWorkers("w1")
	r := e.provision("inst-au", planAsync, nil, true)
	expect(t, "async provision", r, http.StatusAccepted, "")
	e.waitState("inst-au", r.str("operation"), "succeeded")

	held := e.adapter.hold(t, adapters.OpUpdate)
	body := map[string]any{"service_id": serviceID, "parameters": map[string]any{"size": 4}}
	expectFailure(t, "async update without accepts_incomplete", e.update("inst-au", body, false), http.StatusUnprocessableEntity, "AsyncRequired")
	r = e.update("inst-au", body, true)
	expect(t, "async update", r, http.StatusAccepted, "")
	opID := r.str("operation")
	held.waitEntered(t)
	r = e.update("inst-au", body, true)
	expect(t, "identical repeat", r, http.StatusAccepted, "")
	if r.str("operation") != opID {
		t.Errorf("repeat got operation %q, want %q", r.str("operation"), opID)
	}
	other := map[string]any{"service_id": serviceID, "parameters": map[string]any{"size": 5}}
	expectFailure(t, "different update while one runs", e.update("inst-au", other, true), http.StatusUnprocessableEntity, "ConcurrencyError")
	expectFailure(t, "GET while updating", e.do(http.MethodGet, instancePath("inst-au", false), nil), http.StatusUnprocessableEntity, "ConcurrencyError")
	held.open()
	e.waitState("inst-au", opID, "succeeded")
	if n := e.adapter.count(adapters.OpUpdate); n != 1 {
		t.Errorf("%d adapter update calls, want 1", n)
	}
}

// An async provision the adapter rejects as bad input stays on record as
// failed: the platform is polling, and 404 would hide the reason.
func TestAsyncInvalidParametersAreReportedNotForgotten(t *testing.T) {
	e := newEnv(t)
	e.adapter.failAlways(adapters.OpProvision, adapters.InvalidParameters("size 7 is not offered here"))
	e.startWorkers("w1")
	opID := e.startAsyncProvision("inst-bad")

	r := e.waitState("inst-bad", opID, "failed")
	if desc := r.str("description"); !strings.Contains(desc, "size 7 is not offered here") {
		t.Errorf("description %q does not give the adapter's reason", desc)
	}
	if inst := e.storedInstance("inst-bad"); inst == nil || inst.State != broker.InstanceFailed {
		t.Errorf("instance %+v, want failed", inst)
	}
}

// A job whose instance record is gone has nothing to act on or to record
// its outcome in: it is dropped rather than redelivered forever.
func TestJobWhoseInstanceIsGoneIsDropped(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	orphan := &broker.Operation{ID: "op-orphan", Kind: adapters.OpProvision, InstanceID: "inst-gone", Async: true,
		State: broker.OpInProgress, Deadline: time.Now().Add(time.Hour)}
	if err := e.store.Commit(ctx, broker.Mutation{InstanceID: "inst-gone", PutOperation: orphan}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.queue.Enqueue(ctx, broker.Job{InstanceID: "inst-gone", OperationID: "op-orphan"}); err != nil {
		t.Fatal(err)
	}
	e.startWorkers("w1")
	eventually(t, e.queueDrained, func() string { return "the job of a vanished instance was redelivered instead of dropped" })
	if n := e.adapter.count(adapters.OpProvision); n != 0 {
		t.Errorf("the adapter ran for a vanished instance: %d calls", n)
	}
}
