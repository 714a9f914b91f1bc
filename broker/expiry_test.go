package broker_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

func expiriesKey() string { return prefix + ":{expiries}:bindings" }

// startExpiringWorkers runs the async engine with a quick expiry scan.
func (e *env) startExpiringWorkers() {
	e.startWorkersWith(broker.WorkerConfig{
		Consumer: "w1", Concurrency: 2, Heartbeat: 50 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Requeue: 20 * time.Millisecond, ExpiryScan: 20 * time.Millisecond,
	})
}

// TestExpiredBindingIsRevokedByAgora: nobody unbinds a binding past its
// expires_at (provider-osb never unbinds a rotated predecessor), so Agora
// does: the adapter's unbind, on the async engine, and everything the
// binding kept is gone; a binding not yet due stays.
func TestExpiredBindingIsRevokedByAgora(t *testing.T) {
	e := newEnv(t)
	e.adapter.expireBindingsAfter(e.clock, 10*time.Minute)
	e.boundWithParameters("inst-x", "old", planRotatable)
	old := e.storedBinding("inst-x", "old")
	if old.ExpiresAt.IsZero() || old.ExpiresAt.Nanosecond() != 0 || old.RenewBefore.After(old.ExpiresAt) {
		t.Fatalf("stored binding times: expires %v, renew %v", old.ExpiresAt, old.RenewBefore)
	}
	if score, err := e.mr.ZScore(expiriesKey(), `["inst-x","old"]`); err != nil || int64(score) != old.ExpiresAt.UnixMilli() {
		t.Fatalf("expiry index holds %v (%v), want the binding at %d", score, err, old.ExpiresAt.UnixMilli())
	}
	e.startExpiringWorkers()

	e.clock.advance(6 * time.Minute)
	expect(t, "rotation", e.rotate("inst-x", "new", "old", false), http.StatusCreated, "")
	time.Sleep(100 * time.Millisecond) // a few scans: nothing is due yet
	if n := e.adapter.count(adapters.OpUnbind); n != 0 {
		t.Fatalf("%d unbinds before anything expired", n)
	}

	e.clock.advance(5 * time.Minute) // old is past its expires_at; new is not
	eventually(t, func() bool { return e.storedBinding("inst-x", "old") == nil }, func() string {
		return "the expired binding was never revoked"
	})
	calls := e.adapter.callsOf(adapters.OpUnbind)
	if len(calls) != 1 || calls[0].BindingID != "old" || !strings.HasPrefix(calls[0].RequestID, "expiry-") {
		t.Errorf("adapter unbinds %+v, want one of old, asked by Agora's expiry", calls)
	}
	// The credentials go before the record; its parameters right after.
	for _, ref := range []string{old.CredentialRef, old.ParametersRef} {
		eventually(t, func() bool { _, ok := e.creds.secret(ref); return !ok }, func() string { return ref + " outlived the revoked binding" })
	}
	eventually(t, func() bool {
		members, _ := e.mr.ZMembers(expiriesKey())
		return len(members) == 1 && members[0] == `["inst-x","new"]`
	}, func() string { m, _ := e.mr.ZMembers(expiriesKey()); return "expiry index: " + strings.Join(m, " ") })
	if bnd := e.storedBinding("inst-x", "new"); bnd == nil || bnd.State != broker.BindingBound {
		t.Errorf("the successor changed with its predecessor: %+v", bnd)
	}
	expectFailure(t, "GET the revoked binding", e.do(http.MethodGet, bindingPath("inst-x", "old"), nil), http.StatusNotFound, "")
	expect(t, "a platform's late DELETE", e.unbind("inst-x", "old", planRotatable), http.StatusGone, "")
}

// TestFailedRevocationIsTriedAgain: the adapter refuses the revocation;
// the binding stays bound and on the index, and once the failed unbind's
// deadline has passed Agora tries again.
func TestFailedRevocationIsTriedAgain(t *testing.T) {
	e := newEnv(t)
	e.adapter.expireBindingsAfter(e.clock, time.Minute)
	e.boundWithParameters("inst-y", "b1", planSync)
	e.adapter.failNext(adapters.OpUnbind, adapters.Terminal(adapters.Said("backend refuses")))
	e.startExpiringWorkers()
	e.clock.advance(2 * time.Minute)

	eventually(t, func() bool { return e.adapter.count(adapters.OpUnbind) == 1 }, func() string { return "no revocation was tried" })
	eventually(t, func() bool {
		b := e.storedBinding("inst-y", "b1")
		return b != nil && b.State == broker.BindingBound && b.LastOp != nil && b.LastOp.State == broker.OpFailed
	}, func() string { return "the failed revocation did not leave the binding bound" })
	time.Sleep(100 * time.Millisecond)
	if n := e.adapter.count(adapters.OpUnbind); n != 1 {
		t.Fatalf("%d revocations in a row: a failing one must wait", n)
	}

	e.clock.advance(2 * time.Hour) // past the failed unbind's deadline
	eventually(t, func() bool { return e.storedBinding("inst-y", "b1") == nil }, func() string { return "the second try never revoked it" })
	eventually(t, func() bool { return !e.mr.Exists(expiriesKey()) }, func() string {
		m, _ := e.mr.ZMembers(expiriesKey())
		return "expiry index still holds " + strings.Join(m, " ")
	})
}

// TestBadBindingTimesAreRefused: binding metadata that breaks the spec's
// rules fails the bind as the adapter's fault, and what it issued is
// revoked again: nothing is recorded, nothing stays in Vault.
func TestBadBindingTimesAreRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		times func(now time.Time) (time.Time, time.Time)
		words string
	}{
		{"already expired", func(now time.Time) (time.Time, time.Time) { return now.Add(-time.Second), time.Time{} }, "not in the future"},
		{"renew after expiry", func(now time.Time) (time.Time, time.Time) { return now.Add(time.Hour), now.Add(2 * time.Hour) }, "after expires_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			expect(t, "provision", e.provision("inst-t", planSync, nil, false), http.StatusCreated, "")
			e.adapter.setBindTimes(func() (time.Time, time.Time) { return tc.times(e.clock.Now()) })
			r := e.bind("inst-t", "b1", planSync, "app-1")
			expectFailure(t, "bind", r, http.StatusBadGateway, "", `"fake" adapter`)
			if calls := e.adapter.callsOf(adapters.OpUnbind); len(calls) != 1 || calls[0].BindingID != "b1" {
				t.Errorf("compensating unbinds %+v", calls)
			}
			if len(e.creds.refs()) != 0 {
				t.Errorf("Vault holds %v after the refused bind", e.creds.refs())
			}
			if e.mr.Exists(expiriesKey()) {
				t.Error("the refused binding is on the expiry index")
			}
			if op := e.storedBinding("inst-t", "b1"); op != nil && op.State == broker.BindingBound {
				t.Errorf("the binding is recorded bound: %+v", op)
			}
		})
	}
}

// TestExpiryEntriesOfGoneBindingsAreDropped: the index is a superset; an
// entry whose binding is gone (a crash after the commit, say) is dropped
// by the drain without any adapter call.
func TestExpiryEntriesOfGoneBindingsAreDropped(t *testing.T) {
	e := newEnv(t)
	if err := e.store.ScheduleExpiry(context.Background(), broker.ExpiringBinding{InstanceID: "ghost", BindingID: "b"}, e.clock.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	e.startExpiringWorkers()
	eventually(t, func() bool { return !e.mr.Exists(expiriesKey()) }, func() string { return "the stale entry stayed" })
	if n := e.adapter.count(adapters.OpUnbind); n != 0 {
		t.Errorf("%d unbinds for a binding that does not exist", n)
	}
}
