package broker_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

// TestRetryRunsAFailedOperationAgainWithItsParameters: an async
// provision fails at its adapter; once the adapter is fixed, the platform
// engineer's retry runs it again, with the parameters the platform sent.
func TestRetryRunsAFailedOperationAgainWithItsParameters(t *testing.T) {
	e := newEnv(t)
	e.adapter.failAlways(adapters.OpProvision, adapters.Terminal(adapters.Said("quota exceeded")))
	e.startWorkers("w1")
	failedID := e.startAsyncProvision("inst-r")
	e.waitState("inst-r", failedID, "failed")

	ctx := context.Background()
	if _, err := e.broker.ForceFail(ctx, "inst-r", "", "stuck"); !errors.Is(err, broker.ErrRepairRefused) {
		t.Errorf("force-failing a failed operation: %v, want refused", err)
	}
	e.adapter.failAlways(adapters.OpProvision, nil) // the producer fixed it
	op, err := e.broker.Retry(ctx, "inst-r", "")
	if err != nil {
		t.Fatal(err)
	}
	if op.ID == failedID || op.Kind != adapters.OpProvision {
		t.Fatalf("retry started %+v", op)
	}
	e.waitState("inst-r", op.ID, "succeeded")
	calls := e.adapter.callsOf(adapters.OpProvision)
	if len(calls) != 2 {
		t.Fatalf("%d provision calls, want the failed one and the retry", len(calls))
	}
	if inst := e.storedInstance("inst-r"); inst == nil || inst.State != broker.InstanceReady {
		t.Errorf("instance after the retry: %+v", inst)
	}
	if e.storedOperation("inst-r", failedID) != nil {
		t.Error("the failed operation's record outlived its retry")
	}
	// What is left in Vault is the parameters the instance has now; the
	// ones the failed operation kept for its retry are gone.
	inForce := currentParametersRef("inst-r", op.ID)
	eventually(t, func() bool { refs := e.creds.refs(); return len(refs) == 1 && refs[0] == inForce }, func() string {
		return "want only the instance's parameters " + inForce + " in Vault, found: " + strings.Join(e.creds.refs(), ", ")
	})
	if inst := e.storedInstance("inst-r"); inst.ParametersRef != inForce {
		t.Errorf("instance parameters_ref %q, want %q", inst.ParametersRef, inForce)
	}
	if _, err := e.broker.Retry(ctx, "inst-r", ""); !errors.Is(err, broker.ErrRepairRefused) {
		t.Errorf("retrying a succeeded operation: %v, want refused", err)
	}
	if _, err := e.broker.Retry(ctx, "nope", ""); err == nil {
		t.Error("retrying an unknown instance was accepted")
	}
}

// TestForceFailEndsAStuckOperation: an async provision hangs at its
// adapter; the platform engineer force-fails it, the platform reads the
// reason, and the worker that comes back later records nothing.
func TestForceFailEndsAStuckOperation(t *testing.T) {
	e := newEnv(t)
	held := e.adapter.hold(t, adapters.OpProvision)
	e.startWorkers("w1")
	opID := e.startAsyncProvision("inst-s")
	held.waitEntered(t)

	ctx := context.Background()
	if _, err := e.broker.ForceFail(ctx, "inst-s", "", "  "); !errors.Is(err, broker.ErrRepairRefused) {
		t.Errorf("force-fail without a reason: %v, want refused", err)
	}
	if _, err := e.broker.ForceFail(ctx, "inst-s", "", "the backend is being rebuilt"); err != nil {
		t.Fatal(err)
	}
	lo := e.waitState("inst-s", opID, "failed")
	if desc := lo.str("description"); !strings.Contains(desc, "stopped by the platform team: the backend is being rebuilt") {
		t.Errorf("description %q does not give the reason", desc)
	}
	held.open()
	eventually(t, e.queueDrained, func() string { return "the stuck job stayed in the queue" })
	if inst := e.storedInstance("inst-s"); inst == nil || inst.State != broker.InstanceFailed {
		t.Errorf("the worker overwrote the force-failed record: %+v", inst)
	}
}

// TestRepairsNeverRunBesideARunningRequest: a sync provision holds the
// instance lock while its adapter works; repairs are refused meanwhile.
func TestRepairsNeverRunBesideARunningRequest(t *testing.T) {
	e := newEnv(t)
	held := e.adapter.hold(t, adapters.OpProvision)
	done := make(chan struct{})
	go func() { defer close(done); e.provision("inst-l", planSync, nil, false) }()
	held.waitEntered(t)
	ctx := context.Background()
	for name, repair := range map[string]func() error{
		"retry":      func() error { _, err := e.broker.Retry(ctx, "inst-l", ""); return err },
		"force-fail": func() error { _, err := e.broker.ForceFail(ctx, "inst-l", "", "why"); return err },
	} {
		if err := repair(); !errors.Is(err, broker.ErrRepairRefused) || !strings.Contains(err.Error(), "locked") {
			t.Errorf("%s during a running request: %v, want refused as locked", name, err)
		}
	}
	held.open()
	<-done
}
