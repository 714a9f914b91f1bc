package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker/requestinfo"
)

func TestHealthz(t *testing.T) {
	failing := Check{Name: "redis", Required: true, Check: func(context.Context) error { return errors.New("down") }}
	env := newTestEnv(t, func(o *Options) { o.Checks = []Check{failing} })
	w := env.serve(httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusOK || w.Body.String() != `{"status":"ok"}` {
		t.Errorf("healthz = %d %q, want 200 ok even with a failing dependency", w.Code, w.Body)
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	fail := func(context.Context) error { return errors.New("connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	stuck := make(chan struct{})
	defer close(stuck) // lets the check that ignores its context exit
	ignoreCtx := func(context.Context) error { <-stuck; return nil }
	boom := func(context.Context) error { panic("check bug") }

	tests := []struct {
		name       string
		checks     []Check
		want       int
		wantStatus string
		wantChecks map[string]string // value prefix per check
	}{
		{"no checks", nil, http.StatusOK, "ready", map[string]string{}},
		{"all pass", []Check{{Name: "redis", Check: ok, Required: true}, {Name: "vault", Check: ok, Required: true}},
			http.StatusOK, "ready", map[string]string{"redis": "ok", "vault": "ok"}},
		{"required fails", []Check{{Name: "redis", Check: ok, Required: true}, {Name: "vault", Check: fail, Required: true}},
			http.StatusServiceUnavailable, "not ready", map[string]string{"redis": "ok", "vault": "error: connection refused"}},
		{"optional fails", []Check{{Name: "redis", Check: ok, Required: true}, {Name: "adapter:postgres", Check: fail}},
			http.StatusOK, "ready", map[string]string{"redis": "ok", "adapter:postgres": "error: connection refused"}},
		{"required times out", []Check{{Name: "vault", Check: hang, Required: true}},
			http.StatusServiceUnavailable, "not ready", map[string]string{"vault": "error: "}},
		{"check ignoring its context", []Check{{Name: "vault", Check: ignoreCtx, Required: true}},
			http.StatusServiceUnavailable, "not ready", map[string]string{"vault": "error: no answer in time"}},
		{"check panics", []Check{{Name: "redis", Check: boom, Required: true}},
			http.StatusServiceUnavailable, "not ready", map[string]string{"redis": "error: check panicked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(o *Options) { o.Checks = tt.checks })
			// A short request deadline stands in for the 2s check timeout,
			// which derives from the request context.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			w := env.serve(httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			var body readyBody
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if body.Status != tt.wantStatus || len(body.Checks) != len(tt.wantChecks) {
				t.Fatalf("body = %+v, want status %q and checks %v", body, tt.wantStatus, tt.wantChecks)
			}
			for name, prefix := range tt.wantChecks {
				if !strings.HasPrefix(body.Checks[name], prefix) {
					t.Errorf("checks[%q] = %q, want prefix %q", name, body.Checks[name], prefix)
				}
			}
		})
	}
}

func TestRoutesGoThroughTheEdge(t *testing.T) {
	adminAuth := RequireBasic(NewBasicAuth([]Credential{{Username: "ops", Password: "ops-pass"}}), requestinfo.PrincipalAdmin, "agora-admin", "admin credentials")
	var seen *requestinfo.Info
	env := newTestEnv(t, func(o *Options) {
		o.MaxBodyBytes = 64
		o.Routes = []Route{
			{Surface: requestinfo.SurfaceAdmin, Endpoint: "admin_ping", Method: http.MethodGet, Path: "/admin/ping", Auth: adminAuth,
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					seen = requestinfo.From(r.Context())
					_, _ = io.WriteString(w, "pong")
				})},
			{Surface: requestinfo.SurfaceAdmin, Endpoint: "admin_boom", Method: http.MethodGet, Path: "/admin/boom", Auth: adminAuth,
				Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("admin bug") })},
			{Surface: requestinfo.SurfaceProducer, Endpoint: "producer_echo", Method: http.MethodPost, Path: "/producers/echo",
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if _, err := io.ReadAll(r.Body); err != nil {
						WriteError(w, r, http.StatusRequestEntityTooLarge, "", "too large")
						return
					}
					_, _ = io.WriteString(w, "read")
				})},
		}
	})
	admin := func(method, target string, body io.Reader) *http.Request {
		r := httptest.NewRequest(method, target, body)
		r.SetBasicAuth("ops", "ops-pass")
		r.Header.Set(headerRequestID, "rid-admin")
		return r
	}

	w := env.serve(admin(http.MethodGet, "/admin/ping", nil))
	if w.Code != http.StatusOK || w.Body.String() != "pong" || w.Header().Get(headerRequestID) != "rid-admin" {
		t.Fatalf("/admin/ping = %d %q (request id %q), want 200 pong echoing the request id", w.Code, w.Body, w.Header().Get(headerRequestID))
	}
	if seen == nil || seen.Principal != (requestinfo.Principal{Kind: requestinfo.PrincipalAdmin, Name: "ops"}) || seen.Surface != requestinfo.SurfaceAdmin {
		t.Errorf("handler saw request info %+v, want the admin principal on the admin surface", seen)
	}
	records := env.logs.records(t, "request")
	if len(records) != 1 || records[0]["surface"] != "admin" || records[0]["endpoint"] != "admin_ping" || records[0]["principal"] != "admin:ops" {
		t.Errorf("access log = %v, want one admin_ping line naming admin:ops", records)
	}

	// The broker's credentials are not the admin's: each surface has its auth.
	noAuth := httptest.NewRequest(http.MethodGet, "/admin/ping", nil)
	noAuth.SetBasicAuth(testUser, testPassword)
	if w := env.serve(noAuth); w.Code != http.StatusUnauthorized || !strings.Contains(description(t, w), "request id") {
		t.Errorf("/admin/ping with broker credentials = %d %s, want 401 citing a request id", w.Code, w.Body)
	}
	if w := env.serve(admin(http.MethodGet, "/admin/boom", nil)); w.Code != http.StatusInternalServerError || !strings.Contains(description(t, w), "rid-admin") {
		t.Errorf("/admin/boom = %d %s, want 500 citing the request id", w.Code, w.Body)
	}
	big := strings.NewReader(strings.Repeat("x", 200))
	if w := env.serve(httptest.NewRequest(http.MethodPost, "/producers/echo", big)); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST /producers/echo with 200 bytes = %d, want 413 from the edge's body cap", w.Code)
	}
	if w := env.serve(osbRequest(http.MethodGet, "/v2/catalog", "", withoutHeader("Authorization"))); w.Code != http.StatusUnauthorized {
		t.Errorf("/v2/catalog without auth = %d, want 401", w.Code)
	}
}

func TestRoutesCannotTakeOverTheBrokersSurface(t *testing.T) {
	for _, path := range []string{"/v2", "/v2/catalog", "/healthz", "/readyz"} {
		_, err := NewHandler(Options{
			Broker: &fakeBroker{}, CatalogJSON: func() []byte { return nil }, Credentials: []Credential{{"u", "p"}},
			Routes: []Route{{Surface: requestinfo.SurfaceAdmin, Endpoint: "x", Method: http.MethodGet, Path: path, Handler: http.NotFoundHandler()}},
		})
		if err == nil || !strings.Contains(err.Error(), "belongs to the broker") {
			t.Errorf("route %s: err = %v, want it refused", path, err)
		}
	}
}

func TestNewHandlerRejectsBadOptions(t *testing.T) {
	base := func() Options {
		return Options{
			Broker:      &fakeBroker{},
			CatalogJSON: func() []byte { return nil },
			Credentials: []Credential{{Username: "u", Password: "p"}},
		}
	}
	tests := []struct {
		name   string
		adjust func(*Options)
		says   []string
	}{
		{"no broker", func(o *Options) { o.Broker = nil }, []string{"Broker"}},
		{"no catalog", func(o *Options) { o.CatalogJSON = nil }, []string{"CatalogJSON"}},
		{"no credentials", func(o *Options) { o.Credentials = nil }, []string{"Credentials"}},
		{"empty password", func(o *Options) { o.Credentials = append(o.Credentials, Credential{Username: "x"}) }, []string{"Credentials[1]"}},
		{"bad checks", func(o *Options) {
			o.Checks = []Check{{Name: "redis", Check: func(context.Context) error { return nil }}, {Name: "redis"}, {}}
		}, []string{"Checks[1]: name \"redis\" duplicates Checks[0]", "Checks[1]: Check func", "Checks[2]: Name"}},
		{"negative limits", func(o *Options) { o.MaxBodyBytes = -1; o.RetryAfter = -time.Second }, []string{"MaxBodyBytes", "RetryAfter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base()
			tt.adjust(&opts)
			_, err := NewHandler(opts)
			if err == nil {
				t.Fatal("NewHandler accepted bad options")
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	if _, err := NewHandler(base()); err != nil {
		t.Errorf("NewHandler(valid) = %v", err)
	}
}

// TestNoPathCleaningOverTheWire drives a real server, since path cleaning
// and redirects are what a real client would see.
func TestNoPathCleaningOverTheWire(t *testing.T) {
	env := newTestEnv(t, nil)
	srv := httptest.NewServer(env.handler)
	defer srv.Close()
	client := srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		path string
		want int
	}{
		{"/v2/service_instances/../last_operation", http.StatusBadRequest},
		{"/v2/service_instances/i1/service_bindings/..", http.StatusBadRequest},
		{"/v2/service_instances//last_operation", http.StatusBadRequest},
		{"/v2/service_instances/a%2Fb", http.StatusBadRequest},
		{"/v2//catalog", http.StatusNotFound},
		{"/v2%2Fcatalog", http.StatusNotFound}, // mux must match the path as sent, not decoded
		{"/v2/../healthz", http.StatusNotFound},
		{"/v2/service_instances/i%2D1", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.SetBasicAuth(testUser, testPassword)
			req.Header.Set("X-Broker-API-Version", "2.15")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d (Location %q), want %d", resp.StatusCode, resp.Header.Get("Location"), tt.want)
			}
		})
	}
	if calls := env.broker.Calls(); len(calls) != 1 || calls[0].instanceID != "i-1" {
		t.Errorf("broker calls = %+v, want only GetInstance of i-1", calls)
	}
}

func TestNewServerTimeouts(t *testing.T) {
	srv := NewServer(":0", http.NotFoundHandler())
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 30*time.Second ||
		srv.WriteTimeout != 90*time.Second || srv.IdleTimeout != 120*time.Second || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("server limits = %+v", srv)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	env := newTestEnv(t, func(o *Options) {
		o.Routes = []Route{{Surface: requestinfo.SurfaceAdmin, Endpoint: "slow", Method: http.MethodGet, Path: "/slow",
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				close(started)
				<-release
				_, _ = io.WriteString(w, "finished")
			})}}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, NewServer(addr, env.handler), ln, time.Minute) }()

	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), err}
	}()
	<-started
	cancel()

	// The listener closes as shutdown begins; wait for that rather than
	// guessing a delay.
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		_ = conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections still accepted after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v while a request was in flight", err)
	default:
	}

	close(release)
	if r := <-slow; r.err != nil || r.body != "finished" {
		t.Errorf("in-flight request got %q, %v; want it to finish", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after a clean shutdown", err)
	}
}

func TestServeReportsGraceExceeded(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { close(started); <-release })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, NewServer("", h), ln, 20*time.Millisecond) }()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String()); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	if err := <-served; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Serve = %v, want a deadline error naming the grace period", err)
	}
}

func TestServeReportsListenerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close()
	if err := Serve(context.Background(), NewServer("", http.NotFoundHandler()), ln, time.Second); err == nil {
		t.Error("Serve on a closed listener returned nil")
	}
}
