// Package app assembles a running Agora from its parts: the state store,
// the credential store, the catalog, the broker, its async workers and the
// HTTP server. Both `agora serve` and `agora dev` run through Run, so the
// development mode exercises exactly the production wiring.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/broker/redisstore"
	"github.com/agora-osb/agora/broker/vaultstore"
	"github.com/agora-osb/agora/internal/config"
)

// Options is what Run needs beyond the configuration.
type Options struct {
	Config  config.Config
	Catalog *catalog.Catalog
	Redis   redis.UniversalClient
	Logger  *slog.Logger
	// Listener, when set, is served instead of listening on Config.Listen.
	Listener net.Listener
	// Ready is called once the server accepts connections.
	Ready func(addr string)
}

// Run serves until ctx is cancelled, then shuts down gracefully: the HTTP
// server drains, the workers stop taking jobs (unfinished ones are taken
// over by another replica or after a restart).
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
	creds, err := vaultstore.New(vaultstore.Config{
		Address: cfg.Vault.Addr, Token: cfg.Vault.Token, Mount: cfg.Vault.Mount, Prefix: cfg.Vault.Prefix,
	})
	if err != nil {
		return err
	}
	state := redisstore.New(opts.Redis, cfg.Redis.Prefix)
	claimIdle := time.Duration(cfg.Workers.ClaimIdle)
	queue := redisstore.NewQueue(opts.Redis, redisstore.QueueOptions{Prefix: cfg.Redis.Prefix, ClaimIdle: claimIdle})
	b, err := broker.New(broker.Config{
		Catalog: opts.Catalog, State: state, Credentials: creds, Jobs: queue, Logger: log,
		SyncTimeout: time.Duration(cfg.SyncTimeout),
	})
	if err != nil {
		return err
	}
	checks := []httpapi.Check{
		{Name: "redis", Check: state.Ping, Required: true},
		{Name: "vault", Check: creds.Ping, Required: true},
	}
	for _, off := range opts.Catalog.Offerings() {
		if p, ok := off.Adapter.(adapters.Pinger); ok {
			checks = append(checks, httpapi.Check{Name: "adapter:" + off.Name, Check: p.Ping})
		}
	}
	creds4 := make([]httpapi.Credential, 0, len(cfg.Credentials))
	for _, c := range cfg.Credentials {
		creds4 = append(creds4, httpapi.Credential{Username: c.Username, Password: c.Password})
	}
	handler, err := httpapi.NewHandler(httpapi.Options{
		Broker:      b,
		CatalogJSON: func() []byte { return b.Catalog().JSON() },
		Credentials: creds4,
		Logger:      log,
		Checks:      checks,
	})
	if err != nil {
		return err
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
	}
	srv := httpapi.NewServer(ln.Addr().String(), handler)

	workCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		b.RunWorkers(workCtx, broker.WorkerConfig{Concurrency: cfg.Workers.Concurrency, Heartbeat: claimIdle / 3})
	})
	log.Info("agora serving", "addr", ln.Addr().String(), "offerings", len(opts.Catalog.Offerings()))
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}
	err = httpapi.Serve(ctx, srv, ln, time.Duration(cfg.ShutdownGrace))
	stopWorkers()
	wg.Wait()
	log.Info("agora stopped")
	return err
}

// RedisClient builds a go-redis UniversalClient: a single node from a URL,
// or Sentinel (MasterName) or Cluster (several Addrs).
func RedisClient(cfg config.Redis, extraConns int) (redis.UniversalClient, error) {
	if cfg.URL != "" && len(cfg.Addrs) == 0 {
		opt, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		// Each worker holds a connection in a blocking read.
		opt.PoolSize = max(opt.PoolSize, 10) + extraConns
		return redis.NewClient(opt), nil
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: cfg.Addrs, MasterName: cfg.MasterName, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB,
		PoolSize: 10 + extraConns,
	}), nil
}

// NewLogger returns the one slog logger everything shares.
func NewLogger(level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// VaultResolver resolves catalog references of the form
// vault:<mount>/<path>#<key> against KV v2 with Agora's own Vault client.
func VaultResolver(addr, token string) catalog.SecretResolver {
	return func(ctx context.Context, path, key string) (string, error) {
		client, err := vaultstore.NewClient(addr, token, 10*time.Second)
		if err != nil {
			return "", err
		}
		mount, rest, ok := strings.Cut(strings.Trim(path, "/"), "/")
		if !ok {
			return "", fmt.Errorf("vault reference %q: want <mount>/<path>", path)
		}
		rest = strings.TrimPrefix(rest, "data/")
		secret, err := client.KVv2(mount).Get(ctx, rest)
		if err != nil {
			return "", fmt.Errorf("vault at %s: read %s: %w", addr, path, err)
		}
		v, ok := secret.Data[key]
		if !ok {
			return "", fmt.Errorf("vault at %s: %s has no key %q", addr, path, key)
		}
		s, ok := v.(string)
		if !ok {
			return "", errors.New("vault reference " + path + "#" + key + " is not a string")
		}
		return s, nil
	}
}
