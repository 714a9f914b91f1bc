package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/redisstore"
)

// walkIndex reads the whole index count entries at a time.
func walkIndex(t *testing.T, s *redisstore.Store, count int) []broker.IndexEntry {
	t.Helper()
	var all []broker.IndexEntry
	cursor := ""
	for range 1000 {
		got, next, err := s.ScanOfferingInstances(context.Background(), "svc", cursor, count)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got...)
		if cursor = next; cursor == "" {
			return all
		}
	}
	t.Fatal("the walk does not end")
	return nil
}

func ids(entries []broker.IndexEntry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.InstanceID
	}
	return out
}

// TestIndexWalksOldestFirstExactly: the index hands its entries out in
// creation order (then by ID), each once, with the creation time the
// record has, and a walk goes on past entries removed behind its cursor.
func TestIndexWalksOldestFirstExactly(t *testing.T) {
	_, _, s := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 12, 5, 4, 0, 0, 123456789, time.UTC)
	var want []broker.IndexEntry
	for i := range 10 {
		// Pairs created at the same instant, as a bulk load makes them.
		want = append(want, broker.IndexEntry{InstanceID: fmt.Sprintf("i-%02d", i), CreatedAt: t0.Add(time.Duration(i/2) * time.Second)})
	}
	shuffled := slices.Clone(want)
	slices.Reverse(shuffled)
	if err := s.AddInstances(ctx, "svc", shuffled[:5]); err != nil {
		t.Fatal(err)
	}
	for _, e := range shuffled[5:] {
		if err := s.AddInstance(ctx, "svc", e); err != nil {
			t.Fatal(err)
		}
	}
	got := walkIndex(t, s, 3)
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("walk order %v, want %v", ids(got), ids(want))
	}
	for i := range got {
		if !got[i].CreatedAt.Equal(want[i].CreatedAt) {
			t.Errorf("%s created at %v, want %v", got[i].InstanceID, got[i].CreatedAt, want[i].CreatedAt)
		}
	}

	// Remove what a walk has read, then go on: nothing ahead is skipped.
	first, cursor, err := s.ScanOfferingInstances(ctx, "svc", "", 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range first {
		if err := s.RemoveInstance(ctx, "svc", e); err != nil {
			t.Fatal(err)
		}
	}
	rest, _, err := s.ScanOfferingInstances(ctx, "svc", cursor, 100)
	if err != nil || !slices.Equal(ids(rest), ids(want[4:])) {
		t.Fatalf("after removing the first page: %v %v, want %v", ids(rest), err, ids(want[4:]))
	}
}

// TestIndexReadsWhatEarlierVersionsLeft: the unordered set of earlier
// Agora versions is walked after the ordered index, its entries without a
// creation time; a cursor such a version handed out goes on in it; and a
// deprovision removes its instance from it.
func TestIndexReadsWhatEarlierVersionsLeft(t *testing.T) {
	_, rdb, s := newStore(t)
	ctx := context.Background()
	if err := rdb.SAdd(ctx, "t:offering:{svc}:instances", "old-1", "old-2").Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.AddInstance(ctx, "svc", broker.IndexEntry{InstanceID: "new-1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got := walkIndex(t, s, 10)
	if len(got) != 3 || got[0].InstanceID != "new-1" || got[0].CreatedAt.IsZero() {
		t.Fatalf("walk: %+v", got)
	}
	old := ids(got[1:])
	slices.Sort(old)
	if !slices.Equal(old, []string{"old-1", "old-2"}) || !got[1].CreatedAt.IsZero() || !got[2].CreatedAt.IsZero() {
		t.Fatalf("the earlier set's entries: %+v", got[1:])
	}
	if got, next, err := s.ScanOfferingInstances(ctx, "svc", "0", 10); err != nil || len(got) != 2 || next != "" {
		t.Fatalf("an earlier version's cursor: %+v %q %v", got, next, err)
	}
	if err := s.RemoveInstance(ctx, "svc", broker.IndexEntry{InstanceID: "old-1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveInstance(ctx, "svc", broker.IndexEntry{InstanceID: "old-2"}); err != nil {
		t.Fatal(err)
	}
	if got := walkIndex(t, s, 10); len(got) != 1 {
		t.Fatalf("after deprovisioning the earlier set's instances: %+v", got)
	}
	if n, _ := rdb.Exists(ctx, "t:offering:{svc}:instances").Result(); n != 0 {
		t.Error("the emptied earlier set is still there")
	}
}

// TestIndexRefusesCursorsItNeverHandedOut: a made-up cursor is bad input
// (broker.ErrBadCursor), not a Redis fault.
func TestIndexRefusesCursorsItNeverHandedOut(t *testing.T) {
	_, _, s := newStore(t)
	for _, c := range []string{"ozzz", "o12/x", "x", "l-1", "o0000000000000000001x"} {
		if _, _, err := s.ScanOfferingInstances(context.Background(), "svc", c, 10); !errors.Is(err, broker.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

// TestIndexEntryNamesOnlyItsRecord: an entry left by a provision that
// never committed does not name a record the ID got later.
func TestIndexEntryNamesOnlyItsRecord(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 4, 0, 0, 1, time.UTC)
	rec := &broker.Instance{ID: "i", CreatedAt: t0}
	for _, c := range []struct {
		e    broker.IndexEntry
		inst *broker.Instance
		want bool
	}{
		{broker.EntryOf(rec), rec, true},
		{broker.IndexEntry{InstanceID: "i", CreatedAt: t0.In(time.FixedZone("x", 3600))}, rec, true},
		{broker.IndexEntry{InstanceID: "i", CreatedAt: t0.Add(-time.Nanosecond)}, rec, false},
		{broker.IndexEntry{InstanceID: "i"}, rec, true}, // the earlier set's
		{broker.IndexEntry{InstanceID: "i", CreatedAt: t0}, nil, false},
		{broker.IndexEntry{InstanceID: "j", CreatedAt: t0}, rec, false},
	} {
		if got := c.e.Names(c.inst); got != c.want {
			t.Errorf("%+v names %+v: %v, want %v", c.e, c.inst, got, c.want)
		}
	}
}

// TestIndexAdoptsWhatEarlierVersionsLeft: the earlier set's IDs move into
// the ordered index under their records' creation times; IDs without a
// record of the offering are dropped; the set is gone afterwards.
func TestIndexAdoptsWhatEarlierVersionsLeft(t *testing.T) {
	_, rdb, s := newStore(t)
	ctx := context.Background()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	var ms []broker.Mutation
	for i, sid := range []string{"svc", "svc", "other"} {
		o := op(fmt.Sprintf("op-%d", i), broker.OpSucceeded)
		in := inst(broker.InstanceReady, o)
		in.ID, in.ServiceID, in.CreatedAt = fmt.Sprintf("old-%d", i), sid, t0.Add(-time.Duration(i)*time.Hour)
		ms = append(ms, broker.Mutation{InstanceID: in.ID, PutInstance: in, PutOperation: o})
	}
	if err := s.CommitMany(ctx, ms); err != nil {
		t.Fatal(err)
	}
	if err := rdb.SAdd(ctx, "t:offering:{svc}:instances", "old-0", "old-1", "old-2", "never-committed").Err(); err != nil {
		t.Fatal(err)
	}
	moved, cursor := 0, ""
	for range 100 {
		n, next, err := s.AdoptEarlierIndex(ctx, "svc", cursor)
		if err != nil {
			t.Fatal(err)
		}
		moved += n
		if cursor = next; cursor == "" {
			break
		}
	}
	if moved != 2 {
		t.Errorf("moved %d entries, want 2 (old-0, old-1)", moved)
	}
	if n, _ := rdb.Exists(ctx, "t:offering:{svc}:instances").Result(); n != 0 {
		t.Error("the earlier set is still there")
	}
	got := walkIndex(t, s, 10)
	if fmt.Sprint(ids(got)) != "[old-1 old-0]" || !got[0].CreatedAt.Equal(t0.Add(-time.Hour)) || !got[1].CreatedAt.Equal(t0) {
		t.Errorf("ordered index after the move: %+v", got)
	}
	if n, next, err := s.AdoptEarlierIndex(ctx, "svc", ""); n != 0 || next != "" || err != nil {
		t.Errorf("a second move: %d %q %v, want nothing to do", n, next, err)
	}
}
