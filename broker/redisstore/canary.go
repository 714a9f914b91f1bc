package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/producers"
)

// canaryHistory is how many past results per offering are kept: enough to
// see a flapping adapter, bounded whatever the interval.
const canaryHistory = 20

// CanaryResults is the canary's store: a lease that lets one replica run
// the canary at a time, the latest result per offering (one hash field
// per live offering, so a page reads them all in one round trip), and a
// short history per offering. Every key shares a hash tag.
type CanaryResults struct {
	rdb           redis.UniversalClient
	prefix        string
	lease, latest string
	acquire       *redis.Script
	release       *redis.Script
}

// NewCanaryResults returns the store under prefix.
func NewCanaryResults(rdb redis.UniversalClient, prefix string) *CanaryResults {
	return &CanaryResults{
		rdb:     rdb,
		prefix:  prefix,
		lease:   prefix + ":{canary}:lease",
		latest:  prefix + ":{canary}:latest",
		acquire: redis.NewScript(acquireLeaseScript),
		release: redis.NewScript(unlockScript),
	}
}

func (c *CanaryResults) historyKey(offeringID string) string {
	return c.prefix + ":{canary}:history:" + offeringID
}

// Acquire takes the canary's lease for ttl, or extends it for its holder.
func (c *CanaryResults) Acquire(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	n, err := c.acquire.Run(ctx, c.rdb, []string{c.lease}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redis: canary lease: %w", err)
	}
	return n == 1, nil
}

// Release gives the lease up, if holder still has it.
func (c *CanaryResults) Release(ctx context.Context, holder string) error {
	if err := c.release.Run(ctx, c.rdb, []string{c.lease}, holder).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis: release the canary lease: %w", err)
	}
	return nil
}

// Put records r as its offering's latest result and in its history.
func (c *CanaryResults) Put(ctx context.Context, r producers.CanaryResult) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	h := c.historyKey(r.OfferingID)
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, c.latest, r.OfferingID, raw)
		p.LPush(ctx, h, raw)
		p.LTrim(ctx, h, 0, canaryHistory-1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: record the canary's result: %w", err)
	}
	return nil
}

// Results returns the latest result per offering ID, in one round trip.
func (c *CanaryResults) Results(ctx context.Context) (map[string]producers.CanaryResult, error) {
	all, err := c.rdb.HGetAll(ctx, c.latest).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read the canary's results: %w", err)
	}
	out := make(map[string]producers.CanaryResult, len(all))
	for id, raw := range all {
		var r producers.CanaryResult
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			continue // written by a newer release: shown again once it writes the next
		}
		out[id] = r
	}
	return out, nil
}

// History returns an offering's recent results, newest first.
func (c *CanaryResults) History(ctx context.Context, offeringID string) ([]producers.CanaryResult, error) {
	raws, err := c.rdb.LRange(ctx, c.historyKey(offeringID), 0, canaryHistory-1).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read the canary's history: %w", err)
	}
	out := make([]producers.CanaryResult, 0, len(raws))
	for _, raw := range raws {
		var r producers.CanaryResult
		if json.Unmarshal([]byte(raw), &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// Forget drops the results of offerings that are no longer live, so the
// store stays bounded by the catalog.
func (c *CanaryResults) Forget(ctx context.Context, offeringIDs []string) error {
	if len(offeringIDs) == 0 {
		return nil
	}
	_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, c.latest, offeringIDs...)
		for _, id := range offeringIDs {
			p.Del(ctx, c.historyKey(id))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: forget the canary's results: %w", err)
	}
	return nil
}
