package redis

import (
	"context"
	"log/slog"
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
				Logger:   slog.New(slog.DiscardHandler),
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

// TestUserPrefixIsUnambiguous: Deprovision deletes every user with the
// instance's prefix, so no other instance's user may carry it.
func TestUserPrefixIsUnambiguous(t *testing.T) {
	if u := bindingUserName("a", "b-c"); !strings.HasPrefix(u, instanceUserPrefix("a")) {
		t.Errorf("%s, a user of instance a, lacks its prefix %s", u, instanceUserPrefix("a"))
	}
	for _, other := range [][2]string{{"a-b", "c"}, {"ab", "c"}, {"A", "c"}} {
		if u := bindingUserName(other[0], other[1]); strings.HasPrefix(u, instanceUserPrefix("a")) {
			t.Errorf("%s, a user of instance %s, has instance a's prefix", u, other[0])
		}
	}
}
