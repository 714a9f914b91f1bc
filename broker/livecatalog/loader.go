// Package livecatalog keeps every replica's catalog current: the live
// catalog is the static sources (catalog.yml) plus every producer's live
// slice, built with catalog.Build and swapped into the broker. Each
// replica polls a generation counter in Redis (bumped whenever a live
// slice changes) and rebuilds when it moves, so a change reaches every
// replica within a poll interval, without a restart.
//
// What this package must never do: serve a half-built catalog, or drop
// the one in force because a rebuild failed. A failed rebuild (Vault
// down, say) is logged loudly and retried; the previous catalog stays.
package livecatalog

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/agora-osb/agora/broker/catalog"
)

// Sources says what the live catalog is and when it changed
// (producers.Service and producers.Store between them).
type Sources interface {
	// Generation moves whenever LiveFiles would return something new.
	Generation(ctx context.Context) (int64, error)
	// LiveFiles returns every source of the live catalog, in order.
	LiveFiles(ctx context.Context) ([]*catalog.File, error)
}

// Target is where a built catalog goes (*broker.Broker).
type Target interface {
	SetCatalog(*catalog.Catalog)
	Catalog() *catalog.Catalog
}

// Config wires a Loader.
type Config struct {
	Sources Sources
	Target  Target
	// Build are the build options every replica shares (registry, Vault
	// resolver, importer, logger).
	Build catalog.BuildOptions
	// Imports, when set, replaces Build.Import with its importer for the
	// generation being built, so one generation imports each upstream
	// broker once.
	Imports *catalog.ImportCache
	// Interval is how often the generation is polled (default 1s).
	Interval time.Duration
	// Grace is how long a replaced catalog stays open for the requests and
	// async jobs that still use its adapters (default 5m).
	Grace time.Duration
	// RetryAfter is the first wait before retrying a failed rebuild; it
	// doubles up to a minute (default 5s).
	RetryAfter time.Duration
	Logger     *slog.Logger
}

// Loader rebuilds and swaps the catalog when the generation moves.
type Loader struct {
	cfg Config

	mu         sync.Mutex
	generation int64 // of the catalog in force; -1 before the first build
	lastErr    error
	lastTry    time.Time
	backoff    time.Duration
}

// New returns a Loader; call Reload once at startup, then Run.
func New(cfg Config) *Loader {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Minute
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Loader{cfg: cfg, generation: -1, backoff: cfg.RetryAfter}
}

// Status is what a replica serves: the generation of its catalog, and the
// last rebuild error while rebuilds fail.
type Status struct {
	Generation int64  `json:"generation"`
	LastError  string `json:"last_error,omitempty"`
}

// Status reports the catalog in force.
func (l *Loader) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Status{Generation: l.generation}
	if l.lastErr != nil {
		s.LastError = l.lastErr.Error()
	}
	return s
}

// Current returns the catalog in force and its generation, consistently:
// a rebuild swaps both under the same lock.
func (l *Loader) Current() (int64, *catalog.Catalog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.generation, l.cfg.Target.Catalog()
}

// Reload builds the live catalog now and swaps it in. On error the
// catalog in force stays, and the error is returned (and logged).
func (l *Loader) Reload(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reload(ctx)
}

func (l *Loader) reload(ctx context.Context) error {
	l.lastTry = time.Now()
	// The generation is read before the sources: a change in between is
	// then built now and built again on the next poll, never missed.
	gen, err := l.cfg.Sources.Generation(ctx)
	if err == nil {
		var files []*catalog.File
		if files, err = l.cfg.Sources.LiveFiles(ctx); err == nil {
			var cat *catalog.Catalog
			if cat, err = catalog.Build(ctx, l.buildOptions(gen), files...); err == nil {
				l.swap(cat)
				if l.lastErr != nil {
					l.cfg.Logger.Info("catalog rebuild works again", "generation", gen)
				}
				l.generation, l.lastErr, l.backoff = gen, nil, l.cfg.RetryAfter
				l.cfg.Logger.Info("catalog reloaded", "generation", gen, "offerings", len(cat.Offerings()))
				return nil
			}
		}
	}
	if ctx.Err() != nil {
		return err
	}
	l.lastErr = err
	l.cfg.Logger.Error("CATALOG REBUILD FAILED: still serving the previous catalog; producers' latest changes are NOT live on this replica",
		"serving_generation", l.generation, "wanted_generation", gen, "retry_in", l.backoff, "error", err)
	return err
}

// buildOptions builds only what changed: the catalog in force lends the
// new one every adapter whose config is the same.
func (l *Loader) buildOptions(gen int64) catalog.BuildOptions {
	opts := l.cfg.Build
	opts.Previous = l.cfg.Target.Catalog()
	if l.cfg.Imports != nil {
		opts.Import = l.cfg.Imports.For(gen)
	}
	return opts
}

// swap puts cat in force and closes the one it replaces after the grace
// period, when the requests and jobs that started on it are done.
func (l *Loader) swap(cat *catalog.Catalog) {
	old := l.cfg.Target.Catalog()
	l.cfg.Target.SetCatalog(cat)
	if old != nil && old != cat {
		time.AfterFunc(l.cfg.Grace, func() {
			if err := old.Close(); err != nil {
				l.cfg.Logger.Warn("closing the adapters of a replaced catalog", "error", err)
			}
		})
	}
}

// Run polls the generation until ctx ends and rebuilds when it moved, or
// when the last rebuild failed and its backoff has passed.
func (l *Loader) Run(ctx context.Context) {
	t := time.NewTicker(l.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.poll(ctx)
	}
}

func (l *Loader) poll(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	gen, err := l.cfg.Sources.Generation(ctx)
	if err != nil {
		if ctx.Err() == nil {
			l.cfg.Logger.Warn("cannot read the catalog generation (Redis); keeping the catalog in force", "error", err)
		}
		return
	}
	if l.lastErr != nil {
		if time.Since(l.lastTry) < l.backoff {
			return
		}
		l.backoff = min(2*l.backoff, time.Minute)
	} else if gen == l.generation {
		return
	}
	_ = l.reload(ctx)
}
