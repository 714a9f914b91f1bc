package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/broker/redisstore"
)

// IDs from testdata/catalog.yml.
const (
	serviceID     = "svc-store"
	planSync      = "plan-sync"
	planSyncLarge = "plan-sync-large"
	planFixed     = "plan-fixed"
	planAsync     = "plan-async"
	planSchema    = "plan-schema"
	// Binding rotation, parameters withheld, endpoints left out.
	planRotatable      = "plan-rotatable"
	planRotatableAsync = "plan-rotatable-async"
	planSensitive      = "plan-sensitive"
	bareServiceID      = "svc-bare"
	planBare           = "plan-bare"
	// A second producer's offering (other-team), on the same fake adapter.
	otherServiceID = "svc-other"
	planOtherAsync = "plan-other-async"

	prefix      = "agora"
	apiVersion  = "2.15" // what Cloud Foundry sends
	brokerUser  = "cc"
	brokerPass  = "broker-pass"
	claimIdle   = 200 * time.Millisecond
	waitTimeout = 5 * time.Second
)

// ---------------------------------------------------------------------------
// Fake adapter

// call is one adapter call the fake observed.
type call struct {
	Kind       adapters.OperationKind
	InstanceID string
	BindingID  string
	Plan       string
	Previous   string // update: the previous plan ID
	RequestID  string
	// Parameters and Predecessor as the adapter got them (bind).
	Parameters  map[string]any
	Predecessor *adapters.Predecessor
	// Maintenance as the adapter got it (provision, update).
	Maintenance adapters.Maintenance
}

// gate holds calls of one kind (of one instance, when instance is set)
// inside the adapter until released, so a test can act while the broker
// is mid-operation.
type gate struct {
	instance string
	entered  chan struct{}
	release  chan struct{}
	once     sync.Once
}

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// fakeAdapter implements adapters.Adapter, Updater and Poller. Behaviour per
// operation kind is switchable: queued errors (one per call), an error for
// every call, a gate, and pending results settled through Poll.
type fakeAdapter struct {
	mu       sync.Mutex
	calls    []call
	next     map[adapters.OperationKind][]error
	always   map[adapters.OperationKind]error
	gates    map[adapters.OperationKind]*gate
	pending  map[adapters.OperationKind]bool
	pollWith []adapters.PollResult // consumed one per Poll; then Succeeded
	polls    int
	// running counts calls in progress per instance; overlap records the
	// most ever seen at once for one instance, and cancelled the calls
	// that ended because their context did.
	running   map[string]int
	overlap   int
	cancelled int
	// backend is what Inspect reports: instance ID -> it exists; an
	// instance missing from it is reported gone. inspectErr fails Inspect.
	backend    map[string]bool
	inspectErr error
	// bindTimes, when set, gives each bind result its expires_at and
	// renew_before.
	bindTimes func() (expires, renew time.Time)
}

func newFakeAdapter() *fakeAdapter {
	return &fakeAdapter{
		next:    map[adapters.OperationKind][]error{},
		always:  map[adapters.OperationKind]error{},
		gates:   map[adapters.OperationKind]*gate{},
		pending: map[adapters.OperationKind]bool{},
		running: map[string]int{},
		backend: map[string]bool{},
	}
}

// setBackend says whether the backend has the instance, for Inspect.
func (f *fakeAdapter) setBackend(instanceID string, exists bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backend[instanceID], f.inspectErr = exists, err
}

func (f *fakeAdapter) Inspect(_ context.Context, req adapters.InspectRequest) (adapters.InspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{Kind: broker.OpReconcile, InstanceID: req.InstanceID, Plan: req.Plan.ID, RequestID: req.Origin.RequestID})
	if f.inspectErr != nil {
		return adapters.InspectResult{}, f.inspectErr
	}
	if !f.backend[req.InstanceID] {
		return adapters.InspectResult{Detail: "db-" + req.InstanceID + " missing"}, nil
	}
	return adapters.InspectResult{Exists: true, Detail: "db-" + req.InstanceID + " exists", Receipt: adapters.Receipt{"db": "db-" + req.InstanceID}}, nil
}

// failNext makes the next len(errs) calls of kind return errs in order.
func (f *fakeAdapter) failNext(kind adapters.OperationKind, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next[kind] = append(f.next[kind], errs...)
}

// failAlways makes every call of kind return err (nil to stop).
func (f *fakeAdapter) failAlways(kind adapters.OperationKind, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.always[kind] = err
}

// setPending makes calls of kind return a pending result, settled by Poll.
func (f *fakeAdapter) setPending(kind adapters.OperationKind, polls ...adapters.PollResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending[kind] = true
	f.pollWith = append(f.pollWith, polls...)
}

// hold gates calls of kind until the returned gate is opened. The gate is
// opened at the end of the test at the latest, so no request hangs.
func (f *fakeAdapter) hold(t *testing.T, kind adapters.OperationKind) *gate {
	t.Helper()
	return f.holdInstance(t, kind, "")
}

// holdInstance is hold for the calls of one instance only.
func (f *fakeAdapter) holdInstance(t *testing.T, kind adapters.OperationKind, instanceID string) *gate {
	t.Helper()
	g := &gate{instance: instanceID, entered: make(chan struct{}, 64), release: make(chan struct{})}
	f.mu.Lock()
	f.gates[kind] = g
	f.mu.Unlock()
	t.Cleanup(g.open)
	return g
}

// waitEntered waits until a call is held at g.
func (g *gate) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-g.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the adapter call never arrived at the gate")
	}
}

func (f *fakeAdapter) step(ctx context.Context, c call) (pending bool, err error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	if q := f.next[c.Kind]; len(q) > 0 {
		err, f.next[c.Kind] = q[0], q[1:]
	} else {
		err = f.always[c.Kind]
	}
	g := f.gates[c.Kind]
	if g != nil && g.instance != "" && g.instance != c.InstanceID {
		g = nil
	}
	pending = f.pending[c.Kind]
	f.running[c.InstanceID]++
	f.overlap = max(f.overlap, f.running[c.InstanceID])
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running[c.InstanceID]--
		f.mu.Unlock()
	}()
	if g != nil {
		g.entered <- struct{}{}
		select {
		case <-g.release:
		case <-ctx.Done():
			f.mu.Lock()
			f.cancelled++
			f.mu.Unlock()
			return false, ctx.Err()
		}
	}
	return pending, err
}

// cancellations is how many held calls ended because their context did.
func (f *fakeAdapter) cancellations() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cancelled
}

// maxOverlap is the most calls ever in progress at once for one instance.
func (f *fakeAdapter) maxOverlap() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.overlap
}

// instanceCalls returns the instance IDs of every call of kind, in order.
func (f *fakeAdapter) instanceCalls(kind adapters.OperationKind) []string {
	var out []string
	for _, c := range f.callsOf(kind) {
		out = append(out, c.InstanceID)
	}
	return out
}

// callsOf returns the calls of kind, in order.
func (f *fakeAdapter) callsOf(kind adapters.OperationKind) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeAdapter) count(kind adapters.OperationKind) int { return len(f.callsOf(kind)) }

// password is the secret the fake hands out for a binding. Its marker makes
// it easy to look for in every Redis value.
func password(bindingID string) string { return "pw-SECRET-" + bindingID }

func (f *fakeAdapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	pending, err := f.step(ctx, call{Kind: adapters.OpProvision, InstanceID: req.InstanceID, Plan: req.Plan.ID, RequestID: req.Origin.RequestID, Maintenance: req.Maintenance})
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	return adapters.ProvisionResult{
		DashboardURL: "https://dash.example.com/" + req.InstanceID,
		Receipt:      adapters.Receipt{"db": "db-" + req.InstanceID},
		Pending:      pending, OperationToken: tokenIf(pending, "prov-"+req.InstanceID),
	}, nil
}

func (f *fakeAdapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	pending, err := f.step(ctx, call{Kind: adapters.OpDeprovision, InstanceID: req.InstanceID, Plan: req.Plan.ID, RequestID: req.Origin.RequestID})
	return adapters.DeprovisionResult{Pending: pending, OperationToken: tokenIf(pending, "deprov-"+req.InstanceID)}, err
}

func (f *fakeAdapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	pending, err := f.step(ctx, call{Kind: adapters.OpBind, InstanceID: req.InstanceID, BindingID: req.BindingID, Plan: req.Plan.ID,
		RequestID: req.Origin.RequestID, Parameters: req.Parameters, Predecessor: req.Predecessor})
	if err != nil {
		return adapters.BindResult{}, err
	}
	res := adapters.BindResult{
		Credentials: map[string]any{"username": "user-" + req.BindingID, "password": password(req.BindingID)},
		Endpoints:   []adapters.Endpoint{{Host: "db.example.com", Ports: []string{"5432"}}},
		Receipt:     adapters.Receipt{"role": "role-" + req.BindingID},
		Pending:     pending, OperationToken: tokenIf(pending, "bind-"+req.BindingID),
	}
	f.mu.Lock()
	times := f.bindTimes
	f.mu.Unlock()
	if times != nil {
		res.ExpiresAt, res.RenewBefore = times()
	}
	return res, nil
}

// setBindTimes makes every bind result carry the times fn returns.
func (f *fakeAdapter) setBindTimes(fn func() (expires, renew time.Time)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bindTimes = fn
}

// expireBindingsAfter makes every bind's credentials expire ttl after
// clock's now, renewable in the second half of their life.
func (f *fakeAdapter) expireBindingsAfter(clock *testClock, ttl time.Duration) {
	f.setBindTimes(func() (time.Time, time.Time) {
		expires := clock.Now().Add(ttl)
		return expires, expires.Add(-ttl / 2)
	})
}

func (f *fakeAdapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	pending, err := f.step(ctx, call{Kind: adapters.OpUnbind, InstanceID: req.InstanceID, BindingID: req.BindingID, Plan: req.Plan.ID, RequestID: req.Origin.RequestID})
	return adapters.UnbindResult{Pending: pending, OperationToken: tokenIf(pending, "unbind-"+req.BindingID)}, err
}

func (f *fakeAdapter) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	pending, err := f.step(ctx, call{Kind: adapters.OpUpdate, InstanceID: req.InstanceID, Plan: req.Plan.ID, Previous: req.PreviousPlan.ID, RequestID: req.Origin.RequestID, Maintenance: req.Maintenance})
	return adapters.UpdateResult{Pending: pending, OperationToken: tokenIf(pending, "update-"+req.InstanceID)}, err
}

func (f *fakeAdapter) Poll(_ context.Context, req adapters.PollRequest) (adapters.PollResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	if len(f.pollWith) > 0 {
		r := f.pollWith[0]
		f.pollWith = f.pollWith[1:]
		return r, nil
	}
	res := adapters.PollResult{State: adapters.Succeeded}
	if req.Kind == adapters.OpProvision {
		res.Instance = &adapters.ProvisionResult{DashboardURL: "https://dash.example.com/polled/" + req.InstanceID}
	}
	return res, nil
}

func tokenIf(pending bool, token string) string {
	if pending {
		return token
	}
	return ""
}

var (
	_ adapters.Adapter = (*fakeAdapter)(nil)
	_ adapters.Updater = (*fakeAdapter)(nil)
	_ adapters.Poller  = (*fakeAdapter)(nil)
)

// ---------------------------------------------------------------------------
// Fake credential store

// errVaultDown is what the fake credential store returns when switched off.
var errVaultDown = errors.New("vault at https://vault.test: connection refused")

// fakeCreds is an in-memory broker.CredentialStore that counts its calls and
// can be switched to fail like an unreachable Vault.
type fakeCreds struct {
	mu      sync.Mutex
	secrets map[string]map[string]any
	failPut bool
	failAll bool
	puts    int
	gets    int
	deletes []string
}

func newFakeCreds() *fakeCreds { return &fakeCreds{secrets: map[string]map[string]any{}} }

func (c *fakeCreds) setFailPut(v bool) { c.mu.Lock(); c.failPut = v; c.mu.Unlock() }
func (c *fakeCreds) setFailAll(v bool) { c.mu.Lock(); c.failAll = v; c.mu.Unlock() }

func (c *fakeCreds) BindingRef(instanceID, bindingID string) string {
	return "agora/instances/" + instanceID + "/bindings/" + bindingID
}

func (c *fakeCreds) put(ref string, data map[string]any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.puts++
	if c.failPut || c.failAll {
		return errVaultDown
	}
	cp := make(map[string]any, len(data))
	for k, v := range data {
		cp[k] = v
	}
	c.secrets[ref] = cp
	return nil
}

func (c *fakeCreds) get(ref string) (map[string]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gets++
	if c.failAll {
		return nil, errVaultDown
	}
	s, ok := c.secrets[ref]
	if !ok {
		return nil, fmt.Errorf("vault: read %s: %w", ref, broker.ErrNotFound)
	}
	return s, nil
}

func (c *fakeCreds) PutBinding(_ context.Context, instanceID, bindingID string, creds map[string]any) (string, error) {
	ref := c.BindingRef(instanceID, bindingID)
	return ref, c.put(ref, creds)
}

func (c *fakeCreds) GetBinding(_ context.Context, ref string) (map[string]any, error) {
	return c.get(ref)
}

func (c *fakeCreds) PutParameters(_ context.Context, instanceID, operationID string, params map[string]any) (string, error) {
	ref := c.ParametersRef(instanceID, operationID)
	return ref, c.put(ref, params)
}

func (c *fakeCreds) ParametersRef(instanceID, operationID string) string {
	return "agora/instances/" + instanceID + "/operations/" + operationID
}

func (c *fakeCreds) GetParameters(_ context.Context, ref string) (map[string]any, error) {
	return c.get(ref)
}

func (c *fakeCreds) PutCurrentParameters(_ context.Context, instanceID, operationID string, params map[string]any) (string, error) {
	ref := currentParametersRef(instanceID, operationID)
	return ref, c.put(ref, params)
}

// currentParametersRef is where the fake keeps an instance's or a
// binding's parameters, by the operation that left them in force.
func currentParametersRef(instanceID, operationID string) string {
	return "agora/instances/" + instanceID + "/parameters/" + operationID
}

func (c *fakeCreds) Delete(_ context.Context, ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAll {
		return errVaultDown
	}
	c.deletes = append(c.deletes, ref)
	delete(c.secrets, ref)
	return nil
}

func (c *fakeCreds) Ping(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAll {
		return errVaultDown
	}
	return nil
}

// refs returns the stored references, for "what is in Vault" assertions.
func (c *fakeCreds) refs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for r := range c.secrets {
		out = append(out, r)
	}
	return out
}

func (c *fakeCreds) getCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets
}

func (c *fakeCreds) secret(ref string) (map[string]any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.secrets[ref]
	return s, ok
}

var _ broker.CredentialStore = (*fakeCreds)(nil)

// ---------------------------------------------------------------------------
// Test clock

// testClock is real time plus an offset that tests move forward.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// ---------------------------------------------------------------------------
// Environment

// env is one broker served over HTTP, on its own miniredis.
type env struct {
	t       *testing.T
	mr      *miniredis.Miniredis
	rdb     *redis.Client
	store   *redisstore.Store
	queue   *redisstore.Queue
	creds   *fakeCreds
	adapter *fakeAdapter
	broker  *broker.Broker
	clock   *testClock
	srv     *httptest.Server
	// chainSrv serves the same broker with polls through brokerapi.
	chainSrv *httptest.Server
	reqs     atomic.Int64
}

func testLogger() *slog.Logger {
	if os.Getenv("AGORA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWithLease(t, claimIdle)
}

// newEnvWithLease is newEnv with the job queue's claim idle time (the
// workers' lease) set to lease.
func newEnvWithLease(t *testing.T, lease time.Duration) *env {
	t.Helper()
	e := &env{t: t, mr: miniredis.RunT(t), creds: newFakeCreds(), adapter: newFakeAdapter(), clock: &testClock{}}
	e.rdb = redis.NewClient(&redis.Options{Addr: e.mr.Addr(), DisableIdentity: true,
		// Fail fast when a test stops miniredis.
		DialerRetries: 1, DialerRetryTimeout: time.Millisecond, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 5 * time.Millisecond,
	})
	t.Cleanup(func() { _ = e.rdb.Close() })
	e.store = redisstore.New(e.rdb, prefix)
	e.queue = redisstore.NewQueue(e.rdb, redisstore.QueueOptions{Prefix: prefix, ClaimIdle: lease, Block: 50 * time.Millisecond})

	cat := e.buildCatalog()
	var err error
	e.broker, err = broker.New(broker.Config{
		Catalog: cat, State: e.store, Credentials: e.creds, Jobs: e.queue,
		Logger: testLogger(), SyncTimeout: 5 * time.Second, Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.NewHandler(httpapi.Options{
		Broker:      e.broker,
		CatalogJSON: cat.JSON,
		Credentials: []httpapi.Credential{{Username: brokerUser, Password: brokerPass}},
		Logger:      testLogger(),
		RetryAfter:  7 * time.Second,
		// Rotation bodies may carry predecessor_binding_id alone.
		InstancePlan: e.broker.InstancePlan,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	// The same broker without its ready-made poll answers: polls go
	// through brokerapi (the chain), for tests that compare both paths.
	chained, err := httpapi.NewHandler(httpapi.Options{
		Broker:      chainOnly{e.broker},
		CatalogJSON: cat.JSON,
		Credentials: []httpapi.Credential{{Username: brokerUser, Password: brokerPass}},
		Logger:      testLogger(),
		RetryAfter:  7 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.chainSrv = httptest.NewServer(chained)
	t.Cleanup(e.chainSrv.Close)
	return e
}

// buildCatalog builds testdata/catalog.yml, served by the fake adapter,
// with each pair of replacements (old, new) applied to its text first: a
// producer publishing a changed catalog.
func (e *env) buildCatalog(replacements ...string) *catalog.Catalog {
	e.t.Helper()
	raw, err := os.ReadFile("testdata/catalog.yml")
	if err != nil {
		e.t.Fatal(err)
	}
	text := strings.NewReplacer(replacements...).Replace(string(raw))
	file, err := catalog.Parse([]byte(text))
	if err != nil {
		e.t.Fatalf("parse testdata/catalog.yml: %v", err)
	}
	reg, err := adapters.NewRegistry(adapters.Factory{
		Name: "fake",
		New: func(context.Context, adapters.Config) (adapters.Adapter, error) {
			return e.adapter, nil
		},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	cat, err := catalog.Build(context.Background(), catalog.BuildOptions{Registry: reg}, file)
	if err != nil {
		e.t.Fatalf("build testdata/catalog.yml: %v", err)
	}
	return cat
}

// chainOnly hides the broker's PollAnswerer, so httpapi serves its polls
// through brokerapi.
type chainOnly struct{ domain.ServiceBroker }

// startWorkers runs the async engine until the test ends.
func (e *env) startWorkers(consumer string) {
	e.startWorkersWith(broker.WorkerConfig{
		Consumer: consumer, Concurrency: 2, Heartbeat: 50 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Requeue: 20 * time.Millisecond,
	})
}

// startWorkersWith runs the async engine with cfg until the test ends, or
// until the returned function stops it.
func (e *env) startWorkersWith(cfg broker.WorkerConfig) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.broker.RunWorkers(ctx, cfg)
	}()
	stop = func() {
		cancel()
		<-done
	}
	e.t.Cleanup(stop)
	return stop
}

// observer records what the async engine reports.
type observer struct {
	mu        sync.Mutex
	throttled map[string]int
	outcomes  []broker.AttemptOutcome
}

func newObserver() *observer { return &observer{throttled: map[string]int{}} }

func (o *observer) JobThrottled(producer string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.throttled[producer]++
}

func (o *observer) Running(string, int) {}

func (o *observer) AttemptEnded(_ string, outcome broker.AttemptOutcome) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes = append(o.outcomes, outcome)
}

func (o *observer) throttles(producer string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.throttled[producer]
}

func (o *observer) ended() []broker.AttemptOutcome {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.outcomes)
}

// ---------------------------------------------------------------------------
// HTTP

// response is what the platform saw.
type response struct {
	status    int
	header    http.Header
	raw       string
	body      map[string]any
	requestID string
}

func (r response) str(key string) string {
	s, _ := r.body[key].(string)
	return s
}

// do sends one OSB request with Cloud Foundry's version header and a fresh
// request identity.
func (e *env) do(method, path string, body any) response {
	e.t.Helper()
	return e.doAs(apiVersion, method, path, body)
}

// doAs is do with another X-Broker-API-Version (2.17 for rotations).
func (e *env) doAs(version, method, path string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	rid := fmt.Sprintf("req-%d", e.reqs.Add(1))
	req.SetBasicAuth(brokerUser, brokerPass)
	req.Header.Set("X-Broker-API-Version", version)
	req.Header.Set("X-Broker-API-Request-Identity", rid)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw), requestID: rid}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, raw)
		}
	}
	return r
}

func instancePath(iid string, async bool) string {
	p := "/v2/service_instances/" + iid
	if async {
		p += "?accepts_incomplete=true"
	}
	return p
}

func provisionBody(planID string, params any) map[string]any {
	b := map[string]any{
		"service_id": serviceID, "plan_id": planID,
		"organization_guid": "org-1", "space_guid": "space-1",
		"context": map[string]any{"platform": "cloudfoundry", "organization_guid": "org-1", "space_guid": "space-1"},
	}
	if params != nil {
		b["parameters"] = params
	}
	return b
}

func (e *env) provision(iid, planID string, params any, async bool) response {
	e.t.Helper()
	return e.do(http.MethodPut, instancePath(iid, async), provisionBody(planID, params))
}

func (e *env) deprovision(iid, planID string, async bool) response {
	e.t.Helper()
	p := "/v2/service_instances/" + iid + "?service_id=" + serviceID + "&plan_id=" + planID
	if async {
		p += "&accepts_incomplete=true"
	}
	return e.do(http.MethodDelete, p, nil)
}

func (e *env) update(iid string, body map[string]any, async bool) response {
	e.t.Helper()
	return e.do(http.MethodPatch, instancePath(iid, async), body)
}

func bindingPath(iid, bid string) string {
	return "/v2/service_instances/" + iid + "/service_bindings/" + bid
}

func bindBody(planID, app string) map[string]any {
	return map[string]any{
		"service_id": serviceID, "plan_id": planID, "app_guid": app,
		"bind_resource": map[string]any{"app_guid": app},
	}
}

func (e *env) bind(iid, bid, planID, app string) response {
	e.t.Helper()
	return e.do(http.MethodPut, bindingPath(iid, bid), bindBody(planID, app))
}

func (e *env) unbind(iid, bid, planID string) response {
	e.t.Helper()
	return e.do(http.MethodDelete, bindingPath(iid, bid)+"?service_id="+serviceID+"&plan_id="+planID, nil)
}

func (e *env) lastOperation(iid, operation string) response {
	e.t.Helper()
	p := "/v2/service_instances/" + iid + "/last_operation"
	if operation != "" {
		p += "?operation=" + operation
	}
	return e.do(http.MethodGet, p, nil)
}

// waitState polls last_operation until it reports state, and returns the
// final response.
func (e *env) waitState(iid, operation, state string) response {
	e.t.Helper()
	var last response
	eventually(e.t, func() bool {
		last = e.lastOperation(iid, operation)
		return last.status == http.StatusOK && last.str("state") == state
	}, func() string {
		return fmt.Sprintf("last_operation never reported %q; last answer %d %s", state, last.status, last.raw)
	})
	return last
}

// ---------------------------------------------------------------------------
// Assertions

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expect checks a response's status and, when given, that its description
// contains every fragment and its error code equals code.
func expect(t *testing.T, what string, r response, status int, code string, fragments ...string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.raw)
	}
	if got := r.str("error"); got != code {
		t.Errorf("%s: error code %q, want %q; body %s", what, got, code, r.raw)
	}
	desc := r.str("description")
	for _, f := range fragments {
		if !strings.Contains(desc, f) {
			t.Errorf("%s: description %q does not mention %q", what, desc, f)
		}
	}
}

// expectFailure is expect for errors Agora itself describes: they must
// also quote the request id, so an app developer can report it.
func expectFailure(t *testing.T, what string, r response, status int, code string, fragments ...string) {
	t.Helper()
	expect(t, what, r, status, code, append(fragments, "request id "+r.requestID)...)
}

// ---------------------------------------------------------------------------
// Stored state, read straight from miniredis

func instanceKey(iid string) string { return prefix + ":{" + iid + "}:instance" }
func bindingsKey(iid string) string { return prefix + ":{" + iid + "}:bindings" }
func opsKey(iid string) string      { return prefix + ":{" + iid + "}:ops" }
func lockKey(iid string) string     { return prefix + ":{" + iid + "}:lock" }
func tombstoneKey(iid string) string {
	return prefix + ":{" + iid + "}:status"
}
func jobsKey() string       { return prefix + ":{jobs}:stream" }
func delayedKey() string    { return prefix + ":{jobs}:delayed" }
func queuedKey() string     { return prefix + ":{jobs}:queued" }
func legacyJobsKey() string { return prefix + ":jobs" }

// storedInstance reads the instance record, or nil.
func (e *env) storedInstance(iid string) *broker.Instance {
	e.t.Helper()
	if !e.mr.Exists(instanceKey(iid)) {
		return nil
	}
	v, err := e.mr.Get(instanceKey(iid))
	if err != nil {
		e.t.Fatal(err)
	}
	var inst broker.Instance
	if err := json.Unmarshal([]byte(v), &inst); err != nil {
		e.t.Fatalf("instance record: %v: %s", err, v)
	}
	return &inst
}

// storedBinding reads one binding record, or nil.
func (e *env) storedBinding(iid, bid string) *broker.Binding {
	e.t.Helper()
	if !e.mr.Exists(bindingsKey(iid)) {
		return nil
	}
	v := e.mr.HGet(bindingsKey(iid), bid)
	if v == "" {
		return nil
	}
	var b broker.Binding
	if err := json.Unmarshal([]byte(v), &b); err != nil {
		e.t.Fatalf("binding record: %v: %s", err, v)
	}
	return &b
}

// storedOperation reads one operation record, or nil.
func (e *env) storedOperation(iid, opID string) *broker.Operation {
	e.t.Helper()
	if !e.mr.Exists(opsKey(iid)) {
		return nil
	}
	v := e.mr.HGet(opsKey(iid), opID)
	if v == "" {
		return nil
	}
	var op broker.Operation
	if err := json.Unmarshal([]byte(v), &op); err != nil {
		e.t.Fatalf("operation record: %v: %s", err, v)
	}
	return &op
}

// keysOf lists every key of one instance.
func (e *env) keysOf(iid string) []string {
	var out []string
	for _, k := range e.mr.Keys() {
		if strings.Contains(k, "{"+iid+"}") {
			out = append(out, k)
		}
	}
	return out
}

// expectNoRecords fails if anything of the instance is stored.
func (e *env) expectNoRecords(what, iid string) {
	e.t.Helper()
	if keys := e.keysOf(iid); len(keys) > 0 {
		e.t.Errorf("%s: Redis still holds %v for instance %s", what, keys, iid)
	}
}

// allValues returns every value in miniredis, whatever the key's type.
func (e *env) allValues() map[string]string {
	e.t.Helper()
	out := map[string]string{}
	for _, k := range e.mr.Keys() {
		switch e.mr.Type(k) {
		case "string":
			v, _ := e.mr.Get(k)
			out[k] = v
		case "hash":
			fields, _ := e.mr.HKeys(k)
			for _, f := range fields {
				out[k+"#"+f] = f + "=" + e.mr.HGet(k, f)
			}
		case "set":
			// The per-offering instance index (broker.InstanceIndex).
			members, _ := e.mr.Members(k)
			out[k] = strings.Join(members, " ")
		case "zset":
			// Released jobs, and the job queue's live consumers.
			members, _ := e.mr.ZMembers(k)
			out[k] = strings.Join(members, " ")
		case "stream":
			entries, _ := e.mr.Stream(k)
			for _, en := range entries {
				out[k+"#"+en.ID] = strings.Join(en.Values, " ")
			}
		default:
			e.t.Fatalf("key %s has type %s, which the test does not know how to read", k, e.mr.Type(k))
		}
	}
	return out
}

// expectNotInRedis fails if any Redis key or value contains secret.
func (e *env) expectNotInRedis(secret string) {
	e.t.Helper()
	vals := e.allValues()
	if len(vals) == 0 {
		e.t.Fatal("Redis is empty; the scan would prove nothing")
	}
	for k, v := range vals {
		if strings.Contains(k, secret) || strings.Contains(v, secret) {
			e.t.Errorf("Redis key %s holds the secret %q: %s", k, secret, v)
		}
	}
}

// queueDrained reports whether every job was acknowledged and deleted:
// none queued, none delivered, none waiting for a later attempt.
func (e *env) queueDrained() bool {
	ctx := context.Background()
	n, err := e.rdb.XLen(ctx, jobsKey()).Result()
	if err != nil || n != 0 {
		return false
	}
	if e.mr.Exists(delayedKey()) || e.mr.Exists(queuedKey()) || e.mr.Exists(legacyJobsKey()) {
		return false
	}
	p, err := e.rdb.XPending(ctx, jobsKey(), "agora-workers").Result()
	return err == nil && p.Count == 0
}
