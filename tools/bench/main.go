// Command bench measures Agora against baselines taken in the same run on
// the same machine, and prints three ratios (see the README, "Benchmarks"):
//
//  1. GET /v2/catalog requests/s: Agora's full HTTP stack against a minimal
//     brokerapi handler serving the same catalog from memory (goal >= 1.0).
//  2. last_operation requests/s against raw Redis GET round trips at the
//     same concurrency (goal >= 0.5).
//  3. bind p50 latency against the sum of its backend calls made directly:
//     the secrets adapter's Bind, the Vault put and the same Redis writes
//     (goal <= 1.15).
//
// It needs the real Redis at 127.0.0.1:6379 (REDIS_URL overrides) and
// builds or reuses the dev Vault. Rounds alternate between subject and
// baseline and the median is reported, because this machine is noisy.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pivotal-cf/brokerapi/v11"
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
)

type options struct {
	rounds      int
	duration    time.Duration
	concurrency int
	binds       int
	cpuProfile  string
}

func main() {
	var o options
	flag.IntVar(&o.rounds, "rounds", 5, "alternating rounds per comparison (median is reported)")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "length of one throughput round")
	flag.IntVar(&o.concurrency, "c", 16, "concurrent clients for the throughput comparisons")
	flag.IntVar(&o.binds, "binds", 40, "binds per round for the latency comparison")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the last_operation rounds to this file")
	flag.Parse()
	o.cpuProfile = *cpuProfile
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const (
	user, pass = "bench", "bench-password"
	apiVersion = "2.15"
)

func run(ctx context.Context, o options) error {
	env, err := setUp(ctx)
	if err != nil {
		return err
	}
	defer env.close()
	fmt.Printf("bench: %d rounds, %s per throughput round, concurrency %d, %d binds per round\n\n", o.rounds, o.duration, o.concurrency, o.binds)

	catAgora, catBase := compare(ctx, o,
		func(c *http.Client) error { return get(c, env.agoraURL+"/v2/catalog") },
		func(c *http.Client) error { return get(c, env.baselineURL+"/v2/catalog") })
	report("GET /v2/catalog req/s", "Agora", catAgora, "minimal brokerapi handler", catBase, 1.0, true)

	iid, opID, err := env.asyncInstance(ctx)
	if err != nil {
		return err
	}
	lastOp := fmt.Sprintf("%s/v2/service_instances/%s/last_operation?operation=%s", env.agoraURL, iid, opID)
	redisKey := "bench:{x}:instance"
	env.rdb.Set(ctx, redisKey, strings.Repeat("x", 400), time.Hour)
	redisGet := func(*http.Client) error { return env.rdb.Get(ctx, redisKey).Err() }
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
		path := strings.TrimPrefix(lastOp, env.agoraURL)
		throughput(ctx, o, func(*http.Client) error { return serveInProcess(env.handler, path) })
		pprof.StopCPUProfile()
		f.Close()
	}
	loA, loB := compare(ctx, o, func(c *http.Client) error { return get(c, lastOp) }, redisGet)
	report("last_operation req/s, over loopback HTTP", "Agora (HTTP client -> server -> Redis)", loA, "raw Redis GET", loB, 0.5, true)

	// The same request handed straight to Agora's handler: this isolates
	// what Agora adds (routing, auth, the Redis read, JSON) from the cost
	// of the benchmark's own HTTP client, which the Redis baseline has no
	// counterpart of.
	lastOpPath := strings.TrimPrefix(lastOp, env.agoraURL)
	inA, inB := compare(ctx, o, func(*http.Client) error { return serveInProcess(env.handler, lastOpPath) }, redisGet)
	report("last_operation req/s, handler in process", "Agora handler (ServeHTTP -> Redis)", inA, "raw Redis GET", inB, 0.5, true)

	bA, bB, err := env.compareBind(ctx, o)
	if err != nil {
		return err
	}
	report("bind p50 latency (ms)", "Agora PUT bind", bA, "adapter bind + Vault put + Redis writes", bB, 1.15, false)
	return nil
}

// report prints both medians, their ratio and whether it meets the goal
// (at least goal when higher is better, at most goal otherwise).
func report(what, subject string, a []float64, base string, b []float64, goal float64, higherBetter bool) {
	ma, mb := median(a), median(b)
	ratio := ma / mb
	cmp, met := "<=", ratio <= goal
	if higherBetter {
		cmp, met = ">=", ratio >= goal
	}
	verdict := "met"
	if !met {
		verdict = "NOT met"
	}
	fmt.Printf("%s\n  %-42s median %10.2f  rounds %s\n  %-42s median %10.2f  rounds %s\n  ratio %.3f (goal %s %.2f: %s)\n\n",
		what, subject, ma, fmtRounds(a), base, mb, fmtRounds(b), ratio, cmp, goal, verdict)
}

func fmtRounds(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func newClient(conc int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conc * 2
	tr.MaxConnsPerHost = conc * 2
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func get(c *http.Client, url string) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth(user, pass)
	req.Header.Set("X-Broker-API-Version", apiVersion)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// throughput runs fn from o.concurrency goroutines for o.duration and
// returns completed calls per second.
func throughput(ctx context.Context, o options, fn func(*http.Client) error) float64 {
	client := newClient(o.concurrency)
	var n, failed atomic.Int64
	deadline := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := fn(client); err != nil {
					failed.Add(1)
					continue
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		fmt.Fprintf(os.Stderr, "bench: %d failed calls\n", f)
	}
	return float64(n.Load()) / o.duration.Seconds()
}

// compare alternates rounds of subject and baseline after a short
// warm-up, so that drift on a noisy machine hits both alike.
func compare(ctx context.Context, o options, subject, baseline func(*http.Client) error) (a, b []float64) {
	_ = throughput(ctx, options{concurrency: o.concurrency, duration: o.duration / 4}, subject)
	for range o.rounds {
		a = append(a, throughput(ctx, o, subject))
		b = append(b, throughput(ctx, o, baseline))
	}
	return a, b
}

type env struct {
	agoraURL, baselineURL string
	handler               http.Handler
	rdb                   *redis.Client
	broker                *broker.Broker
	cat                   *catalog.Catalog
	state                 *redisstore.Store
	creds                 *vaultstore.Store
	adapter               adapters.Adapter
	syncService, syncPlan string
	asyncPlan             string
	prefix                string
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

func setUp(ctx context.Context) (*env, error) {
	e := &env{prefix: fmt.Sprintf("agora-bench-%d", time.Now().UnixNano())}
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
	ropt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	ropt.PoolSize = 64
	e.rdb = redis.NewClient(ropt)
	if err := e.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis at %s: %w", url, err)
	}
	e.closers = append(e.closers, func() {
		keys, _ := e.rdb.Keys(context.Background(), e.prefix+":*").Result()
		keys = append(keys, "bench:{x}:instance")
		e.rdb.Del(context.Background(), keys...)
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
	file, err := catalog.Parse([]byte(fmt.Sprintf(catalogYAML, vault.Addr, vault.RootToken)))
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

	e.state = redisstore.New(e.rdb, e.prefix)
	queue := redisstore.NewQueue(e.rdb, redisstore.QueueOptions{Prefix: e.prefix})
	if e.creds, err = vaultstore.New(vaultstore.Config{Address: vault.Addr, Token: vault.RootToken, Prefix: e.prefix}); err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	if e.broker, err = broker.New(broker.Config{Catalog: e.cat, State: e.state, Credentials: e.creds, Jobs: queue, Logger: quiet}); err != nil {
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
	h, err := httpapi.NewHandler(httpapi.Options{
		Broker: e.broker, CatalogJSON: e.cat.JSON, Logger: quiet,
		Credentials: []httpapi.Credential{{Username: user, Password: pass}},
	})
	if err != nil {
		return nil, err
	}
	e.handler = h
	agora := httptest.NewServer(h)
	e.closers = append(e.closers, agora.Close)
	e.agoraURL = agora.URL

	// The baseline: brokerapi's own handler, catalog from memory, same auth.
	base := httptest.NewServer(brokerapi.New(staticCatalog{services: e.cat.Services()}, quiet, brokerapi.BrokerCredentials{Username: user, Password: pass}))
	e.closers = append(e.closers, base.Close)
	e.baselineURL = base.URL
	return e, nil
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
	return "", "", fmt.Errorf("async provision did not finish")
}

// compareBind measures PUT bind through Agora against the same backend
// calls made directly, in alternating rounds of o.binds sequential binds.
func (e *env) compareBind(ctx context.Context, o options) (agora, direct []float64, err error) {
	iid := "bench-bind"
	if _, err := e.broker.Provision(ctx, iid, domain.ProvisionDetails{ServiceID: e.syncService, PlanID: e.syncPlan}, false); err != nil {
		return nil, nil, fmt.Errorf("provision for bind: %w", err)
	}
	client := newClient(1)
	plan := adapters.Plan{ID: e.syncPlan, Name: "sync"}
	body := fmt.Sprintf(`{"service_id":%q,"plan_id":%q}`, e.syncService, e.syncPlan)
	n := 0
	viaAgora := func() error {
		n++
		url := fmt.Sprintf("%s/v2/service_instances/%s/service_bindings/a-%d", e.agoraURL, iid, n)
		req, _ := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
		req.SetBasicAuth(user, pass)
		req.Header.Set("X-Broker-API-Version", apiVersion)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("bind: %s", resp.Status)
		}
		return nil
	}
	// The direct path: what one bind costs the backends, made by hand.
	directIID := "bench-direct"
	if _, err := e.adapter.Provision(ctx, adapters.ProvisionRequest{InstanceID: directIID, Plan: plan}); err != nil {
		return nil, nil, err
	}
	viaBackends := func() error {
		n++
		bid := fmt.Sprintf("d-%d", n)
		lock, _, err := e.state.LockAndLoad(ctx, time.Minute, broker.LoadRequest{InstanceID: directIID, BindingID: bid})
		if err != nil {
			return err
		}
		rec := &broker.Binding{ID: bid, InstanceID: directIID, State: broker.BindingCreating}
		if err := e.state.Commit(ctx, broker.Mutation{InstanceID: directIID, PutBinding: rec}, nil); err != nil {
			return err
		}
		res, err := e.adapter.Bind(ctx, adapters.BindRequest{InstanceID: directIID, BindingID: bid, Plan: plan})
		if err != nil {
			return err
		}
		ref, err := e.creds.PutBinding(ctx, directIID, bid, res.Credentials)
		if err != nil {
			return err
		}
		rec.State, rec.CredentialRef = broker.BindingBound, ref
		return e.state.Commit(ctx, broker.Mutation{InstanceID: directIID, PutBinding: rec}, &lock)
	}
	p50 := func(fn func() error) (float64, error) {
		lat := make([]float64, 0, o.binds)
		for range o.binds {
			start := time.Now()
			if err := fn(); err != nil {
				return 0, err
			}
			lat = append(lat, float64(time.Since(start).Microseconds())/1000)
		}
		return median(lat), nil
	}
	if _, err := p50(viaAgora); err != nil { // warm-up
		return nil, nil, err
	}
	for range o.rounds {
		a, err := p50(viaAgora)
		if err != nil {
			return nil, nil, err
		}
		d, err := p50(viaBackends)
		if err != nil {
			return nil, nil, err
		}
		agora, direct = append(agora, a), append(direct, d)
	}
	return agora, direct, nil
}

func serveInProcess(h http.Handler, path string) error {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.SetBasicAuth(user, pass)
	req.Header.Set("X-Broker-API-Version", apiVersion)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, rec.Code)
	}
	return nil
}

// staticCatalog is the baseline broker: it serves the catalog from memory
// and does nothing else.
type staticCatalog struct {
	domain.ServiceBroker
	services []domain.Service
}

func (s staticCatalog) Services(context.Context) ([]domain.Service, error) { return s.services, nil }
