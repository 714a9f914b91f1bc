package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
)

// Bulk upgrade runs (broker.UpgradeStore). Each run's record, its claim
// and the set of active runs share one hash tag, so the conditional save
// is one script in one slot, in Cluster too. Finished runs are kept for
// upgradeRetention, to be looked at and retried.
func (s *Store) upgradeKey(id string) string      { return s.prefix + ":{upgrades}:run:" + id }
func (s *Store) upgradeClaimKey(id string) string { return s.prefix + ":{upgrades}:claim:" + id }
func (s *Store) activeUpgradesKey() string        { return s.prefix + ":{upgrades}:active" }

// upgradeRetention is how long a run's record outlives its last change.
const upgradeRetention = 30 * 24 * time.Hour

// saveUpgradeScript writes the record (KEYS[1]) and the active set
// (KEYS[3]) only while the claim (KEYS[2]) holds ARGV[1], then releases
// the claim. ARGV: token, record, ttl ms, active ("1"/"0"), id.
const saveUpgradeScript = `
if redis.call("GET", KEYS[2]) ~= ARGV[1] then return 0 end
if ARGV[2] ~= "" then redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3]) end
if ARGV[4] == "1" then redis.call("SADD", KEYS[3], ARGV[5]) else redis.call("SREM", KEYS[3], ARGV[5]) end
redis.call("DEL", KEYS[2])
return 1`

// releaseScript deletes a claim only while it is the caller's.
const releaseUpgradeScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`

// CreateUpgrade implements broker.UpgradeStore.
func (s *Store) CreateUpgrade(ctx context.Context, u *broker.Upgrade) error {
	raw, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("encode bulk upgrade %q: %w", u.ID, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.upgradeKey(u.ID), raw, upgradeRetention)
		if u.State == broker.RunRunning {
			p.SAdd(ctx, s.activeUpgradesKey(), u.ID)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: record bulk upgrade %q: %w", u.ID, err)
	}
	return nil
}

// GetUpgrade implements broker.UpgradeStore.
func (s *Store) GetUpgrade(ctx context.Context, id string) (*broker.Upgrade, error) {
	raw, err := s.rdb.Get(ctx, s.upgradeKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("bulk upgrade %q: %w", id, broker.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redis: read bulk upgrade %q: %w", id, err)
	}
	var u broker.Upgrade
	if err := json.Unmarshal(raw, &u); err != nil {
		return nil, fmt.Errorf("redis: bulk upgrade %q is not a record Agora wrote: %w", id, err)
	}
	return &u, nil
}

// ActiveUpgrades implements broker.UpgradeStore.
func (s *Store) ActiveUpgrades(ctx context.Context) ([]string, error) {
	ids, err := s.rdb.SMembers(ctx, s.activeUpgradesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: list active bulk upgrades: %w", err)
	}
	return ids, nil
}

// ClaimUpgrade implements broker.UpgradeStore with SET NX PX.
func (s *Store) ClaimUpgrade(ctx context.Context, id, token string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.upgradeClaimKey(id), token, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis: claim bulk upgrade %q: %w", id, err)
	}
	return ok, nil
}

// SaveUpgrade implements broker.UpgradeStore. A record with no
// instances and no offering (an active entry whose record is gone) only
// updates the active set.
func (s *Store) SaveUpgrade(ctx context.Context, u *broker.Upgrade, token string, active bool) error {
	var raw []byte
	if u.Offering != "" {
		var err error
		if raw, err = json.Marshal(u); err != nil {
			return fmt.Errorf("encode bulk upgrade %q: %w", u.ID, err)
		}
	}
	flag := "0"
	if active {
		flag = "1"
	}
	n, err := redis.NewScript(saveUpgradeScript).Run(ctx, s.rdb,
		[]string{s.upgradeKey(u.ID), s.upgradeClaimKey(u.ID), s.activeUpgradesKey()},
		token, string(raw), upgradeRetention.Milliseconds(), flag, u.ID).Int()
	if err != nil {
		return fmt.Errorf("redis: save bulk upgrade %q: %w", u.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("bulk upgrade %q: the claim ran out before the save: %w", u.ID, broker.ErrStale)
	}
	return nil
}

// ReleaseUpgrade implements broker.UpgradeStore.
func (s *Store) ReleaseUpgrade(ctx context.Context, id, token string) error {
	if err := redis.NewScript(releaseUpgradeScript).Run(ctx, s.rdb, []string{s.upgradeClaimKey(id)}, token).Err(); err != nil {
		return fmt.Errorf("redis: release bulk upgrade %q: %w", id, err)
	}
	return nil
}

var (
	_ broker.UpgradeStore   = (*Store)(nil)
	_ broker.InstanceLister = (*Store)(nil)
)
