package osb_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/osb"
)

var (
	smallPlan = adapters.Plan{ID: "agora-small", Name: "small"}
	largePlan = adapters.Plan{ID: "agora-large", Name: "large"}
)

func settings(url string) map[string]any {
	return map[string]any{
		"url": url + "/", "username": upUser, "password": upPassword,
		"upstream_service_id": upServiceID, "timeout": "10s",
	}
}

func plans() []adapters.PlanConfig {
	return []adapters.PlanConfig{
		{Plan: smallPlan, Settings: adapters.MapSettings(map[string]any{"upstream_plan_id": upSmallID})},
		{Plan: largePlan, Settings: adapters.MapSettings(map[string]any{"upstream_plan_id": upLargeID})},
	}
}

func newAdapter(t *testing.T, s map[string]any) *osb.Adapter {
	t.Helper()
	a, err := osb.New(context.Background(), adapters.Config{
		Offering: "legacy-db", Producer: "legacy", Settings: adapters.MapSettings(s), Plans: plans(),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func TestConformance(t *testing.T) {
	for _, mode := range []struct {
		name             string
		async, asyncBind bool
	}{{"sync", false, false}, {"async", true, true}} {
		t.Run(mode.name, func(t *testing.T) {
			fb := newFakeBroker()
			fb.async, fb.asyncBind = mode.async, mode.asyncBind
			srv := fb.serve(t)
			adaptertest.RunT(t, conformance.Options{
				Factory:                    osb.Factory(),
				Settings:                   adapters.MapSettings(settings(srv.URL)),
				Plans:                      plans(),
				ProvisionParameters:        map[string]any{"size": 2},
				InvalidProvisionParameters: map[string]any{"size": 0},
				CallTimeout:                20 * time.Second,
				PollInterval:               5 * time.Millisecond,
				CheckCredentials: func(_ context.Context, creds map[string]any) error {
					_, err := fb.login(creds)
					return err
				},
				CheckRevoked: func(_ context.Context, creds map[string]any) error {
					if _, err := fb.login(creds); err == nil {
						return errors.New("the credentials still log in")
					}
					return nil
				},
				CheckIsolation: func(_ context.Context, credsA, credsB map[string]any) error {
					db, err := fb.login(credsA)
					if err != nil {
						return err
					}
					if db == credsB["database"] {
						return errors.New("instance A's login reaches instance B's database")
					}
					return nil
				},
			})
			fb.mu.Lock()
			defer fb.mu.Unlock()
			if len(fb.instances) > 0 || len(fb.bindings) > 0 {
				t.Errorf("the run left %d instances and %d bindings upstream", len(fb.instances), len(fb.bindings))
			}
		})
	}
}

var cfOrigin = adapters.Origin{
	RequestID: "req-42",
	Platform:  "cloudfoundry",
	Context:   json.RawMessage(`{"platform":"cloudfoundry","organization_guid":"org-1","space_guid":"space-1","instance_name":"my-db"}`),
}

// pollUntilDone polls until the state is no longer in progress and
// returns the result and how many polls said "in progress".
func pollUntilDone(t *testing.T, a *osb.Adapter, req adapters.PollRequest) (adapters.PollResult, int) {
	t.Helper()
	for inProgress := 0; inProgress < 20; inProgress++ {
		res, err := a.Poll(context.Background(), req)
		if err != nil {
			t.Fatalf("Poll %s: %v", req.Kind, err)
		}
		if res.State != adapters.InProgress {
			return res, inProgress
		}
	}
	t.Fatalf("Poll %s: still in progress after 20 polls", req.Kind)
	return adapters.PollResult{}, 0
}

func TestAsyncPassesThroughPoll(t *testing.T) {
	fb := newFakeBroker()
	fb.async, fb.asyncBind, fb.pollsToFinish = true, true, 3
	srv := fb.serve(t)
	a := newAdapter(t, settings(srv.URL))
	ctx := context.Background()

	prov, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i-1", Offering: "legacy-db", Plan: smallPlan, Parameters: map[string]any{"size": 2.0}, Origin: cfOrigin})
	if err != nil || !prov.Pending || prov.OperationToken == "" {
		t.Fatalf("Provision = %+v, %v; want Pending with a token", prov, err)
	}
	if prov.DashboardURL != "https://dashboard.legacy.example/i-1" {
		t.Errorf("DashboardURL = %q: the spec sends it with the 202", prov.DashboardURL)
	}
	res, waited := pollUntilDone(t, a, adapters.PollRequest{Kind: adapters.OpProvision, InstanceID: "i-1", Plan: smallPlan, Token: prov.OperationToken, Origin: cfOrigin})
	if res.State != adapters.Succeeded || waited != 2 {
		t.Errorf("provision poll = %+v after %d in-progress polls, want succeeded after 2", res, waited)
	}
	for _, r := range fb.received(http.MethodGet, "/v2/service_instances/i-1/last_operation") {
		if r.Query.Get("operation") != "provision-1" || r.Query.Get("plan_id") != upSmallID || r.Query.Get("service_id") != upServiceID {
			t.Errorf("last_operation query = %v", r.Query)
		}
	}

	bind, err := a.Bind(ctx, adapters.BindRequest{InstanceID: "i-1", BindingID: "b-1", Plan: smallPlan, AppGUID: "app-1", Origin: cfOrigin})
	if err != nil || !bind.Pending || bind.Credentials != nil {
		t.Fatalf("Bind = %+v, %v; want Pending without credentials", bind, err)
	}
	res, _ = pollUntilDone(t, a, adapters.PollRequest{Kind: adapters.OpBind, InstanceID: "i-1", BindingID: "b-1", Plan: smallPlan, Token: bind.OperationToken})
	if res.State != adapters.Succeeded || res.Bind == nil || res.Bind.Credentials["username"] != "u-b-1" {
		t.Fatalf("bind poll = %+v, want credentials fetched with GET binding", res)
	}
	if len(res.Bind.Endpoints) != 1 || res.Bind.Endpoints[0].Host != "db.legacy.example" {
		t.Errorf("endpoints = %+v", res.Bind.Endpoints)
	}
	if got := fb.received(http.MethodGet, "/service_bindings/b-1"); len(got) != 1 {
		t.Errorf("GET binding sent %d times, want 1", len(got))
	}

	// A plan change: PATCH names the new upstream plan, and last_operation
	// the old one, as the spec wants while an update runs.
	upd, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: "i-1", Plan: largePlan, PreviousPlan: smallPlan, Origin: cfOrigin})
	if err != nil || !upd.Pending {
		t.Fatalf("Update = %+v, %v", upd, err)
	}
	patch := fb.received(http.MethodPatch, "/v2/service_instances/i-1")
	var body struct {
		PlanID         string `json:"plan_id"`
		PreviousValues struct {
			PlanID string `json:"plan_id"`
		} `json:"previous_values"`
	}
	if len(patch) != 1 || json.Unmarshal(patch[0].Body, &body) != nil || body.PlanID != upLargeID || body.PreviousValues.PlanID != upSmallID {
		t.Errorf("PATCH body = %s", patch[0].Body)
	}
	res, _ = pollUntilDone(t, a, adapters.PollRequest{Kind: adapters.OpUpdate, InstanceID: "i-1", Plan: largePlan, Token: upd.OperationToken})
	if res.State != adapters.Succeeded {
		t.Errorf("update poll = %+v", res)
	}
	polls := fb.received(http.MethodGet, "/v2/service_instances/i-1/last_operation")
	if last := polls[len(polls)-1]; last.Query.Get("plan_id") != upSmallID || last.Query.Get("operation") != "update-3" {
		t.Errorf("update's last_operation query = %v, want the previous plan and the update's operation", last.Query)
	}

	unbind, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: "i-1", BindingID: "b-1", Plan: largePlan})
	if err != nil || !unbind.Pending {
		t.Fatalf("Unbind = %+v, %v", unbind, err)
	}
	unbindPoll := adapters.PollRequest{Kind: adapters.OpUnbind, InstanceID: "i-1", BindingID: "b-1", Plan: largePlan, Token: unbind.OperationToken}
	if res, _ = pollUntilDone(t, a, unbindPoll); res.State != adapters.Succeeded {
		t.Errorf("unbind poll = %+v", res)
	}
	// Asked again once the binding is gone, the upstream says 410: done.
	if res, err := a.Poll(ctx, unbindPoll); err != nil || res.State != adapters.Succeeded {
		t.Errorf("unbind poll after 410 = %+v, %v; want succeeded", res, err)
	}

	deprov, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: "i-1", Plan: largePlan})
	if err != nil || !deprov.Pending {
		t.Fatalf("Deprovision = %+v, %v", deprov, err)
	}
	deprovPoll := adapters.PollRequest{Kind: adapters.OpDeprovision, InstanceID: "i-1", Plan: largePlan, Token: deprov.OperationToken}
	if res, _ = pollUntilDone(t, a, deprovPoll); res.State != adapters.Succeeded {
		t.Errorf("deprovision poll = %+v", res)
	}
	if res, err := a.Poll(ctx, deprovPoll); err != nil || res.State != adapters.Succeeded {
		t.Errorf("deprovision poll after 410 = %+v, %v; want succeeded", res, err)
	}
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: "i-1", Plan: largePlan}); !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("repeated Deprovision: %v, want ErrNotFound (410)", err)
	}
}

func TestForwardsIdentityAndContext(t *testing.T) {
	fb := newFakeBroker()
	srv := fb.serve(t)
	a := newAdapter(t, settings(srv.URL))
	ctx := context.Background()

	if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i-1", Plan: smallPlan, Parameters: map[string]any{"size": 3.0}, Origin: cfOrigin}); err != nil {
		t.Fatal(err)
	}
	put := fb.received(http.MethodPut, "/v2/service_instances/i-1")
	if len(put) != 1 {
		t.Fatalf("upstream got %d provision requests", len(put))
	}
	r := put[0]
	if got := r.Header.Get("X-Broker-API-Request-Identity"); got != "req-42" {
		t.Errorf("request identity = %q", got)
	}
	if got := r.Header.Get("X-Broker-API-Version"); got != osb.DefaultAPIVersion {
		t.Errorf("API version = %q", got)
	}
	if r.Query.Get("accepts_incomplete") != "true" {
		t.Errorf("query = %v, want accepts_incomplete=true", r.Query)
	}
	platform, value, _ := strings.Cut(r.Header.Get("X-Broker-API-Originating-Identity"), " ")
	decoded, err := base64.StdEncoding.DecodeString(value)
	if platform != "cloudfoundry" || err != nil {
		t.Fatalf("originating identity = %q %q (%v)", platform, value, err)
	}
	var identity map[string]any
	if err := json.Unmarshal(decoded, &identity); err != nil || identity["organization_guid"] != "org-1" || identity["space_guid"] != "space-1" {
		t.Errorf("originating identity value = %s, want the platform's context", decoded)
	}
	var body struct {
		ServiceID        string         `json:"service_id"`
		PlanID           string         `json:"plan_id"`
		OrganizationGUID string         `json:"organization_guid"`
		SpaceGUID        string         `json:"space_guid"`
		Context          map[string]any `json:"context"`
		Parameters       map[string]any `json:"parameters"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ServiceID != upServiceID || body.PlanID != upSmallID || body.OrganizationGUID != "org-1" || body.SpaceGUID != "space-1" ||
		body.Context["instance_name"] != "my-db" || body.Parameters["size"] != 3.0 {
		t.Errorf("provision body = %s", r.Body)
	}

	if _, err := a.Bind(ctx, adapters.BindRequest{InstanceID: "i-1", BindingID: "b-1", Plan: smallPlan, AppGUID: "app-7", Origin: cfOrigin}); err != nil {
		t.Fatal(err)
	}
	var bind struct {
		AppGUID      string `json:"app_guid"`
		BindResource struct {
			AppGUID string `json:"app_guid"`
		} `json:"bind_resource"`
		Context map[string]any `json:"context"`
	}
	put = fb.received(http.MethodPut, "/service_bindings/b-1")
	if err := json.Unmarshal(put[0].Body, &bind); err != nil || bind.AppGUID != "app-7" || bind.BindResource.AppGUID != "app-7" || bind.Context["space_guid"] != "space-1" {
		t.Errorf("bind body = %s", put[0].Body)
	}
	if put[0].Header.Get("X-Broker-API-Request-Identity") != "req-42" {
		t.Errorf("bind request identity = %q", put[0].Header.Get("X-Broker-API-Request-Identity"))
	}

	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: "i-1", Plan: smallPlan, Origin: cfOrigin}); err != nil {
		t.Fatal(err)
	}
	del := fb.received(http.MethodDelete, "/v2/service_instances/i-1")
	if q := del[0].Query; q.Get("service_id") != upServiceID || q.Get("plan_id") != upSmallID || q.Get("accepts_incomplete") != "true" {
		t.Errorf("deprovision query = %v", q)
	}

	// Kubernetes' context has a cluster and a namespace instead.
	k8s := adapters.Origin{Platform: "kubernetes", Context: json.RawMessage(`{"platform":"kubernetes","clusterid":"c-1","namespace":"ns-1"}`)}
	if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i-2", Plan: smallPlan, Origin: k8s}); err != nil {
		t.Fatal(err)
	}
	put = fb.received(http.MethodPut, "/v2/service_instances/i-2")
	if err := json.Unmarshal(put[0].Body, &body); err != nil || body.OrganizationGUID != "c-1" || body.SpaceGUID != "ns-1" {
		t.Errorf("kubernetes provision body = %s", put[0].Body)
	}
	if put[0].Header.Get("X-Broker-API-Request-Identity") != "" {
		t.Errorf("a request identity was invented: %q", put[0].Header.Get("X-Broker-API-Request-Identity"))
	}
	if !strings.HasPrefix(put[0].Header.Get("X-Broker-API-Originating-Identity"), "kubernetes ") {
		t.Errorf("originating identity = %q", put[0].Header.Get("X-Broker-API-Originating-Identity"))
	}
}

// scripted is an upstream that answers every request with one status and
// body, for the error mapping.
func scripted(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestUpstreamErrorsMapToAdapterErrors(t *testing.T) {
	ctx := context.Background()
	provision := func(a *osb.Adapter) error {
		_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i-1", Plan: smallPlan})
		return err
	}
	bind := func(a *osb.Adapter) error {
		_, err := a.Bind(ctx, adapters.BindRequest{InstanceID: "i-1", BindingID: "b-1", Plan: smallPlan})
		return err
	}
	deprovision := func(a *osb.Adapter) error {
		_, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: "i-1", Plan: smallPlan})
		return err
	}
	unbind := func(a *osb.Adapter) error {
		_, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: "i-1", BindingID: "b-1", Plan: smallPlan})
		return err
	}
	tests := []struct {
		name     string
		status   int
		body     string
		call     func(*osb.Adapter) error
		sentinel error // nil: no sentinel may match
		terminal bool
		contains []string
	}{
		{"409 conflict", 409, `{"description":"exists with other parameters"}`, provision, adapters.ErrAlreadyExists, true, []string{"exists with other parameters"}},
		{"400 bad parameters", 400, `{"error":"BadParams","description":"size must be at most 10"}`, provision, adapters.ErrInvalidParameters, true, []string{"size must be at most 10"}},
		{"410 on deprovision", 410, `{}`, deprovision, adapters.ErrNotFound, false, nil},
		{"410 on unbind", 410, `{}`, unbind, adapters.ErrNotFound, false, nil},
		{"422 concurrency", 422, `{"error":"ConcurrencyError","description":"busy"}`, provision, nil, false, []string{"busy", "ConcurrencyError"}},
		{"422 requires app", 422, `{"error":"RequiresApp","description":"bind an app"}`, bind, adapters.ErrNotSupported, true, []string{"bind an app"}},
		{"422 maintenance info", 422, `{"error":"MaintenanceInfoConflict"}`, provision, adapters.ErrNotSupported, true, []string{"MaintenanceInfoConflict"}},
		{"422 async required", 422, `{"error":"AsyncRequired"}`, provision, nil, true, []string{"accepts_incomplete"}},
		{"500", 500, `{"description":"database on fire"}`, provision, nil, false, []string{"database on fire", "500"}},
		{"502 with an HTML body", 502, `<html>bad gateway</html>`, bind, nil, false, []string{"Bad Gateway"}},
		{"401", 401, `{}`, provision, nil, true, []string{"credentials"}},
		{"412 version", 412, `{"description":"need 2.17"}`, provision, nil, true, []string{"api_version", "2.15"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := scripted(t, tt.status, tt.body)
			err := tt.call(newAdapter(t, settings(srv.URL)))
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range []error{adapters.ErrAlreadyExists, adapters.ErrInvalidParameters, adapters.ErrNotFound, adapters.ErrNotSupported} {
				if errors.Is(err, s) != (s == tt.sentinel) {
					t.Errorf("errors.Is(%v, %v) = %v", err, s, errors.Is(err, s))
				}
			}
			if adapters.IsTerminal(err) != tt.terminal {
				t.Errorf("IsTerminal(%v) = %v, want %v", err, !tt.terminal, tt.terminal)
			}
			for _, want := range tt.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if tt.sentinel != adapters.ErrInvalidParameters && !strings.Contains(err.Error(), srv.URL) {
				t.Errorf("error %q does not name the upstream %s", err, srv.URL)
			}
			if strings.Contains(err.Error(), upPassword) {
				t.Errorf("error %q contains the upstream password", err)
			}
		})
	}
}

func TestPollMapsUpstreamStates(t *testing.T) {
	ctx := context.Background()
	token := func(t *testing.T, srv *httptest.Server) string {
		// The token comes from a real 202, as it would in Agora.
		t.Helper()
		res, err := newAdapter(t, settings(srv.URL)).Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: "i-1", Plan: smallPlan})
		if err != nil || !res.Pending {
			t.Fatalf("Deprovision = %+v, %v", res, err)
		}
		return res.OperationToken
	}
	async := scripted(t, 202, `{"operation":"op-9"}`)
	tok := token(t, async)

	failed := newAdapter(t, settings(scripted(t, 200, `{"state":"failed","description":"disk full"}`).URL))
	res, err := failed.Poll(ctx, adapters.PollRequest{Kind: adapters.OpDeprovision, InstanceID: "i-1", Plan: smallPlan, Token: tok})
	if err != nil || res.State != adapters.Failed || res.Description != "disk full" {
		t.Errorf("failed poll = %+v, %v", res, err)
	}
	gone := newAdapter(t, settings(scripted(t, 410, `{}`).URL))
	if res, err := gone.Poll(ctx, adapters.PollRequest{Kind: adapters.OpDeprovision, InstanceID: "i-1", Plan: smallPlan, Token: tok}); err != nil || res.State != adapters.Succeeded {
		t.Errorf("410 while deprovisioning = %+v, %v; want succeeded", res, err)
	}
	// 410 while creating is not an answer the spec allows: Agora retries.
	if res, err := gone.Poll(ctx, adapters.PollRequest{Kind: adapters.OpProvision, InstanceID: "i-1", Plan: smallPlan}); err == nil {
		t.Errorf("410 while provisioning = %+v, want an error", res)
	}
	weird := newAdapter(t, settings(scripted(t, 200, `{"state":"paused"}`).URL))
	if _, err := weird.Poll(ctx, adapters.PollRequest{Kind: adapters.OpProvision, InstanceID: "i-1", Plan: smallPlan}); err == nil {
		t.Error("unknown state accepted")
	}
	if _, err := weird.Poll(ctx, adapters.PollRequest{Kind: adapters.OpProvision, InstanceID: "i-1", Plan: smallPlan, Token: "garbage"}); !adapters.IsTerminal(err) {
		t.Errorf("garbage token: %v, want a terminal error", err)
	}
}

func TestUpstreamDownNamesTheURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	a := newAdapter(t, settings(url))
	ctx := context.Background()
	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i-1", Plan: smallPlan})
	if err == nil || !strings.Contains(err.Error(), url) || adapters.IsTerminal(err) {
		t.Errorf("Provision against a down upstream: %v; want a retryable error naming %s", err, url)
	}
	if err := a.Ping(ctx); err == nil || !strings.Contains(err.Error(), url) {
		t.Errorf("Ping against a down upstream: %v", err)
	}
}

func TestCallTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	s := settings(srv.URL)
	s["timeout"] = "50ms"
	err := newAdapter(t, s).Ping(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "50ms") || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("Ping against a hung upstream: %v", err)
	}
}

func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	_, err := osb.New(context.Background(), adapters.Config{
		Logger: slog.New(slog.DiscardHandler),
		Settings: adapters.MapSettings(map[string]any{
			"url": "https://agora:s3cr3t-pw@broker.example/", "api_version": "3.0", "timeout": "soon",
		}),
		Plans: []adapters.PlanConfig{
			{Plan: smallPlan, Settings: adapters.MapSettings(map[string]any{})},
			{Plan: largePlan, Settings: adapters.MapSettings(map[string]any{"upstream_plan": "x"})},
		},
	})
	if err == nil {
		t.Fatal("New accepted broken settings")
	}
	for _, want := range []string{"url:", "must not carry credentials", "api_version:", "timeout:", "upstream_service_id:",
		"plans[0] (small): upstream_plan_id: required", `plans[1] (large): json: unknown field "upstream_plan"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("error repeats the password from the URL:\n%v", err)
	}
	_, err = osb.New(context.Background(), adapters.Config{
		Logger:   slog.New(slog.DiscardHandler),
		Settings: adapters.MapSettings(map[string]any{"url": "https://b.example", "username": "u", "password": "vault:a#b", "upstream_service_id": "s"}),
	})
	if err == nil || !strings.Contains(err.Error(), "unresolved vault") {
		t.Errorf("an unresolved reference: %v", err)
	}
}
