package producerapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/broker/livecatalog"
	"github.com/agora-osb/agora/broker/redisstore"
	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

const (
	adminUser = "admin"
	adminPass = "admin-pass"
)

// fixture is one Agora replica over miniredis: the broker, the producer
// API mounted on the real HTTP handler, and the catalog loader (driven by
// hand with reload, never by time).
type fixture struct {
	t       *testing.T
	mr      *miniredis.Miniredis
	state   *redisstore.Store
	broker  *broker.Broker
	loader  *livecatalog.Loader
	srv     *httptest.Server
	admin   *producerapi.Client
	gate    *fakeGate
	secrets *fakeSecrets
}

func newFixture(t *testing.T, opts ...func(*producers.Config)) *fixture {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })

	reg, err := adapters.NewRegistry(fakeFactory("fake"), fakeFactory("remote"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := catalog.ParseFile("testdata/catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	base.Source = "catalog.yml"
	secrets := &fakeSecrets{data: map[string]string{}}
	build := catalog.BuildOptions{Registry: reg, Resolve: secrets.resolve}
	initial, err := catalog.Build(context.Background(), build, base)
	if err != nil {
		t.Fatal(err)
	}

	state := redisstore.New(rdb, "agora")
	b, err := broker.New(broker.Config{
		Catalog: initial, State: state, Credentials: &fakeCreds{}, Jobs: redisstore.NewQueue(rdb, redisstore.QueueOptions{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	gate := &fakeGate{failURLs: map[string]bool{}}
	store := redisstore.NewProducerStore(rdb, "agora")
	cfg := producers.Config{
		Store: store, Base: []*catalog.File{base}, Build: build, Secrets: secrets, Gate: gate.run,
		Instances: state, Catalog: b.Catalog,
	}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := producers.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	loader := livecatalog.New(livecatalog.Config{Sources: svc, Target: b, Build: build, Grace: time.Millisecond})
	credentials := []httpapi.Credential{{Username: adminUser, Password: adminPass}}
	api, err := producerapi.New(producerapi.Options{Service: svc, Admins: httpapi.NewBasicAuth(credentials), Loader: loader, Upgrades: b})
	if err != nil {
		t.Fatal(err)
	}
	h, err := httpapi.NewHandler(httpapi.Options{
		Broker: b, CatalogJSON: func() []byte { return b.Catalog().JSON() },
		Credentials: credentials,
		Routes:      api.Routes(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{
		t: t, mr: mr, state: state, broker: b, loader: loader, srv: srv, gate: gate, secrets: secrets,
		admin: &producerapi.Client{BaseURL: srv.URL, Username: adminUser, Password: adminPass},
	}
}

// producer creates an active producer and returns a client with her token.
func (f *fixture) producer(name string, autoApprove bool) *producerapi.Client {
	f.t.Helper()
	created, err := f.admin.CreateProducer(context.Background(), producers.CreateRequest{Name: name, Contact: name + "@example.com", AutoApproveSlices: autoApprove})
	if err != nil {
		f.t.Fatalf("create producer %s: %v", name, err)
	}
	return &producerapi.Client{BaseURL: f.srv.URL, Token: created.Token}
}

// reload builds the live catalog as the replica's poll loop would.
func (f *fixture) reload() {
	f.t.Helper()
	if err := f.loader.Reload(context.Background()); err != nil {
		f.t.Fatalf("reload catalog: %v", err)
	}
}

// redisHolds reports whether any key or value in Redis contains s.
func (f *fixture) redisHolds(s string) bool {
	for _, k := range f.mr.Keys() {
		if strings.Contains(k, s) {
			return true
		}
		switch f.mr.Type(k) {
		case "string":
			v, _ := f.mr.Get(k)
			if strings.Contains(v, s) {
				return true
			}
		case "hash":
			fields, _ := f.mr.HKeys(k)
			for _, field := range fields {
				if strings.Contains(f.mr.HGet(k, field), s) {
					return true
				}
			}
		case "set":
			members, _ := f.mr.Members(k)
			for _, m := range members {
				if strings.Contains(m, s) {
					return true
				}
			}
		}
	}
	return false
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// apiErr asserts err is an API error with the status.
func apiErr(t *testing.T, err error, status int) *producerapi.APIError {
	t.Helper()
	var ae *producerapi.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error %d, got %v", status, err)
	}
	if ae.Status != status {
		t.Fatalf("want status %d, got %d: %v", status, ae.Status, ae)
	}
	return ae
}

// ---------------------------------------------------------------------------
// Fakes

// fakeGate passes every adapter unless its URL is listed as failing, and
// records the secrets it was given.
type fakeGate struct {
	mu       sync.Mutex
	failURLs map[string]bool
	seen     []producers.GateRequest
}

func (g *fakeGate) run(_ context.Context, req producers.GateRequest) (conformance.Report, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen = append(g.seen, req)
	if req.URL == "" {
		return conformance.Report{}, errors.New("no url")
	}
	r := conformance.Report{Results: []conformance.CheckResult{
		{Name: "factory", Passed: true},
		{Name: "provision", Passed: true},
	}}
	if g.failURLs[req.URL] {
		r.Results = append(r.Results, conformance.CheckResult{Name: "bind", Detail: "bind returned 500 (secret was " + req.Secret + ")", Hint: "return credentials"})
	} else {
		r.Results = append(r.Results, conformance.CheckResult{Name: "bind", Passed: true})
	}
	return r, nil
}

func (g *fakeGate) last() producers.GateRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[len(g.seen)-1]
}

// fakeSecrets is Vault: a map from "path#key" to the value.
type fakeSecrets struct {
	mu   sync.Mutex
	data map[string]string
	down bool
	// readsDown fails reads only: writes still work.
	readsDown bool
}

func (s *fakeSecrets) PutProducerSecret(_ context.Context, producer, key, value string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		return "", errors.New("vault is down")
	}
	ref := "vault:secret/agora/producers/" + producer + "/secret#" + key
	s.data[strings.TrimPrefix(ref, "vault:")] = value
	return ref, nil
}

func (s *fakeSecrets) OwnsRef(producer, ref string) bool {
	return strings.HasPrefix(ref, "vault:secret/agora/producers/"+producer+"/secret#")
}

func (s *fakeSecrets) resolve(_ context.Context, path, key string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down || s.readsDown {
		return "", errors.New("vault is down")
	}
	v, ok := s.data[path+"#"+key]
	if !ok {
		return "", fmt.Errorf("no secret at %s#%s", path, key)
	}
	return v, nil
}

func (s *fakeSecrets) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *fakeSecrets) setReadsDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readsDown = down
}

// fakeFactory builds an adapter that decodes the remote adapter's
// settings strictly and provisions nothing.
func fakeFactory(name string) adapters.Factory {
	return adapters.Factory{Name: name, Description: "test " + name, New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
		var s struct {
			URL     string `json:"url"`
			Secret  string `json:"secret"`
			Timeout string `json:"timeout"`
			Token   string `json:"token"`
			// Capabilities as the remote adapter's config has them.
			Capabilities []string `json:"capabilities"`
		}
		if err := cfg.Settings.Decode(&s); err != nil {
			return nil, err
		}
		if name == "remote" && (s.URL == "" || s.Secret == "") {
			return nil, errors.New("url and secret are required")
		}
		return fakeAdapter{}, nil
	}}
}

type fakeAdapter struct{}

func (fakeAdapter) Provision(context.Context, adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	return adapters.ProvisionResult{}, nil
}

func (fakeAdapter) Deprovision(context.Context, adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	return adapters.DeprovisionResult{}, nil
}

func (fakeAdapter) Bind(context.Context, adapters.BindRequest) (adapters.BindResult, error) {
	return adapters.BindResult{Credentials: map[string]any{"password": "bound-secret"}}, nil
}

func (fakeAdapter) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}

// fakeCreds is the credential store, in memory.
type fakeCreds struct {
	mu   sync.Mutex
	data map[string]map[string]any
}

func (c *fakeCreds) put(ref string, v map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.data == nil {
		c.data = map[string]map[string]any{}
	}
	c.data[ref] = v
}

func (c *fakeCreds) get(ref string) (map[string]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.data[ref]
	if !ok {
		return nil, broker.ErrNotFound
	}
	return v, nil
}

func (c *fakeCreds) PutBinding(_ context.Context, iid, bid string, creds map[string]any) (string, error) {
	ref := c.BindingRef(iid, bid)
	c.put(ref, creds)
	return ref, nil
}
func (c *fakeCreds) BindingRef(iid, bid string) string { return "bindings/" + iid + "/" + bid }
func (c *fakeCreds) GetBinding(_ context.Context, ref string) (map[string]any, error) {
	return c.get(ref)
}
func (c *fakeCreds) ParametersRef(iid, opid string) string { return "params/" + iid + "/" + opid }
func (c *fakeCreds) PutParameters(_ context.Context, iid, opid string, p map[string]any) (string, error) {
	ref := c.ParametersRef(iid, opid)
	c.put(ref, p)
	return ref, nil
}
func (c *fakeCreds) GetParameters(_ context.Context, ref string) (map[string]any, error) {
	return c.get(ref)
}
func (c *fakeCreds) PutCurrentParameters(_ context.Context, iid, opid string, p map[string]any) (string, error) {
	ref := "current/" + iid + "/" + opid
	c.put(ref, p)
	return ref, nil
}
func (c *fakeCreds) Delete(_ context.Context, ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.data, ref)
	return nil
}
func (c *fakeCreds) Ping(context.Context) error { return nil }
