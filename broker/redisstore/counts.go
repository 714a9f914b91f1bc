package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
)

// countsKey holds the instance and binding counts of every plan, one hash
// field per plan and kind ("<service_id>|<plan_id>|instances"). A scrape
// reads it whole: its size is bounded by the catalog, not the instances.
func (s *Store) countsKey() string { return s.prefix + ":counts" }

// addCountsScript moves counts and drops those that reach zero, so a
// Redis whose instances are all gone holds no counts either.
// KEYS: 1 counts. ARGV: pairs of field and delta.
const addCountsScript = `
for i = 1, #ARGV, 2 do
  if redis.call("HINCRBY", KEYS[1], ARGV[i], ARGV[i + 1]) == 0 then
    redis.call("HDEL", KEYS[1], ARGV[i])
  end
end
return 0
`

// AddCounts implements broker.Counts, in one round trip.
func (s *Store) AddCounts(ctx context.Context, changes []broker.CountChange) error {
	args := make([]any, 0, 4*len(changes))
	for _, c := range changes {
		if c.Instances != 0 {
			args = append(args, c.ServiceID+"|"+c.PlanID+"|instances", c.Instances)
		}
		if c.Bindings != 0 {
			args = append(args, c.ServiceID+"|"+c.PlanID+"|bindings", c.Bindings)
		}
	}
	if len(args) == 0 {
		return nil
	}
	if err := s.addCounts.Run(ctx, s.rdb, []string{s.countsKey()}, args...).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis: update counts: %w", err)
	}
	return nil
}

// CountInstances sums the instance counters of one offering's plans with
// one HMGET: constant time whatever the number of instances, and never a
// command on the offering's whole index.
func (s *Store) CountInstances(ctx context.Context, serviceID string, planIDs []string) (int64, error) {
	if len(planIDs) == 0 {
		return 0, nil
	}
	fields := make([]string, len(planIDs))
	for i, pid := range planIDs {
		fields[i] = serviceID + "|" + pid + "|instances"
	}
	vals, err := s.rdb.HMGet(ctx, s.countsKey(), fields...).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: read the instance counts of service %q: %w", serviceID, err)
	}
	var n int64
	for _, v := range vals {
		if str, ok := v.(string); ok {
			c, _ := strconv.ParseInt(str, 10, 64)
			n += c
		}
	}
	return n, nil
}

// PlanCount is one plan's counts.
type PlanCount struct {
	ServiceID, PlanID   string
	Instances, Bindings int64
}

// Counts reads every plan's counts in one round trip.
func (s *Store) Counts(ctx context.Context) ([]PlanCount, error) {
	all, err := s.rdb.HGetAll(ctx, s.countsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read counts: %w", err)
	}
	byPlan := map[[2]string]*PlanCount{}
	var out []PlanCount
	for field, value := range all {
		parts := strings.Split(field, "|")
		n, err := strconv.ParseInt(value, 10, 64)
		if len(parts) != 3 || err != nil {
			continue
		}
		key := [2]string{parts[0], parts[1]}
		pc := byPlan[key]
		if pc == nil {
			pc = &PlanCount{ServiceID: parts[0], PlanID: parts[1]}
			byPlan[key] = pc
		}
		switch parts[2] {
		case "instances":
			pc.Instances = n
		case "bindings":
			pc.Bindings = n
		}
	}
	for _, pc := range byPlan {
		out = append(out, *pc)
	}
	return out, nil
}

// QueueDepth is what the async queue holds.
type QueueDepth struct {
	// Queued counts operations with a job: ready, running or waiting.
	Queued int64
	// Ready counts jobs in the stream (delivered or not); Delayed those
	// waiting for their next attempt.
	Ready, Delayed int64
	// Oldest is the age of the oldest job in the stream (0 when empty).
	Oldest time.Duration
}

// Depth reads the queue's size in one round trip.
func (q *Queue) Depth(ctx context.Context) (QueueDepth, error) {
	var queued, ready, delayed *redis.IntCmd
	var first *redis.XMessageSliceCmd
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		queued = p.SCard(ctx, q.keys.queued)
		ready = p.XLen(ctx, q.keys.stream)
		delayed = p.ZCard(ctx, q.keys.delayed)
		first = p.XRangeN(ctx, q.keys.stream, "-", "+", 1)
		return nil
	})
	if err != nil && err != redis.Nil {
		return QueueDepth{}, fmt.Errorf("redis: read queue depth: %w", err)
	}
	d := QueueDepth{Queued: queued.Val(), Ready: ready.Val(), Delayed: delayed.Val()}
	if msgs := first.Val(); len(msgs) > 0 {
		if ms, err := strconv.ParseInt(strings.SplitN(msgs[0].ID, "-", 2)[0], 10, 64); err == nil {
			d.Oldest = max(0, q.now().Sub(time.UnixMilli(ms)))
		}
	}
	return d, nil
}

var _ broker.Counts = (*Store)(nil)
