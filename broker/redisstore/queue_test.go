package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/redisstore"
)

func TestQueueDeliversOnceAndReclaimsAbandonedJobs(t *testing.T) {
	_, rdb, _ := newStore(t)
	ctx := context.Background()
	const idle = 150 * time.Millisecond
	q := redisstore.NewQueue(rdb, redisstore.QueueOptions{Prefix: "t", ClaimIdle: idle, Block: 20 * time.Millisecond})

	if _, err := q.Next(ctx, "a"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("Next on an empty queue: %v, want ErrNotFound", err)
	}
	if err := q.Enqueue(ctx, broker.Job{InstanceID: "i1", OperationID: "o1"}); err != nil {
		t.Fatal(err)
	}
	job, err := q.Next(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if job.ID == "" || job.InstanceID != "i1" || job.OperationID != "o1" {
		t.Fatalf("job %+v", job)
	}
	// Delivered to a; nobody else gets it while a is alive.
	if _, err := q.Next(ctx, "b"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("a second consumer got a delivered job: %v", err)
	}
	// a heartbeats for longer than the idle time: still nobody else.
	for range 4 {
		time.Sleep(idle / 2)
		if err := q.Heartbeat(ctx, "a", job); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Next(ctx, "b"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("a heartbeating consumer's job was reclaimed: %v", err)
	}

	// a dies: after the idle time b takes the job over.
	deadline := time.Now().Add(5 * time.Second)
	var reclaimed broker.Job
	for {
		reclaimed, err = q.Next(ctx, "b")
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("the abandoned job was never reclaimed: %v", err)
	}
	if reclaimed != job {
		t.Fatalf("reclaimed %+v, want %+v", reclaimed, job)
	}
	if err := q.Done(ctx, reclaimed); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, "t:jobs").Val(); n != 0 {
		t.Errorf("%d entries left in the stream after Done", n)
	}
	if p := rdb.XPending(ctx, "t:jobs", "agora-workers").Val(); p.Count != 0 {
		t.Errorf("%d jobs still pending after Done", p.Count)
	}
	time.Sleep(idle)
	if _, err := q.Next(ctx, "c"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("a finished job was delivered again: %v", err)
	}
}
