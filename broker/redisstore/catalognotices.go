package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// CatalogNotices is catalognotify.Store on Redis: a lease that lets one
// replica announce a catalog change, and the summary last announced.
// Both keys share a hash tag, so the scripts work on a Redis Cluster.
type CatalogNotices struct {
	rdb                 redis.UniversalClient
	lease, delivered    string
	acquire, setIfOwner *redis.Script
	release             *redis.Script
}

// NewCatalogNotices returns the store under prefix.
func NewCatalogNotices(rdb redis.UniversalClient, prefix string) *CatalogNotices {
	return &CatalogNotices{
		rdb:        rdb,
		lease:      prefix + ":{catalog-notices}:lease",
		delivered:  prefix + ":{catalog-notices}:delivered",
		acquire:    redis.NewScript(acquireLeaseScript),
		setIfOwner: redis.NewScript(setIfOwnerScript),
		release:    redis.NewScript(unlockScript),
	}
}

// acquireLeaseScript takes the lease when it is free and extends it for
// its holder. KEYS: lease. ARGV: holder, ttl in ms.
const acquireLeaseScript = `
local cur = redis.call("GET", KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0
`

// setIfOwnerScript records the delivered summary only while ARGV[1]
// holds the lease, so a replica that lost it cannot overwrite the record
// of a newer announcement. KEYS: lease, delivered. ARGV: holder, summary.
const setIfOwnerScript = `
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call("SET", KEYS[2], ARGV[2])
return 1
`

// Acquire implements catalognotify.Store.
func (c *CatalogNotices) Acquire(ctx context.Context, holder string, ttl time.Duration) (bool, error) {
	n, err := c.acquire.Run(ctx, c.rdb, []string{c.lease}, holder, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("redis: catalog webhook lease: %w", err)
	}
	return n == 1, nil
}

// Release implements catalognotify.Store.
func (c *CatalogNotices) Release(ctx context.Context, holder string) error {
	if err := c.release.Run(ctx, c.rdb, []string{c.lease}, holder).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis: release the catalog webhook lease: %w", err)
	}
	return nil
}

// Delivered implements catalognotify.Store.
func (c *CatalogNotices) Delivered(ctx context.Context) ([]byte, error) {
	raw, err := c.rdb.Get(ctx, c.delivered).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis: read the last announced catalog: %w", err)
	}
	return raw, nil
}

// SetDelivered implements catalognotify.Store.
func (c *CatalogNotices) SetDelivered(ctx context.Context, holder string, s []byte) error {
	n, err := c.setIfOwner.Run(ctx, c.rdb, []string{c.lease, c.delivered}, holder, s).Int()
	if err != nil {
		return fmt.Errorf("redis: record the announced catalog: %w", err)
	}
	if n == 0 {
		return errors.New("redis: the catalog webhook lease went to another replica before the announcement was recorded")
	}
	return nil
}
