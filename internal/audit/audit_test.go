package audit

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker/requestinfo"
)

func names(serviceID, planID string) (string, string, string, bool) {
	if serviceID == "svc-1" {
		return "postgres", map[string]string{"plan-1": "small"}[planID], "data-team", true
	}
	return "", "", "", false
}

func TestRecords(t *testing.T) {
	withOutcome := func(info *requestinfo.Info, o requestinfo.Outcome) *requestinfo.Info { info.SetOutcome(o); return info }
	tests := []struct {
		name   string
		info   *requestinfo.Info
		method string
		status int
		want   *Record // nil: no line
	}{
		{"a provision", &requestinfo.Info{ID: "r1", Surface: requestinfo.SurfaceOSB, Endpoint: "provision",
			Resource:    map[string]string{"instance_id": "i1"},
			Principal:   requestinfo.Principal{Kind: requestinfo.PrincipalPlatform, Name: "cc"},
			Originating: &requestinfo.OriginatingIdentity{Platform: "cloudfoundry", UserID: "u-42"},
			Body:        &requestinfo.Body{ServiceID: "svc-1", PlanID: "plan-1", Parameters: map[string]any{"password": "MARKER"}}},
			http.MethodPut, 201,
			&Record{RequestID: "r1", Who: Who{Principal: "platform:cc", Platform: "cloudfoundry", User: "u-42"},
				What:   What{Surface: "osb", Action: "provision", Method: "PUT", Target: map[string]string{"instance_id": "i1", "service_id": "svc-1", "plan_id": "plan-1"}, Offering: "postgres", Plan: "small", Producer: "data-team"},
				Result: Result{Status: 201}}},
		{"a failed deprovision", withOutcome(&requestinfo.Info{ID: "r2", Surface: requestinfo.SurfaceOSB, Endpoint: "deprovision",
			Resource: map[string]string{"instance_id": "i1", "service_id": "svc-1", "plan_id": "plan-1"}}, requestinfo.Outcome{Error: "redis: down", Owner: "redis"}),
			http.MethodDelete, 503,
			&Record{RequestID: "r2", What: What{Surface: "osb", Action: "deprovision", Method: "DELETE",
				Target: map[string]string{"instance_id": "i1", "service_id": "svc-1", "plan_id": "plan-1"}, Offering: "postgres", Plan: "small", Producer: "data-team"},
				Result: Result{Status: 503, Owner: "redis"}}},
		{"an admin approval", &requestinfo.Info{ID: "r3", Surface: requestinfo.SurfaceAdmin, Endpoint: "admin_approve_slice",
			Resource: map[string]string{"name": "team-x", "version": "3"}, Principal: requestinfo.Principal{Kind: requestinfo.PrincipalAdmin, Name: "ops"}},
			http.MethodPost, 200,
			&Record{RequestID: "r3", Who: Who{Principal: "admin:ops"}, What: What{Surface: "admin", Action: "admin_approve_slice", Method: "POST",
				Target: map[string]string{"name": "team-x", "version": "3"}, Producer: "team-x"}, Result: Result{Status: 200}}},
		{"a refused login is part of the trail", &requestinfo.Info{ID: "r4", Surface: requestinfo.SurfaceProducer, Endpoint: "producer_apply",
			Resource: map[string]string{"name": "team-x"}}, http.MethodPut, 401,
			&Record{RequestID: "r4", What: What{Surface: "producer", Action: "producer_apply", Method: "PUT", Target: map[string]string{"name": "team-x"}, Producer: "team-x"},
				Result: Result{Status: 401}}},
		{"a read", &requestinfo.Info{ID: "r5", Surface: requestinfo.SurfaceOSB, Endpoint: "last_operation"}, http.MethodGet, 200, nil},
		{"a probe", &requestinfo.Info{ID: "r6", Surface: requestinfo.SurfaceHealth, Endpoint: "readyz"}, http.MethodPost, 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := New(&buf, names)
			at := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
			l.now = func() time.Time { return at }
			l.RequestDone(tt.info, tt.method, tt.status, time.Millisecond)
			if tt.want == nil {
				if buf.Len() != 0 {
					t.Fatalf("wrote %s, want nothing", buf.String())
				}
				return
			}
			if strings.Count(buf.String(), "\n") != 1 {
				t.Fatalf("want one line, got %q", buf.String())
			}
			if strings.Contains(buf.String(), "MARKER") || strings.Contains(buf.String(), "password") {
				t.Fatalf("the audit line holds a parameter: %s", buf.String())
			}
			var got Record
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			tt.want.Time, tt.want.Audit = at, true
			wantJSON, _ := json.Marshal(tt.want)
			gotJSON, _ := json.Marshal(got)
			if string(wantJSON) != string(gotJSON) {
				t.Errorf("record\n got %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
}
