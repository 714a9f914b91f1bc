package osb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pivotal-cf/brokerapi/v11"
	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"
)

// The upstream's IDs, as its own catalog has them.
const (
	upServiceID = "up-svc-1"
	upSmallID   = "up-plan-small"
	upLargeID   = "up-plan-large"
	upUser      = "agora"
	upPassword  = "upstream-basic-auth-pw"
)

// fakeBroker is an existing OSB broker built on brokerapi v11, the way
// producer teams build theirs. It keeps instances and bindings in memory,
// optionally answers 202 and reports success after pollsToFinish polls,
// and records every request it receives. Its bindings' credentials log in
// to its own tiny "backend", so the conformance kit can check them.
type fakeBroker struct {
	name          string // the offering's name; default legacy-db
	async         bool   // provision, update, deprovision answer 202
	asyncBind     bool   // bind and unbind answer 202
	pollsToFinish int

	mu        sync.Mutex
	instances map[string]*fakeInstance
	bindings  map[string]*fakeBinding // instanceID/bindingID
	requests  []recorded
	seq       int
}

type fakeInstance struct {
	planID, params string
	state          domain.LastOperationState
	deleting       bool
	polls          int
	op             string
	pendingPlan    string
}

type fakeBinding struct {
	instanceID string
	params     string
	creds      map[string]any
	state      domain.LastOperationState
	deleting   bool
	polls      int
	op         string
}

// recorded is one request as the upstream received it.
type recorded struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
	Body         []byte
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{name: "legacy-db", pollsToFinish: 2, instances: map[string]*fakeInstance{}, bindings: map[string]*fakeBinding{}}
}

// serve starts the broker behind brokerapi's handler with basic auth.
func (f *fakeBroker) serve(t *testing.T) *httptest.Server {
	t.Helper()
	api := brokerapi.New(f, slog.New(slog.DiscardHandler), brokerapi.BrokerCredentials{Username: upUser, Password: upPassword})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.requests = append(f.requests, recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: body})
		f.mu.Unlock()
		api.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// received returns the recorded requests matching method and a path suffix.
func (f *fakeBroker) received(method, pathSuffix string) []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recorded
	for _, r := range f.requests {
		if r.Method == method && strings.HasSuffix(r.Path, pathSuffix) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeBroker) nextOp(kind string) string {
	f.seq++
	return fmt.Sprintf("%s-%d", kind, f.seq)
}

func schema(props string) map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(`{"$schema":"http://json-schema.org/draft-04/schema#","type":"object","properties":`+props+`}`), &m); err != nil {
		panic(err)
	}
	return m
}

func (f *fakeBroker) Services(context.Context) ([]domain.Service, error) {
	mpd := 1800
	return []domain.Service{{
		ID: upServiceID, Name: f.name, Description: "The legacy team's database.",
		Bindable: true, PlanUpdatable: true, Tags: []string{"sql", "legacy"},
		Metadata: &domain.ServiceMetadata{DisplayName: "Legacy DB", LongDescription: "A database from the old broker."},
		Plans: []domain.ServicePlan{
			{
				ID: upSmallID, Name: "small", Description: "A small database.",
				Metadata: &domain.ServicePlanMetadata{DisplayName: "Small", Bullets: []string{"1 GB"}},
				Schemas: &domain.ServiceSchemas{
					Instance: domain.ServiceInstanceSchema{
						Create: domain.Schema{Parameters: schema(`{"size":{"type":"integer","minimum":1}}`)},
						Update: domain.Schema{Parameters: schema(`{"size":{"type":"integer","minimum":1}}`)},
					},
				},
				MaintenanceInfo: &domain.MaintenanceInfo{Version: "1.2.3", Description: "OS image 7"},
			},
			{
				ID: upLargeID, Name: "large", Description: "A large database.", Free: domain.FreeValue(false),
				MaximumPollingDuration: &mpd,
			},
		},
	}}, nil
}

func raw(m json.RawMessage) string {
	if len(m) == 0 {
		return "{}"
	}
	return string(m)
}

// checkParams is the upstream's own validation: a size below 1 is the
// app developer's mistake, answered 400 with a description.
func checkParams(params json.RawMessage) error {
	var p struct {
		Size *float64 `json:"size"`
	}
	if len(params) > 0 {
		if err := json.Unmarshal(params, &p); err != nil {
			return apiresponses.NewFailureResponse(errors.New("parameters must be an object"), http.StatusBadRequest, "bad-params")
		}
	}
	if p.Size != nil && *p.Size < 1 {
		return apiresponses.NewFailureResponse(errors.New("size must be at least 1"), http.StatusBadRequest, "bad-params")
	}
	return nil
}

func (f *fakeBroker) Provision(_ context.Context, id string, d domain.ProvisionDetails, async bool) (domain.ProvisionedServiceSpec, error) {
	if err := checkParams(d.RawParameters); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	dash := "https://dashboard.legacy.example/" + id
	if inst, ok := f.instances[id]; ok {
		if inst.planID != d.PlanID || inst.params != raw(d.RawParameters) {
			return domain.ProvisionedServiceSpec{}, apiresponses.ErrInstanceAlreadyExists
		}
		if inst.state == domain.InProgress {
			return domain.ProvisionedServiceSpec{IsAsync: true, OperationData: inst.op, DashboardURL: dash}, nil
		}
		return domain.ProvisionedServiceSpec{AlreadyExists: true, DashboardURL: dash}, nil
	}
	inst := &fakeInstance{planID: d.PlanID, params: raw(d.RawParameters), state: domain.Succeeded}
	f.instances[id] = inst
	if f.async {
		if !async {
			delete(f.instances, id)
			return domain.ProvisionedServiceSpec{}, apiresponses.ErrAsyncRequired
		}
		inst.state, inst.op = domain.InProgress, f.nextOp("provision")
		return domain.ProvisionedServiceSpec{IsAsync: true, OperationData: inst.op, DashboardURL: dash}, nil
	}
	return domain.ProvisionedServiceSpec{DashboardURL: dash, Metadata: domain.InstanceMetadata{Labels: map[string]any{"tier": "legacy"}}}, nil
}

func (f *fakeBroker) Deprovision(_ context.Context, id string, _ domain.DeprovisionDetails, async bool) (domain.DeprovisionServiceSpec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.instances[id]
	if !ok {
		return domain.DeprovisionServiceSpec{}, apiresponses.ErrInstanceDoesNotExist
	}
	if f.async && async {
		if !inst.deleting {
			inst.deleting, inst.state, inst.polls, inst.op = true, domain.InProgress, 0, f.nextOp("deprovision")
		}
		return domain.DeprovisionServiceSpec{IsAsync: true, OperationData: inst.op}, nil
	}
	f.removeInstance(id)
	return domain.DeprovisionServiceSpec{}, nil
}

func (f *fakeBroker) removeInstance(id string) {
	delete(f.instances, id)
	for k, b := range f.bindings {
		if b.instanceID == id {
			delete(f.bindings, k)
		}
	}
}

func (f *fakeBroker) GetInstance(context.Context, string, domain.FetchInstanceDetails) (domain.GetInstanceDetailsSpec, error) {
	return domain.GetInstanceDetailsSpec{}, apiresponses.NewFailureResponse(errors.New("not supported"), http.StatusNotFound, "get-instance")
}

func (f *fakeBroker) Update(_ context.Context, id string, d domain.UpdateDetails, async bool) (domain.UpdateServiceSpec, error) {
	if err := checkParams(d.RawParameters); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.instances[id]
	if !ok {
		return domain.UpdateServiceSpec{}, apiresponses.ErrInstanceDoesNotExist
	}
	if d.PreviousValues.PlanID != inst.planID {
		return domain.UpdateServiceSpec{}, apiresponses.NewFailureResponse(
			fmt.Errorf("previous_values.plan_id %q is not the instance's plan %q", d.PreviousValues.PlanID, inst.planID), http.StatusBadRequest, "bad-previous")
	}
	newPlan := inst.planID
	if d.PlanID != "" {
		newPlan = d.PlanID
	}
	if f.async && async {
		inst.state, inst.polls, inst.op, inst.pendingPlan = domain.InProgress, 0, f.nextOp("update"), newPlan
		return domain.UpdateServiceSpec{IsAsync: true, OperationData: inst.op}, nil
	}
	inst.planID = newPlan
	return domain.UpdateServiceSpec{}, nil
}

// advance moves a pending operation on by one poll.
func (f *fakeBroker) advance(state *domain.LastOperationState, polls *int) bool {
	if *state != domain.InProgress {
		return false
	}
	*polls++
	if *polls >= f.pollsToFinish {
		*state = domain.Succeeded
		return true
	}
	return false
}

func (f *fakeBroker) LastOperation(_ context.Context, id string, d domain.PollDetails) (domain.LastOperation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inst, ok := f.instances[id]
	if !ok {
		return domain.LastOperation{}, apiresponses.ErrInstanceDoesNotExist
	}
	if d.OperationData != inst.op {
		return domain.LastOperation{}, apiresponses.NewFailureResponse(fmt.Errorf("unknown operation %q", d.OperationData), http.StatusBadRequest, "bad-op")
	}
	if f.advance(&inst.state, &inst.polls) {
		switch {
		case inst.deleting:
			f.removeInstance(id)
		case inst.pendingPlan != "":
			inst.planID, inst.pendingPlan = inst.pendingPlan, ""
		}
	}
	return domain.LastOperation{State: inst.state, Description: "working on it"}, nil
}

func newSecret() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (f *fakeBroker) Bind(_ context.Context, id, bid string, d domain.BindDetails, async bool) (domain.Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.instances[id]; !ok {
		return domain.Binding{}, apiresponses.ErrInstanceDoesNotExist
	}
	key := id + "/" + bid
	if b, ok := f.bindings[key]; ok {
		if b.params != raw(d.RawParameters) {
			return domain.Binding{}, apiresponses.ErrBindingAlreadyExists
		}
		if b.state == domain.InProgress {
			return domain.Binding{IsAsync: true, OperationData: b.op}, nil
		}
		return domain.Binding{AlreadyExists: true, Credentials: b.creds}, nil
	}
	user := "u-" + bid
	b := &fakeBinding{instanceID: id, params: raw(d.RawParameters), state: domain.Succeeded, creds: map[string]any{
		"username": user, "password": newSecret(), "database": id, "host": "db.legacy.example",
	}}
	f.bindings[key] = b
	if f.asyncBind && async {
		b.state, b.op = domain.InProgress, f.nextOp("bind")
		return domain.Binding{IsAsync: true, OperationData: b.op}, nil
	}
	return domain.Binding{Credentials: b.creds, Endpoints: []domain.Endpoint{{Host: "db.legacy.example", Ports: []string{"5432"}}}}, nil
}

func (f *fakeBroker) Unbind(_ context.Context, id, bid string, _ domain.UnbindDetails, async bool) (domain.UnbindSpec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := id + "/" + bid
	b, ok := f.bindings[key]
	if !ok {
		return domain.UnbindSpec{}, apiresponses.ErrBindingDoesNotExist
	}
	if f.asyncBind && async {
		if !b.deleting {
			b.deleting, b.state, b.polls, b.op = true, domain.InProgress, 0, f.nextOp("unbind")
		}
		return domain.UnbindSpec{IsAsync: true, OperationData: b.op}, nil
	}
	delete(f.bindings, key)
	return domain.UnbindSpec{}, nil
}

func (f *fakeBroker) GetBinding(_ context.Context, id, bid string, _ domain.FetchBindingDetails) (domain.GetBindingSpec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.bindings[id+"/"+bid]
	if !ok || b.state == domain.InProgress {
		return domain.GetBindingSpec{}, apiresponses.ErrBindingNotFound
	}
	return domain.GetBindingSpec{Credentials: b.creds, Endpoints: []domain.Endpoint{{Host: "db.legacy.example", Ports: []string{"5432"}}}}, nil
}

func (f *fakeBroker) LastBindingOperation(_ context.Context, id, bid string, d domain.PollDetails) (domain.LastOperation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := id + "/" + bid
	b, ok := f.bindings[key]
	if !ok {
		return domain.LastOperation{}, apiresponses.ErrBindingDoesNotExist
	}
	if d.OperationData != b.op {
		return domain.LastOperation{}, apiresponses.NewFailureResponse(fmt.Errorf("unknown operation %q", d.OperationData), http.StatusBadRequest, "bad-op")
	}
	if f.advance(&b.state, &b.polls) && b.deleting {
		delete(f.bindings, key)
	}
	return domain.LastOperation{State: b.state, Description: "binding"}, nil
}

// login is the fake backend: credentials work while their binding
// exists and is complete, and reach only their own instance's database.
func (f *fakeBroker) login(creds map[string]any) (database string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.bindings {
		if b.state == domain.Succeeded && !b.deleting && reflect.DeepEqual(b.creds["username"], creds["username"]) &&
			reflect.DeepEqual(b.creds["password"], creds["password"]) {
			return b.instanceID, nil
		}
	}
	return "", errors.New("authentication failed")
}

var _ domain.ServiceBroker = (*fakeBroker)(nil)
