package redis

import (
	"context"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

func TestSettingsValidation(t *testing.T) {
	tests := []struct {
		name     string
		settings string
		plan     string
		wantErrs []string // every one must appear in the single error
	}{
		{
			name:     "valid",
			settings: `{"addr":"127.0.0.1:6379","admin_username":"","admin_password":"","public_host":"","key_prefix_root":"svc"}`,
			plan:     `{"acl_categories":["+@read","+@write","+@connection","-@dangerous","-@admin"]}`,
		},
		{
			name:     "unknown field",
			settings: `{"addr":"127.0.0.1:6379","key_prefix_root":"svc","adress":"x"}`,
			plan:     `{"acl_categories":["+@read"]}`,
			wantErrs: []string{`unknown field "adress"`},
		},
		{
			name:     "unknown plan field",
			settings: `{"addr":"127.0.0.1:6379","key_prefix_root":"svc"}`,
			plan:     `{"acl_categories":["+@read"],"maxmemory":"1gb"}`,
			wantErrs: []string{`plans[0] (small)`, `unknown field "maxmemory"`},
		},
		{
			name:     "all problems at once",
			settings: `{"addr":"localhost","public_host":"redis.example.com:6379","key_prefix_root":"svc:*","admin_password":"vault:secret/redis#password"}`,
			plan:     `{"acl_categories":["@read","+@raed","-@admin","read"],"commands":["+FLUSHALL"]}`,
			wantErrs: []string{
				"addr:", "public_host:", "key_prefix_root:", "admin_password:",
				`acl_categories[0]: "@read"`, `acl_categories[1]: "+@raed" names an unknown ACL category`,
				`acl_categories[3]: "read"`, `commands[0]: "+FLUSHALL"`,
			},
		},
		{
			name:     "missing required",
			settings: `{}`,
			plan:     `{}`,
			wantErrs: []string{"addr: required", "key_prefix_root: required", "acl_categories: required"},
		},
		{
			name:     "bad port, reserved root, plan grants nothing",
			settings: `{"addr":"127.0.0.1:70000","key_prefix_root":"agora"}`,
			plan:     `{"acl_categories":["-@all"]}`,
			wantErrs: []string{"addr: port", `"agora" is reserved`, "grants nothing"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Factory().New(context.Background(), adapters.Config{
				Offering: "redis",
				Settings: adapters.JSONSettings([]byte(tt.settings)),
				Plans:    []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}, Settings: adapters.JSONSettings([]byte(tt.plan))}},
			})
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted invalid config; want errors %q", tt.wantErrs)
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestSafeID(t *testing.T) {
	tests := []struct{ id, want string }{
		{"6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f", "6f1c2b1e8d2a4c3b9e4f0a1b2c3d4e5f"},
		{"abc123", "abc123"},
		{"a-b", "x"},                   // hashed: contains '-' but is no UUID
		{"ABC", "x"},                   // hashed: upper case would alias "abc"
		{"a*b", "x"},                   // hashed: glob characters
		{strings.Repeat("a", 25), "x"}, // hashed: too long
	}
	for _, tt := range tests {
		got := safeID(tt.id)
		if tt.want == "x" {
			if len(got) != 32 || got[0] != 'x' || strings.ContainsAny(got, "-*?[]\\:") {
				t.Errorf("safeID(%q) = %q, want 'x' + 31 hex characters", tt.id, got)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("safeID(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
	if safeID("a-b") == safeID("a-c") {
		t.Error("different IDs hash alike")
	}
	if u := bindingUserName("a", "b-c"); !strings.HasPrefix(u, instanceUserPrefix("a")) || strings.HasPrefix(bindingUserName("a-b", "c"), instanceUserPrefix("a")) {
		t.Errorf("user prefix is ambiguous: %s", u)
	}
}
