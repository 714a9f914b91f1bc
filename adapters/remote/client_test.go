package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
)

// scripted is an adapter whose every method returns err; Provision
// returns pending results when pending is set.
type scripted struct {
	err     error
	pending bool
	calls   atomic.Int64
}

func (s *scripted) Provision(context.Context, adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	s.calls.Add(1)
	return adapters.ProvisionResult{Pending: s.pending, OperationToken: "op/1"}, s.err
}
func (s *scripted) Deprovision(context.Context, adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	s.calls.Add(1)
	return adapters.DeprovisionResult{}, s.err
}
func (s *scripted) Bind(context.Context, adapters.BindRequest) (adapters.BindResult, error) {
	s.calls.Add(1)
	return adapters.BindResult{}, s.err
}
func (s *scripted) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	s.calls.Add(1)
	return adapters.UnbindResult{}, s.err
}

// polling adds Poll to scripted.
type polling struct {
	*scripted
	got adapters.PollRequest
}

func (p *polling) Poll(_ context.Context, req adapters.PollRequest) (adapters.PollResult, error) {
	p.got = req
	return adapters.PollResult{State: adapters.Succeeded, Instance: &adapters.ProvisionResult{DashboardURL: "https://dash/1",
		Receipt: adapters.Receipt{"db": "x"}}}, nil
}

func serve(t *testing.T, a adapters.Adapter) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(remote.Handler(a, remote.HandlerOptions{Name: "scripted", Version: "1", Secret: testSecret}))
	t.Cleanup(srv.Close)
	return srv
}

func provisionReq() adapters.ProvisionRequest {
	return adapters.ProvisionRequest{InstanceID: "i-1", Offering: "o", Plan: testPlan, Origin: adapters.Origin{RequestID: "rid-1"}}
}

// TestErrorMapping: each sentinel crosses the wire as itself, a terminal
// error stays terminal, and only internal errors are retried.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		is       error
		terminal bool
		attempts int64
	}{
		{"not found", fmt.Errorf("db x: %w", adapters.ErrNotFound), adapters.ErrNotFound, false, 1},
		{"already exists", fmt.Errorf("db x: %w", adapters.ErrAlreadyExists), adapters.ErrAlreadyExists, true, 1},
		{"invalid parameters", adapters.InvalidParameters("size too big"), adapters.ErrInvalidParameters, true, 1},
		{"not supported", fmt.Errorf("resize: %w", adapters.ErrNotSupported), adapters.ErrNotSupported, true, 1},
		{"terminal", adapters.Terminal(errors.New("quota gone for good")), nil, true, 1},
		{"internal", errors.New("backend hiccup"), nil, false, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &scripted{err: tc.err}
			c := newClient(t, serve(t, a).URL, remote.Options{}, func(s *remote.Settings) { r := 2; s.Retries = &r })
			_, err := c.Provision(t.Context(), provisionReq())
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v does not wrap %v", err, tc.is)
			}
			if adapters.IsTerminal(err) != tc.terminal {
				t.Errorf("IsTerminal(%v) = %v, want %v", err, !tc.terminal, tc.terminal)
			}
			if got := a.calls.Load(); got != tc.attempts {
				t.Errorf("adapter saw %d calls, want %d", got, tc.attempts)
			}
			if !strings.Contains(err.Error(), tc.err.Error()[strings.LastIndex(tc.err.Error(), " ")+1:]) {
				t.Errorf("error %q lost the adapter's message %q", err, tc.err)
			}
		})
	}
}

func TestInvalidParametersReadsAsTheAdaptersOwnWords(t *testing.T) {
	c := newClient(t, serve(t, &scripted{err: adapters.InvalidParameters("size must be at most 10")}).URL, remote.Options{})
	_, err := c.Provision(t.Context(), provisionReq())
	if got, want := err.Error(), "invalid parameters: size must be at most 10"; got != want {
		t.Errorf("app developers would see %q, want %q", got, want)
	}
}

// TestRetriesSignAfresh: the adapter behind the flaky proxy sees every
// attempt, so a retry that re-sent the first signature would be rejected
// as a replay.
func TestRetriesSignAfresh(t *testing.T) {
	a := &scripted{}
	inner := remote.Handler(a, remote.HandlerOptions{Name: "x", Secret: testSecret})
	var attempts atomic.Int64
	var sigs sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := attempts.Add(1)
		if _, dup := sigs.LoadOrStore(r.Header.Get(remote.HeaderSignature), true); dup {
			t.Errorf("attempt %d repeats an earlier signature", n)
		}
		if r.Header.Get(remote.HeaderRequestID) != "rid-1" && r.URL.Path != "/v1/capabilities" {
			t.Errorf("request id header %q, want rid-1", r.Header.Get(remote.HeaderRequestID))
		}
		if n == 2 || n == 3 { // after the capabilities call: two failures, then through
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)              // the adapter does the work and remembers the signature ...
			w.WriteHeader(http.StatusBadGateway) // ... but the answer is lost on the way
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, remote.Options{}, func(s *remote.Settings) { r := 2; s.Retries = &r })
	if _, err := c.Provision(t.Context(), provisionReq()); err != nil {
		t.Fatalf("Provision after two lost answers: %v", err)
	}
	if got := a.calls.Load(); got != 3 {
		t.Errorf("adapter ran %d Provisions, want 3 (every retry reaches it)", got)
	}
}

func TestRetriesStopAtTheLimit(t *testing.T) {
	var attempts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, remote.Options{}, func(s *remote.Settings) { r := 1; s.Retries = &r })
	err := c.Ping(t.Context())
	if err == nil || adapters.IsTerminal(err) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("want a retryable error naming the 503, got %v", err)
	}
	if got := attempts.Load(); got != 2 {
		t.Errorf("%d attempts, want 2 (one retry)", got)
	}
}

// TestTimeoutIsClearNotAHang: an adapter that never answers costs one
// timeout per attempt, and the error says so.
func TestTimeoutIsClearNotAHang(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c := newClient(t, srv.URL, remote.Options{}, func(s *remote.Settings) { s.Timeout = "100ms" })
	start := time.Now()
	err := c.Ping(t.Context())
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") || !strings.Contains(err.Error(), srv.URL) {
		t.Fatalf("want an error naming the URL and the timeout, got %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap context.DeadlineExceeded, which the broker reports as 'did not answer in time'", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Ping took %s", time.Since(start))
	}
}

func TestDeadAdapter(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	c := newClient(t, url, remote.Options{})
	_, err = c.Provision(t.Context(), provisionReq())
	if err == nil || !strings.Contains(err.Error(), "remote adapter test-team at "+url) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("want an error naming the producer, URL and cause, got %v", err)
	}
	if adapters.IsTerminal(err) {
		t.Error("a dead adapter may come back: the error must be retryable")
	}
}

// TestCircuitBreaker: five failed attempts open the circuit; calls then
// fail fast without reaching the adapter, until a probe after the
// cooldown succeeds.
func TestCircuitBreaker(t *testing.T) {
	var down atomic.Bool
	var attempts atomic.Int64
	down.Store(true)
	inner := remote.Handler(&scripted{}, remote.HandlerOptions{Name: "x", Secret: testSecret})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	// The adapter checks timestamps against the real clock; keep the fake
	// one close to it.
	now = time.Now()
	c := newClient(t, srv.URL, remote.Options{Now: clock})

	for range 5 {
		if err := c.Ping(t.Context()); err == nil {
			t.Fatal("Ping succeeded against a failing adapter")
		}
	}
	err := c.Ping(t.Context())
	want := "remote adapter test-team at " + srv.URL + " is unavailable (circuit open after 5 failures)"
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, remote.ErrUnavailable) {
		t.Fatalf("want %q, got %v", want, err)
	}
	if got := attempts.Load(); got != 5 {
		t.Errorf("the adapter saw %d attempts, want 5: an open circuit must not reach it", got)
	}
	advance(11 * time.Second)
	if err := c.Ping(t.Context()); err == nil || errors.Is(err, remote.ErrUnavailable) {
		t.Fatalf("after the cooldown one probe must reach the adapter, got %v", err)
	}
	if err := c.Ping(t.Context()); !errors.Is(err, remote.ErrUnavailable) {
		t.Fatalf("a failed probe must open the circuit again, got %v", err)
	}
	down.Store(false)
	advance(11 * time.Second)
	for i := range 3 {
		if err := c.Ping(t.Context()); err != nil {
			t.Fatalf("call %d after recovery: %v", i, err)
		}
	}
}

// TestCapabilities: New does not contact the adapter; the first call
// does, once; a protocol mismatch is terminal and names both versions.
func TestCapabilities(t *testing.T) {
	var hits atomic.Int64
	protocol := "agora.adapter/v2"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"protocol": protocol, "name": "future", "version": "9.0", "capabilities": []string{}})
	}))
	defer srv.Close()
	a, err := remote.Factory().New(t.Context(), adapters.Config{Producer: "team-x",
		Settings: adapters.MapSettings(map[string]any{"url": srv.URL, "secret": testSecret})})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 {
		t.Fatal("Factory.New contacted the adapter")
	}
	for range 2 {
		_, err = a.Provision(t.Context(), provisionReq())
		if !adapters.IsTerminal(err) || !errors.Is(err, remote.ErrProtocolMismatch) {
			t.Fatalf("want a terminal protocol mismatch, got %v", err)
		}
	}
	for _, want := range []string{"team-x", srv.URL, `"agora.adapter/v2"`, `"agora.adapter/v1"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("capabilities fetched %d times, want once (cached)", hits.Load())
	}
	if err := a.(adapters.Pinger).Ping(t.Context()); !errors.Is(err, remote.ErrProtocolMismatch) || hits.Load() != 2 {
		t.Errorf("Ping must ask again and report the mismatch: %v (%d fetches)", err, hits.Load())
	}
}

func TestPendingNeedsTheStatusCapability(t *testing.T) {
	c := newClient(t, serve(t, &scripted{pending: true}).URL, remote.Options{})
	_, err := c.Provision(t.Context(), provisionReq())
	if !adapters.IsTerminal(err) || !strings.Contains(err.Error(), `"status" capability`) {
		t.Fatalf("want a terminal error naming the status capability, got %v", err)
	}
}

func TestPendingAndPoll(t *testing.T) {
	p := &polling{scripted: &scripted{pending: true}}
	c := newClient(t, serve(t, p).URL, remote.Options{}, func(s *remote.Settings) { s.Capabilities = []string{remote.CapabilityStatus} })
	res, err := c.Provision(t.Context(), provisionReq())
	if err != nil || !res.Pending || res.OperationToken != "op/1" {
		t.Fatalf("Provision: %+v, %v", res, err)
	}
	pr, err := c.Adapter().(adapters.Poller).Poll(t.Context(), adapters.PollRequest{Kind: adapters.OpBind, InstanceID: "i-1", BindingID: "b-1",
		Offering: "o", Plan: testPlan, Token: res.OperationToken})
	if err != nil {
		t.Fatal(err)
	}
	if pr.State != adapters.Succeeded || pr.Instance == nil || pr.Instance.DashboardURL != "https://dash/1" || pr.Instance.Receipt["db"] != "x" {
		t.Errorf("Poll result %+v", pr)
	}
	want := adapters.PollRequest{Kind: adapters.OpBind, InstanceID: "i-1", BindingID: "b-1", Offering: "o", Plan: testPlan, Token: "op/1"}
	p.got.Origin = adapters.Origin{}
	if !reflect.DeepEqual(p.got, want) {
		t.Errorf("the adapter got %+v, want %+v", p.got, want)
	}
}

// TestNotFoundNeedsTheProtocolBody: a 404 from something that is not the
// adapter (a proxy, a wrong path) must never read as "already gone".
func TestNotFoundNeedsTheProtocolBody(t *testing.T) {
	caps := remote.Handler(&scripted{}, remote.HandlerOptions{Name: "x", Secret: testSecret})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/capabilities" {
			caps.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, remote.Options{})
	_, err := c.Deprovision(t.Context(), adapters.DeprovisionRequest{InstanceID: "i-1"})
	if errors.Is(err, adapters.ErrNotFound) || !errors.Is(err, remote.ErrProtocolMismatch) {
		t.Fatalf("want a protocol mismatch, not ErrNotFound: %v", err)
	}
}

func TestUnauthorizedIsTerminal(t *testing.T) {
	srv := serve(t, &scripted{})
	c := newClient(t, srv.URL, remote.Options{}, func(s *remote.Settings) { s.Secret = "another-secret" })
	err := c.Ping(t.Context())
	if !errors.Is(err, remote.ErrUnauthorized) || !adapters.IsTerminal(err) || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("want a terminal ErrUnauthorized with the adapter's reason, got %v", err)
	}
	if strings.Contains(err.Error(), "another-secret") || strings.Contains(err.Error(), testSecret) {
		t.Errorf("the error holds a secret: %v", err)
	}
}
