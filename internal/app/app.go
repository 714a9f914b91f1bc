// Package app assembles a running Agora from its parts: the state store,
// the credential store, the catalog, the broker, its async workers and the
// HTTP server. Both `agora serve` and `agora dev` run through Run, so the
// development mode exercises exactly the production wiring.
package app

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/catalognotify"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/broker/livecatalog"
	"github.com/agora-osb/agora/broker/redisstore"
	"github.com/agora-osb/agora/broker/requestinfo"
	"github.com/agora-osb/agora/broker/vaultstore"
	"github.com/agora-osb/agora/internal/audit"
	"github.com/agora-osb/agora/internal/config"
	"github.com/agora-osb/agora/internal/egress"
	"github.com/agora-osb/agora/internal/metrics"
	"github.com/agora-osb/agora/marketplace"
	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/canary"
	"github.com/agora-osb/agora/producers/producerapi"
)

// Options is what Run needs beyond the configuration.
type Options struct {
	Config  config.Config
	Catalog *catalog.Catalog
	// Redis and Vault are the process's one client each (RedisClient,
	// vaultstore.Connect): every store of the process shares them. Run
	// keeps Vault's token alive and makes readiness check it.
	Redis  redis.UniversalClient
	Vault  *vaultstore.Session
	Logger *slog.Logger
	// Listener, when set, is served instead of listening on Config.Listen.
	Listener net.Listener
	// Ready is called once the server accepts connections.
	Ready func(addr string)
	// Stdout receives the audit log when it is on and has no file (the
	// command's standard output; nil discards it).
	Stdout io.Writer
	// ExposeErrorDetails shows the full error chain to platforms in OSB
	// error descriptions: for `agora dev`, where the app developer and the
	// operator are the same person. Production keeps it for the log.
	ExposeErrorDetails bool
	// Producers turns on producer self-service: the /producers and
	// /admin routes, and the loop that rebuilds the catalog (Catalog's
	// sources plus every producer's live slice) whenever a slice goes
	// live on any replica. Nil serves Catalog as it is, for good.
	Producers *Producers
}

// Producers is what producer self-service needs from the binary.
type Producers struct {
	// Base are the parsed sources Catalog was built from (catalog.yml).
	Base []*catalog.File
	// Build are the options Catalog was built with. A nil Resolve means
	// Agora's own Vault (Options.Vault).
	Build catalog.BuildOptions
	// Gate runs the conformance kit against a producer's adapter; nil
	// refuses every slice (the gate is never skipped).
	Gate producers.Gate
	// PollInterval is how often each replica looks for a new catalog
	// generation (default 1s); Grace how long a replaced catalog's
	// adapters stay open for work that started on them (default 5m).
	PollInterval, Grace time.Duration
}

// Run serves until ctx is cancelled, then shuts down gracefully: the HTTP
// server drains, the workers stop taking jobs (unfinished ones are taken
// over by another replica or after a restart).
func Run(ctx context.Context, opts Options) error {
	cfg, log := opts.Config, opts.Logger
	creds, err := vaultstore.New(vaultstore.Config{Client: opts.Vault.Client(), Mount: cfg.Vault.Mount, Prefix: cfg.Vault.Prefix})
	if err != nil {
		return err
	}
	state := redisstore.New(opts.Redis, cfg.Redis.Prefix)
	claimIdle := time.Duration(cfg.Workers.ClaimIdle)
	queue := redisstore.NewQueue(opts.Redis, redisstore.QueueOptions{Prefix: cfg.Redis.Prefix, ClaimIdle: claimIdle})
	var b *broker.Broker
	canaryStore := redisstore.NewCanaryResults(opts.Redis, cfg.Redis.Prefix)
	sources := metrics.Sources{
		Catalog: func() *catalog.Catalog { return b.Catalog() },
		Counts:  planCounts[metrics.PlanCount](state),
		Queue:   queueDepth(queue),
		Checks:  map[string]func(context.Context) error{"redis": state.Ping, "vault": opts.Vault.Check},
	}
	if opts.Producers != nil && cfg.Gate.Canary.Interval > 0 {
		sources.Canary = canaryHealth(canaryStore)
	}
	m := metrics.New(sources)
	opts.Redis.AddHook(m.RedisHook())
	vaultstore.Observe(opts.Vault.Client(), func(method string, err error, took time.Duration) {
		m.StoreCalled("vault", strings.ToLower(method), err, took)
	})
	b, err = broker.New(broker.Config{
		Catalog: opts.Catalog, State: state, Credentials: creds, Jobs: queue, Logger: log,
		SyncTimeout:        time.Duration(cfg.SyncTimeout),
		ExposeErrorDetails: opts.ExposeErrorDetails,
		AdapterObserver:    m,
	})
	if err != nil {
		return err
	}
	checks := []httpapi.Check{
		{Name: "redis", Check: state.Ping, Required: true},
		// Vault answers, and Agora's token still works.
		{Name: "vault", Check: opts.Vault.Check, Required: true},
	}
	for _, off := range opts.Catalog.Offerings() {
		if _, ok := off.Adapter.(adapters.Pinger); ok {
			// Looked up per probe: the catalog may have been swapped, and
			// the adapters of the one that was replaced closed.
			name := off.Name
			checks = append(checks, httpapi.Check{Name: "adapter:" + name, Check: func(ctx context.Context) error {
				return pingOffering(ctx, b.Catalog(), name)
			}})
		}
	}
	credentials := make([]httpapi.Credential, 0, len(cfg.Credentials))
	for _, c := range cfg.Credentials {
		credentials = append(credentials, httpapi.Credential{Username: c.Username, Password: c.Password})
	}
	admins := httpapi.NewBasicAuth(credentials)
	var routes []httpapi.Route
	var loader *livecatalog.Loader
	var svc *producers.Service
	var canaryRunner *canary.Canary
	if opts.Producers != nil {
		api, l, s, err := producerSelfService(ctx, opts, b, state, admins, m, canaryStore)
		if err != nil {
			return err
		}
		routes, loader, svc = api.Routes(), l, s
		if iv := time.Duration(cfg.Gate.Canary.Interval); iv > 0 {
			canaryRunner, err = canary.New(canary.Config{
				Store: canaryStore, Source: svc, Gate: opts.Producers.Gate, Interval: iv,
				Observe: m.CanaryRun, Logger: log.With("component", "canary"),
			})
			if err != nil {
				return err
			}
		}
	}
	observers := httpapi.Observers{m}
	if cfg.Metrics.Enabled {
		routes = append(routes, metricsRoute(cfg.Metrics, m))
	}
	if cfg.Marketplace.Enabled {
		page, err := marketplacePage(cfg.Marketplace, b, state, svc, m, admins, canaryRunner != nil, canaryStore)
		if err != nil {
			return err
		}
		routes = append(routes, page.Routes()...)
	}
	if cfg.Audit.Enabled {
		sink, closeSink, err := auditSink(cfg.Audit, opts.Stdout)
		if err != nil {
			return err
		}
		defer closeSink()
		observers = append(observers, audit.New(sink, catalogNames(b)))
	}
	handler, err := httpapi.NewHandler(httpapi.Options{
		Broker:      b,
		CatalogJSON: func() []byte { return b.Catalog().SharedJSON() },
		Credentials: credentials,
		KnownPlan:   b.KnownPlan,
		Logger:      log,
		Observer:    observers,
		Checks:      checks,
		Routes:      routes,
		// Binding rotations may send predecessor_binding_id alone.
		InstancePlan: b.InstancePlan,
	})
	if err != nil {
		return err
	}
	lns, err := openListeners(cfg, opts.Listener, log)
	if err != nil {
		return err
	}

	workCtx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { opts.Vault.Run(workCtx) })
	wg.Go(func() { lns.runReloads(workCtx) })
	wg.Go(func() {
		b.RunWorkers(workCtx, broker.WorkerConfig{Concurrency: cfg.Workers.Concurrency, PerProducer: cfg.Workers.PerProducer, Observer: m})
	})
	if loader != nil {
		wg.Go(func() { loader.Run(workCtx) })
	}
	if canaryRunner != nil {
		wg.Go(func() { canaryRunner.Run(workCtx) })
	}
	if cfg.CatalogWebhook.URL != "" {
		notifier, err := catalogNotifier(cfg, opts.Redis, b, loader, log)
		if err != nil {
			stopWorkers()
			wg.Wait()
			lns.close()
			return err
		}
		wg.Go(func() { notifier.Run(workCtx) })
	}
	log.Info("agora serving", append(lns.describe(), "offerings", len(opts.Catalog.Offerings()),
		"redis", RedisDescription(cfg.Redis), "redis_prefix", cfg.Redis.Prefix, "vault", cfg.Vault.Addr, "vault_auth", opts.Vault.Describe())...)
	if opts.Ready != nil {
		opts.Ready(lns.main.Addr().String())
	}
	err = lns.serve(ctx, handler, time.Duration(cfg.ShutdownGrace), log)
	stopWorkers()
	wg.Wait()
	log.Info("agora stopped")
	return err
}

// catalogNotifier announces catalog changes to the configured webhook.
// Without producer self-service the catalog is catalog.yml alone, and a
// change of it (a new release) is announced as generation 0.
func catalogNotifier(cfg config.Config, rdb redis.UniversalClient, b *broker.Broker, loader *livecatalog.Loader, log *slog.Logger) (*catalognotify.Notifier, error) {
	current := func() (int64, *catalog.Catalog) { return 0, b.Catalog() }
	if loader != nil {
		current = loader.Current
	}
	return catalognotify.New(catalognotify.Config{
		URL: cfg.CatalogWebhook.URL, Secret: cfg.CatalogWebhook.Secret,
		Store:   redisstore.NewCatalogNotices(rdb, cfg.Redis.Prefix),
		Current: current,
		Client:  &http.Client{Timeout: cmp.Or(time.Duration(cfg.CatalogWebhook.Timeout), 10*time.Second)},
		Logger:  log,
	})
}

// metricsRoute serves GET /metrics, behind basic auth of its own when
// configured.
func metricsRoute(cfg config.Metrics, m *metrics.Metrics) httpapi.Route {
	rt := httpapi.Route{Surface: requestinfo.SurfaceMetrics, Endpoint: "metrics", Method: http.MethodGet, Path: "/metrics", Handler: m.Handler()}
	if cfg.Username != "" {
		auth := httpapi.NewBasicAuth([]httpapi.Credential{{Username: cfg.Username, Password: cfg.Password}})
		rt.Auth = httpapi.RequireBasic(auth, requestinfo.PrincipalPlatform, "agora-metrics", "metrics credentials")
	}
	return rt
}

// marketplacePage wires GET /marketplace: the catalog in force, the
// admin's and the read-only credential, producer tokens when producer
// self-service is on (svc), the plans' counts, the adapters' recent
// calls, and the canary's verdicts when a canary runs.
func marketplacePage(cfg config.Marketplace, b *broker.Broker, state *redisstore.Store, svc *producers.Service, m *metrics.Metrics, admins *httpapi.BasicAuth, canaryRuns bool, results *redisstore.CanaryResults) (*marketplace.Page, error) {
	opts := marketplace.Options{
		Catalog: b.Catalog,
		Admins:  admins,
		Counts:  planCounts[marketplace.PlanCount](state),
		Calls:   recentCalls{m},
	}
	if canaryRuns {
		opts.Canary = marketplaceCanary{results}
	}
	if cfg.Username != "" {
		opts.Viewers = httpapi.NewBasicAuth([]httpapi.Credential{{Username: cfg.Username, Password: cfg.Password}})
	}
	if svc != nil {
		opts.Producers = svc
	}
	return marketplace.New(opts)
}

// marketplaceCanary gives the marketplace the canary's latest verdicts.
type marketplaceCanary struct{ results *redisstore.CanaryResults }

func (c marketplaceCanary) LastResults(ctx context.Context) (map[string]marketplace.CanaryResult, error) {
	all, err := c.results.Results(ctx)
	out := make(map[string]marketplace.CanaryResult, len(all))
	for id, r := range all {
		out[id] = marketplace.CanaryResult{At: r.At, Passed: r.Passed, Summary: r.Summary}
	}
	return out, err
}

// canaryHealth gives the metrics the canary's latest verdicts.
func canaryHealth(results *redisstore.CanaryResults) func(context.Context) ([]metrics.CanaryHealth, error) {
	return func(ctx context.Context) ([]metrics.CanaryHealth, error) {
		all, err := results.Results(ctx)
		out := make([]metrics.CanaryHealth, 0, len(all))
		for _, r := range all {
			out = append(out, metrics.CanaryHealth{Producer: r.Producer, Offering: r.Offering, Passed: r.Passed, LastSuccess: r.LastSuccess})
		}
		return out, err
	}
}

// recentCalls gives the marketplace the metrics' window of adapter calls.
type recentCalls struct{ m *metrics.Metrics }

func (r recentCalls) Recent(producer, offering string) (calls, faults int64) {
	c := r.m.RecentAdapterCalls(producer, offering)
	return c.Calls, c.Faults
}

func (r recentCalls) Window() time.Duration { return r.m.RecentWindow() }

// planCount is the shape both readers of the plans' counts (metrics, the
// marketplace) declare, each in its own package.
type planCount interface {
	~struct {
		ServiceID, PlanID   string
		Instances, Bindings int64
	}
}

// planCounts and queueDepth read what a scrape (or the marketplace)
// shows from Redis.
func planCounts[T planCount](state *redisstore.Store) func(context.Context) ([]T, error) {
	return func(ctx context.Context) ([]T, error) {
		counts, err := state.Counts(ctx)
		out := make([]T, len(counts))
		for i, c := range counts {
			out[i] = T(c)
		}
		return out, err
	}
}

func queueDepth(queue *redisstore.Queue) func(context.Context) (metrics.QueueDepth, error) {
	return func(ctx context.Context) (metrics.QueueDepth, error) {
		d, err := queue.Depth(ctx)
		return metrics.QueueDepth(d), err
	}
}

// auditSink opens where the audit log goes: its file (appended to,
// readable by its owner only), or stdout.
func auditSink(cfg config.Audit, stdout io.Writer) (io.Writer, func(), error) {
	if cfg.File == "" {
		if stdout == nil {
			stdout = io.Discard
		}
		return stdout, func() {}, nil
	}
	f, err := os.OpenFile(cfg.File, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit.file: %w", err)
	}
	return f, func() { _ = f.Close() }, nil
}

// catalogNames gives the audit log the catalog's names for service and
// plan IDs, from the catalog in force.
func catalogNames(b *broker.Broker) audit.Names {
	return func(serviceID, planID string) (string, string, string, bool) {
		cat := b.Catalog()
		if off, plan, ok := cat.Plan(serviceID, planID); ok {
			return off.Name, plan.Name, off.Producer, true
		}
		if off, ok := cat.Offering(serviceID); ok {
			return off.Name, "", off.Producer, true
		}
		return "", "", "", false
	}
}

// producerSelfService wires the producer service and its HTTP API, and
// builds the live catalog once before serving, so a replica starts with
// every producer's live slice. If that build fails (Vault down, say) the
// replica serves Catalog and the loader keeps retrying, loudly.
func producerSelfService(ctx context.Context, opts Options, b *broker.Broker, state *redisstore.Store, admins *httpapi.BasicAuth,
	m *metrics.Metrics, canaryStore *redisstore.CanaryResults) (*producerapi.API, *livecatalog.Loader, *producers.Service, error) {
	cfg, log, p := opts.Config, opts.Logger, opts.Producers
	policy, err := egressPolicy(ctx, cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	var health func(context.Context) (map[string]producers.CanaryResult, error)
	if cfg.Gate.Canary.Interval > 0 {
		health = canaryStore.Results
	}
	build := p.Build
	if build.Resolve == nil {
		build.Resolve = vaultstore.Resolver(opts.Vault.Client())
	}
	if build.Logger == nil {
		build.Logger = log
	}
	imports := catalog.NewImportCache(build.Import)
	svc, err := producers.New(producers.Config{
		Store: redisstore.NewProducerStore(opts.Redis, cfg.Redis.Prefix), Base: p.Base, Build: build,
		Secrets: vaultstore.NewProducerSecrets(opts.Vault.Client(), cfg.Vault.Mount, cfg.Vault.Prefix), Gate: p.Gate,
		Instances: state, Catalog: b.Catalog, Logger: log, Imports: imports,
		Egress: policy.CheckURL, Dial: policy.DialContext, AllowUnverifiedTypes: cfg.Gate.AllowUnverifiedTypes,
		OnGate: m.GateRun, Health: health,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	loader := livecatalog.New(livecatalog.Config{
		Sources: svc, Target: b, Build: build, Imports: imports, Interval: p.PollInterval, Grace: p.Grace, Logger: log,
	})
	if err := loader.Reload(ctx); err != nil {
		log.Error("serving catalog.yml alone until the producers' live slices build; retrying in the background", "error", err)
	}
	api, err := producerapi.New(producerapi.Options{Service: svc, Admins: admins, Loader: loader, Repairs: b, Upgrades: b})
	if err != nil {
		return nil, nil, nil, err
	}
	return api, loader, svc, nil
}

// egressPolicy is where the gate and the canary may connect: the
// configured allow-list, never Agora's own Redis and Vault.
func egressPolicy(ctx context.Context, cfg config.Config) (*egress.Policy, error) {
	var own []egress.Endpoint
	if u, err := url.Parse(cfg.Redis.URL); err == nil && u.Host != "" {
		own = append(own, egress.Endpoint{Name: "Agora's Redis", HostPort: withPort(u.Host, "6379")})
	}
	for _, a := range cfg.Redis.Addrs {
		own = append(own, egress.Endpoint{Name: "Agora's Redis", HostPort: withPort(a, "6379")})
	}
	if u, err := url.Parse(cfg.Vault.Addr); err == nil && u.Host != "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		own = append(own, egress.Endpoint{Name: "Agora's Vault", HostPort: withPort(u.Host, port)})
	}
	return egress.New(ctx, egress.Config{Allow: cfg.Gate.Egress.Allow, Own: own})
}

// withPort adds port to a host that has none.
func withPort(host, port string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}

// pingOffering pings the adapter of the named offering in cat.
func pingOffering(ctx context.Context, cat *catalog.Catalog, name string) error {
	for _, off := range cat.Offerings() {
		if off.Name == name {
			if p, ok := off.Adapter.(adapters.Pinger); ok {
				return p.Ping(ctx)
			}
			return nil
		}
	}
	return fmt.Errorf("offering %q is no longer in the catalog", name)
}

// RedisClient builds a go-redis UniversalClient: a single node from a URL,
// or Sentinel (MasterName) or Cluster (several Addrs). It speaks RESP2
// unless cfg.Protocol (or the URL's ?protocol=) asks for 3.
func RedisClient(cfg config.Redis, extraConns int) (redis.UniversalClient, error) {
	protocol := cfg.Protocol
	if protocol == 0 {
		protocol = 2
	}
	if cfg.URL != "" && len(cfg.Addrs) == 0 {
		opt, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		if opt.Protocol == 0 { // the URL did not say
			opt.Protocol = protocol
		}
		// Each worker holds a connection in a blocking read.
		opt.PoolSize = max(opt.PoolSize, 10) + extraConns
		return redis.NewClient(opt), nil
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: cfg.Addrs, MasterName: cfg.MasterName, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB,
		Protocol: protocol, PoolSize: 10 + extraConns,
	}), nil
}

// RedisDescription names the Redis Agora uses, for the startup line and
// error messages: addresses and the mode, never a password.
func RedisDescription(cfg config.Redis) string {
	switch {
	case cfg.URL != "" && len(cfg.Addrs) == 0:
		opt, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return "an unparsable URL"
		}
		return fmt.Sprintf("%s db %d", opt.Addr, opt.DB)
	case cfg.MasterName != "":
		return fmt.Sprintf("sentinel %s master %q", strings.Join(cfg.Addrs, ","), cfg.MasterName)
	case len(cfg.Addrs) > 1:
		return "cluster " + strings.Join(cfg.Addrs, ",")
	}
	return strings.Join(cfg.Addrs, ",")
}

// NewLogger returns the one slog logger everything shares.
//
// Keys are snake_case everywhere. Durations are written as Go duration
// strings ("1.5s") in both formats: slog's JSON handler would write
// nanoseconds, which nobody reads right.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: humanDurations}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func humanDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}
