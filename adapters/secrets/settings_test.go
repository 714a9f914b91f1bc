package secrets_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/secrets"
)

func defaultPlans() []adapters.PlanConfig {
	return []adapters.PlanConfig{{
		Plan:     adapters.Plan{ID: "plan-default-id", Name: "default"},
		Settings: adapters.MapSettings(map[string]any{"token_ttl": "1h", "secret_id_ttl": "0s"}),
	}}
}

func TestFactory(t *testing.T) {
	f := secrets.Factory()
	if f.Name != "secrets" || f.Description == "" || strings.Contains(f.Description, "\n") || f.New == nil {
		t.Fatalf("Factory() = %+v, want name secrets, a one-line description and New", f)
	}
}

func TestNewRejectsBadSettings(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		plans    []adapters.PlanConfig
		want     []string // every one must appear in the one error
	}{
		{
			name:     "unknown field",
			settings: map[string]any{"vault_addr": "http://127.0.0.1:8200", "token": "t", "mount_prefix": "x"},
			want:     []string{`unknown field "mount_prefix"`},
		},
		{
			name:     "missing vault_addr and token are reported together",
			settings: map[string]any{},
			want:     []string{"vault_addr: required", "token: required"},
		},
		{
			name: "bad addresses and paths",
			settings: map[string]any{
				"vault_addr": "127.0.0.1:8200", "token": "t", "public_vault_addr": "ftp://x",
				"kv_mount": "se*cret", "path_prefix": "a/../b", "approle_mount": `app"role`,
			},
			want: []string{"vault_addr:", "public_vault_addr:", "kv_mount:", "path_prefix:", "approle_mount:"},
		},
		{
			name:     "bad plan settings, every plan",
			settings: map[string]any{"vault_addr": "http://127.0.0.1:8200", "token": "t"},
			plans: []adapters.PlanConfig{
				{Plan: adapters.Plan{ID: "p1", Name: "one"}, Settings: adapters.MapSettings(map[string]any{"token_ttl": "soon", "secret_id_ttl": "-1s", "max_secrets": 0})},
				{Plan: adapters.Plan{ID: "p2", Name: "two"}, Settings: adapters.MapSettings(map[string]any{"token_ttl": "0s", "ttl": "1h"})},
			},
			want: []string{"plans[0] (one): token_ttl:", "secret_id_ttl:", "max_secrets:", "plans[1] (two):", `unknown field "ttl"`},
		},
		{
			name:     "renew_window needs a secret_id_ttl and must fit in it",
			settings: map[string]any{"vault_addr": "http://127.0.0.1:8200", "token": "t"},
			plans: []adapters.PlanConfig{
				{Plan: adapters.Plan{ID: "p1", Name: "forever"}, Settings: adapters.MapSettings(map[string]any{"renew_window": "1m"})},
				{Plan: adapters.Plan{ID: "p2", Name: "short"}, Settings: adapters.MapSettings(map[string]any{"secret_id_ttl": "1h", "renew_window": "2h"})},
				{Plan: adapters.Plan{ID: "p3", Name: "typo"}, Settings: adapters.MapSettings(map[string]any{"secret_id_ttl": "1h", "renew_window": "soon"})},
			},
			want: []string{"plans[0] (forever): renew_window", "needs a secret_id_ttl", "plans[1] (short): renew_window", "less than secret_id_ttl", "plans[2] (typo): renew_window"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plans := tc.plans
			if plans == nil {
				plans = defaultPlans()
			}
			_, err := secrets.Factory().New(t.Context(), adapters.Config{
				Offering: "secrets-test", Settings: adapters.MapSettings(tc.settings), Plans: plans,
				Logger: slog.New(slog.DiscardHandler),
			})
			if err == nil {
				t.Fatal("New accepted bad settings")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSettingsDefaults(t *testing.T) {
	// Only vault_addr and token are required; "secret/" is accepted as the
	// mount path people habitually write.
	s := secrets.Settings{VaultAddr: "https://vault.example.com", Token: "t", KVMount: "secret/"}
	s.ApplyDefaults()
	if s.KVMount != "secret" || s.PathPrefix != secrets.DefaultPathPrefix || s.PublicVaultAddr != s.VaultAddr {
		t.Errorf("defaults: %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if err := (secrets.PlanSettings{}).Validate(); err != nil {
		t.Fatalf("empty plan settings: %v", err)
	}
}

func TestVaultName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9-]+$`)
	ids := []string{
		"6a4f8e0c-5d1e-4c2b-9f5a-2b7c1d0e3f4a", // a GUID stays readable
		"6A4F8E0C-5D1E-4C2B-9F5A-2B7C1D0E3F4A",
		"abc", "ABC", "a--b", "a-b", "a b", "a/b", "a/../b", "-abc", "abc-", "", "///", "é",
		strings.Repeat("x", 64), strings.Repeat("x", 65), strings.Repeat("x", 200), strings.Repeat("x", 201),
		"path\"injection\n# comment", "*", "x*",
	}
	seen := map[string]string{}
	for _, id := range ids {
		got := secrets.VaultName(id)
		if !valid.MatchString(got) || len(got) > 64 {
			t.Errorf("VaultName(%q) = %q: want 1..64 of [a-z0-9-]", id, got)
		}
		if again := secrets.VaultName(id); again != got {
			t.Errorf("VaultName(%q) not deterministic: %q then %q", id, got, again)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("VaultName(%q) = SafeName(%q) = %q: two instances would share a space", id, prev, got)
		}
		seen[got] = id
	}
	if got := secrets.VaultName(ids[0]); got != ids[0] {
		t.Errorf("a GUID changed: %q", got)
	}
	// An ID crafted to look like another ID's changed form must not meet it.
	if crafted := secrets.VaultName("ABC"); secrets.VaultName(crafted) == crafted {
		t.Errorf("the changed form %q maps to itself, so an instance with that ID would share ABC's space", crafted)
	}
}

// closedAddr returns an http:// address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestVaultDown(t *testing.T) {
	addr := closedAddr(t)
	a := newAdapter(t, map[string]any{"vault_addr": addr, "token": "t"})
	ctx := t.Context()

	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "down-1", Plan: defaultPlans()[0].Plan})
	assertNamesVault(t, "Provision", err, addr)
	_, err = a.Bind(ctx, adapters.BindRequest{InstanceID: "down-1", BindingID: "b-1", Plan: defaultPlans()[0].Plan})
	assertNamesVault(t, "Bind", err, addr)
	_, err = a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: "down-1", Plan: defaultPlans()[0].Plan})
	assertNamesVault(t, "Deprovision", err, addr)
	if errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Deprovision against a dead Vault claims the instance is gone: %v", err)
	}
	assertNamesVault(t, "Ping", a.Ping(ctx), addr)
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func assertNamesVault(t *testing.T, op string, err error, addr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s against a closed port succeeded", op)
	}
	if msg := err.Error(); !strings.Contains(msg, "vault at "+addr) {
		t.Errorf("%s error %q does not name vault and %s", op, msg, addr)
	}
	if adapters.IsTerminal(err) {
		t.Errorf("%s: a Vault that is down is worth retrying, but the error is terminal: %v", op, err)
	}
}

func TestRejectsParametersAndUnknownPlans(t *testing.T) {
	// Both are checked before Vault is contacted, so no Vault is needed.
	a := newAdapter(t, map[string]any{"vault_addr": closedAddr(t), "token": "t"})
	ctx := context.Background()
	plan := defaultPlans()[0].Plan

	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i", Plan: plan, Parameters: map[string]any{"size": "big"}})
	if !errors.Is(err, adapters.ErrInvalidParameters) || !strings.Contains(err.Error(), "size") {
		t.Errorf("Provision with parameters: %v, want ErrInvalidParameters naming size", err)
	}
	_, err = a.Bind(ctx, adapters.BindRequest{InstanceID: "i", BindingID: "b", Plan: plan, Parameters: map[string]any{"ttl": 1.0}})
	if !errors.Is(err, adapters.ErrInvalidParameters) {
		t.Errorf("Bind with parameters: %v, want ErrInvalidParameters", err)
	}
	_, err = a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i", Plan: adapters.Plan{ID: "nope", Name: "nope"}})
	if err == nil || !adapters.IsTerminal(err) {
		t.Errorf("Provision for an unknown plan: %v, want a terminal error", err)
	}
}

func newAdapter(t testing.TB, settings map[string]any) *secrets.Adapter {
	t.Helper()
	a, err := secrets.New(t.Context(), adapters.Config{
		Offering: "secrets-test",
		Producer: "platform-team",
		Settings: adapters.MapSettings(settings),
		Plans:    defaultPlans(),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}
