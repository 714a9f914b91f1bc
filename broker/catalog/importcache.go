package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"
)

// ImportCache keeps upstream brokers' catalogs for one catalog
// generation. A change going live builds the catalog twice on the
// replica that applies it (the go-live proof, then the reload) and once
// on every other; with the cache, each upstream is imported once per
// generation per replica, not once per build. A new generation starts
// afresh, so upstream changes are picked up with the next catalog change
// or restart. Failed imports are not kept.
type ImportCache struct {
	imp Importer

	mu         sync.Mutex
	generation int64
	entries    map[string][]OfferingSpec
}

// NewImportCache caches imp.
func NewImportCache(imp Importer) *ImportCache {
	return &ImportCache{imp: imp, entries: map[string][]OfferingSpec{}}
}

// For returns the importer for builds of one generation.
func (c *ImportCache) For(generation int64) Importer {
	if c == nil || c.imp == nil {
		return nil
	}
	return func(ctx context.Context, req ImportRequest) ([]OfferingSpec, error) {
		key := importKey(req)
		c.mu.Lock()
		if c.generation != generation {
			c.generation, c.entries = generation, map[string][]OfferingSpec{}
		}
		specs, ok := c.entries[key]
		c.mu.Unlock()
		if ok {
			return specs, nil
		}
		specs, err := c.imp(ctx, req)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		if c.generation == generation {
			c.entries[key] = specs
		}
		c.mu.Unlock()
		return specs, nil
	}
}

// importKey identifies one upstream as configured; the password is in it
// only as part of a hash.
func importKey(req ImportRequest) string {
	h := sha256.New()
	_ = json.NewEncoder(h).Encode(req)
	return hex.EncodeToString(h.Sum(nil))
}
