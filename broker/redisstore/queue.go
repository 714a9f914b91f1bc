package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
)

// QueueOptions tunes the job queue. Zero values take the defaults.
type QueueOptions struct {
	// Prefix namespaces the stream key (DefaultPrefix when empty).
	Prefix string
	// ClaimIdle is how long a delivered job may go without a heartbeat
	// before another worker takes it over. Default 30s; workers heartbeat
	// at a third of it.
	ClaimIdle time.Duration
	// Block is how long Next waits for a new job. Default 2s.
	Block time.Duration
}

const consumerGroup = "agora-workers"

// Queue implements broker.JobQueue on a Redis stream with a consumer group:
// XREADGROUP delivers each job to one consumer, XAUTOCLAIM hands the jobs
// of a consumer that stopped heartbeating (a killed replica) to another.
type Queue struct {
	rdb       redis.UniversalClient
	stream    string
	claimIdle time.Duration
	block     time.Duration

	groupOnce sync.Mutex
	groupOK   bool
}

// NewQueue returns a queue; the stream and group are created on first use.
func NewQueue(rdb redis.UniversalClient, opts QueueOptions) *Queue {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.ClaimIdle <= 0 {
		opts.ClaimIdle = 30 * time.Second
	}
	if opts.Block <= 0 {
		opts.Block = 2 * time.Second
	}
	return &Queue{rdb: rdb, stream: opts.Prefix + ":jobs", claimIdle: opts.ClaimIdle, block: opts.Block}
}

// HeartbeatInterval is how often a worker should call Heartbeat.
func (q *Queue) HeartbeatInterval() time.Duration { return q.claimIdle / 3 }

func (q *Queue) ensureGroup(ctx context.Context) error {
	q.groupOnce.Lock()
	defer q.groupOnce.Unlock()
	if q.groupOK {
		return nil
	}
	err := q.rdb.XGroupCreateMkStream(ctx, q.stream, consumerGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redis: create consumer group on %s: %w", q.stream, err)
	}
	q.groupOK = true
	return nil
}

func (q *Queue) forgetGroup() {
	q.groupOnce.Lock()
	q.groupOK = false
	q.groupOnce.Unlock()
}

// Enqueue implements broker.JobQueue.
func (q *Queue) Enqueue(ctx context.Context, job broker.Job) error {
	if err := q.ensureGroup(ctx); err != nil {
		return err
	}
	err := q.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: q.stream,
		Values: map[string]any{"instance": job.InstanceID, "operation": job.OperationID},
	}).Err()
	if err != nil {
		return fmt.Errorf("redis: enqueue job for operation %s: %w", job.OperationID, err)
	}
	return nil
}

// Next implements broker.JobQueue. It first takes over a job that a dead
// worker left behind, then waits for a new one.
func (q *Queue) Next(ctx context.Context, consumer string) (broker.Job, error) {
	if err := q.ensureGroup(ctx); err != nil {
		return broker.Job{}, err
	}
	msgs, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: q.stream, Group: consumerGroup, Consumer: consumer,
		MinIdle: q.claimIdle, Start: "0-0", Count: 1,
	}).Result()
	if err != nil {
		return broker.Job{}, q.wrap("reclaim jobs", err)
	}
	for _, m := range msgs {
		if job, ok := toJob(m); ok {
			return job, nil
		}
	}
	streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: consumerGroup, Consumer: consumer,
		Streams: []string{q.stream, ">"}, Count: 1, Block: q.block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return broker.Job{}, broker.ErrNotFound
	}
	if err != nil {
		return broker.Job{}, q.wrap("read jobs", err)
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			if job, ok := toJob(m); ok {
				return job, nil
			}
			// A malformed entry can never run: drop it rather than
			// redeliver it forever.
			_ = q.Done(ctx, broker.Job{ID: m.ID})
		}
	}
	return broker.Job{}, broker.ErrNotFound
}

func (q *Queue) wrap(what string, err error) error {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		// Someone deleted the stream; recreate the group next time.
		q.forgetGroup()
	}
	return fmt.Errorf("redis: %s on %s: %w", what, q.stream, err)
}

func toJob(m redis.XMessage) (broker.Job, bool) {
	iid, _ := m.Values["instance"].(string)
	opID, _ := m.Values["operation"].(string)
	if iid == "" || opID == "" {
		return broker.Job{}, false
	}
	return broker.Job{ID: m.ID, InstanceID: iid, OperationID: opID}, true
}

// Heartbeat implements broker.JobQueue: re-claiming our own job resets its
// idle time, so XAUTOCLAIM elsewhere leaves it alone.
func (q *Queue) Heartbeat(ctx context.Context, consumer string, job broker.Job) error {
	err := q.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: q.stream, Group: consumerGroup, Consumer: consumer, MinIdle: 0, Messages: []string{job.ID},
	}).Err()
	if err != nil {
		return fmt.Errorf("redis: heartbeat job %s: %w", job.ID, err)
	}
	return nil
}

// Done implements broker.JobQueue.
func (q *Queue) Done(ctx context.Context, job broker.Job) error {
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, q.stream, consumerGroup, job.ID)
		p.XDel(ctx, q.stream, job.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: finish job %s: %w", job.ID, err)
	}
	return nil
}

var _ broker.JobQueue = (*Queue)(nil)
