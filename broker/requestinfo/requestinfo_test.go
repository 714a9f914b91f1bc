package requestinfo

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestDecodeBody(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
		check   func(t *testing.T, b *Body)
	}{
		{name: "cloud foundry provision", body: `{"service_id":"s","plan_id":"p","organization_guid":"o","space_guid":"sp",
			"context":{"platform":"cloudfoundry","organization_name":"org"},"parameters":{"size":10,"big":12345678901234567890},
			"maintenance_info":{"version":"1.2.0","description":"d"}}`,
			check: func(t *testing.T, b *Body) {
				if b.ServiceID != "s" || b.PlanID != "p" || b.OrganizationGUID != "o" || b.SpaceGUID != "sp" || b.Platform != "cloudfoundry" {
					t.Errorf("body %+v", b)
				}
				if b.MaintenanceInfo == nil || b.MaintenanceInfo.Version != "1.2.0" {
					t.Errorf("maintenance_info %+v", b.MaintenanceInfo)
				}
				// Numbers stay exact: schemas and fingerprints see what was sent.
				if b.Parameters["size"] != json.Number("10") || b.Parameters["big"] != json.Number("12345678901234567890") {
					t.Errorf("parameters %#v", b.Parameters)
				}
				if !strings.Contains(string(b.Context), "organization_name") {
					t.Errorf("context %s", b.Context)
				}
			}},
		{name: "bind with bind_resource", body: `{"service_id":"s","plan_id":"p","bind_resource":{"app_guid":"a","route":""},"predecessor_binding_id":"old"}`,
			check: func(t *testing.T, b *Body) {
				if b.BindResourceAppGUID != "a" || b.BindResource["route"] != "" || b.PredecessorBindingID != "old" {
					t.Errorf("body %+v", b)
				}
			}},
		{name: "absent and null are alike", body: `{"service_id":"s","parameters":null,"context":null,"space_guid":null}`,
			check: func(t *testing.T, b *Body) {
				if b.Parameters == nil || len(b.Parameters) != 0 || b.Context != nil || b.Has("space_guid") || b.Has("parameters") {
					t.Errorf("body %+v", b)
				}
				if !b.Has("service_id") {
					t.Error("Has(service_id) = false")
				}
			}},
		{name: "present but empty is present", body: `{"organization_guid":""}`,
			check: func(t *testing.T, b *Body) {
				if !b.Has("organization_guid") || b.OrganizationGUID != "" {
					t.Errorf("body %+v", b)
				}
			}},
		{name: "unknown fields are ignored", body: `{"service_id":"s","x-future":[1,2]}`},
		{name: "service_id number", body: `{"service_id":5}`, wantErr: "service_id must be a string, not a number"},
		{name: "plan_id array", body: `{"plan_id":["p"]}`, wantErr: "plan_id must be a string, not an array"},
		{name: "parameters string", body: `{"parameters":"a=b"}`, wantErr: "parameters must be a JSON object, not a string"},
		{name: "context boolean", body: `{"context":true}`, wantErr: "context must be a JSON object, not a boolean"},
		{name: "context.platform number", body: `{"context":{"platform":1}}`, wantErr: "context.platform must be a string, not a number"},
		{name: "maintenance_info string", body: `{"maintenance_info":"1.0.0"}`, wantErr: "maintenance_info must be a JSON object, not a string"},
		{name: "bind_resource.app_guid object", body: `{"bind_resource":{"app_guid":{}}}`, wantErr: "bind_resource.app_guid must be a string, not a JSON object"},
		{name: "not an object", body: `[]`, wantErr: "the request body must be a JSON object, not an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := DecodeBody([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, b)
			}
		})
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{"2.15": {2, 15}, "2.17": {2, 17}, "10.0": {10, 0}} {
		if got, ok := ParseVersion(in); !ok || got != want {
			t.Errorf("ParseVersion(%q) = %v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "2", "2.", ".1", "2.15.1", " 2.15", "2.+15", "a.b"} {
		if _, ok := ParseVersion(bad); ok {
			t.Errorf("ParseVersion(%q) accepted", bad)
		}
	}
	if !(Version{2, 15}).AtLeast(2, 14) || (Version{2, 13}).AtLeast(2, 14) {
		t.Error("AtLeast is wrong")
	}
}

func TestInfoInContext(t *testing.T) {
	if From(context.Background()) != nil || ID(context.Background()) != "" {
		t.Error("an empty context has request info")
	}
	var nilInfo *Info
	nilInfo.SetOutcome(Outcome{Error: "x"}) // a nil Info accepts every call
	if nilInfo.Outcome() != (Outcome{}) || nilInfo.Platform() != "" {
		t.Error("a nil Info remembers things")
	}
	info := &Info{ID: "rid", Body: &Body{Platform: "kubernetes"}}
	ctx := With(context.Background(), info)
	if ID(ctx) != "rid" || From(ctx).Platform() != "kubernetes" {
		t.Errorf("info from context = %+v", From(ctx))
	}
	info.Originating = &OriginatingIdentity{Platform: "cloudfoundry"}
	if info.Platform() != "cloudfoundry" {
		t.Error("the originating identity's platform should win over the context's")
	}
	info.SetOutcome(Outcome{Error: "chain", Owner: "redis"})
	if From(ctx).Outcome().Owner != "redis" {
		t.Error("outcome lost")
	}
}

func TestQuoteTruncates(t *testing.T) {
	if got := Quote("abc"); got != `"abc"` {
		t.Errorf("Quote = %s", got)
	}
	long := strings.Repeat("é", 100) // 2 bytes each: a cut must not split one
	got := Quote(long)
	if len(got) > maxQuoted+8 || !strings.HasSuffix(got, `..."`) || strings.Contains(got, `\x`) {
		t.Errorf("Quote(long) = %s", got)
	}
}
