package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
)

// QueueOptions tunes the job queue. Zero values take the defaults.
type QueueOptions struct {
	// Prefix namespaces the queue's keys (DefaultPrefix when empty).
	Prefix string
	// ClaimIdle is how long a delivered job may go without a heartbeat
	// before another worker takes it over (the lease). Default 30s.
	ClaimIdle time.Duration
	// Block is the longest Next waits for a new job. Default 2s, and never
	// more than a fifth of ClaimIdle: a lease is counted from when Next
	// was called, so a long wait would eat into it.
	Block time.Duration
	// Now is the clock that schedules released jobs (time.Now when nil);
	// tests move it.
	Now func() time.Time
}

const (
	consumerGroup = "agora-workers"
	// promoteBatch bounds the work of one Promote call.
	promoteBatch = 100
	// adoptBatch bounds how many jobs of the legacy stream one Tidy moves.
	adoptBatch = 100
)

// Queue implements broker.JobQueue on a Redis stream with a consumer group:
// XREADGROUP delivers each job to one consumer, XAUTOCLAIM hands the jobs
// of a consumer that stopped heartbeating (a killed replica) to another.
// Released jobs wait in a sorted set by due time, and a set of queued
// operations keeps one job per operation. Every key shares one hash tag,
// so each script below touches a single Cluster slot (doc.go has the
// scheme).
type Queue struct {
	rdb       redis.UniversalClient
	keys      queueKeys
	claimIdle time.Duration
	block     time.Duration
	// forgetAfter is how long a consumer no replica vouched for, and that
	// holds no job, stays in the consumer group.
	forgetAfter time.Duration
	now         func() time.Time

	enqueue, heartbeat, release, promote, sweep, dropLegacy *redis.Script

	groupOnce sync.Mutex
	groupOK   bool
}

type queueKeys struct {
	stream, delayed, queued, consumers string
	// legacy is the stream of Agora versions before the hash tag: its jobs
	// are moved over (Tidy), never run from there.
	legacy string
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	base := opts.Prefix + ":{jobs}:"
	return &Queue{
		rdb: rdb,
		keys: queueKeys{
			stream: base + "stream", delayed: base + "delayed", queued: base + "queued", consumers: base + "consumers",
			legacy: opts.Prefix + ":jobs",
		},
		claimIdle:   opts.ClaimIdle,
		block:       max(time.Millisecond, min(opts.Block, opts.ClaimIdle/5)),
		forgetAfter: max(10*opts.ClaimIdle, time.Minute),
		now:         opts.Now,
		enqueue:     redis.NewScript(enqueueScript),
		heartbeat:   redis.NewScript(heartbeatScript),
		release:     redis.NewScript(releaseScript),
		promote:     redis.NewScript(promoteScript),
		sweep:       redis.NewScript(sweepScript),
		dropLegacy:  redis.NewScript(dropLegacyScript),
	}
}

// Lease implements broker.JobQueue.
func (q *Queue) Lease() time.Duration { return q.claimIdle }

// IsJobKey reports whether key is one of the queue's own keys (the
// stream, the delayed and queued sets, the consumers), which hold the
// async operations under way and the replicas' consumers: as much at a
// million instances as at a thousand, and every command on them is
// bounded by a batch (promoteBatch, a read's COUNT). make bench-scale
// tells a Redis stall from growth by it, as by Store.IsInstanceKey.
func (q *Queue) IsJobKey(key string) bool {
	switch key {
	case q.keys.stream, q.keys.delayed, q.keys.queued, q.keys.consumers:
		return true
	}
	return false
}

func (q *Queue) ensureGroup(ctx context.Context) error {
	q.groupOnce.Lock()
	defer q.groupOnce.Unlock()
	if q.groupOK {
		return nil
	}
	err := q.rdb.XGroupCreateMkStream(ctx, q.keys.stream, consumerGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redis: create consumer group on %s: %w", q.keys.stream, err)
	}
	q.groupOK = true
	return nil
}

func (q *Queue) forgetGroup() {
	q.groupOnce.Lock()
	q.groupOK = false
	q.groupOnce.Unlock()
}

// enqueueScript adds a job unless its operation already has one.
//
// KEYS: 1 stream, 2 queued. ARGV: 1 operation, 2 instance, 3 service.
const enqueueScript = `
if redis.call("SADD", KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call("XADD", KEYS[1], "*", "instance", ARGV[2], "operation", ARGV[1], "service", ARGV[3])
return 1
`

// Enqueue implements broker.JobQueue.
func (q *Queue) Enqueue(ctx context.Context, job broker.Job) error {
	if err := q.ensureGroup(ctx); err != nil {
		return err
	}
	err := q.enqueue.Run(ctx, q.rdb, []string{q.keys.stream, q.keys.queued}, job.OperationID, job.InstanceID, job.ServiceID).Err()
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
		Stream: q.keys.stream, Group: consumerGroup, Consumer: consumer,
		MinIdle: q.claimIdle, Start: "0-0", Count: 1,
	}).Result()
	if err != nil {
		return broker.Job{}, q.wrap("reclaim jobs", err)
	}
	if job, ok := q.first(ctx, msgs); ok {
		return job, nil
	}
	streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: consumerGroup, Consumer: consumer,
		Streams: []string{q.keys.stream, ">"}, Count: 1, Block: q.block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return broker.Job{}, broker.ErrNotFound
	}
	if err != nil {
		return broker.Job{}, q.wrap("read jobs", err)
	}
	for _, s := range streams {
		if job, ok := q.first(ctx, s.Messages); ok {
			return job, nil
		}
	}
	return broker.Job{}, broker.ErrNotFound
}

// first returns the first well-formed job of msgs. A malformed entry can
// never run: it is dropped rather than redelivered forever.
func (q *Queue) first(ctx context.Context, msgs []redis.XMessage) (broker.Job, bool) {
	for _, m := range msgs {
		if job, ok := toJob(m); ok {
			return job, true
		}
		_ = q.Done(ctx, broker.Job{ID: m.ID})
	}
	return broker.Job{}, false
}

func (q *Queue) wrap(what string, err error) error {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		// Someone deleted the stream; recreate the group next time.
		q.forgetGroup()
	}
	return fmt.Errorf("redis: %s on %s: %w", what, q.keys.stream, err)
}

func toJob(m redis.XMessage) (broker.Job, bool) {
	iid, _ := m.Values["instance"].(string)
	opID, _ := m.Values["operation"].(string)
	sid, _ := m.Values["service"].(string)
	if iid == "" || opID == "" {
		return broker.Job{}, false
	}
	return broker.Job{ID: m.ID, InstanceID: iid, OperationID: opID, ServiceID: sid}, true
}

// heartbeatScript renews a consumer's hold on a job, but only while the
// job is still pending for that consumer: a blind XCLAIM would take the
// job back from the worker that took it over, and two would run it.
//
// KEYS: 1 stream. ARGV: 1 group, 2 consumer, 3 entry ID.
const heartbeatScript = `
local p = redis.pcall("XPENDING", KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if type(p) ~= "table" or p["err"] or #p == 0 or p[1][2] ~= ARGV[2] then
  return 0
end
redis.call("XCLAIM", KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], "JUSTID")
return 1
`

// Heartbeat implements broker.JobQueue.
func (q *Queue) Heartbeat(ctx context.Context, consumer string, job broker.Job) error {
	held, err := q.heartbeat.Run(ctx, q.rdb, []string{q.keys.stream}, consumerGroup, consumer, job.ID).Int()
	if err != nil {
		return fmt.Errorf("redis: heartbeat job %s: %w", job.ID, err)
	}
	if held == 0 {
		return broker.ErrJobLost
	}
	return nil
}

// releaseScript moves a consumer's job to the delayed set, if it is still
// the consumer's.
//
// KEYS: 1 stream, 2 delayed. ARGV: 1 group, 2 consumer, 3 entry ID, 4 due
// time (ms), 5 the delayed job.
const releaseScript = `
local p = redis.pcall("XPENDING", KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if type(p) ~= "table" or p["err"] or #p == 0 or p[1][2] ~= ARGV[2] then
  return 0
end
redis.call("ZADD", KEYS[2], ARGV[4], ARGV[5])
redis.call("XACK", KEYS[1], ARGV[1], ARGV[3])
redis.call("XDEL", KEYS[1], ARGV[3])
return 1
`

// delayedJob is a job in the delayed set. Its operation ID keeps members
// unique: there is at most one job per operation.
type delayedJob struct {
	Instance  string `json:"instance"`
	Operation string `json:"operation"`
	Service   string `json:"service"`
}

// Release implements broker.JobQueue.
func (q *Queue) Release(ctx context.Context, consumer string, job broker.Job, after time.Duration) error {
	member, err := json.Marshal(delayedJob{Instance: job.InstanceID, Operation: job.OperationID, Service: job.ServiceID})
	if err != nil {
		return fmt.Errorf("redis: encode job %s: %w", job.ID, err)
	}
	due := q.now().Add(max(after, 0)).UnixMilli()
	held, err := q.release.Run(ctx, q.rdb, []string{q.keys.stream, q.keys.delayed},
		consumerGroup, consumer, job.ID, strconv.FormatInt(due, 10), string(member)).Int()
	if err != nil {
		return fmt.Errorf("redis: release job %s: %w", job.ID, err)
	}
	if held == 0 {
		return broker.ErrJobLost
	}
	return nil
}

// Done implements broker.JobQueue.
func (q *Queue) Done(ctx context.Context, job broker.Job) error {
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, q.keys.stream, consumerGroup, job.ID)
		p.XDel(ctx, q.keys.stream, job.ID)
		if job.OperationID != "" {
			p.SRem(ctx, q.keys.queued, job.OperationID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: finish job %s: %w", job.ID, err)
	}
	return nil
}

// promoteScript moves due jobs from the delayed set back to the stream, in
// one step, so a job is always in exactly one of them.
//
// KEYS: 1 delayed, 2 stream. ARGV: 1 now (ms), 2 most jobs to move.
const promoteScript = `
local function str(v)
  if type(v) == "string" then return v end
  return ""
end
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call("ZREM", KEYS[1], member)
  local ok, job = pcall(cjson.decode, member)
  if ok and type(job) == "table" and str(job["operation"]) ~= "" then
    redis.call("XADD", KEYS[2], "*", "instance", str(job["instance"]), "operation", job["operation"], "service", str(job["service"]))
  end
end
return #due
`

// Promote implements broker.JobQueue.
func (q *Queue) Promote(ctx context.Context) error {
	err := q.promote.Run(ctx, q.rdb, []string{q.keys.delayed, q.keys.stream},
		strconv.FormatInt(q.now().UnixMilli(), 10), promoteBatch).Err()
	if err != nil {
		return fmt.Errorf("redis: promote due jobs on %s: %w", q.keys.delayed, err)
	}
	return nil
}

// sweepScript records the calling replica's consumers as alive, then
// removes every consumer of the group that holds no job and that no
// replica vouched for within the forget time. Deleting a consumer drops
// its pending jobs, so the check and the delete must be one step: a job
// delivered in between would be lost. A consumer never registered (an
// older Agora's) is judged by the idle time Redis reports. A registration
// is kept while its consumer is in the group, so a consumer that died
// holding jobs is removed once they are taken over.
//
// KEYS: 1 stream, 2 consumers. ARGV: 1 group, 2 now (ms), 3 forget after
// (ms), 4... the caller's consumers.
const sweepScript = `
local now, forget = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV do
  redis.call("ZADD", KEYS[2], now, ARGV[i])
end
local list = redis.pcall("XINFO", "CONSUMERS", KEYS[1], ARGV[1])
if type(list) ~= "table" or list["err"] then
  return 0
end
local removed, members = 0, {}
for _, c in ipairs(list) do
  local f = {}
  for j = 1, #c, 2 do
    f[c[j]] = c[j + 1]
  end
  members[f["name"]] = true
  local seen = redis.call("ZSCORE", KEYS[2], f["name"])
  local alive
  if seen then
    alive = now - tonumber(seen) < forget
  else
    local idle = tonumber(f["idle"]) or -1
    alive = idle >= 0 and idle < forget
  end
  if tonumber(f["pending"]) == 0 and not alive then
    redis.call("XGROUP", "DELCONSUMER", KEYS[1], ARGV[1], f["name"])
    redis.call("ZREM", KEYS[2], f["name"])
    members[f["name"]] = nil
    removed = removed + 1
  end
end
for _, name in ipairs(redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now - forget)) do
  if not members[name] then
    redis.call("ZREM", KEYS[2], name)
  end
end
return removed
`

// Tidy implements broker.JobQueue.
func (q *Queue) Tidy(ctx context.Context, consumers []string) error {
	if len(consumers) == 0 {
		return errors.New("redis: tidy the job queue: no consumer to act as")
	}
	args := []any{consumerGroup, strconv.FormatInt(q.now().UnixMilli(), 10), strconv.FormatInt(q.forgetAfter.Milliseconds(), 10)}
	for _, c := range consumers {
		args = append(args, c)
	}
	var errs []error
	if err := q.sweep.Run(ctx, q.rdb, []string{q.keys.stream, q.keys.consumers}, args...).Err(); err != nil {
		errs = append(errs, fmt.Errorf("redis: remove dead consumers of %s: %w", q.keys.stream, err))
	}
	if err := q.adoptLegacy(ctx, consumers[0]); err != nil {
		errs = append(errs, fmt.Errorf("redis: take over the jobs of %s: %w", q.keys.legacy, err))
	}
	return errors.Join(errs...)
}

// dropLegacyScript deletes the legacy stream once nothing is left in it:
// no entry, and no job an older Agora is still running from it.
//
// KEYS: 1 legacy stream. ARGV: 1 group.
const dropLegacyScript = `
if redis.call("XLEN", KEYS[1]) > 0 then
  return 0
end
local p = redis.pcall("XPENDING", KEYS[1], ARGV[1])
if type(p) == "table" and not p["err"] and tonumber(p[1]) > 0 then
  return 0
end
redis.call("DEL", KEYS[1])
return 1
`

// adoptLegacy moves the jobs an older Agora queued under the legacy key
// (a key without a hash tag, so no script can span it and the new keys)
// into this queue: those no worker has taken yet, and those whose worker
// stopped heartbeating them. A job is added here before it is removed
// there, so a crash in between leaves it in both, and the one-job-per-
// operation set makes the second move a no-op.
func (q *Queue) adoptLegacy(ctx context.Context, consumer string) error {
	n, err := q.rdb.Exists(ctx, q.keys.legacy).Result()
	if err != nil || n == 0 {
		return err
	}
	abandoned, _, err := q.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: q.keys.legacy, Group: consumerGroup, Consumer: consumer,
		MinIdle: q.claimIdle, Start: "0-0", Count: adoptBatch,
	}).Result()
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		// An older Agora created the stream without its group (or the
		// group was lost): every entry is still undelivered.
		err = q.rdb.XGroupCreate(ctx, q.keys.legacy, consumerGroup, "0").Err()
		if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return err
		}
		abandoned, err = nil, nil
	}
	if err != nil {
		return err
	}
	streams, err := q.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: consumerGroup, Consumer: consumer,
		Streams: []string{q.keys.legacy, ">"}, Count: adoptBatch, Block: -1,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	msgs := abandoned
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	for _, m := range msgs {
		if job, ok := toJob(m); ok {
			if err := q.Enqueue(ctx, job); err != nil {
				return err
			}
		}
		_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.XAck(ctx, q.keys.legacy, consumerGroup, m.ID)
			p.XDel(ctx, q.keys.legacy, m.ID)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return q.dropLegacy.Run(ctx, q.rdb, []string{q.keys.legacy}, consumerGroup).Err()
}

var _ broker.JobQueue = (*Queue)(nil)
