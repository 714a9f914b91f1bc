package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync"

	"github.com/agora-osb/agora/adapters"
)

// adapterHandle is one built adapter, shared by every catalog that serves
// it: a rebuild keeps the adapter of an offering whose configuration did
// not change, instead of building it again, so one producer's change
// never re-dials another producer's backend. The adapter is closed when
// the last catalog holding it is closed.
type adapterHandle struct {
	adapter adapters.Adapter
	// key identifies what the adapter was built from: the adapter, the
	// producer, the offering and plans, and their resolved config (as a
	// hash: secrets are not kept).
	key string

	mu     sync.Mutex
	refs   int
	closed bool
}

func newHandle(a adapters.Adapter, key string) *adapterHandle {
	return &adapterHandle{adapter: a, key: key, refs: 1}
}

// acquire adds a holder; false when the adapter is already closed (the
// catalog that held it last was closed in between), so it must be built
// again.
func (h *adapterHandle) acquire() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.refs++
	return true
}

// release drops a holder and closes the adapter when it was the last.
func (h *adapterHandle) release() error {
	h.mu.Lock()
	h.refs--
	last := h.refs == 0 && !h.closed
	if last {
		h.closed = true
	}
	h.mu.Unlock()
	if closer, ok := h.adapter.(adapters.Closer); ok && last {
		return closer.Close()
	}
	return nil
}

// buildKey is what an offering's adapter depends on. Two builds with the
// same key would call the factory with the same Config.
func buildKey(factory string, cfg adapters.Config, settings []byte, plans [][]byte) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	_ = enc.Encode([]string{factory, cfg.Producer, cfg.Offering})
	_ = enc.Encode(json.RawMessage(orNull(settings)))
	for i, p := range cfg.Plans {
		_ = enc.Encode([]string{p.ID, p.Name})
		_ = enc.Encode(json.RawMessage(orNull(plans[i])))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func orNull(b []byte) []byte {
	if len(b) == 0 {
		return []byte("null")
	}
	return b
}

// reusable returns the handle of prev's offering id when it was built
// from key, acquired for the new catalog; nil when it must be built.
func (c *Catalog) reusable(id, key string) *adapterHandle {
	if c == nil {
		return nil
	}
	o, ok := c.byID[id]
	if !ok || o.handle == nil || o.handle.key != key || !o.handle.acquire() {
		return nil
	}
	return o.handle
}
