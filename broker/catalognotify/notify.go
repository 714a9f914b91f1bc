// Package catalognotify tells a platform's operators when the merged
// catalog changes: one HMAC-signed JSON POST per change, to a URL the
// platform engineer configures, saying which offerings and plans came,
// went or changed. Cloud Foundry reads a broker's catalog only on
// `cf update-service-broker`, so without a nudge a producer's new plan
// stays invisible there.
//
// Every replica runs a Notifier; a lease in the Store makes one of them
// deliver, and the Store remembers what was last delivered, so a change
// is announced once, by whichever replica is alive, even across restarts.
//
// What this package must never do: block or fail a catalog change. It
// works beside the live catalog, in its own goroutine, and retries a
// failing receiver with backoff for as long as it takes.
package catalognotify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/agora-osb/agora/broker/catalog"
)

// The headers of a delivery.
const (
	HeaderEvent     = "X-Agora-Event"
	HeaderDelivery  = "X-Agora-Delivery"
	HeaderTimestamp = "X-Agora-Timestamp"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256, keyed with the
	// shared secret, of the timestamp, a ".", and the body.
	HeaderSignature = "X-Agora-Signature"
)

// EventCatalogChanged is the only event there is.
const EventCatalogChanged = "catalog.changed"

// Store keeps what was last delivered and who may deliver now; the Redis
// store is redisstore.CatalogNotices.
type Store interface {
	// Acquire takes (or, for its holder, extends) the delivery lease.
	Acquire(ctx context.Context, holder string, ttl time.Duration) (bool, error)
	Release(ctx context.Context, holder string) error
	// Delivered returns the last delivered summary; nil before the first.
	Delivered(ctx context.Context) ([]byte, error)
	// SetDelivered records s as delivered while holder holds the lease.
	SetDelivered(ctx context.Context, holder string, s []byte) error
}

// Config wires a Notifier.
type Config struct {
	URL    string
	Secret string
	Store  Store
	// Current returns the catalog in force and its generation
	// (livecatalog.Loader.Current).
	Current func() (int64, *catalog.Catalog)
	// Holder names this replica in the lease.
	Holder string
	// Client posts; its Timeout bounds one delivery (default 10s).
	Client *http.Client
	// Interval is how often the catalog is compared with what was
	// delivered (default 2s); Backoff the first wait after a failed
	// delivery, doubling up to MaxBackoff (defaults 1s and 1m).
	Interval, Backoff, MaxBackoff time.Duration
	Logger                        *slog.Logger
	Now                           func() time.Time
}

// Notifier announces catalog changes; see the package comment.
type Notifier struct {
	cfg Config
	// seen is the fingerprint this replica last found delivered, so an
	// unchanged catalog costs no Redis call.
	seen string
}

// New returns a Notifier; call Run.
func New(cfg Config) (*Notifier, error) {
	if cfg.URL == "" || cfg.Secret == "" || cfg.Store == nil || cfg.Current == nil {
		return nil, errors.New("catalognotify: URL, Secret, Store and Current are required")
	}
	cfg.Interval = cmp.Or(cfg.Interval, 2*time.Second)
	cfg.Backoff = cmp.Or(cfg.Backoff, time.Second)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, time.Minute)
	cfg.Holder = cmp.Or(cfg.Holder, randomID())
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Notifier{cfg: cfg}, nil
}

// Run compares the catalog with what was delivered until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Interval)
	defer t.Stop()
	for {
		if err := n.Check(ctx); err != nil && ctx.Err() == nil {
			n.cfg.Logger.Warn("catalog webhook: cannot compare the catalog with what was announced (Redis); trying again", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check announces the catalog in force if it differs from what was last
// delivered, retrying a failing receiver until it takes the event or ctx
// ends. The first catalog a Notifier ever sees is recorded as the
// baseline without an event: nothing is known about what the platform
// saw before.
func (n *Notifier) Check(ctx context.Context) error {
	gen, cat := n.cfg.Current()
	if cat == nil {
		return nil
	}
	cur := summarize(gen, cat)
	if cur.Fingerprint == n.seen {
		return nil
	}
	// The lease outlives the longest wait between attempts, so that no
	// other replica announces the same change meanwhile.
	lease := n.cfg.MaxBackoff + 2*n.cfg.Client.Timeout
	ok, err := n.cfg.Store.Acquire(ctx, n.cfg.Holder, lease)
	if err != nil || !ok {
		return err // another replica announces it
	}
	defer func() { _ = n.cfg.Store.Release(context.WithoutCancel(ctx), n.cfg.Holder) }()
	raw, err := n.cfg.Store.Delivered(ctx)
	if err != nil {
		return err
	}
	if raw == nil {
		n.cfg.Logger.Info("catalog webhook: recorded the catalog in force as the baseline; changes from now on are announced", "generation", gen)
		return n.record(ctx, cur)
	}
	var prev summary
	if err := json.Unmarshal(raw, &prev); err != nil {
		return fmt.Errorf("decode the last announced catalog: %w", err)
	}
	backoff := n.cfg.Backoff
	for attempt := 1; ; attempt++ {
		if prev.Fingerprint == cur.Fingerprint {
			return n.record(ctx, cur) // changed and changed back
		}
		ev := diff(prev, cur, n.cfg.Now())
		if ev.empty() {
			return n.record(ctx, cur)
		}
		err := n.deliver(ctx, ev)
		if err == nil {
			n.cfg.Logger.Info("catalog webhook: announced a catalog change", "generation", cur.Generation, "previous_generation", prev.Generation, "attempts", attempt)
			return n.record(ctx, cur)
		}
		n.cfg.Logger.Warn("catalog webhook: the receiver did not take the event; retrying", "url", n.cfg.URL, "attempt", attempt, "retry_in", backoff, "error", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, n.cfg.MaxBackoff)
		if ok, err := n.cfg.Store.Acquire(ctx, n.cfg.Holder, lease); err != nil || !ok {
			return err // the lease went to another replica; it carries on
		}
		// A change made while the receiver was down goes out in the
		// same event: the receiver learns the latest state, once.
		if g, c := n.cfg.Current(); c != nil {
			cur = summarize(g, c)
		}
	}
}

func (n *Notifier) record(ctx context.Context, s summary) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := n.cfg.Store.SetDelivered(ctx, n.cfg.Holder, raw); err != nil {
		return err
	}
	n.seen = s.Fingerprint
	return nil
}

// deliver posts one event; only a 2xx counts.
func (n *Notifier) deliver(ctx context.Context, ev Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	ts := strconv.FormatInt(n.cfg.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderEvent, EventCatalogChanged)
	req.Header.Set(HeaderDelivery, randomID())
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(n.cfg.Secret, ts, body))
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// Sign returns the signature header value of body sent at timestamp ts:
// what a receiver recomputes, with hmac.Equal, to trust a delivery.
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
