package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/mysql"
	"github.com/agora-osb/agora/adapters/postgres"
	"github.com/agora-osb/agora/adapters/rabbitmq"
	redisadapter "github.com/agora-osb/agora/adapters/redis"
	"github.com/agora-osb/agora/adapters/secrets"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/broker/redisstore"
	"github.com/agora-osb/agora/broker/vaultstore"
	"github.com/agora-osb/agora/internal/devvault"
	"github.com/agora-osb/agora/internal/metrics"
)

type env struct {
	agoraURL, floorURL    string
	twinURL               string // a second floor, for -aa
	redisOpts             *redis.Options
	rdb                   *redis.Client
	broker                *broker.Broker
	cat                   *catalog.Catalog
	state                 *redisstore.Store
	creds                 *vaultstore.Store
	adapter               adapters.Adapter
	syncService, syncPlan string
	asyncPlan             string
	prefix                string
	client                *http.Client
	binds                 int // names each bind uniquely
	closers               []func()
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

const catalogYAML = `
producers:
  - name: bench
    contact: bench@example.com
    offerings:
      - name: bench-secrets
        description: Secrets for the benchmark.
        adapter: secrets
        config:
          vault_addr: %q
          token: %q
          path_prefix: agora-bench
        plans:
          - name: sync
            description: Sync plan.
          - name: async
            description: Async plan.
            async: true
`

func setUp(ctx context.Context, o options) (*env, error) {
	e := &env{prefix: fmt.Sprintf("agora-bench-%d", time.Now().UnixNano()), client: newClient(1)}
	cwd, _ := os.Getwd()
	root, err := devvault.FindRepoRoot(cwd)
	if err != nil {
		return nil, err
	}
	bin, err := devvault.EnsureBinary(ctx, root, os.Stderr)
	if err != nil {
		return nil, err
	}
	vault, err := devvault.Start(ctx, bin, devvault.Options{})
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { _ = vault.Stop() })

	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	if e.redisOpts, err = redis.ParseURL(url); err != nil {
		return nil, err
	}
	e.redisOpts.PoolSize = 64
	agoraRedis := *e.redisOpts
	agoraRedis.Protocol = o.protocol
	e.rdb = redis.NewClient(&agoraRedis)
	if err := e.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis at %s: %w", url, err)
	}
	e.closers = append(e.closers, func() {
		e.dropKeys(context.Background())
		e.rdb.Close()
	})

	reg, err := adapters.NewRegistry(secrets.Factory(), postgres.Factory(), mysql.Factory(), redisadapter.Factory(), rabbitmq.Factory())
	if err != nil {
		return nil, err
	}
	// The served catalog is the repository's (five producers' offerings,
	// with their schemas) plus the benchmark's own secrets offering on this
	// run's Vault: a realistic size for the catalog comparison. Adapters
	// do not connect when built, so the repository's vault: references
	// can resolve to placeholders.
	repo, err := catalog.ParseFile(filepath.Join(root, "catalog.yml"))
	if err != nil {
		return nil, err
	}
	file, err := catalog.Parse(fmt.Appendf(nil, catalogYAML, vault.Addr, vault.RootToken))
	if err != nil {
		return nil, err
	}
	placeholder := func(context.Context, string, string) (string, error) { return "placeholder", nil }
	e.cat, err = catalog.Build(ctx, catalog.BuildOptions{Registry: reg, Resolve: placeholder}, repo, file)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() { e.cat.Close() })
	var off *catalog.Offering
	for _, o := range e.cat.Offerings() {
		if o.Name == "bench-secrets" {
			off = o
		}
	}
	e.adapter, e.syncService = off.Adapter, off.ID
	for _, p := range off.Plans {
		if p.Async {
			e.asyncPlan = p.ID
		} else {
			e.syncPlan = p.ID
		}
	}

	// Agora as app.Run wires it: the metrics Observer on the HTTP edge and
	// the adapters, the metrics hook on Redis (unless -observer=off).
	var observer httpapi.Observer
	var adapterObserver broker.AdapterObserver
	if o.observer {
		m := metrics.New(metrics.Sources{Catalog: func() *catalog.Catalog { return e.cat }})
		e.rdb.AddHook(m.RedisHook())
		observer, adapterObserver = httpapi.Observers{m}, m
	}
	e.state = redisstore.New(e.rdb, e.prefix)
	queue := redisstore.NewQueue(e.rdb, redisstore.QueueOptions{Prefix: e.prefix})
	if e.creds, err = vaultstore.New(vaultstore.Config{Address: vault.Addr, Token: vault.RootToken, Prefix: e.prefix}); err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	if e.broker, err = broker.New(broker.Config{Catalog: e.cat, State: e.state, Credentials: e.creds, Jobs: queue, Logger: quiet, AdapterObserver: adapterObserver}); err != nil {
		return nil, err
	}
	workCtx, stopWorkers := context.WithCancel(ctx)
	workersDone := make(chan struct{})
	go func() {
		defer close(workersDone)
		e.broker.RunWorkers(workCtx, broker.WorkerConfig{Concurrency: 2})
	}()
	// Stop the workers and wait for them before Redis is closed under them.
	e.closers = append(e.closers, func() { stopWorkers(); <-workersDone })
	h, err := e.handler(e.broker, observer, o.chain)
	if err != nil {
		return nil, err
	}
	agora := httptest.NewServer(h)
	e.closers = append(e.closers, agora.Close)
	e.agoraURL = agora.URL

	// The floor gets a Redis client of its own, with the same options but
	// without Agora's metrics hook, speaking go-redis's default (RESP3)
	// whatever -redis-protocol says: the least a server must write.
	floorRedis := redis.NewClient(e.redisOpts)
	e.closers = append(e.closers, func() { floorRedis.Close() })
	floor := httptest.NewServer(newFloor(e.cat.JSON(), floorRedis, e.prefix))
	e.closers = append(e.closers, floor.Close)
	e.floorURL = floor.URL
	if o.aa {
		twin := httptest.NewServer(newFloor(e.cat.JSON(), floorRedis, e.prefix))
		e.closers = append(e.closers, twin.Close)
		e.twinURL = twin.URL
	}
	return e, nil
}

// handler is Agora's HTTP handler over b, wired as app.Run wires it.
// With chain, its polls go through brokerapi rather than the fast path.
func (e *env) handler(b *broker.Broker, observer httpapi.Observer, chain bool) (http.Handler, error) {
	var served domain.ServiceBroker = b
	if chain {
		served = chainOnly{b}
	}
	return httpapi.NewHandler(httpapi.Options{
		Broker: served, CatalogJSON: e.cat.SharedJSON, Logger: slog.New(slog.DiscardHandler),
		Credentials: []httpapi.Credential{{Username: user, Password: pass}},
		KnownPlan:   b.KnownPlan, InstancePlan: b.InstancePlan, Observer: observer,
	})
}

// chainOnly hides the broker's ready-made poll answers
// (httpapi.PollAnswerer), so polls go through brokerapi (-chain).
type chainOnly struct{ domain.ServiceBroker }

// dropKeys removes this run's keys, in batches (SCAN, never KEYS: the
// Redis may be shared).
func (e *env) dropKeys(ctx context.Context) {
	iter := e.rdb.Scan(ctx, 0, e.prefix+":*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			e.rdb.Del(ctx, batch...)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		e.rdb.Del(ctx, batch...)
	}
}

// asyncInstance provisions an instance on the async plan and waits for
// it, so last_operation has a finished operation to report.
func (e *env) asyncInstance(ctx context.Context) (string, string, error) {
	iid := "bench-lastop"
	spec, err := e.broker.Provision(ctx, iid, domain.ProvisionDetails{ServiceID: e.syncService, PlanID: e.asyncPlan}, true)
	if err != nil {
		return "", "", fmt.Errorf("provision for last_operation: %w", err)
	}
	for range 100 {
		lo, err := e.broker.LastOperation(ctx, iid, domain.PollDetails{OperationData: spec.OperationData})
		if err == nil && lo.State != domain.InProgress {
			return iid, spec.OperationData, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", "", errors.New("async provision did not finish")
}

// compareBind measures PUT bind through Agora against the same backend
// calls made directly: rounds of o.binds sequential pairs of binds, one
// of each, and the median of the rounds' ratios of the p50s.
func (e *env) compareBind(ctx context.Context, o options) (result, error) {
	if _, err := e.broker.Provision(ctx, "bench-bind", domain.ProvisionDetails{ServiceID: e.syncService, PlanID: e.syncPlan}, false); err != nil {
		return result{}, fmt.Errorf("provision for bind: %w", err)
	}
	// The direct binds' instance is provisioned by the broker too, so
	// that their lock-and-read returns the same records Agora's does,
	// and the adapter gets the receipt from them as the broker's bind
	// gets it.
	if _, err := e.broker.Provision(ctx, directInstance, domain.ProvisionDetails{ServiceID: e.syncService, PlanID: e.syncPlan}, false); err != nil {
		return result{}, fmt.Errorf("provision for the direct binds: %w", err)
	}
	if _, err := e.bindRound(ctx, o.binds, e.viaAgora); err != nil { // warm-up
		return result{}, err
	}
	if _, err := e.bindRound(ctx, o.binds, e.viaBackends); err != nil {
		return result{}, err
	}
	var ratios []float64
	for i := range o.rounds {
		a, d, err := e.pairedBindRound(ctx, o.binds)
		if err != nil {
			return result{}, err
		}
		ratios = append(ratios, a/d)
		fmt.Printf("  round %d/%d: Agora p50 %6.2f ms  direct p50 %6.2f ms  ratio %.3f\n", i+1, o.rounds, a, d, a/d)
	}
	r := result{name: "bind", ratio: median(ratios), goal: 1.10}
	fmt.Printf("  median of the per-round ratios %.3f, spread %.3f-%.3f\n\n", r.ratio, slices.Min(ratios), slices.Max(ratios))
	return r, nil
}

// pairedBindRound runs n binds through Agora and n made directly, in
// pairs (who goes first alternates), and returns each side's p50 in ms.
// Pairs a few milliseconds apart see the same machine: the Vault and
// Redis that both sides call grow, and other processes come and go, far
// more than over one bind, so whole runs of one side a second apart
// differed by more than Agora's share of a bind.
func (e *env) pairedBindRound(ctx context.Context, n int) (agora, direct float64, err error) {
	agoraMS, directMS := make([]float64, 0, n), make([]float64, 0, n)
	for i := range n {
		first, second := e.viaAgora, e.viaBackends
		firstMS, secondMS := &agoraMS, &directMS
		if i%2 == 1 {
			first, second, firstMS, secondMS = second, first, secondMS, firstMS
		}
		if err := timeBind(ctx, first, firstMS); err != nil {
			return 0, 0, err
		}
		if err := timeBind(ctx, second, secondMS); err != nil {
			return 0, 0, err
		}
	}
	return median(agoraMS), median(directMS), nil
}

// timeBind runs one bind and appends the ms it took to into.
func timeBind(ctx context.Context, bind func(context.Context) error, into *[]float64) error {
	start := time.Now()
	if err := bind(ctx); err != nil {
		return err
	}
	*into = append(*into, float64(time.Since(start).Microseconds())/1000)
	return nil
}

// bindRound runs n binds through bind and returns their p50 in ms.
func (e *env) bindRound(ctx context.Context, n int, bind func(context.Context) error) (float64, error) {
	lat := make([]float64, 0, n)
	for range n {
		if err := timeBind(ctx, bind, &lat); err != nil {
			return 0, err
		}
	}
	return median(lat), nil
}

func (e *env) viaAgora(ctx context.Context) error {
	e.binds++
	url := fmt.Sprintf("%s/v2/service_instances/bench-bind/service_bindings/a-%d", e.agoraURL, e.binds)
	return put(ctx, e.client, url, fmt.Sprintf(`{"service_id":%q,"plan_id":%q}`, e.syncService, e.syncPlan), http.StatusCreated)
}

// directInstance is the instance viaBackends binds.
const directInstance = "bench-direct"

// viaBackends is what one bind costs the backends, made by hand: the same
// Redis round trips as Agora's bind (lock and read, the marker, the
// outcome with the unlock, the counts) reading and writing the same
// records (the instance, whose receipt the adapter is given; the binding
// and its operation, in progress then succeeded), the adapter's bind and
// the Vault put.
func (e *env) viaBackends(ctx context.Context) error {
	const iid = directInstance
	e.binds++
	bid := "d-" + strconv.Itoa(e.binds)
	lock, snap, err := e.state.LockAndLoad(ctx, time.Minute, broker.LoadRequest{InstanceID: iid, BindingID: bid})
	if err != nil {
		return err
	}
	if snap.Instance == nil {
		return fmt.Errorf("direct bind: instance %s has no record", iid)
	}
	now := time.Now()
	op := &broker.Operation{
		ID: "op-" + bid, Kind: adapters.OpBind, InstanceID: iid, BindingID: bid, State: broker.OpInProgress,
		Fingerprint: "bench", PlanID: e.syncPlan, Deadline: now.Add(time.Minute), CreatedAt: now, UpdatedAt: now,
	}
	rec := &broker.Binding{
		ID: bid, InstanceID: iid, ServiceID: e.syncService, PlanID: e.syncPlan, Fingerprint: "bench",
		State: broker.BindingCreating, CreatedAt: now, UpdatedAt: now, LastOp: op.Summary(),
	}
	if err := e.state.Commit(ctx, broker.Mutation{InstanceID: iid, PutBinding: rec, PutOperation: op}, nil); err != nil {
		return err
	}
	res, err := e.adapter.Bind(ctx, adapters.BindRequest{InstanceID: iid, BindingID: bid, Plan: adapters.Plan{ID: e.syncPlan, Name: "sync"}, InstanceReceipt: snap.Instance.Receipt})
	if err != nil {
		return err
	}
	ref, err := e.creds.PutBinding(ctx, iid, bid, res.Credentials)
	if err != nil {
		return err
	}
	op.State, op.UpdatedAt = broker.OpSucceeded, time.Now()
	rec.State, rec.CredentialRef, rec.UpdatedAt, rec.LastOp = broker.BindingBound, ref, op.UpdatedAt, op.Summary()
	rec.Endpoints, rec.Receipt = res.Endpoints, res.Receipt
	if err := e.state.Commit(ctx, broker.Mutation{InstanceID: iid, PutBinding: rec, PutOperation: op}, &lock); err != nil {
		return err
	}
	return e.state.AddCounts(ctx, []broker.CountChange{{ServiceID: e.syncService, PlanID: e.syncPlan, Bindings: 1}})
}
