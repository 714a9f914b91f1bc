package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/redisstore"
)

func TestExpiryIndex(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	odd := broker.ExpiringBinding{InstanceID: `i"1`, BindingID: "b,\n2"} // IDs are opaque
	plain := broker.ExpiringBinding{InstanceID: "i1", BindingID: "b1"}
	later := broker.ExpiringBinding{InstanceID: "i2", BindingID: "b9"}
	for e, at := range map[broker.ExpiringBinding]time.Time{odd: now.Add(-time.Minute), plain: now.Add(-time.Hour), later: now.Add(time.Hour)} {
		if err := s.ScheduleExpiry(ctx, e, at); err != nil {
			t.Fatal(err)
		}
	}
	due, err := s.DueExpiries(ctx, now, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []broker.ExpiringBinding{plain, odd}; !reflect.DeepEqual(due, want) {
		t.Errorf("due %v, want the earliest first %v", due, want)
	}
	if due, _ := s.DueExpiries(ctx, now, 1); len(due) != 1 || due[0] != plain {
		t.Errorf("due with limit 1: %v", due)
	}

	// Rescheduling moves an entry; it never brings a removed one back.
	if err := s.RescheduleExpiry(ctx, plain, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.ForgetExpiry(ctx, odd); err != nil {
		t.Fatal(err)
	}
	if err := s.RescheduleExpiry(ctx, odd, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueExpiries(ctx, now, 10); len(due) != 0 {
		t.Errorf("due after moving one and forgetting the other: %v", due)
	}
	if members, _ := mr.ZMembers("t:{expiries}:bindings"); len(members) != 2 {
		t.Errorf("index holds %q, want the two live entries", members)
	}

	// An entry Agora did not write is dropped, not due forever.
	if _, err := mr.ZAdd("t:{expiries}:bindings", 1, "not json"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueExpiries(ctx, now, 10); len(due) != 0 {
		t.Errorf("junk came out as %v", due)
	}
	if members, _ := mr.ZMembers("t:{expiries}:bindings"); len(members) != 2 {
		t.Errorf("index holds %q after the junk was read, want the two live entries", members)
	}
}

func TestLoadReadsThePredecessor(t *testing.T) {
	_, _, s := newStore(t)
	ctx := context.Background()
	pred := &broker.Binding{ID: "old", InstanceID: "i1", State: broker.BindingBound, Predecessor: nil}
	succ := &broker.Binding{ID: "new", InstanceID: "i1", State: broker.BindingCreating, Predecessor: &broker.PredecessorRef{BindingID: "old"}}
	for _, b := range []*broker.Binding{pred, succ} {
		if err := s.Commit(ctx, broker.Mutation{InstanceID: "i1", PutBinding: b}, nil); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Load(ctx, broker.LoadRequest{InstanceID: "i1", BindingID: "new", PredecessorID: "old", AllBindings: true})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Binding == nil || snap.Binding.ID != "new" || snap.Predecessor == nil || snap.Predecessor.ID != "old" || len(snap.Bindings) != 2 {
		t.Errorf("snapshot binding %+v, predecessor %+v, %d bindings", snap.Binding, snap.Predecessor, len(snap.Bindings))
	}
	many, err := s.LoadMany(ctx, []broker.LoadRequest{{InstanceID: "i1", PredecessorID: "nope"}, {InstanceID: "i1", PredecessorID: "old"}})
	if err != nil {
		t.Fatal(err)
	}
	if many[0].Predecessor != nil || many[1].Predecessor == nil || many[1].Predecessor.ID != "old" {
		t.Errorf("LoadMany predecessors %+v, %+v", many[0].Predecessor, many[1].Predecessor)
	}
}

// BenchmarkDueExpiries measures the drain's one read against a real
// Redis (127.0.0.1:6379, or AGORA_BENCH_REDIS) holding n expiring
// bindings of which 100 are due: it must cost the same at a million as
// at a thousand (ZRANGEBYSCORE ... LIMIT is O(log n + limit)).
//
//	go test -run '^$' -bench DueExpiries -benchtime 2000x ./broker/redisstore/
func BenchmarkDueExpiries(b *testing.B) {
	addr := os.Getenv("AGORA_BENCH_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		b.Skipf("no Redis at %s: %v", addr, err)
	}
	now := time.Now()
	for _, n := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			prefix := fmt.Sprintf("agora-bench-expiry-%d-%d", n, now.UnixNano())
			s := redisstore.New(rdb, prefix)
			key := prefix + ":{expiries}:bindings"
			defer rdb.Del(ctx, key)
			const batch = 10_000
			for start := 0; start < n; start += batch {
				members := make([]redis.Z, 0, batch)
				for i := start; i < min(n, start+batch); i++ {
					at := now.Add(time.Duration(i+1) * time.Hour) // later
					if i < 100 {
						at = now.Add(-time.Duration(i+1) * time.Second) // due
					}
					members = append(members, redis.Z{Score: float64(at.UnixMilli()), Member: fmt.Sprintf(`["i-%d","b-%d"]`, i, i)})
				}
				if err := rdb.ZAdd(ctx, key, members...).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				due, err := s.DueExpiries(ctx, now, 100)
				if err != nil || len(due) != 100 {
					b.Fatalf("due %d, err %v", len(due), err)
				}
			}
		})
	}
}
