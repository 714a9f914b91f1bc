package mysql

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/agora-osb/agora/adapters"
)

func TestConfigErrorsReportedTogether(t *testing.T) {
	_, err := New(t.Context(), adapters.Config{
		Offering: "mysql",
		Logger:   slog.New(slog.DiscardHandler),
		Settings: adapters.JSONSettings([]byte(`{"host":"", "port": -1, "tls":"maybe", "adminuser":"root"}`)),
		Plans: []adapters.PlanConfig{
			{Plan: adapters.Plan{ID: "1", Name: "small"}, Settings: adapters.JSONSettings([]byte(`{"max_user_connections": -5}`))},
			{Plan: adapters.Plan{ID: "2", Name: "async"}, Settings: adapters.JSONSettings([]byte(`{"max_connections": 5}`))},
		},
	})
	if err == nil {
		t.Fatal("New accepted a broken config")
	}
	for _, want := range []string{
		`unknown field "adminuser"`,
		"config: host: required",
		"port: -1",
		`tls: "maybe"`,
		"plans[0] (small): max_user_connections: -5",
		`plans[1] (async): json: unknown field "max_connections"`,
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
	if want := (Settings{ServerSettings: adapters.ServerSettings{Host: "db.internal", Port: 3306, AdminUser: "root"}, TLS: "preferred"}); s != want {
		t.Errorf("settings = %+v; want %+v", s, want)
	}
	if p, err := plans.Lookup(adapters.Plan{ID: "p"}); err != nil || p.maxUserConnections() != defaultMaxUserConnections {
		t.Errorf("plan by ID: %+v, %v", p, err)
	}
	if _, err := plans.Lookup(adapters.Plan{ID: "x"}); !errors.Is(err, adapters.ErrNotSupported) || !adapters.IsTerminal(err) {
		t.Errorf("unknown plan: err = %v", err)
	}
}

func TestNames(t *testing.T) {
	long := strings.Repeat("Ω-x", 100)
	for _, id := range []string{"5f1c0a3e-8d2b-4c1f-9e7a-0b1c2d3e4f50", "a`; DROP DATABASE mysql; --", long, "A"} {
		n := namesFor(id)
		if len(n.database) > 64 || len(n.user(long)) > 32 {
			t.Errorf("names too long: %q (%d), %q (%d)", n.database, len(n.database), n.user(long), len(n.user(long)))
		}
		for _, name := range []string{n.database, n.user(id)} {
			if !strings.HasPrefix(name, n.prefix) || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				t.Errorf("%q: want the prefix %s and only [a-z0-9_]", name, n.prefix)
			}
		}
	}
	if namesFor("A").database == namesFor("a").database {
		t.Errorf("distinct IDs share a database name")
	}
	if got := quoteIdent("a`b"); got != "`a``b`" {
		t.Errorf("quoteIdent = %s", got)
	}
	if got := grantTarget("agora_x%"); got != "`agora\\_x\\%`.*" {
		t.Errorf("grantTarget = %s", got)
	}
}

func TestRedact(t *testing.T) {
	base := &mysql.MySQLError{Number: 1064, Message: "syntax error near 'IDENTIFIED BY 'hunter2hunter2' WITH'"}
	err := redact(base, "hunter2hunter2")
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("password left in %q", err)
	}
	if errNumber(err) != 1064 {
		t.Errorf("redaction lost the error number")
	}
	if redact(base, "absent") != error(base) {
		t.Errorf("an error without the password should pass unchanged")
	}
}

func TestFactoryReturnsNilOnError(t *testing.T) {
	a, err := Factory().New(t.Context(), adapters.Config{Settings: adapters.MapSettings(map[string]any{"port": 0}), Logger: slog.New(slog.DiscardHandler)})
	if err == nil || a != nil {
		t.Errorf("New with broken settings = %v, %v; want a nil Adapter interface and an error", a, err)
	}
}
