package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
)

// offeringInstancesKey is the per-offering instance index. The service ID
// is the hash tag: the set lives in its own slot, apart from the instances'
// records, which is why broker.InstanceIndex keeps it as a superset rather
// than writing it in the commit script.
func (s *Store) offeringInstancesKey(serviceID string) string {
	return s.prefix + ":offering:{" + serviceID + "}:instances"
}

// AddInstance implements broker.InstanceIndex.
func (s *Store) AddInstance(ctx context.Context, serviceID, instanceID string) error {
	if err := s.rdb.SAdd(ctx, s.offeringInstancesKey(serviceID), instanceID).Err(); err != nil {
		return fmt.Errorf("redis: index instance %q of service %q: %w", instanceID, serviceID, err)
	}
	return nil
}

// AddInstances indexes many instances of one offering with one SADD, for
// bulk loads.
func (s *Store) AddInstances(ctx context.Context, serviceID string, instanceIDs []string) error {
	if len(instanceIDs) == 0 {
		return nil
	}
	members := make([]any, len(instanceIDs))
	for i, id := range instanceIDs {
		members[i] = id
	}
	if err := s.rdb.SAdd(ctx, s.offeringInstancesKey(serviceID), members...).Err(); err != nil {
		return fmt.Errorf("redis: index %d instances of service %q: %w", len(instanceIDs), serviceID, err)
	}
	return nil
}

// RemoveInstance implements broker.InstanceIndex.
func (s *Store) RemoveInstance(ctx context.Context, serviceID, instanceID string) error {
	if err := s.rdb.SRem(ctx, s.offeringInstancesKey(serviceID), instanceID).Err(); err != nil {
		return fmt.Errorf("redis: unindex instance %q of service %q: %w", instanceID, serviceID, err)
	}
	return nil
}

// ScanOfferingInstances returns some indexed instance IDs of one
// offering from cursor ("" to start) with SSCAN, about count of them, and
// the cursor to go on from ("" once the walk is done). Like any SSCAN, a
// walk sees every ID that stays indexed throughout, possibly twice. The
// index is a superset: load each record, and skip the absent ones.
func (s *Store) ScanOfferingInstances(ctx context.Context, serviceID, cursor string, count int) ([]string, string, error) {
	var at uint64
	if cursor != "" {
		var err error
		if at, err = strconv.ParseUint(cursor, 10, 64); err != nil {
			return nil, "", fmt.Errorf("redis: instance index cursor %q is not a number", cursor)
		}
	}
	ids, next, err := s.rdb.SScan(ctx, s.offeringInstancesKey(serviceID), at, "", int64(count)).Result()
	if err != nil {
		return nil, "", fmt.Errorf("redis: scan instance index of service %q: %w", serviceID, err)
	}
	if next == 0 {
		return ids, "", nil
	}
	return ids, strconv.FormatUint(next, 10), nil
}

// LoadMany reads several instances in one pipelined round trip.
func (s *Store) LoadMany(ctx context.Context, reqs []broker.LoadRequest) ([]broker.Snapshot, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, req := range reqs {
			s.queueLoad(ctx, p, req)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redis: load %d instances: %w", len(reqs), err)
	}
	out := make([]broker.Snapshot, len(reqs))
	for i, req := range reqs {
		n := queuedLoads(req)
		if out[i], err = decodeLoad(cmds[:n], req); err != nil {
			return nil, err
		}
		cmds = cmds[n:]
	}
	return out, nil
}

// queuedLoads is how many commands queueLoad queues for req.
func queuedLoads(req broker.LoadRequest) int {
	n := 2 // instance, status
	if req.RecordsOnly {
		n--
	}
	if req.BindingID != "" {
		n += 2
	}
	if req.OperationID != "" {
		n++
	}
	if req.AllBindings {
		n++
	}
	if req.PredecessorID != "" {
		n++
	}
	return n
}
