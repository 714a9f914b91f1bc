package redisstore_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/redisstore"
)

const (
	streamKey    = "t:{jobs}:stream"
	delayedKey   = "t:{jobs}:delayed"
	queuedKey    = "t:{jobs}:queued"
	legacyKey    = "t:jobs"
	group        = "agora-workers"
	testIdle     = 150 * time.Millisecond
	testBlock    = 20 * time.Millisecond
	testDeadline = 5 * time.Second
)

// queueClock is real time plus an offset that tests move forward.
type queueClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *queueClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *queueClock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func newQueue(t *testing.T) (*redisstore.Queue, *redis.Client, *queueClock) {
	t.Helper()
	_, rdb, _ := newStore(t)
	clock := &queueClock{}
	q := redisstore.NewQueue(rdb, redisstore.QueueOptions{Prefix: "t", ClaimIdle: testIdle, Block: testBlock, Now: clock.now})
	return q, rdb, clock
}

// nextWithin calls Next for consumer until it returns a job or the
// deadline passes.
func nextWithin(t *testing.T, q *redisstore.Queue, consumer string, within time.Duration) (broker.Job, error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		job, err := q.Next(context.Background(), consumer)
		if err == nil || !errors.Is(err, broker.ErrNotFound) || time.Now().After(deadline) {
			return job, err
		}
	}
}

// deliver queues job and hands it to consumer.
func deliver(t *testing.T, q *redisstore.Queue, job broker.Job, consumer string) broker.Job {
	t.Helper()
	ctx := context.Background()
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	got, err := q.Next(ctx, consumer)
	if err != nil {
		t.Fatalf("%s did not get the job it queued: %v", consumer, err)
	}
	return got
}

func pendingOwners(t *testing.T, rdb *redis.Client) map[string]string {
	t.Helper()
	p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{Stream: streamKey, Group: group, Start: "-", End: "+", Count: 100}).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range p {
		out[e.ID] = e.Consumer
	}
	return out
}

func TestQueueDeliversOnceAndReclaimsAbandonedJobs(t *testing.T) {
	q, rdb, _ := newQueue(t)
	ctx := context.Background()

	if _, err := q.Next(ctx, "a"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("Next on an empty queue: %v, want ErrNotFound", err)
	}
	if err := q.Enqueue(ctx, broker.Job{InstanceID: "i1", OperationID: "o1", ServiceID: "s1"}); err != nil {
		t.Fatal(err)
	}
	job, err := q.Next(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if job.ID == "" || job.InstanceID != "i1" || job.OperationID != "o1" || job.ServiceID != "s1" {
		t.Fatalf("job %+v", job)
	}
	// Delivered to a; nobody else gets it while a is alive.
	if _, err := q.Next(ctx, "b"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("a second consumer got a delivered job: %v", err)
	}
	// a heartbeats for longer than the idle time: still nobody else.
	for range 4 {
		time.Sleep(testIdle / 2)
		if err := q.Heartbeat(ctx, "a", job); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Next(ctx, "b"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("a heartbeating consumer's job was reclaimed: %v", err)
	}

	// a dies: after the idle time b takes the job over.
	reclaimed, err := nextWithin(t, q, "b", testDeadline)
	if err != nil {
		t.Fatalf("the abandoned job was never reclaimed: %v", err)
	}
	if reclaimed != job {
		t.Fatalf("reclaimed %+v, want %+v", reclaimed, job)
	}
	if err := q.Done(ctx, reclaimed); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, streamKey).Val(); n != 0 {
		t.Errorf("%d entries left in the stream after Done", n)
	}
	if p := pendingOwners(t, rdb); len(p) != 0 {
		t.Errorf("jobs still pending after Done: %v", p)
	}
	if n := rdb.Exists(ctx, queuedKey).Val(); n != 0 {
		t.Error("the operation is still marked queued after Done")
	}
	time.Sleep(testIdle)
	if _, err := q.Next(ctx, "c"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("a finished job was delivered again: %v", err)
	}
}

// The heartbeat that took jobs back blindly let two workers run one job
// after a Redis outage longer than the idle time.
func TestHeartbeatNeverTakesAJobBack(t *testing.T) {
	q, rdb, _ := newQueue(t)
	ctx := context.Background()
	job := deliver(t, q, broker.Job{InstanceID: "i1", OperationID: "o1"}, "a")

	// a cannot reach Redis for longer than the idle time; b takes over.
	taken, err := nextWithin(t, q, "b", testDeadline)
	if err != nil {
		t.Fatalf("b never took the job over: %v", err)
	}
	if taken.ID != job.ID {
		t.Fatalf("b took %+v, want %+v", taken, job)
	}

	// a comes back: its heartbeat and its release both find the job lost,
	// and change nothing.
	if err := q.Heartbeat(ctx, "a", job); !errors.Is(err, broker.ErrJobLost) {
		t.Fatalf("a's heartbeat after the takeover: %v, want ErrJobLost", err)
	}
	if err := q.Release(ctx, "a", job, time.Minute); !errors.Is(err, broker.ErrJobLost) {
		t.Fatalf("a's release after the takeover: %v, want ErrJobLost", err)
	}
	if owners := pendingOwners(t, rdb); owners[job.ID] != "b" || len(owners) != 1 {
		t.Fatalf("pending after a's heartbeat and release: %v, want the job with b", owners)
	}
	if n := rdb.ZCard(ctx, delayedKey).Val(); n != 0 {
		t.Fatal("a's release moved b's job to the delayed set")
	}
	if err := q.Heartbeat(ctx, "b", taken); err != nil {
		t.Fatalf("the owner's heartbeat: %v", err)
	}

	// A job that is gone (finished by its owner) is lost to everyone.
	if err := q.Done(ctx, taken); err != nil {
		t.Fatal(err)
	}
	if err := q.Heartbeat(ctx, "b", taken); !errors.Is(err, broker.ErrJobLost) {
		t.Fatalf("heartbeat of a finished job: %v, want ErrJobLost", err)
	}
}

func TestReleasedJobComesBackWhenDue(t *testing.T) {
	q, rdb, clock := newQueue(t)
	ctx := context.Background()
	want := broker.Job{InstanceID: "i1", OperationID: "o1", ServiceID: "s1"}
	job := deliver(t, q, want, "a")
	if err := q.Release(ctx, "a", job, time.Minute); err != nil {
		t.Fatal(err)
	}

	// While it waits, a holds nothing and nobody gets the job.
	if p := pendingOwners(t, rdb); len(p) != 0 {
		t.Fatalf("a released job is still pending: %v", p)
	}
	if n := rdb.XLen(ctx, streamKey).Val(); n != 0 {
		t.Fatalf("a released job is still in the stream (%d entries)", n)
	}
	if err := q.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(testIdle)
	if _, err := q.Next(ctx, "b"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("a job released for a minute came back at once: %v", err)
	}
	// Enqueueing it again while it waits does not make a second job.
	if err := q.Enqueue(ctx, want); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, streamKey).Val(); n != 0 {
		t.Fatal("a waiting job was queued a second time")
	}

	clock.advance(time.Minute)
	if err := q.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, delayedKey).Val(); n != 0 {
		t.Error("the due job is still in the delayed set")
	}
	back, err := q.Next(ctx, "b")
	if err != nil {
		t.Fatalf("the due job did not come back: %v", err)
	}
	if back.InstanceID != want.InstanceID || back.OperationID != want.OperationID || back.ServiceID != want.ServiceID {
		t.Fatalf("came back as %+v, want %+v", back, want)
	}
	if _, err := q.Next(ctx, "c"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("the job came back twice: %v", err)
	}
}

func TestOneJobPerOperation(t *testing.T) {
	q, rdb, _ := newQueue(t)
	ctx := context.Background()
	job := broker.Job{InstanceID: "i1", OperationID: "o1"}
	for range 3 {
		if err := q.Enqueue(ctx, job); err != nil {
			t.Fatal(err)
		}
	}
	if n := rdb.XLen(ctx, streamKey).Val(); n != 1 {
		t.Fatalf("%d jobs for one operation, want 1", n)
	}
	got, err := q.Next(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Done(ctx, got); err != nil {
		t.Fatal(err)
	}
	// Once finished, the operation may be queued again (a late duplicate
	// finds it finished and is dropped by the worker).
	if err := q.Enqueue(ctx, job); err != nil {
		t.Fatal(err)
	}
	if n := rdb.XLen(ctx, streamKey).Val(); n != 1 {
		t.Fatalf("%d jobs after re-enqueueing a finished operation, want 1", n)
	}
}

func consumers(t *testing.T, rdb *redis.Client) []string {
	t.Helper()
	list, err := rdb.XInfoConsumers(context.Background(), streamKey, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}

func TestTidyRemovesDeadConsumersOnly(t *testing.T) {
	q, rdb, clock := newQueue(t)
	ctx := context.Background()
	// Three consumers each took a job: "gone" finished it and then its
	// replica went away, "dead" went away holding its job, "alive" is
	// this replica's.
	for _, c := range []string{"gone", "dead", "alive"} {
		job := deliver(t, q, broker.Job{InstanceID: "i-" + c, OperationID: "o-" + c}, c)
		if c != "dead" {
			if err := q.Done(ctx, job); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := q.Tidy(ctx, []string{"gone", "dead", "alive"}); err != nil {
		t.Fatal(err)
	}

	// Half a minute without word from "gone": less than the forget time.
	clock.advance(30 * time.Second)
	if err := q.Tidy(ctx, []string{"alive"}); err != nil {
		t.Fatal(err)
	}
	if got := consumers(t, rdb); len(got) != 3 {
		t.Fatalf("consumers after a minute %v, want all three", got)
	}

	// Long after: "gone" is removed; "dead" still holds a job (removing it
	// would drop the job), and "alive" kept vouching for itself.
	clock.advance(time.Hour)
	if err := q.Tidy(ctx, []string{"alive"}); err != nil {
		t.Fatal(err)
	}
	if got := consumers(t, rdb); len(got) != 2 || got[0] != "alive" || got[1] != "dead" {
		t.Fatalf("consumers after an hour %v, want [alive dead]", got)
	}

	// Once its job is taken over, "dead" goes too.
	if _, err := nextWithin(t, q, "alive", testDeadline); err != nil {
		t.Fatalf("the dead consumer's job was not taken over: %v", err)
	}
	if err := q.Tidy(ctx, []string{"alive"}); err != nil {
		t.Fatal(err)
	}
	if got := consumers(t, rdb); len(got) != 1 || got[0] != "alive" {
		t.Fatalf("consumers after the takeover %v, want [alive]", got)
	}
}

// An older Agora queued jobs under "<prefix>:jobs", a key without a hash
// tag. After an upgrade none of them may be lost, and none taken from an
// older replica that is still running it.
func TestTidyTakesOverJobsOfTheLegacyStream(t *testing.T) {
	q, rdb, _ := newQueue(t)
	ctx := context.Background()
	// The older Agora: its group, one job its live worker runs, one not
	// delivered yet.
	if err := rdb.XGroupCreateMkStream(ctx, legacyKey, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"running", "waiting"} {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: legacyKey, Values: map[string]any{"instance": "i-" + id, "operation": "o-" + id}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "old-replica", Streams: []string{legacyKey, ">"}, Count: 1, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}

	if err := q.Tidy(ctx, []string{"new"}); err != nil {
		t.Fatal(err)
	}
	first, err := q.Next(ctx, "new")
	if err != nil {
		t.Fatalf("the legacy job nobody had taken was not moved over: %v", err)
	}
	if first.OperationID != "o-waiting" || first.InstanceID != "i-waiting" {
		t.Fatalf("moved %+v, want the waiting job", first)
	}
	if _, err := q.Next(ctx, "new"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("the job an older replica is running was taken from it: %v", err)
	}
	if n := rdb.XLen(ctx, legacyKey).Val(); n != 1 {
		t.Fatalf("legacy stream holds %d entries, want the running one", n)
	}
	if err := q.Done(ctx, first); err != nil {
		t.Fatal(err)
	}

	// The older replica dies: once its job is idle for the claim time, it
	// is moved over too, and the legacy key goes away.
	time.Sleep(testIdle + 10*time.Millisecond)
	if err := q.Tidy(ctx, []string{"new"}); err != nil {
		t.Fatal(err)
	}
	second, err := q.Next(ctx, "new")
	if err != nil || second.OperationID != "o-running" {
		t.Fatalf("the dead older replica's job: %+v, %v", second, err)
	}
	if err := q.Done(ctx, second); err != nil {
		t.Fatal(err)
	}
	if n := rdb.Exists(ctx, legacyKey).Val(); n != 0 {
		t.Error("the emptied legacy stream was left behind")
	}

	// An older replica that queues again after that (its stream is
	// recreated without a group) loses nothing either.
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: legacyKey, Values: map[string]any{"instance": "i-late", "operation": "o-late"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := q.Tidy(ctx, []string{"new"}); err != nil {
		t.Fatal(err)
	}
	late, err := q.Next(ctx, "new")
	if err != nil || late.OperationID != "o-late" {
		t.Fatalf("the late legacy job: %+v, %v", late, err)
	}
}

func TestQueueReportsRedisFailures(t *testing.T) {
	mr, rdb, _ := newStore(t)
	q := redisstore.NewQueue(rdb, redisstore.QueueOptions{Prefix: "t", ClaimIdle: testIdle, Block: testBlock})
	ctx := context.Background()
	job := deliver(t, q, broker.Job{InstanceID: "i1", OperationID: "o1"}, "a")
	mr.Close()
	// Unreachable is not lost: the worker keeps its job until its lease
	// runs out.
	for name, err := range map[string]error{
		"Heartbeat": q.Heartbeat(ctx, "a", job),
		"Release":   q.Release(ctx, "a", job, time.Second),
		"Promote":   q.Promote(ctx),
		"Tidy":      q.Tidy(ctx, []string{"a"}),
		"Enqueue":   q.Enqueue(ctx, broker.Job{InstanceID: "i2", OperationID: "o2"}),
	} {
		if err == nil || errors.Is(err, broker.ErrJobLost) {
			t.Errorf("%s with Redis down: %v, want a Redis error", name, err)
		}
	}
}
