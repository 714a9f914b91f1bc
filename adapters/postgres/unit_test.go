package postgres

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

func TestConfigErrorsReportedTogether(t *testing.T) {
	_, err := New(t.Context(), adapters.Config{
		Offering: "postgres",
		Logger:   slog.New(slog.DiscardHandler),
		Settings: adapters.JSONSettings([]byte(`{"host":"", "port": 70000, "sslmode":"sometimes", "admin_pasword":"typo", "public_host":"http://x/"}`)),
		Plans: []adapters.PlanConfig{
			{Plan: adapters.Plan{ID: "1", Name: "small"}, Settings: adapters.JSONSettings([]byte(`{"connection_limit": 0, "allowed_extensions": ["ok", "bad name"]}`))},
			{Plan: adapters.Plan{ID: "2", Name: "large"}, Settings: adapters.JSONSettings([]byte(`{"connection_limt": 5}`))},
		},
	})
	if err == nil {
		t.Fatal("New accepted a broken config")
	}
	for _, want := range []string{
		`unknown field "admin_pasword"`,
		"config: host: required",
		"port: 70000",
		`sslmode: "sometimes"`,
		"public_host:",
		"plans[0] (small): connection_limit: 0",
		`allowed_extensions[1]: "bad name"`,
		`plans[1] (large): json: unknown field "connection_limt"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	s, plans, err := adapters.DecodeConfig[Settings, PlanSettings](adapters.Config{
		Settings: adapters.MapSettings(map[string]any{"host": "db.internal"}),
		Plans:    []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p", Name: "plain"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{ServerSettings: adapters.ServerSettings{Host: "db.internal", Port: 5432, AdminUser: "postgres"}, AdminDatabase: "postgres", SSLMode: "prefer"}
	if s != want {
		t.Errorf("settings = %+v; want %+v", s, want)
	}
	p, err := plans.Lookup(adapters.Plan{Name: "plain"})
	if err != nil || p.connectionLimit() != defaultConnectionLimit {
		t.Errorf("plan by name: %+v, %v", p, err)
	}
	if _, err := plans.Lookup(adapters.Plan{ID: "nope", Name: "nope"}); !errors.Is(err, adapters.ErrNotSupported) || !adapters.IsTerminal(err) {
		t.Errorf("unknown plan: err = %v; want a terminal ErrNotSupported", err)
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("Ω-x", 100)
	for _, id := range []string{"5f1c0a3e-8d2b-4c1f-9e7a-0b1c2d3e4f50", `a"; DROP DATABASE postgres; --`, long, "A", "a"} {
		n := namesFor(id)
		role := n.bindingRole(long)
		for _, name := range []string{n.database, n.owner, role} {
			if len(name) > 63 {
				t.Errorf("%q is %d bytes; PostgreSQL keeps 63", name, len(name))
			}
			if !strings.HasPrefix(name, n.prefix) || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				t.Errorf("%q: want the prefix %s and only [a-z0-9_]", name, n.prefix)
			}
		}
		if namesFor(id) != n {
			t.Errorf("names of %q are not deterministic", id)
		}
	}
	// IDs that sanitize alike must still get distinct names.
	if namesFor("A").database == namesFor("a").database || namesFor("a-b").database == namesFor("a_b").database {
		t.Errorf("distinct IDs share a database name")
	}
}

func TestParseExtensions(t *testing.T) {
	plan := PlanSettings{AllowedExtensions: []string{"hstore", "pgcrypto"}}
	got, err := parseExtensions(map[string]any{"extensions": []any{"hstore", "hstore", "pgcrypto"}}, plan)
	if err != nil || strings.Join(got, ",") != "hstore,pgcrypto" {
		t.Errorf("got %v, %v", got, err)
	}
	if got, err := parseExtensions(nil, plan); err != nil || got != nil {
		t.Errorf("no parameters: %v, %v", got, err)
	}
	if _, err := parseExtensions(map[string]any{"extensions": []any{1.0}}, plan); !errors.Is(err, adapters.ErrInvalidParameters) {
		t.Errorf("a number: err = %v", err)
	}
}

func TestFactoryReturnsNilOnError(t *testing.T) {
	a, err := Factory().New(t.Context(), adapters.Config{Settings: adapters.MapSettings(map[string]any{"port": 0}), Logger: slog.New(slog.DiscardHandler)})
	if err == nil || a != nil {
		t.Errorf("New with broken settings = %v, %v; want a nil Adapter interface and an error", a, err)
	}
}
