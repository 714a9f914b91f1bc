package redisstore

import (
	"context"
	"fmt"
	"sort"

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

// RemoveInstance implements broker.InstanceIndex.
func (s *Store) RemoveInstance(ctx context.Context, serviceID, instanceID string) error {
	if err := s.rdb.SRem(ctx, s.offeringInstancesKey(serviceID), instanceID).Err(); err != nil {
		return fmt.Errorf("redis: unindex instance %q of service %q: %w", instanceID, serviceID, err)
	}
	return nil
}

// OfferingInstances returns the indexed instance IDs of one offering,
// sorted. It is a superset: load each record, and skip the absent ones.
func (s *Store) OfferingInstances(ctx context.Context, serviceID string) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.offeringInstancesKey(serviceID)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read instance index of service %q: %w", serviceID, err)
	}
	sort.Strings(ids)
	return ids, nil
}

var _ broker.InstanceIndex = (*Store)(nil)
