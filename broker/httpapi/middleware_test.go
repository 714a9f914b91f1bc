package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker/requestinfo"
)

func TestAuth(t *testing.T) {
	tests := []struct {
		name string
		opt  reqOption
		want int
	}{
		{"first pair", withAuth(testUser, testPassword), http.StatusOK},
		{"second pair, for rotation", withAuth("rotated", "next-pass"), http.StatusOK},
		{"wrong password", withAuth(testUser, "nope"), http.StatusUnauthorized},
		{"password of the other pair", withAuth(testUser, "next-pass"), http.StatusUnauthorized},
		{"wrong username", withAuth("someone", testPassword), http.StatusUnauthorized},
		{"missing", withoutHeader("Authorization"), http.StatusUnauthorized},
		{"not basic", withHeader("Authorization", "Bearer abc"), http.StatusUnauthorized},
	}
	env := newTestEnv(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.serve(osbRequest(http.MethodGet, "/v2/catalog", "", tt.opt))
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			if tt.want != http.StatusUnauthorized {
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="agora"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			if d := description(t, w); !strings.Contains(d, "credentials") {
				t.Errorf("description %q does not say what is wrong", d)
			}
		})
	}
}

func TestAPIVersion(t *testing.T) {
	tests := []struct {
		version string // "" means the header is absent
		want    int
	}{
		{"2.13", http.StatusOK},
		{"2.15", http.StatusOK},
		{"2.17", http.StatusOK},
		{"2.12", http.StatusPreconditionFailed},
		{"2.18", http.StatusPreconditionFailed},
		{"3.0", http.StatusPreconditionFailed},
		{"1.15", http.StatusPreconditionFailed},
		{"abc", http.StatusPreconditionFailed},
		{"2.15.1", http.StatusPreconditionFailed},
		{"2.+15", http.StatusPreconditionFailed},
		{" 2.15", http.StatusPreconditionFailed},
		{"", http.StatusPreconditionFailed},
	}
	env := newTestEnv(t, nil)
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			opt := withHeader("X-Broker-API-Version", tt.version)
			if tt.version == "" {
				opt = withoutHeader("X-Broker-API-Version")
			}
			w := env.serve(osbRequest(http.MethodGet, "/v2/catalog", "", opt))
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			if tt.want == http.StatusPreconditionFailed {
				if d := description(t, w); !strings.Contains(d, "2.13 to 2.17") {
					t.Errorf("description %q does not name the supported range", d)
				}
			}
		})
	}
	// The version check must run before brokerapi, not just on our catalog.
	w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/i1", validBody, withHeader("X-Broker-API-Version", "2.18")))
	if w.Code != http.StatusPreconditionFailed || len(env.broker.Calls()) != 0 {
		t.Errorf("PUT with 2.18: status %d, broker calls %v; want 412 and none", w.Code, env.broker.Calls())
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRequestIdentityIsEchoedEverywhere(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		body   string
		opts   []reqOption
		want   int
	}{
		{"catalog", http.MethodGet, "/v2/catalog", "", nil, http.StatusOK},
		{"provision", http.MethodPut, "/v2/service_instances/i1", validBody, nil, http.StatusCreated},
		{"401", http.MethodGet, "/v2/catalog", "", []reqOption{withAuth("x", "y")}, http.StatusUnauthorized},
		{"412", http.MethodGet, "/v2/catalog", "", []reqOption{withHeader("X-Broker-API-Version", "2.12")}, http.StatusPreconditionFailed},
		{"400 body", http.MethodPut, "/v2/service_instances/i1", "{", nil, http.StatusBadRequest},
		{"400 id", http.MethodPut, "/v2/service_instances/..", validBody, nil, http.StatusBadRequest},
		{"413", http.MethodPut, "/v2/service_instances/i1", `{"p":"` + strings.Repeat("x", 200) + `"}`, nil, http.StatusRequestEntityTooLarge},
		{"415", http.MethodPut, "/v2/service_instances/i1", validBody, []reqOption{withHeader("Content-Type", "text/plain")}, http.StatusUnsupportedMediaType},
		{"404 in /v2", http.MethodGet, "/v2/nope", "", nil, http.StatusNotFound},
		{"500 panic", http.MethodPut, "/v2/service_instances/" + panicID, validBody, nil, http.StatusInternalServerError},
	}
	env := newTestEnv(t, func(o *Options) { o.MaxBodyBytes = 100 })
	for _, tt := range tests {
		for _, given := range []string{"req-from-platform", ""} {
			t.Run(tt.name+"/given="+given, func(t *testing.T) {
				opts := append([]reqOption{withHeader(headerRequestID, given)}, tt.opts...)
				w := env.serve(osbRequest(tt.method, tt.target, tt.body, opts...))
				if w.Code != tt.want {
					t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
				}
				got := w.Header().Get(headerRequestID)
				switch {
				case given != "" && got != given:
					t.Fatalf("%s = %q, want the platform's %q", headerRequestID, got, given)
				case given == "" && w.Code >= 400 && !uuidPattern.MatchString(got):
					t.Fatalf("generated %s = %q on a %d, want a UUID", headerRequestID, got, w.Code)
				case given == "" && w.Code < 400 && got != "":
					t.Fatalf("%s = %q on a %d the platform sent none for, want none", headerRequestID, got, w.Code)
				}
				if w.Code >= 400 {
					if d := description(t, w); !strings.Contains(d, got) {
						t.Errorf("error description %q does not cite request id %q", d, got)
					}
				}
			})
		}
	}
}

func TestBrokerSeesTheRequestID(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, given := range []string{"req-from-platform", ""} {
		w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/i1", validBody, withHeader(headerRequestID, given)))
		if w.Code != http.StatusCreated {
			t.Fatalf("status = %d; body %s", w.Code, w.Body)
		}
		calls := env.broker.callsExcept("Services")
		last := calls[len(calls)-1]
		if given != "" && last.requestID != given {
			t.Errorf("broker saw request id %q, the platform sent %q", last.requestID, given)
		}
		// The access log names the request as the broker (and so the
		// adapter and the audit log) saw it, generated or not.
		logged := env.logs.records(t, "request")
		if id := stringOf(logged[len(logged)-1]["request_id"]); id != last.requestID || id == "" {
			t.Errorf("broker saw request id %q, the access log says %q", last.requestID, id)
		}
	}
}

func encodeIdentity(platform, json string) string {
	return platform + " " + base64.StdEncoding.EncodeToString([]byte(json))
}

func TestOriginatingIdentity(t *testing.T) {
	tests := []struct {
		name         string
		header       string
		wantOK       bool
		wantPlatform string
		wantUser     string
		wantWarn     bool
	}{
		{"absent", "", false, "", "", false},
		{"cloudfoundry", encodeIdentity("cloudfoundry", `{"user_id":"683ea748"}`), true, "cloudfoundry", "683ea748", false},
		{"kubernetes", encodeIdentity("kubernetes", `{"username":"alice","uid":"u-1","groups":["admins"],"extra":{"k":["v"]}}`), true, "kubernetes", "alice", false},
		{"other platform kept raw", encodeIdentity("acme", `{"login":"bob"}`), true, "acme", "", false},
		{"unpadded base64", "cloudfoundry " + base64.RawStdEncoding.EncodeToString([]byte(`{"user_id":"u2"}`)), true, "cloudfoundry", "u2", false},
		{"cf without user_id", encodeIdentity("cloudfoundry", `{}`), true, "cloudfoundry", "", true},
		{"no value", "cloudfoundry", false, "", "", true},
		{"not base64", "cloudfoundry !!!", false, "", "", true},
		{"not JSON", "cloudfoundry " + base64.StdEncoding.EncodeToString([]byte("user")), false, "", "", true},
		{"JSON array", encodeIdentity("kubernetes", `["alice"]`), false, "", "", true},
		{"JSON null", encodeIdentity("kubernetes", `null`), false, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/i1", validBody, withHeader(headerOriginatingIdentity, tt.header)))
			if w.Code != http.StatusCreated {
				t.Fatalf("status = %d, want 201 (a bad identity header must not fail the request); body %s", w.Code, w.Body)
			}
			calls := env.broker.callsExcept("Services")
			if len(calls) != 1 {
				t.Fatalf("broker calls = %v", calls)
			}
			got := calls[0]
			id := got.identity
			if id == nil {
				id = &requestinfo.OriginatingIdentity{}
			}
			if (got.identity != nil) != tt.wantOK || id.Platform != tt.wantPlatform || id.UserID != tt.wantUser {
				t.Errorf("broker saw identity %+v, want platform %q user %q (present %v)", got.identity, tt.wantPlatform, tt.wantUser, tt.wantOK)
			}
			if tt.wantPlatform == "kubernetes" {
				if groups, _ := id.Raw["groups"].([]any); len(groups) != 1 || groups[0] != "admins" {
					t.Errorf("Raw groups = %v", got.identity.Raw["groups"])
				}
			}
			warned := strings.Contains(env.logs.String(), `"level":"WARN"`)
			if warned != tt.wantWarn {
				t.Errorf("warned = %v, want %v; logs:\n%s", warned, tt.wantWarn, env.logs)
			}
			logged := env.logs.records(t, "request")
			if len(logged) != 1 {
				t.Fatalf("access log records = %d, want 1", len(logged))
			}
			if tt.wantOK && (logged[0]["platform"] != tt.wantPlatform || logged[0]["user"] != tt.wantUser) {
				t.Errorf("access log = %v, want platform %q user %q", logged[0], tt.wantPlatform, tt.wantUser)
			}
		})
	}
}

func TestAccessLog(t *testing.T) {
	env := newTestEnv(t, nil)
	secretBody := `{"service_id":"svc","plan_id":"plan","parameters":{"password":"body-secret"}}`
	env.serve(osbRequest(http.MethodPut, "/v2/service_instances/i1?accepts_incomplete=true", secretBody,
		withHeader(headerRequestID, "rid-1"),
		withHeader(headerOriginatingIdentity, encodeIdentity("cloudfoundry", `{"user_id":"u-42"}`))))
	env.serve(osbRequest(http.MethodGet, "/v2/catalog", "", withAuth(testUser, "wrong-pass")))

	records := env.logs.records(t, "request")
	if len(records) != 2 {
		t.Fatalf("access log records = %d, want one per request; logs:\n%s", len(records), env.logs)
	}
	want := map[string]any{"method": "PUT", "path": "/v2/service_instances/i1", "status": float64(201), "request_id": "rid-1", "platform": "cloudfoundry", "user": "u-42"}
	for k, v := range want {
		if records[0][k] != v {
			t.Errorf("record[%s] = %v, want %v", k, records[0][k], v)
		}
	}
	if d, ok := records[0]["duration_ms"].(float64); !ok || d < 0 {
		t.Errorf("record has no duration_ms number: %v", records[0]["duration_ms"])
	}
	if records[1]["status"] != float64(401) {
		t.Errorf("rejected request logged with status %v, want 401", records[1]["status"])
	}
	all := env.logs.String()
	for _, secret := range []string{testPassword, "wrong-pass", "body-secret", "Basic ", "Authorization"} {
		if strings.Contains(all, secret) {
			t.Errorf("logs contain %q:\n%s", secret, all)
		}
	}
}

func TestCatalogIsServedFromBytes(t *testing.T) {
	var current atomic.Pointer[[]byte]
	first := []byte(testCatalog)
	current.Store(&first)
	env := newTestEnv(t, func(o *Options) { o.CatalogJSON = func() []byte { return *current.Load() } })

	w := env.serve(osbRequest(http.MethodGet, "/v2/catalog", ""))
	if w.Code != http.StatusOK || w.Body.String() != testCatalog {
		t.Fatalf("status %d body %q, want 200 and the precomputed bytes", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}

	swapped := []byte(`{"services":[]}`)
	current.Store(&swapped)
	if w := env.serve(osbRequest(http.MethodGet, "/v2/catalog", "")); w.Body.String() != string(swapped) {
		t.Errorf("after swap body = %q, want the new catalog", w.Body)
	}

	empty := []byte(nil)
	current.Store(&empty)
	if w := env.serve(osbRequest(http.MethodGet, "/v2/catalog", "")); w.Code != http.StatusServiceUnavailable {
		t.Errorf("unloaded catalog: status %d, want 503", w.Code)
	}

	if calls := env.broker.Calls(); len(calls) != 0 {
		t.Errorf("broker was called for the catalog: %v", calls)
	}
	if w := env.serve(osbRequest(http.MethodPost, "/v2/catalog", "")); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /v2/catalog: status %d, want 405", w.Code)
	}
}

func TestBodyGuard(t *testing.T) {
	big := `{"p":"` + strings.Repeat("x", 1024) + `"}`
	tests := []struct {
		name   string
		method string
		target string
		body   string
		opts   []reqOption
		want   int
		says   string
	}{
		{"malformed JSON", http.MethodPut, "/v2/service_instances/i1", `{"service_id":`, nil, http.StatusBadRequest, "not valid JSON"},
		{"array", http.MethodPut, "/v2/service_instances/i1", `[` + validBody + `]`, nil, http.StatusBadRequest, "JSON object"},
		{"string", http.MethodPatch, "/v2/service_instances/i1", `"x"`, nil, http.StatusBadRequest, "JSON object"},
		{"trailing garbage", http.MethodPut, "/v2/service_instances/i1", validBody + `x`, nil, http.StatusBadRequest, "not valid JSON"},
		{"two objects", http.MethodPut, "/v2/service_instances/i1/service_bindings/b1", validBody + validBody, nil, http.StatusBadRequest, "not valid JSON"},
		{"oversized", http.MethodPut, "/v2/service_instances/i1", big, nil, http.StatusRequestEntityTooLarge, "512 bytes"},
		{"oversized without Content-Length", http.MethodPatch, "/v2/service_instances/i1", big, []reqOption{func(r *http.Request) { r.ContentLength = -1 }}, http.StatusRequestEntityTooLarge, "512 bytes"},
		{"text/plain", http.MethodPut, "/v2/service_instances/i1", validBody, []reqOption{withHeader("Content-Type", "text/plain")}, http.StatusUnsupportedMediaType, "application/json"},
		{"unparsable content type", http.MethodPut, "/v2/service_instances/i1", validBody, []reqOption{withHeader("Content-Type", "application/json; =")}, http.StatusUnsupportedMediaType, "application/json"},
		{"empty", http.MethodPut, "/v2/service_instances/i1", "", nil, http.StatusBadRequest, "empty"},
		{"service_id a number", http.MethodPut, "/v2/service_instances/i1", `{"service_id":5,"plan_id":"plan"}`, nil, http.StatusBadRequest, "service_id must be a string, not a number"},
		{"plan_id an object", http.MethodPut, "/v2/service_instances/i1/service_bindings/b1", `{"service_id":"svc","plan_id":{}}`, nil, http.StatusBadRequest, "plan_id must be a string, not a JSON object"},
		{"parameters an array", http.MethodPatch, "/v2/service_instances/i1", `{"service_id":"svc","parameters":[1]}`, nil, http.StatusBadRequest, "parameters must be a JSON object, not an array"},
		{"context a string", http.MethodPut, "/v2/service_instances/i1", `{"service_id":"svc","plan_id":"plan","context":"cf"}`, nil, http.StatusBadRequest, "context must be a JSON object, not a string"},
		{"maintenance_info.version a number", http.MethodPatch, "/v2/service_instances/i1", `{"service_id":"svc","maintenance_info":{"version":1}}`, nil, http.StatusBadRequest, "maintenance_info.version must be a string, not a number"},
		{"bind_resource.app_guid a boolean", http.MethodPut, "/v2/service_instances/i1/service_bindings/b1", `{"service_id":"svc","plan_id":"plan","bind_resource":{"app_guid":true}}`, nil, http.StatusBadRequest, "bind_resource.app_guid must be a string, not a boolean"},
		{"provision without service_id", http.MethodPut, "/v2/service_instances/i1", `{"plan_id":"plan"}`, nil, http.StatusBadRequest, "service_id is required"},
		{"provision with empty plan_id", http.MethodPut, "/v2/service_instances/i1", `{"service_id":"svc","plan_id":""}`, nil, http.StatusBadRequest, "plan_id is required"},
		{"update without service_id", http.MethodPatch, "/v2/service_instances/i1", `{"plan_id":"plan"}`, nil, http.StatusBadRequest, "service_id is required"},
		{"bind without plan_id", http.MethodPut, "/v2/service_instances/i1/service_bindings/b1", `{"service_id":"svc"}`, nil, http.StatusBadRequest, "plan_id is required"},
		{"provision of an unknown plan", http.MethodPut, "/v2/service_instances/i1", `{"service_id":"svc","plan_id":"nope"}`, nil, http.StatusBadRequest, `plan "nope" is not known`},
		{"whitespace only", http.MethodPatch, "/v2/service_instances/i1", "  \n", nil, http.StatusBadRequest, "empty"},
		{"provision with empty organization_guid", http.MethodPut, "/v2/service_instances/i1", `{"service_id":"svc","plan_id":"plan","organization_guid":"","space_guid":"s"}`, nil, http.StatusBadRequest, "organization_guid must be a non-empty string"},
		{"provision with empty space_guid", http.MethodPut, "/v2/service_instances/i1", `{"service_id":"svc","plan_id":"plan","organization_guid":"o","space_guid":""}`, nil, http.StatusBadRequest, "space_guid must be a non-empty string"},
		{"update with empty context.platform", http.MethodPatch, "/v2/service_instances/i1", `{"service_id":"svc","context":{"platform":""}}`, nil, http.StatusBadRequest, "context.platform must be a non-empty string"},
		{"bind with empty context.platform", http.MethodPut, "/v2/service_instances/i1/service_bindings/b1", `{"service_id":"svc","plan_id":"plan","context":{"platform":""}}`, nil, http.StatusBadRequest, "context.platform must be a non-empty string"},
	}
	knownPlan := func(serviceID, planID string) error {
		if planID != "plan" {
			return fmt.Errorf("plan %q is not known", planID)
		}
		return nil
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(o *Options) { o.MaxBodyBytes = 512; o.KnownPlan = knownPlan })
			w := env.serve(osbRequest(tt.method, tt.target, tt.body, tt.opts...))
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			d := description(t, w)
			if !strings.Contains(d, tt.says) || !strings.Contains(d, "(request id ") {
				t.Errorf("description %q does not mention %q and the request id", d, tt.says)
			}
			if strings.Contains(d, "Go struct") || strings.Contains(d, "unmarshal") {
				t.Errorf("description %q speaks Go", d)
			}
			if calls := env.broker.Calls(); len(calls) != 0 {
				t.Errorf("broker was called: %v", calls)
			}
		})
	}
}

func TestDeleteNeedsServiceAndPlanIDs(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, target := range []string{
		"/v2/service_instances/i1?plan_id=plan",
		"/v2/service_instances/i1?service_id=svc",
		"/v2/service_instances/i1/service_bindings/b1?service_id=svc",
	} {
		w := env.serve(osbRequest(http.MethodDelete, target, ""))
		if w.Code != http.StatusBadRequest {
			t.Fatalf("DELETE %s = %d, want 400", target, w.Code)
		}
		if d := description(t, w); !strings.Contains(d, "is required on DELETE") || !strings.Contains(d, "(request id ") {
			t.Errorf("DELETE %s: description %q", target, d)
		}
	}
	if calls := env.broker.Calls(); len(calls) != 0 {
		t.Errorf("broker was called: %v", calls)
	}
}

func TestFetchingNeedsAPI214(t *testing.T) {
	env := newTestEnv(t, nil)
	for _, target := range []string{"/v2/service_instances/i1", "/v2/service_instances/i1/service_bindings/b1"} {
		w := env.serve(osbRequest(http.MethodGet, target, "", withHeader("X-Broker-API-Version", "2.13")))
		if w.Code != http.StatusPreconditionFailed || !strings.Contains(description(t, w), "2.14") {
			t.Errorf("GET %s with 2.13 = %d %s, want 412 naming 2.14", target, w.Code, w.Body)
		}
	}
}

func TestTheBrokerReadsTheDecodedBody(t *testing.T) {
	env := newTestEnv(t, nil)
	body := `{"service_id":"svc","plan_id":"plan","organization_guid":"org","context":{"platform":"cloudfoundry"},"parameters":{"size":10}}`
	if w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/i1", body)); w.Code != http.StatusCreated {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	calls := env.broker.callsExcept("Services")
	if len(calls) != 1 || calls[0].body == nil {
		t.Fatalf("broker calls = %+v, want one with the decoded body", calls)
	}
	b := calls[0].body
	if b.ServiceID != "svc" || b.OrganizationGUID != "org" || b.Platform != "cloudfoundry" || b.Parameters["size"] != json.Number("10") || !b.Has("organization_guid") || b.Has("space_guid") {
		t.Errorf("decoded body = %+v", b)
	}
}

func TestLogLevelsSayWhoMustAct(t *testing.T) {
	env := newTestEnv(t, nil)
	env.serve(osbRequest(http.MethodPut, "/v2/service_instances/i1", `{"service_id":5}`))           // a client mistake
	env.serve(osbRequest(http.MethodGet, "/v2/catalog", "", withAuth(testUser, "wrong")))           // a failed login
	env.serve(osbRequest(http.MethodGet, "/v2/service_instances/"+missingID+"/last_operation", "")) // 410 from the broker
	env.serve(httptest.NewRequest(http.MethodGet, "/healthz", nil))                                 // a probe
	levels := map[float64]string{}
	for _, rec := range env.logs.records(t, "request") {
		levels[rec["status"].(float64)] = rec["level"].(string)
	}
	want := map[float64]string{400: "INFO", 401: "WARN", 410: "INFO", 200: "DEBUG"}
	for status, level := range want {
		if levels[status] != level {
			t.Errorf("status %v logged at %q, want %q (all: %v)", status, levels[status], level, levels)
		}
	}
	if strings.Contains(env.logs.String(), `"level":"ERROR"`) {
		t.Errorf("an expected client outcome was logged at ERROR:\n%s", env.logs)
	}
}

func TestBodyGuardPassesGoodBodies(t *testing.T) {
	tests := []struct {
		name   string
		method string
		target string
		opts   []reqOption
		want   int
	}{
		{"provision", http.MethodPut, "/v2/service_instances/i1", nil, http.StatusCreated},
		{"charset parameter", http.MethodPut, "/v2/service_instances/i1", []reqOption{withHeader("Content-Type", "application/json; charset=utf-8")}, http.StatusCreated},
		{"no content type", http.MethodPut, "/v2/service_instances/i1", []reqOption{withoutHeader("Content-Type")}, http.StatusCreated},
		{"update", http.MethodPatch, "/v2/service_instances/i1", nil, http.StatusOK},
		{"bind", http.MethodPut, "/v2/service_instances/i1/service_bindings/b1", nil, http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			w := env.serve(osbRequest(tt.method, tt.target, "  "+validBody+"\n", tt.opts...))
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
		})
	}
	// A DELETE body means nothing in OSB and must not be judged.
	env := newTestEnv(t, nil)
	r := osbRequest(http.MethodDelete, "/v2/service_instances/i1?service_id=svc&plan_id=plan", "not json", withHeader("Content-Type", "text/plain"))
	if w := env.serve(r); w.Code != http.StatusOK {
		t.Errorf("DELETE with a junk body: status %d, want 200; body %s", w.Code, w.Body)
	}
}

func TestOddIDs(t *testing.T) {
	long := strings.Repeat("a", 300)
	tests := []struct {
		name   string
		method string
		target string
		says   string
	}{
		{"encoded slash", http.MethodPut, "/v2/service_instances/a%2Fb", `"/"`},
		{"encoded slash in binding", http.MethodPut, "/v2/service_instances/i1/service_bindings/a%2fb", "binding ID"},
		{"300 bytes", http.MethodPut, "/v2/service_instances/" + long, "300 bytes"},
		{"300 bytes in last_operation", http.MethodGet, "/v2/service_instances/" + long + "/last_operation", "300 bytes"},
		{"dot dot", http.MethodPut, "/v2/service_instances/..", `".."`},
		{"dot", http.MethodGet, "/v2/service_instances/.", `"."`},
		{"encoded dot dot", http.MethodDelete, "/v2/service_instances/%2E%2E?service_id=svc&plan_id=plan", `".."`},
		{"dot dot binding", http.MethodGet, "/v2/service_instances/i1/service_bindings/../last_operation", "binding ID"},
		{"empty instance", http.MethodGet, "/v2/service_instances//last_operation", "empty"},
		{"empty instance before binding", http.MethodPut, "/v2/service_instances//service_bindings/b1", "empty"},
		{"empty binding", http.MethodPut, "/v2/service_instances/i1/service_bindings/", "empty"},
		{"NUL", http.MethodPut, "/v2/service_instances/a%00b", "control"},
		{"newline", http.MethodPut, "/v2/service_instances/a%0Ab", "control"},
		{"DEL", http.MethodPut, "/v2/service_instances/a%7Fb", "control"},
		{"invalid UTF-8", http.MethodPut, "/v2/service_instances/a%FFb", "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, nil)
			body := ""
			if tt.method == http.MethodPut {
				body = validBody
			}
			w := env.serve(osbRequest(tt.method, tt.target, body))
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", w.Code, w.Body)
			}
			d := description(t, w)
			if !strings.Contains(d, tt.says) || !strings.Contains(d, "(request id ") {
				t.Errorf("description %q does not mention %q and the request id", d, tt.says)
			}
			if strings.Contains(d, "Go struct") || strings.Contains(d, "unmarshal") {
				t.Errorf("description %q speaks Go", d)
			}
			if calls := env.broker.Calls(); len(calls) != 0 {
				t.Errorf("broker was called: %v", calls)
			}
		})
	}
}

func TestEncodedIDsReachTheBrokerDecoded(t *testing.T) {
	tests := []struct {
		target      string
		wantInst    string
		wantBinding string
	}{
		{"/v2/service_instances/abc%41", "abcA", ""},
		{"/v2/service_instances/caf%C3%A9%20x", "café x", ""},
		{"/v2/service_instances/" + strings.Repeat("a", 255), strings.Repeat("a", 255), ""},
		{"/v2/service_instances/i%2D1/service_bindings/b%3A1", "i-1", "b:1"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			env := newTestEnv(t, nil)
			w := env.serve(osbRequest(http.MethodPut, tt.target, validBody))
			if w.Code != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", w.Code, w.Body)
			}
			calls := env.broker.callsExcept("Services")
			if len(calls) != 1 || calls[0].instanceID != tt.wantInst || calls[0].bindingID != tt.wantBinding {
				t.Errorf("broker calls = %+v, want instance %q binding %q", calls, tt.wantInst, tt.wantBinding)
			}
		})
	}
}

func TestUnknownRoutesAreJSON(t *testing.T) {
	env := newTestEnv(t, nil)
	tests := []struct {
		name string
		req  *http.Request
		want int
	}{
		{"root", httptest.NewRequest(http.MethodGet, "/nope", nil), http.StatusNotFound},
		{"bare /v2", httptest.NewRequest(http.MethodGet, "/v2", nil), http.StatusNotFound},
		{"under /v2", osbRequest(http.MethodGet, "/v2/service_plans", ""), http.StatusNotFound},
		{"too deep", osbRequest(http.MethodGet, "/v2/service_instances/a/b", ""), http.StatusNotFound},
		{"wrong method under /v2", osbRequest(http.MethodPost, "/v2/service_instances/i1", validBody), http.StatusMethodNotAllowed},
		{"wrong method on healthz", httptest.NewRequest(http.MethodPost, "/healthz", nil), http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := env.serve(tt.req)
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			description(t, w)
		})
	}
	// Unknown /v2 routes are still behind auth: no probing without credentials.
	if w := env.serve(osbRequest(http.MethodGet, "/v2/service_plans", "", withoutHeader("Authorization"))); w.Code != http.StatusUnauthorized {
		t.Errorf("unauthenticated unknown /v2 route: status %d, want 401", w.Code)
	}
}

func TestRetryAfterOnLastOperation(t *testing.T) {
	tests := []struct {
		name       string
		target     string
		retryAfter time.Duration // 0 for the default
		want       int
		wantHeader string
	}{
		{"instance", "/v2/service_instances/i1/last_operation", 0, http.StatusOK, "5"},
		{"binding", "/v2/service_instances/i1/service_bindings/b1/last_operation", 0, http.StatusOK, "5"},
		{"rounded up", "/v2/service_instances/i1/last_operation", 1500 * time.Millisecond, http.StatusOK, "2"},
		{"gone gets none", "/v2/service_instances/" + missingID + "/last_operation", 0, http.StatusGone, ""},
		{"not a poll", "/v2/service_instances/i1", 0, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t, func(o *Options) { o.RetryAfter = tt.retryAfter })
			w := env.serve(osbRequest(http.MethodGet, tt.target, ""))
			if w.Code != tt.want {
				t.Fatalf("status = %d, want %d; body %s", w.Code, tt.want, w.Body)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantHeader {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantHeader)
			}
		})
	}
}

func TestPanicsAnswer500AndServingGoesOn(t *testing.T) {
	env := newTestEnv(t, nil)
	w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/"+panicID, validBody, withHeader(headerRequestID, "rid-panic")))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500; body %s", w.Code, w.Body)
	}
	if d := description(t, w); !strings.Contains(d, "rid-panic") {
		t.Errorf("description %q does not cite the request id", d)
	}
	panics := env.logs.records(t, "panic serving request")
	if len(panics) != 1 || !strings.Contains(panics[0]["stack"].(string), "Provision") || panics[0]["request_id"] != "rid-panic" {
		t.Errorf("panic log = %v, want one record with the stack and request id", panics)
	}
	if access := env.logs.records(t, "request"); len(access) != 1 || access[0]["status"] != float64(500) {
		t.Errorf("access log = %v, want one record with status 500", access)
	}
	if w := env.serve(osbRequest(http.MethodPut, "/v2/service_instances/i2", validBody)); w.Code != http.StatusCreated {
		t.Errorf("request after the panic: status %d, want 201", w.Code)
	}
}
