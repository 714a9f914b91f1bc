package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/broker/requestinfo"
)

const (
	testCatalog  = `{"services":[{"id":"svc","name":"svc","description":"d","bindable":true,"plans":[{"id":"plan","name":"plan","description":"d"}]}]}`
	validBody    = `{"service_id":"svc","plan_id":"plan"}`
	missingID    = "missing" // instance the fake broker says is gone
	panicID      = "boom"    // instance whose provision and poll panic
	unknownID    = "unknown" // instance whose poll the fake broker answers 404
	brokenID     = "broken"  // instance whose poll fails with a 503 FailureResponse
	plainErrorID = "plain"   // instance whose poll fails with a plain error
	testUser     = "cc"
	testPassword = "s3cret-pass"
)

// seenCall is what the fake broker observed for one call.
type seenCall struct {
	method     string
	instanceID string
	bindingID  string
	requestID  string
	identity   *requestinfo.OriginatingIdentity
	body       *requestinfo.Body
}

// fakeBroker records calls; Services is counted like the rest so tests can
// prove the catalog never reached it.
type fakeBroker struct {
	mu        sync.Mutex
	calls     []seenCall
	operation string // the last poll's operation
}

func (f *fakeBroker) record(ctx context.Context, method, instanceID, bindingID string) {
	info := requestinfo.From(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, seenCall{method, instanceID, bindingID, info.ID, info.Originating, info.Body})
}

func (f *fakeBroker) Calls() []seenCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenCall(nil), f.calls...)
}

// callsExcept drops Services, which brokerapi's provision handler calls to
// validate IDs.
func (f *fakeBroker) callsExcept(method string) []seenCall {
	var out []seenCall
	for _, c := range f.Calls() {
		if c.method != method {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeBroker) Services(ctx context.Context) ([]domain.Service, error) {
	f.record(ctx, "Services", "", "")
	return []domain.Service{{ID: "svc", Name: "svc", Bindable: true, Plans: []domain.ServicePlan{{ID: "plan", Name: "plan"}}}}, nil
}

func (f *fakeBroker) Provision(ctx context.Context, instanceID string, _ domain.ProvisionDetails, _ bool) (domain.ProvisionedServiceSpec, error) {
	f.record(ctx, "Provision", instanceID, "")
	if instanceID == panicID {
		panic("adapter bug")
	}
	return domain.ProvisionedServiceSpec{}, nil
}

func (f *fakeBroker) Deprovision(ctx context.Context, instanceID string, _ domain.DeprovisionDetails, _ bool) (domain.DeprovisionServiceSpec, error) {
	f.record(ctx, "Deprovision", instanceID, "")
	return domain.DeprovisionServiceSpec{}, nil
}

func (f *fakeBroker) GetInstance(ctx context.Context, instanceID string, _ domain.FetchInstanceDetails) (domain.GetInstanceDetailsSpec, error) {
	f.record(ctx, "GetInstance", instanceID, "")
	return domain.GetInstanceDetailsSpec{ServiceID: "svc", PlanID: "plan"}, nil
}

func (f *fakeBroker) Update(ctx context.Context, instanceID string, _ domain.UpdateDetails, _ bool) (domain.UpdateServiceSpec, error) {
	f.record(ctx, "Update", instanceID, "")
	return domain.UpdateServiceSpec{}, nil
}

func (f *fakeBroker) LastOperation(ctx context.Context, instanceID string, details domain.PollDetails) (domain.LastOperation, error) {
	f.record(ctx, "LastOperation", instanceID, "")
	f.mu.Lock()
	f.operation = details.OperationData
	f.mu.Unlock()
	switch instanceID {
	case missingID:
		return domain.LastOperation{}, apiresponses.ErrInstanceDoesNotExist
	case unknownID:
		return domain.LastOperation{}, apiresponses.NewFailureResponse(errors.New("service instance does not exist (request id "+requestinfo.ID(ctx)+")"), http.StatusNotFound, "last-operation")
	case brokenID:
		return domain.LastOperation{}, apiresponses.NewFailureResponseBuilder(errors.New("Redis is unavailable <retry>"), http.StatusServiceUnavailable, "last-operation").WithErrorKey("StoreUnavailable").Build()
	case plainErrorID:
		return domain.LastOperation{}, errors.New("not a FailureResponse")
	case panicID:
		panic("store bug")
	}
	return domain.LastOperation{State: domain.InProgress, Description: "provision <in> progress & \"quoted\""}, nil
}

// lastOperation is what the broker was last asked about, by either path.
func (f *fakeBroker) lastOperation() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.operation
}

// fastBroker is fakeBroker with ready-made poll answers, so polls take the
// fast path (PollAnswerer). Its answers are fakeBroker's, encoded as
// brokerapi encodes them, so both paths must answer alike.
type fastBroker struct{ *fakeBroker }

func (f fastBroker) LastOperationAnswer(ctx context.Context, instanceID, operationID string) ([]byte, error) {
	lo, err := f.LastOperation(ctx, instanceID, domain.PollDetails{OperationData: operationID})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(apiresponses.LastOperationResponse{State: lo.State, Description: lo.Description})
	return buf.Bytes(), nil
}

func (f *fakeBroker) Bind(ctx context.Context, instanceID, bindingID string, _ domain.BindDetails, _ bool) (domain.Binding, error) {
	f.record(ctx, "Bind", instanceID, bindingID)
	return domain.Binding{Credentials: map[string]any{"uri": "x://y"}}, nil
}

func (f *fakeBroker) Unbind(ctx context.Context, instanceID, bindingID string, _ domain.UnbindDetails, _ bool) (domain.UnbindSpec, error) {
	f.record(ctx, "Unbind", instanceID, bindingID)
	return domain.UnbindSpec{}, nil
}

func (f *fakeBroker) GetBinding(ctx context.Context, instanceID, bindingID string, _ domain.FetchBindingDetails) (domain.GetBindingSpec, error) {
	f.record(ctx, "GetBinding", instanceID, bindingID)
	return domain.GetBindingSpec{}, nil
}

func (f *fakeBroker) LastBindingOperation(ctx context.Context, instanceID, bindingID string, _ domain.PollDetails) (domain.LastOperation, error) {
	f.record(ctx, "LastBindingOperation", instanceID, bindingID)
	return domain.LastOperation{State: domain.InProgress}, nil
}

var _ domain.ServiceBroker = (*fakeBroker)(nil)

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// records returns the JSON log records whose msg is msg.
func (b *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

type testEnv struct {
	handler http.Handler
	broker  *fakeBroker
	logs    *syncBuffer
}

// path names how polls are served: through the chain and brokerapi, or
// on the fast path.
type path string

const (
	slowPath path = "chain"
	fastPath path = "fast"
)

// newPathEnv is newTestEnv whose polls take the given path.
func newPathEnv(t testing.TB, p path, adjust func(*Options)) *testEnv {
	t.Helper()
	if p == slowPath {
		return newTestEnv(t, adjust)
	}
	return newTestEnv(t, func(o *Options) {
		o.Broker = fastBroker{o.Broker.(*fakeBroker)}
		if adjust != nil {
			adjust(o)
		}
	})
}

func newTestEnv(t testing.TB, adjust func(*Options)) *testEnv {
	t.Helper()
	env := &testEnv{broker: &fakeBroker{}, logs: &syncBuffer{}}
	catalog := []byte(testCatalog)
	opts := Options{
		Broker:      env.broker,
		CatalogJSON: func() []byte { return catalog },
		Credentials: []Credential{{Username: testUser, Password: testPassword}, {Username: "rotated", Password: "next-pass"}},
		Logger:      slog.New(slog.NewJSONHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if adjust != nil {
		adjust(&opts)
	}
	h, err := NewHandler(opts)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	env.handler = h
	return env
}

// reqOption adjusts a request built by osbRequest.
type reqOption func(*http.Request)

func withHeader(key, value string) reqOption {
	return func(r *http.Request) { r.Header.Set(key, value) }
}

func withoutHeader(key string) reqOption {
	return func(r *http.Request) { r.Header.Del(key) }
}

func withAuth(user, pass string) reqOption {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// osbRequest builds a request the way Cloud Foundry sends it: basic auth,
// version 2.15 and, with a body, a JSON content type.
func osbRequest(method, target, body string, opts ...reqOption) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	r.SetBasicAuth(testUser, testPassword)
	r.Header.Set("X-Broker-API-Version", "2.15")
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

func (e *testEnv) serve(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, r)
	return w
}

// description decodes an OSB error body, failing the test if the body is
// not one.
func description(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body struct {
		Description *string `json:"description"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Description == nil {
		t.Fatalf("body %q is not a JSON error with a description (err %v)", w.Body.String(), err)
	}
	return *body.Description
}

// discardLogger keeps benchmarks measuring the handler, not log encoding.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
