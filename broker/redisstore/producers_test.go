package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker/redisstore"
	"github.com/agora-osb/agora/producers"
)

// producerRedis returns the Redis servers the producer store is tested
// on: miniredis always, and the real local Redis unless -short, because
// a race is only a race with real concurrency.
func producerRedis(t *testing.T) map[string]redis.UniversalClient {
	t.Helper()
	mr := miniredis.RunT(t)
	out := map[string]redis.UniversalClient{"miniredis": redis.NewClient(&redis.Options{Addr: mr.Addr(), DisableIdentity: true})}
	if !testing.Short() {
		real := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DisableIdentity: true})
		if err := real.Ping(context.Background()).Err(); err != nil {
			t.Fatalf("the local Redis on 127.0.0.1:6379 does not answer (run with -short to skip it): %v", err)
		}
		out["redis"] = real
	}
	for _, c := range out {
		t.Cleanup(func() { _ = c.Close() })
	}
	return out
}

// uniquePrefix gives a test its own keys on a shared Redis, and removes
// them afterwards.
func uniquePrefix(t *testing.T, rdb redis.UniversalClient) string {
	t.Helper()
	prefix := fmt.Sprintf("agora-test-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+":*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})
	return prefix
}

func producerRecord(name, namespace string) producers.Record {
	return producers.Record{Producer: producers.Producer{Name: name, Namespace: namespace, Contact: name + "@example.com", State: producers.StateActive}}
}

// TestOverlappingNamespacesNeverBothWin creates two producers whose
// namespaces overlap ("ovN-" and "ovN-x-") at the same moment, 100 times:
// exactly one may win each time, or one would publish inside the other's
// namespace.
func TestOverlappingNamespacesNeverBothWin(t *testing.T) {
	for server, rdb := range producerRedis(t) {
		t.Run(server, func(t *testing.T) {
			store := redisstore.NewProducerStore(rdb, uniquePrefix(t, rdb))
			ctx := context.Background()
			for i := range 100 {
				pair := []producers.Record{
					producerRecord(fmt.Sprintf("ov%d", i), fmt.Sprintf("ov%d-", i)),
					producerRecord(fmt.Sprintf("ov%d-x", i), fmt.Sprintf("ov%d-x-", i)),
				}
				if i%2 == 1 { // either may come first
					pair[0], pair[1] = pair[1], pair[0]
				}
				errs := make([]error, 2)
				var start, wg sync.WaitGroup
				start.Add(1)
				for j := range pair {
					wg.Go(func() {
						start.Wait()
						errs[j] = store.Create(ctx, pair[j])
					})
				}
				start.Done()
				wg.Wait()
				won := 0
				for j, err := range errs {
					switch {
					case err == nil:
						won++
					case !errors.Is(err, producers.ErrConflict):
						t.Fatalf("trial %d: create %s: %v, want nil or a conflict", i, pair[j].Name, err)
					}
				}
				if won != 1 {
					t.Fatalf("trial %d: %d of two overlapping producers were created (errors %v)", i, won, errs)
				}
			}
		})
	}
}

func TestProducerClaims(t *testing.T) {
	rdb := producerRedis(t)["miniredis"]
	ctx := context.Background()
	prefix := uniquePrefix(t, rdb)
	store := redisstore.NewProducerStore(rdb, prefix)
	if err := store.Create(ctx, producerRecord("team-a", "team-a-")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, namespace string
		wantErr         string
	}{
		{"team-a", "other-", `producer "team-a" already exists`},
		{"team-b", "team-a-", `overlaps producer "team-a"`},    // the same namespace
		{"team-c", "team-a-db-", `overlaps producer "team-a"`}, // inside hers
		{"team", "team-", `overlaps producer "team-a"`},        // around hers
		{"team-ab", "team-ab-", ""},                            // a longer word is no overlap
		{"te", "te-", ""},
	}
	for _, tt := range tests {
		err := store.Create(ctx, producerRecord(tt.name, tt.namespace))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("create %s (%s): %v", tt.name, tt.namespace, err)
		case tt.wantErr != "" && (err == nil || !errors.Is(err, producers.ErrConflict) || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("create %s (%s): %v, want a conflict saying %q", tt.name, tt.namespace, err, tt.wantErr)
		}
	}
	got, err := store.List(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("List = %v %v, want team-a, team-ab and te", got, err)
	}
}

// TestClaimsAreBackfilledFromExistingRecords covers an upgrade: producers
// stored before claims existed still own their namespaces.
func TestClaimsAreBackfilledFromExistingRecords(t *testing.T) {
	rdb := producerRedis(t)["miniredis"]
	ctx := context.Background()
	prefix := uniquePrefix(t, rdb)
	// What the previous version wrote: the listing set and the record.
	if err := rdb.SAdd(ctx, prefix+":producers", "legacy").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, prefix+":producers:{legacy}:record", `{"name":"legacy","namespace":"legacy-","contact":"l@example.com","state":"active"}`, 0).Err(); err != nil {
		t.Fatal(err)
	}
	store := redisstore.NewProducerStore(rdb, prefix)
	if err := store.Create(ctx, producerRecord("legacy-db", "legacy-db-")); !errors.Is(err, producers.ErrConflict) {
		t.Fatalf("a namespace inside a pre-existing producer's: %v, want a conflict", err)
	}
}

// TestAHalfFinishedCreateIsFinished: a crash after the claim and before
// the record leaves the claim; creating the same producer again finishes.
func TestAHalfFinishedCreateIsFinished(t *testing.T) {
	rdb := producerRedis(t)["miniredis"]
	ctx := context.Background()
	prefix := uniquePrefix(t, rdb)
	store := redisstore.NewProducerStore(rdb, prefix)
	if err := store.Create(ctx, producerRecord("crashy", "crashy-")); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, prefix+":producers:{crashy}:record").Err(); err != nil { // the crash
		t.Fatal(err)
	}
	if err := store.Create(ctx, producerRecord("crashy", "crashy-")); err != nil {
		t.Fatalf("create again after a half-finished create: %v", err)
	}
	if _, err := store.Get(ctx, "crashy"); err != nil {
		t.Fatal(err)
	}
}
