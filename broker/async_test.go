package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
	// The operation's own copy of its parameters went with it; what stays
	// is what the instance has now.
	want := currentParametersRef("inst-t", opID)
	if refs := e.creds.refs(); len(refs) != 1 || refs[0] != want {
		t.Errorf("credential store holds %v, want only the instance's parameters %s", refs, want)
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
	// A failure on record keeps its parameters, for the platform
	// engineer's retry (agora admin retry).
	if refs := e.creds.refs(); len(refs) != 1 || !strings.HasSuffix(refs[0], opID) {
		t.Errorf("parameters in the credential store: %v, want the failed operation's", refs)
	}

	// Orphan mitigation of the failed async instance reaches the adapter.
	r = e.deprovision("inst-q", planAsync, true)
	expect(t, "DELETE of the failed instance", r, http.StatusAccepted, "")
	eventually(t, func() bool { return e.lastOperation("inst-q", r.str("operation")).status == http.StatusGone },
		func() string { return "the delete never finished" })
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("parameters left once the failed operation was superseded: %v", refs)
	}
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

// provisionOther accepts an async provision of the other producer's
// offering and returns its operation ID.
func (e *env) provisionOther(iid string) string {
	e.t.Helper()
	body := provisionBody(planOtherAsync, nil)
	body["service_id"] = otherServiceID
	r := e.do(http.MethodPut, instancePath(iid, true), body)
	expect(e.t, "async provision of the other offering", r, http.StatusAccepted, "")
	return r.str("operation")
}

// delayedJobs is how many jobs wait in the queue for a later attempt.
func (e *env) delayedJobs() int64 {
	return e.rdb.ZCard(context.Background(), delayedKey()).Val()
}

// pendingJobs is how many jobs are delivered and not yet acknowledged.
func (e *env) pendingJobs() int64 {
	p, err := e.rdb.XPending(context.Background(), jobsKey(), "agora-workers").Result()
	if err != nil {
		return -1
	}
	return p.Count
}

// One delivery runs one attempt: a transient failure is recorded on the
// operation and the job released, so the only slot runs another job while
// this one waits for its next attempt.
func TestOneAttemptPerDeliveryFreesTheSlotWhileTheJobWaits(t *testing.T) {
	e := newEnv(t)
	e.adapter.failNext(adapters.OpProvision, errors.New("connection reset by the backend"))
	// One slot; the first retry waits 0.5 to 1s.
	e.startWorkersWith(broker.WorkerConfig{Consumer: "w1", Concurrency: 1, MaxBackoff: time.Hour, Requeue: 20 * time.Millisecond})
	opA := e.startAsyncProvision("inst-a")

	var waiting *broker.Operation
	eventually(t, func() bool {
		waiting = e.storedOperation("inst-a", opA)
		return waiting != nil && !waiting.NextAttemptAt.IsZero()
	}, func() string { return fmt.Sprintf("the failed attempt was not recorded: %+v", waiting) })
	if waiting.Attempts != 1 || waiting.State != broker.OpInProgress || waiting.Attempt == "" {
		t.Errorf("operation after one failed attempt %+v, want attempt 1 recorded, in progress", waiting)
	}
	if !strings.Contains(waiting.LastError, "connection reset by the backend") {
		t.Errorf("last error %q does not say why the attempt failed", waiting.LastError)
	}
	if wait := waiting.NextAttemptAt.Sub(waiting.UpdatedAt); wait < 500*time.Millisecond || wait > time.Second {
		t.Errorf("next attempt %s after the failure, want 0.5s to 1s (1s with jitter)", wait)
	}
	eventually(t, func() bool { return e.delayedJobs() == 1 && e.pendingJobs() == 0 },
		func() string {
			return fmt.Sprintf("the job was not released while it waits: %d delayed, %d delivered", e.delayedJobs(), e.pendingJobs())
		})

	opB := e.startAsyncProvision("inst-b")
	e.waitState("inst-b", opB, "succeeded")
	e.waitState("inst-a", opA, "succeeded")
	if got := e.adapter.instanceCalls(adapters.OpProvision); !slices.Equal(got, []string{"inst-a", "inst-b", "inst-a"}) {
		t.Errorf("adapter calls %v, want inst-a, inst-b (while inst-a waited), inst-a", got)
	}
	if op := e.storedOperation("inst-a", opA); op == nil || op.Attempts != 2 {
		t.Errorf("operation %+v, want 2 attempts recorded", op)
	}
	eventually(t, e.queueDrained, func() string { return "the jobs were not acknowledged" })
}

// The wait before the next attempt never runs past the deadline; the
// attempt at the deadline ends the operation as failed.
func TestBackoffStopsAtTheDeadline(t *testing.T) {
	e := newEnv(t)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	e.adapter.failAlways(adapters.OpProvision, fmt.Errorf("POST http://10.0.0.9:9000/v1/instances: %w", refused))
	opID := e.startAsyncProvision("inst-edge")
	// The plan allows a minute; 0.3s of it is left when the workers start.
	e.clock.advance(time.Minute - 300*time.Millisecond)
	e.startWorkersWith(broker.WorkerConfig{Consumer: "w1", Concurrency: 1, MaxBackoff: time.Hour})

	var op *broker.Operation
	eventually(t, func() bool {
		op = e.storedOperation("inst-edge", opID)
		return op != nil && op.Attempts == 1 && !op.NextAttemptAt.IsZero()
	}, func() string { return fmt.Sprintf("the failed attempt was not recorded: %+v", op) })
	if op.NextAttemptAt.After(op.Deadline) {
		t.Errorf("next attempt at %s, after the deadline %s", op.NextAttemptAt, op.Deadline)
	}
	r := e.waitState("inst-edge", opID, "failed")
	// The last attempt could not connect: that is what the platform
	// reads, not "did not answer in time"; the address stays in the log.
	if desc := r.str("description"); !strings.Contains(desc, "backend could not be reached") || strings.Contains(desc, "10.0.0.9") {
		t.Errorf("description %q does not say the backend could not be reached (or shows its address)", desc)
	}
	if op := e.storedOperation("inst-edge", opID); op == nil || !strings.Contains(op.Detail, "after 1 attempt(s)") || !strings.Contains(op.Detail, "connection refused") {
		t.Errorf("the stored detail %+v does not give the last attempt's failure", op)
	}
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Errorf("%d adapter calls, want 1: the deadline came before the second", n)
	}
}

// A worker whose heartbeats fail (Redis unreachable) stops its attempt
// before its lease runs out, so that by the time another worker may take
// the job over, the adapter is no longer being called.
func TestLostHeartbeatCancelsTheAttempt(t *testing.T) {
	e := newEnv(t)
	held := e.adapter.hold(t, adapters.OpProvision)
	e.startWorkersWith(broker.WorkerConfig{Consumer: "w1", Concurrency: 1, MaxBackoff: 20 * time.Millisecond})
	opID := e.startAsyncProvision("inst-outage")
	held.waitEntered(t)

	e.mr.Close()
	outage := time.Now()
	eventually(t, func() bool { return e.adapter.cancellations() == 1 },
		func() string { return "the attempt kept calling the adapter with Redis unreachable" })
	t.Logf("attempt cancelled %s after Redis went away (lease %s)", time.Since(outage).Round(time.Millisecond), claimIdle)

	// Redis comes back with its data: the job is taken up again, once.
	held.open()
	if err := e.mr.Restart(); err != nil {
		t.Fatal(err)
	}
	// miniredis keeps the context Close cancelled, which makes its blocking
	// reads hang after a restart. (Its own cleanup cancels the new one.)
	e.mr.Ctx, e.mr.CtxCancel = context.WithCancel(context.Background())
	e.waitState("inst-outage", opID, "succeeded")
	if n := e.adapter.count(adapters.OpProvision); n != 2 {
		t.Errorf("%d adapter calls, want 2 (the cancelled one and its retry)", n)
	}
	if n := e.adapter.maxOverlap(); n != 1 {
		t.Errorf("%d calls ran at once for one instance, want 1", n)
	}
	eventually(t, e.queueDrained, func() string { return "the job was not acknowledged" })
}

// A worker whose job was taken over by another stops at its next
// heartbeat, and records nothing.
func TestTakenOverJobStopsItsWorker(t *testing.T) {
	// A lease far longer than the test: only the heartbeat finding the job
	// lost can stop the worker.
	e := newEnvWithLease(t, time.Minute)
	ctx := context.Background()
	held := e.adapter.hold(t, adapters.OpProvision)
	obs := newObserver()
	e.startWorkersWith(broker.WorkerConfig{Consumer: "w1", Concurrency: 1, Observer: obs, Heartbeat: 50 * time.Millisecond})
	opID := e.startAsyncProvision("inst-taken")
	held.waitEntered(t)

	// Another worker takes the job over (as XAUTOCLAIM would after a long
	// enough silence) and starts its own attempt.
	p, err := e.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobsKey(), Group: "agora-workers", Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(p) != 1 {
		t.Fatalf("pending jobs %v, %v", p, err)
	}
	if err := e.rdb.XClaim(ctx, &redis.XClaimArgs{Stream: jobsKey(), Group: "agora-workers", Consumer: "thief", Messages: []string{p[0].ID}}).Err(); err != nil {
		t.Fatal(err)
	}
	takeover := e.takeOverAttempt("inst-taken", opID)

	eventually(t, func() bool { return e.adapter.cancellations() == 1 },
		func() string { return "the worker kept calling the adapter after its job was taken over" })
	held.open()
	eventually(t, func() bool { return slices.Contains(obs.ended(), broker.AttemptLost) },
		func() string { return fmt.Sprintf("outcomes %v, want lost", obs.ended()) })
	op := e.storedOperation("inst-taken", opID)
	if op == nil || op.State != broker.OpInProgress || op.Attempt != takeover {
		t.Errorf("operation %+v, want it in progress in the new owner's attempt %s", op, takeover)
	}
	if owners, _ := e.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobsKey(), Group: "agora-workers", Start: "-", End: "+", Count: 10}).Result(); len(owners) != 1 || owners[0].Consumer != "thief" {
		t.Errorf("pending %v, want the job still with its new owner", owners)
	}
}

// takeOverAttempt records a new attempt on the operation, as the worker
// that took its job over would, and returns its token.
func (e *env) takeOverAttempt(iid, opID string) string {
	e.t.Helper()
	op := e.storedOperation(iid, opID)
	next := *op
	next.Attempts++
	next.Attempt = "taken-over"
	err := e.store.Commit(context.Background(), broker.Mutation{InstanceID: iid, PutOperation: &next,
		IfOperationInProgress: opID, Fence: &broker.Fence{Attempt: op.Attempt}}, nil)
	if err != nil {
		e.t.Fatalf("take over the attempt: %v", err)
	}
	return next.Attempt
}

// Even when its adapter call succeeds, an attempt whose operation moved on
// to another attempt cannot record its outcome.
func TestStaleAttemptCannotCommit(t *testing.T) {
	e := newEnv(t)
	held := e.adapter.hold(t, adapters.OpProvision)
	obs := newObserver()
	// Requeue of an hour: the job does not come back within the test, so
	// what is recorded is the stale attempt's doing alone.
	e.startWorkersWith(broker.WorkerConfig{Consumer: "w1", Concurrency: 1, Observer: obs, Requeue: time.Hour})
	opID := e.startAsyncProvision("inst-stale")
	held.waitEntered(t)

	takeover := e.takeOverAttempt("inst-stale", opID)
	held.open()
	eventually(t, func() bool { return len(obs.ended()) == 1 }, func() string { return "the attempt never ended" })
	if got := obs.ended(); got[0] != broker.AttemptLost {
		t.Errorf("outcome %v, want lost", got)
	}
	op := e.storedOperation("inst-stale", opID)
	if op == nil || op.State != broker.OpInProgress || op.Attempt != takeover {
		t.Errorf("operation %+v: the stale attempt recorded its outcome", op)
	}
	if inst := e.storedInstance("inst-stale"); inst == nil || inst.State != broker.InstanceProvisioning {
		t.Errorf("instance %+v: the stale attempt recorded its outcome", inst)
	}
	if r := e.lastOperation("inst-stale", opID); r.str("state") != "in progress" {
		t.Errorf("last_operation %s", r.raw)
	}
}

// A producer at its limit on this replica does not get another slot: its
// job is put back unstarted, and the slot goes to another producer's job.
func TestPerProducerLimitFreesTheSlot(t *testing.T) {
	e := newEnv(t)
	held := e.adapter.holdInstance(t, adapters.OpProvision, "inst-1")
	obs := newObserver()
	e.startWorkersWith(broker.WorkerConfig{Consumer: "w1", Concurrency: 2, PerProducer: 1, Observer: obs, Requeue: 20 * time.Millisecond})

	op1 := e.startAsyncProvision("inst-1")
	held.waitEntered(t)
	op2 := e.startAsyncProvision("inst-2")
	eventually(t, func() bool { return obs.throttles("test-team") >= 2 },
		func() string { return "the producer's second job was not put back" })
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Fatalf("%d provision calls while the producer's first job runs, want 1", n)
	}

	op3 := e.provisionOther("inst-3")
	e.waitState("inst-3", op3, "succeeded")
	if r := e.lastOperation("inst-2", op2); r.str("state") != "in progress" {
		t.Errorf("the throttled job ran: %s", r.raw)
	}
	if obs.throttles("other-team") != 0 {
		t.Errorf("the other producer was throttled %d times", obs.throttles("other-team"))
	}

	held.open()
	e.waitState("inst-1", op1, "succeeded")
	e.waitState("inst-2", op2, "succeeded")
	eventually(t, e.queueDrained, func() string { return "the jobs were not acknowledged" })
}

// Jobs an older Agora queued under the old stream key (without a hash tag)
// still run after an upgrade.
func TestJobsOfTheLegacyStreamStillRun(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	opID := e.startAsyncProvision("inst-old")
	// Make it look as the older version left it: the job in the old
	// stream only, without a service.
	for _, k := range []string{jobsKey(), queuedKey()} {
		e.mr.Del(k)
	}
	if err := e.rdb.XGroupCreateMkStream(ctx, legacyJobsKey(), "agora-workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: legacyJobsKey(), Values: map[string]any{"instance": "inst-old", "operation": opID}}).Err(); err != nil {
		t.Fatal(err)
	}

	e.startWorkers("w1")
	e.waitState("inst-old", opID, "succeeded")
	if n := e.adapter.count(adapters.OpProvision); n != 1 {
		t.Errorf("%d adapter calls, want 1", n)
	}
	eventually(t, e.queueDrained, func() string { return "the old stream or the new one still holds the job" })
}
