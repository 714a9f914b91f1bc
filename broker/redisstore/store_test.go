package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/redisstore"
)

func newStore(t *testing.T) (*miniredis.Miniredis, *redis.Client, *redisstore.Store) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), DisableIdentity: true,
		// Fail fast when a test stops miniredis.
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond,
	})
	t.Cleanup(func() { _ = rdb.Close() })
	return mr, rdb, redisstore.New(rdb, "t")
}

func op(id string, state broker.OperationState) *broker.Operation {
	return &broker.Operation{ID: id, Kind: adapters.OpProvision, InstanceID: "i1", Async: true, State: state, Fingerprint: "fp", PlanID: "p"}
}

func inst(state broker.InstanceState, last *broker.Operation) *broker.Instance {
	return &broker.Instance{ID: "i1", ServiceID: "s", PlanID: "p", Fingerprint: "fp", State: state, LastOp: last.Summary()}
}

func TestLockIsReleasedOnlyByItsHolder(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := context.Background()
	req := broker.LoadRequest{InstanceID: "i1"}

	first, _, err := s.LockAndLoad(ctx, time.Second, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LockAndLoad(ctx, time.Second, req); !errors.Is(err, broker.ErrLocked) {
		t.Fatalf("second LockAndLoad while held: %v, want ErrLocked", err)
	}

	// The first holder stalls past the lock's expiry and another takes it.
	mr.FastForward(2 * time.Second)
	second, _, err := s.LockAndLoad(ctx, time.Minute, req)
	if err != nil {
		t.Fatalf("LockAndLoad after expiry: %v", err)
	}
	if second.Token == first.Token {
		t.Fatal("two holders share a token")
	}
	if err := s.Unlock(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got, _ := mr.Get("t:{i1}:lock"); got != second.Token {
		t.Fatalf("the stale holder's Unlock released the new holder's lock (lock now %q)", got)
	}
	if _, _, err := s.LockAndLoad(ctx, time.Second, req); !errors.Is(err, broker.ErrLocked) {
		t.Fatalf("LockAndLoad after the stale Unlock: %v, want ErrLocked", err)
	}
	// A commit carrying the stale lock does not release it either.
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceReady, op("o1", broker.OpSucceeded))}, &first); err != nil {
		t.Fatal(err)
	}
	if got, _ := mr.Get("t:{i1}:lock"); got != second.Token {
		t.Fatalf("a commit with the stale lock released the new holder's lock (lock now %q)", got)
	}

	if err := s.Unlock(ctx, second); err != nil {
		t.Fatal(err)
	}
	if mr.Exists("t:{i1}:lock") {
		t.Fatal("the holder's Unlock left the lock")
	}
}

func TestLockAndLoadReadsTheRecords(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := context.Background()
	o := op("o1", broker.OpInProgress)
	b := &broker.Binding{ID: "b1", InstanceID: "i1", State: broker.BindingBound}
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceProvisioning, o), PutOperation: o, PutBinding: b}, nil); err != nil {
		t.Fatal(err)
	}
	lock, snap, err := s.LockAndLoad(ctx, time.Minute, broker.LoadRequest{InstanceID: "i1", BindingID: "b1", OperationID: "o1", AllBindings: true})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Instance == nil || snap.Instance.State != broker.InstanceProvisioning || snap.Instance.LastOp.ID != "o1" {
		t.Errorf("instance %+v", snap.Instance)
	}
	if snap.Binding == nil || snap.Binding.ID != "b1" || len(snap.Bindings) != 1 {
		t.Errorf("binding %+v, bindings %d", snap.Binding, len(snap.Bindings))
	}
	if snap.Operation == nil || snap.Operation.ID != "o1" || snap.Operation.State != broker.OpInProgress {
		t.Errorf("operation %+v", snap.Operation)
	}
	if ttl := mr.TTL("t:{i1}:lock"); ttl != time.Minute {
		t.Errorf("lock ttl %s, want 1m", ttl)
	}
	// Commit releases the lock in the same round trip.
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceReady, o)}, &lock); err != nil {
		t.Fatal(err)
	}
	if mr.Exists("t:{i1}:lock") {
		t.Error("Commit with the lock did not release it")
	}

	empty, err := s.Load(ctx, broker.LoadRequest{InstanceID: "other", BindingID: "b", OperationID: "o", AllBindings: true})
	if err != nil {
		t.Fatalf("Load of an unknown instance: %v", err)
	}
	if empty.Instance != nil || empty.Binding != nil || empty.Operation != nil || len(empty.Bindings) != 0 || empty.Tombstone != "" {
		t.Errorf("Load of an unknown instance: %+v", empty)
	}
}

func TestConditionalCommitOnAFinishedOperationIsStale(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := context.Background()
	running := op("o1", broker.OpInProgress)
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceProvisioning, running), PutOperation: running}, nil); err != nil {
		t.Fatal(err)
	}

	// The first finisher wins.
	done := op("o1", broker.OpSucceeded)
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceReady, done), PutOperation: done, IfOperationInProgress: "o1"}, nil); err != nil {
		t.Fatalf("conditional commit on a running operation: %v", err)
	}
	before, _ := mr.Get("t:{i1}:instance")
	beforeOp := mr.HGet("t:{i1}:ops", "o1")

	failed := op("o1", broker.OpFailed)
	err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceFailed, failed), PutOperation: failed, IfOperationInProgress: "o1"}, nil)
	if !errors.Is(err, broker.ErrStale) {
		t.Fatalf("conditional commit on a finished operation: %v, want ErrStale", err)
	}
	if after, _ := mr.Get("t:{i1}:instance"); after != before {
		t.Error("a stale commit changed the instance")
	}
	if afterOp := mr.HGet("t:{i1}:ops", "o1"); afterOp != beforeOp {
		t.Error("a stale commit changed the operation")
	}

	// An operation that is not recorded at all is stale too, and a stale
	// commit still leaves the lock alone.
	lock, _, err := s.LockAndLoad(ctx, time.Minute, broker.LoadRequest{InstanceID: "i1"})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Commit(ctx, broker.Mutation{InstanceID: "i1", DeleteInstance: true, IfOperationInProgress: "o-missing"}, &lock)
	if !errors.Is(err, broker.ErrStale) {
		t.Fatalf("conditional commit on an unknown operation: %v, want ErrStale", err)
	}
	if !mr.Exists("t:{i1}:instance") {
		t.Error("a stale delete deleted the instance")
	}
}

func TestDeleteInstanceWithTombstone(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := context.Background()
	prov := op("o1", broker.OpSucceeded)
	b := &broker.Binding{ID: "b1", InstanceID: "i1", State: broker.BindingBound}
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceReady, prov), PutOperation: prov, PutBinding: b}, nil); err != nil {
		t.Fatal(err)
	}
	del := op("o2", broker.OpInProgress)
	del.Kind = adapters.OpDeprovision
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceDeprovisioning, del), PutOperation: del}, nil); err != nil {
		t.Fatal(err)
	}
	finished := *del
	finished.State = broker.OpSucceeded
	err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", DeleteInstance: true, Tombstone: true, PutOperation: &finished, IfOperationInProgress: "o2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"t:{i1}:instance", "t:{i1}:bindings", "t:{i1}:ops"} {
		if mr.Exists(k) {
			t.Errorf("%s survived the delete", k)
		}
	}
	if !mr.Exists("t:{i1}:status") {
		t.Fatal("no tombstone")
	}
	if ttl := mr.TTL("t:{i1}:status"); ttl != 24*time.Hour {
		t.Errorf("tombstone ttl %s, want 24h", ttl)
	}
	snap, err := s.Load(ctx, broker.LoadRequest{InstanceID: "i1", OperationID: "o2"})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Instance != nil || snap.Tombstone != "o2" || snap.Operation == nil || snap.Operation.State != broker.OpSucceeded {
		t.Errorf("snapshot after the delete: instance %v tombstone %q operation %+v", snap.Instance, snap.Tombstone, snap.Operation)
	}

	mr.FastForward(24*time.Hour + time.Second)
	if mr.Exists("t:{i1}:status") {
		t.Error("the tombstone never expires")
	}

	// Without Tombstone nothing is left at all.
	o := op("o3", broker.OpSucceeded)
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i2", PutInstance: inst(broker.InstanceReady, o), PutOperation: o}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i2", DeleteInstance: true, PutOperation: o}, nil); err != nil {
		t.Fatal(err)
	}
	if keys := mr.Keys(); len(keys) != 0 {
		t.Errorf("keys left after a delete without tombstone: %v", keys)
	}
}

func TestDeleteBindingWithTombstone(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := context.Background()
	b := &broker.Binding{ID: "b1", InstanceID: "i1", State: broker.BindingBound}
	unbind := op("o-unbind", broker.OpSucceeded)
	unbind.Kind, unbind.BindingID = adapters.OpUnbind, "b1"
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutBinding: b}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", DeleteBinding: "b1", BindingTombstone: true, PutOperation: unbind}, nil); err != nil {
		t.Fatal(err)
	}
	if mr.Exists("t:{i1}:bindings") {
		t.Error("the binding survived")
	}
	snap, err := s.Load(ctx, broker.LoadRequest{InstanceID: "i1", BindingID: "b1"})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Binding != nil || snap.BindingTombstone != "o-unbind" {
		t.Errorf("snapshot %+v, want the binding tombstone", snap)
	}
	if ttl := mr.TTL("t:{i1}:binding-tombstone:b1"); ttl != 24*time.Hour {
		t.Errorf("binding tombstone ttl %s", ttl)
	}
}

func TestStoreReportsRedisFailures(t *testing.T) {
	mr, _, s := newStore(t)
	mr.Close()
	ctx := context.Background()
	if _, _, err := s.LockAndLoad(ctx, time.Second, broker.LoadRequest{InstanceID: "i1"}); err == nil || errors.Is(err, broker.ErrLocked) {
		t.Errorf("LockAndLoad with Redis down: %v", err)
	}
	if _, err := s.Load(ctx, broker.LoadRequest{InstanceID: "i1"}); err == nil {
		t.Error("Load with Redis down succeeded")
	}
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", DeleteInstance: true}, nil); err == nil {
		t.Error("Commit with Redis down succeeded")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping with Redis down succeeded")
	}
}

// Status follows the instance record: its latest operation while it
// lives, the deleting operation marked deleted after an async delete, and
// nothing after a sync one. Each comes with the ready-made answer a poll
// returns, which is the one the broker would build from the summary.
func TestStatusFollowsTheInstance(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := context.Background()
	if _, err := s.Status(ctx, "i1"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("status of an unknown instance: %v", err)
	}
	prov := op("o1", broker.OpInProgress)
	prov.Deadline = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceProvisioning, prov), PutOperation: prov}, nil); err != nil {
		t.Fatal(err)
	}
	st, err := s.Status(ctx, "i1")
	if err != nil || st.Deleted {
		t.Fatalf("status while provisioning: %+v %v", st, err)
	}
	wantAnswer(t, st.Answer, prov.Summary(), `{"state":"in progress","description":"provision in progress"}`+"\n")
	if !st.Answer.Until.Equal(prov.Deadline.Add(2 * time.Minute)) {
		t.Errorf("an answer in progress holds until %s, want the deadline plus the grace", st.Answer.Until)
	}
	wantOlderReadersSee(t, mr, prov.Summary(), false)

	done := *prov
	done.State, done.Description = broker.OpSucceeded, `created "x" <y>`
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceReady, &done), PutOperation: &done}, nil); err != nil {
		t.Fatal(err)
	}
	st, _ = s.Status(ctx, "i1")
	wantAnswer(t, st.Answer, done.Summary(), `{"state":"succeeded","description":"created \"x\" <y>"}`+"\n")
	if !st.Answer.Until.IsZero() || st.Deleted {
		t.Errorf("a finished operation's answer: %+v, deleted %v; want it for good", st.Answer, st.Deleted)
	}
	del := op("o2", broker.OpSucceeded)
	del.Kind = adapters.OpDeprovision
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", DeleteInstance: true, Tombstone: true, PutOperation: del}, nil); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Status(ctx, "i1"); !st.Deleted || st.Answer == nil || st.Answer.OperationID != "o2" {
		t.Fatalf("status after an async delete: %+v", st)
	}
	wantOlderReadersSee(t, mr, del.Summary(), true)
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", DeleteInstance: true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(ctx, "i1"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("status after a sync delete: %v", err)
	}
}

func wantAnswer(t *testing.T, a *broker.PollAnswer, s *broker.OperationSummary, body string) {
	t.Helper()
	if a == nil {
		t.Fatal("no ready-made answer")
	}
	if a.OperationID != s.ID || string(a.Body) != body {
		t.Errorf("answer = %s %q, want %s %q", a.OperationID, a.Body, s.ID, body)
	}
	if built := broker.NewPollAnswer(s); string(built.Body) != string(a.Body) {
		t.Errorf("stored answer %q differs from the broker's %q", a.Body, built.Body)
	}
}

// wantOlderReadersSee guards rolling upgrades: the stored value is still
// the JSON an Agora that knows nothing of answers decodes.
func wantOlderReadersSee(t *testing.T, mr *miniredis.Miniredis, s *broker.OperationSummary, deleted bool) {
	t.Helper()
	raw, err := mr.Get("t:{i1}:status")
	if err != nil {
		t.Fatal(err)
	}
	var old struct {
		Operation *broker.OperationSummary `json:"op"`
		Deleted   bool                     `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(raw), &old); err != nil || old.Operation == nil || *old.Operation != *s || old.Deleted != deleted {
		t.Errorf("an older reader decodes %q as %+v (%v), want %+v deleted %v", raw, old, err, s, deleted)
	}
}

// A status written before answers were kept (plain JSON) still reads as
// it did: the summary, no answer, so the broker builds the answer.
func TestStatusWithoutAStoredAnswer(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := context.Background()
	for name, value := range map[string]string{
		"plain":               `{"op":{"id":"o1","kind":"provision","async":true,"state":"succeeded","fingerprint":"fp","deadline":"2026-12-04T12:00:00Z"}}`,
		"header cut short":    `{"p":"1|o1|0|0|999","osb":{},"op":{"id":"o1","kind":"provision","async":true,"state":"succeeded","fingerprint":"fp","deadline":"2026-12-04T12:00:00Z"}}`,
		"an unknown deletion": `{"p":"1|o1|2|0|3","osb":{}` + "\n" + `,"op":{"id":"o1","kind":"provision","async":true,"state":"succeeded","fingerprint":"fp","deadline":"2026-12-04T12:00:00Z"}}`,
	} {
		if err := mr.Set("t:{i1}:status", value); err != nil {
			t.Fatal(err)
		}
		st, err := s.Status(ctx, "i1")
		if err != nil || st.Answer != nil || st.Operation == nil || st.Operation.ID != "o1" || st.Operation.State != broker.OpSucceeded {
			t.Errorf("%s: status = %+v, %v; want the decoded summary and no answer", name, st, err)
		}
	}
}

// TestLoadManyReadsWhatLoadReads guards queuedLoads: a pipelined read of
// mixed requests must decode each exactly as Load does.
func TestLoadManyReadsWhatLoadReads(t *testing.T) {
	_, _, s := newStore(t)
	ctx := context.Background()
	o := op("op1", broker.OpSucceeded)
	if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceReady, o), PutOperation: o,
		PutBinding: &broker.Binding{ID: "b1", InstanceID: "i1", State: broker.BindingBound}}, nil); err != nil {
		t.Fatal(err)
	}
	reqs := []broker.LoadRequest{
		{InstanceID: "i1", AllBindings: true},
		{InstanceID: "absent"},
		// A listing's read, between others: the pipeline's commands must
		// still be handed to the right request.
		{InstanceID: "i1", AllBindings: true, RecordsOnly: true},
		{InstanceID: "absent", RecordsOnly: true},
		{InstanceID: "i1", BindingID: "b1", OperationID: "op1"},
		{InstanceID: "i1", BindingID: "nope"},
		{InstanceID: "i1", OperationID: "op1", OperationUnlessLatest: true, AllBindings: true},
	}
	got, err := s.LoadMany(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, req := range reqs {
		want, err := s.Load(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("request %d %+v: LoadMany read %+v, Load %+v", i, req, got[i], want)
		}
	}
	if len(got[2].Bindings) != 1 || got[2].Instance == nil || got[3].Instance != nil {
		t.Errorf("records-only reads: %+v, %+v", got[2], got[3])
	}
}

// The platform's raw context is stored inside the operation's JSON and
// may contain any text, the guard's own words included: only the decoded
// state counts.
func TestCommitGuardReadsTheStateNotTheText(t *testing.T) {
	for _, tc := range []struct {
		name    string
		state   broker.OperationState
		context string
		want    error
	}{
		{"finished, its context claiming in progress", broker.OpSucceeded, `{"platform":"cloudfoundry","state":"in progress"}`, broker.ErrStale},
		{"failed, the claim hidden in a nested value", broker.OpFailed, `{"labels":{"note":"\"state\":\"in progress\""},"state":"in progress"}`, broker.ErrStale},
		{"in progress, its context claiming it succeeded", broker.OpInProgress, `{"state":"succeeded"}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr, _, s := newStore(t)
			ctx := context.Background()
			stored := op("o1", tc.state)
			stored.Context = []byte(tc.context)
			if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceReady, stored), PutOperation: stored}, nil); err != nil {
				t.Fatal(err)
			}
			before := mr.HGet("t:{i1}:ops", "o1")
			if !strings.Contains(before, `"state":"in progress"`) && !strings.Contains(before, `"state":"succeeded"`) {
				t.Fatalf("the stored record does not hold the decoy text, so the test proves nothing: %s", before)
			}

			next := op("o1", broker.OpFailed)
			err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutOperation: next, IfOperationInProgress: "o1"}, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("conditional commit: %v, want %v", err, tc.want)
			}
			after := mr.HGet("t:{i1}:ops", "o1")
			if tc.want != nil && after != before {
				t.Errorf("a stale commit changed the operation: %s", after)
			}
			if tc.want == nil && after == before {
				t.Error("the commit on a running operation changed nothing")
			}
		})
	}
}

// A commit fenced on an attempt lands only while the operation carries
// that attempt's token: a worker that lost its job records nothing.
func TestFencedCommitNeedsTheCurrentAttempt(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stored  string // the operation's attempt token
		fence   string
		want    error
		changed bool
	}{
		{"the first attempt starts on an operation no attempt touched", "", "", nil, true},
		{"the current attempt records its outcome", "a2", "a2", nil, true},
		{"an attempt that was replaced records nothing", "a2", "a1", broker.ErrStale, false},
		{"a start that read the record before another attempt began", "a2", "", broker.ErrStale, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mr, _, s := newStore(t)
			ctx := context.Background()
			stored := op("o1", broker.OpInProgress)
			stored.Attempt = tc.stored
			if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceProvisioning, stored), PutOperation: stored}, nil); err != nil {
				t.Fatal(err)
			}
			before := mr.HGet("t:{i1}:ops", "o1")

			next := op("o1", broker.OpSucceeded)
			next.Attempt = tc.fence
			err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutInstance: inst(broker.InstanceReady, next), PutOperation: next,
				IfOperationInProgress: "o1", Fence: &broker.Fence{Attempt: tc.fence}}, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("fenced commit: %v, want %v", err, tc.want)
			}
			if changed := mr.HGet("t:{i1}:ops", "o1") != before; changed != tc.changed {
				t.Errorf("operation changed: %v, want %v", changed, tc.changed)
			}
		})
	}

	_, _, s := newStore(t)
	err := s.Commit(context.Background(), broker.Mutation{InstanceID: "i1", Fence: &broker.Fence{Attempt: "a1"}}, nil)
	if err == nil || errors.Is(err, broker.ErrStale) {
		t.Errorf("a fence without its operation: %v, want a usage error", err)
	}
}

// IsInstanceKey knows an instance's own keys from the ones every instance
// shares, whose size grows with their number.
func TestIsInstanceKey(t *testing.T) {
	_, _, s := newStore(t)
	for key, want := range map[string]bool{
		"t:{i-1}:instance":                   true,
		"t:{i-1}:bindings":                   true,
		"t:{i-1}:status":                     true,
		"t:{i-1}:ops":                        true,
		"t:{i-1}:lock":                       true,
		"t:{i-1}:binding-tombstone:b-1":      true,
		"t:{expiries}:bindings":              false,
		"t:{jobs}:stream":                    false,
		"t:offering:{svc}:by-creation":       false,
		"t:counts":                           false,
		"other:{i-1}:instance":               false,
		"t:{i-1}:instance-of-something-else": false,
		"t:producers:{team-x}:record":        false,
	} {
		if got := s.IsInstanceKey(key); got != want {
			t.Errorf("IsInstanceKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// The words the store's shared keys take as their hash tag are refused as
// instance IDs; anything else is not.
func TestCheckInstanceID(t *testing.T) {
	_, _, s := newStore(t)
	for _, id := range []string{"expiries", "jobs", "canary", "catalog-notices", "upgrades"} {
		if s.CheckInstanceID(id) == nil {
			t.Errorf("instance ID %q is allowed; its keys would share the slot of Agora's {%s} keys", id, id)
		}
	}
	for _, id := range []string{"6f1b1a52-3c1e-4b8e-9a43-0c2a3f1b2c3d", "expiries-2", "Jobs", "i-1"} {
		if err := s.CheckInstanceID(id); err != nil {
			t.Errorf("instance ID %q refused: %v", id, err)
		}
	}
}
