package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
)

// expiriesKey is the sorted set of expiring bindings (broker.
// BindingExpiries). Its own hash tag puts it in one slot, apart from the
// records, which is why the broker keeps it as a superset. Every call is
// O(log n) in its size, so a million expiring bindings cost what ten do.
func (s *Store) expiriesKey() string { return s.prefix + ":{expiries}:bindings" }

// expiryMember encodes an entry as a JSON array: IDs are opaque strings,
// and JSON cannot be confused by any character in them.
func expiryMember(e broker.ExpiringBinding) string {
	b, _ := json.Marshal([2]string{e.InstanceID, e.BindingID}) // strings always marshal
	return string(b)
}

func expiryScore(at time.Time) float64 { return float64(at.UnixMilli()) }

// ScheduleExpiry implements broker.BindingExpiries.
func (s *Store) ScheduleExpiry(ctx context.Context, e broker.ExpiringBinding, at time.Time) error {
	if err := s.rdb.ZAdd(ctx, s.expiriesKey(), redis.Z{Score: expiryScore(at), Member: expiryMember(e)}).Err(); err != nil {
		return fmt.Errorf("redis: schedule the expiry of binding %q of instance %q: %w", e.BindingID, e.InstanceID, err)
	}
	return nil
}

// RescheduleExpiry implements broker.BindingExpiries: ZADD XX never adds
// back an entry that was removed meanwhile (its binding gone).
func (s *Store) RescheduleExpiry(ctx context.Context, e broker.ExpiringBinding, at time.Time) error {
	err := s.rdb.ZAddXX(ctx, s.expiriesKey(), redis.Z{Score: expiryScore(at), Member: expiryMember(e)}).Err()
	if err != nil {
		return fmt.Errorf("redis: reschedule the expiry of binding %q of instance %q: %w", e.BindingID, e.InstanceID, err)
	}
	return nil
}

// ForgetExpiry implements broker.BindingExpiries.
func (s *Store) ForgetExpiry(ctx context.Context, e broker.ExpiringBinding) error {
	if err := s.rdb.ZRem(ctx, s.expiriesKey(), expiryMember(e)).Err(); err != nil {
		return fmt.Errorf("redis: forget the expiry of binding %q of instance %q: %w", e.BindingID, e.InstanceID, err)
	}
	return nil
}

// DueExpiries implements broker.BindingExpiries with one ZRANGEBYSCORE
// ... LIMIT: O(log n + limit), however many bindings expire later.
func (s *Store) DueExpiries(ctx context.Context, now time.Time, limit int) ([]broker.ExpiringBinding, error) {
	members, err := s.rdb.ZRangeByScore(ctx, s.expiriesKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read the due expiries: %w", err)
	}
	out := make([]broker.ExpiringBinding, 0, len(members))
	for _, m := range members {
		var ids [2]string
		if json.Unmarshal([]byte(m), &ids) != nil || ids[0] == "" || ids[1] == "" {
			// Not written by Agora: drop it, or it would be due forever.
			_ = s.rdb.ZRem(ctx, s.expiriesKey(), m).Err()
			continue
		}
		out = append(out, broker.ExpiringBinding{InstanceID: ids[0], BindingID: ids[1]})
	}
	return out, nil
}

var _ broker.BindingExpiries = (*Store)(nil)
