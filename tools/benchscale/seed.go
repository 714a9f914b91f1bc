package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/redisstore"
)

// seedBatch is how many instances one pipeline carries.
const seedBatch = 500

// seedID is the ID of the n-th seeded instance, GUID-shaped like the IDs
// platforms send.
func seedID(n int) string { return fmt.Sprintf("5eed%04x-0000-4000-8000-%012x", n>>16&0xffff, n) }

// seed writes e.size instances of the producer's offering, each with one
// bound binding and its finished (async) provision, through Agora's own
// store: the commit script, the offering index and the counters, exactly
// what a broker writes, pipelined. The bindings' credentials are not put
// in Vault: no measured path reads a seeded binding's credentials (the
// measured binds and deprovisions use instances the bench provisions
// through Agora), so Vault holds only what those create.
func seed(ctx context.Context, e *env) (time.Duration, error) {
	store := redisstore.New(e.rdb, keyPrefix)
	start := time.Now()
	now := start.UTC()
	batches := make(chan int)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for first := range batches {
				if err := seedOne(ctx, store, e, first, min(first+seedBatch, e.size), now); err != nil {
					errs <- err
					return
				}
				done.Add(int64(min(first+seedBatch, e.size) - first))
			}
		})
	}
	ticker := time.NewTicker(5 * time.Second)
	defer ticker.Stop()
	var err error
feed:
	for first := 0; first < e.size; first += seedBatch {
		for {
			select {
			case batches <- first:
				continue feed
			case err = <-errs:
				break feed
			case <-ctx.Done():
				err = ctx.Err()
				break feed
			case <-ticker.C:
				progress(e, done.Load(), start)
			}
		}
	}
	close(batches)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return 0, fmt.Errorf("seed %s: %w", e.name, err)
	}
	// The counters a broker moves on every commit, moved once.
	if err := store.AddCounts(ctx, []broker.CountChange{{ServiceID: e.seedService, PlanID: e.seedPlan, Instances: int64(e.size), Bindings: int64(e.size)}}); err != nil {
		return 0, err
	}
	took := time.Since(start)
	progress(e, done.Load(), start)
	return took, nil
}

func progress(e *env, done int64, start time.Time) {
	el := time.Since(start)
	fmt.Printf("  seeding %s: %d/%d instances (%.0f%%), %.0f/s, %s\n", e.name, done, e.size,
		100*float64(done)/float64(e.size), float64(done)/el.Seconds(), el.Round(time.Second))
}

func seedOne(ctx context.Context, store *redisstore.Store, e *env, from, to int, now time.Time) error {
	ms := make([]broker.Mutation, 0, to-from)
	entries := make([]broker.IndexEntry, 0, to-from)
	for n := from; n < to; n++ {
		iid := seedID(n)
		op := &broker.Operation{
			ID: "op-" + iid, Kind: adapters.OpProvision, InstanceID: iid, PlanID: e.seedPlan,
			Async: true, State: broker.OpSucceeded, Fingerprint: "seed", CreatedAt: now, UpdatedAt: now,
		}
		inst := &broker.Instance{
			ID: iid, ServiceID: e.seedService, PlanID: e.seedPlan, OrganizationGUID: "bench-org", SpaceGUID: "bench-space",
			Fingerprint: "seed", State: broker.InstanceReady, LastOp: op.Summary(),
			Receipt:   adapters.Receipt{"kv_mount": "secret", "path": "agora-scale-remote/" + iid, "policy": "agora-secrets-" + iid, "records": "1"},
			CreatedAt: now, UpdatedAt: now,
		}
		bid := iid[:len(iid)-4] + "b1nd"
		bnd := &broker.Binding{
			ID: bid, InstanceID: iid, ServiceID: e.seedService, PlanID: e.seedPlan, AppGUID: "bench-app",
			Fingerprint: "seed", State: broker.BindingBound,
			CredentialRef: "secret/data/agora-scale-" + e.name + "/instances/" + iid + "/bindings/" + bid,
			Receipt:       adapters.Receipt{"role": "agora-" + bid, "entity": "agora-" + bid, "approle_mount": "approle"},
			CreatedAt:     now, UpdatedAt: now,
		}
		ms = append(ms, broker.Mutation{InstanceID: iid, PutInstance: inst, PutBinding: bnd, PutOperation: op})
		entries = append(entries, broker.EntryOf(inst))
	}
	// Index first, as the broker does: the index is a superset.
	if err := store.AddInstances(ctx, e.seedService, entries); err != nil {
		return err
	}
	return store.CommitMany(ctx, ms)
}
