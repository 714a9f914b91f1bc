package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/agora-osb/agora/adapters"
)

// The tests run against the real server this machine provides.
const (
	testHost = "127.0.0.1"
	testPort = 5432
)

var (
	smallPlan = adapters.Plan{ID: "pg-small-id", Name: "small"}
	largePlan = adapters.Plan{ID: "pg-large-id", Name: "large"}
)

func testSettings() map[string]any {
	return map[string]any{
		"host":           testHost,
		"port":           testPort,
		"admin_user":     "postgres",
		"admin_password": "",
		"admin_database": "postgres",
		"sslmode":        "disable",
	}
}

func testPlans() []adapters.PlanConfig {
	return []adapters.PlanConfig{
		{Plan: smallPlan, Settings: adapters.MapSettings(map[string]any{
			"connection_limit": 10, "allowed_extensions": []string{"pgcrypto", "hstore", "uuid-ossp"},
			// 1.1.0 brings pg_trgm (upgrade_test.go).
			"versions": map[string]any{"1.1.0": map[string]any{"extensions": []string{"pg_trgm"}}},
		})},
		{Plan: largePlan, Settings: adapters.MapSettings(map[string]any{"connection_limit": 100})},
	}
}

func integration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the PostgreSQL server at 127.0.0.1:5432; skipped with -short")
	}
}

func newAdapter(t *testing.T, settings map[string]any) *Adapter {
	t.Helper()
	a, err := New(t.Context(), adapters.Config{
		Offering: "postgres", Producer: "data-team",
		Settings: adapters.MapSettings(settings), Plans: testPlans(),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// uniqueID returns an instance or binding ID no other run (or package
// sharing the server) will use.
func uniqueID(t *testing.T, label string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "test-" + label + "-" + hex.EncodeToString(b)
}

// provisioned provisions a fresh instance and removes it, whatever
// happens, when the test ends; the cleanup then checks nothing is left.
func provisioned(t *testing.T, a *Adapter, plan adapters.Plan, params map[string]any) string {
	t.Helper()
	id := uniqueID(t, "inst")
	cleanupInstance(t, id)
	if _, err := a.Provision(t.Context(), adapters.ProvisionRequest{InstanceID: id, Plan: plan, Parameters: params}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return id
}

// cleanupInstance deprovisions id at the end of the test with an adapter
// of its own, so a test that broke its adapter still cleans up.
func cleanupInstance(t *testing.T, id string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, err := New(ctx, adapters.Config{Settings: adapters.MapSettings(testSettings()), Plans: testPlans(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Errorf("cleanup adapter: %v", err)
			return
		}
		defer a.Close()
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id, Plan: smallPlan}); err != nil && !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("cleanup Deprovision(%s): %v", id, err)
		}
		if left := leftovers(t, ctx, id); len(left) > 0 {
			t.Errorf("after cleanup of %s, left behind: %v", id, left)
		}
	})
}

func adminConn(t *testing.T, ctx context.Context, database string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@%s:%d/%s?sslmode=disable", testHost, testPort, database))
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// leftovers lists every database and role that carries the instance's
// naming prefix.
func leftovers(t *testing.T, ctx context.Context, instanceID string) []string {
	t.Helper()
	prefix := namesFor(instanceID).prefix
	c := adminConn(t, ctx, "postgres")
	rows, err := c.Query(ctx, `SELECT 'database ' || datname FROM pg_database WHERE starts_with(datname, $1)
		UNION ALL SELECT 'role ' || rolname FROM pg_roles WHERE starts_with(rolname, $1)`, prefix)
	if err != nil {
		t.Fatalf("leftover query: %v", err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("leftover query: %v", err)
	}
	return left
}

func bind(t *testing.T, a *Adapter, instanceID string) (string, adapters.BindResult) {
	t.Helper()
	bid := uniqueID(t, "bind")
	res, err := a.Bind(t.Context(), adapters.BindRequest{InstanceID: instanceID, BindingID: bid, Plan: smallPlan})
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	return bid, res
}

// connect opens a session with the issued credentials, through the uri
// an application would use.
func connect(ctx context.Context, creds map[string]any) (*pgx.Conn, error) {
	uri, _ := creds["uri"].(string)
	if uri == "" {
		return nil, errors.New("credentials have no uri")
	}
	cfg, err := pgx.ParseConfig(uri)
	if err != nil {
		return nil, fmt.Errorf("parse uri: %w", err)
	}
	cfg.ConnectTimeout = 10 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// withDatabase returns creds aimed at another database: what a binding
// holder would try to reach a neighbour.
func withDatabase(creds map[string]any, database string) map[string]any {
	u, _ := url.Parse(creds["uri"].(string))
	u.Path = "/" + database
	out := map[string]any{}
	for k, v := range creds {
		out[k] = v
	}
	out["uri"] = u.String()
	out["database"] = database
	return out
}

// checkCredentials does real work with creds: it creates a table if
// missing, writes a row and reads the rows back.
func checkCredentials(ctx context.Context, creds map[string]any) error {
	c, err := connect(ctx, creds)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS agora_check (id serial PRIMARY KEY, note text NOT NULL)`); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	if _, err := c.Exec(ctx, `INSERT INTO agora_check (note) VALUES ($1)`, "written by "+fmt.Sprint(creds["username"])); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	var n int
	if err := c.QueryRow(ctx, `SELECT count(*) FROM agora_check`).Scan(&n); err != nil {
		return fmt.Errorf("select: %w", err)
	}
	if n < 1 {
		return fmt.Errorf("select found %d rows after an insert", n)
	}
	return nil
}

// checkRevoked returns nil when the server refuses creds.
func checkRevoked(ctx context.Context, creds map[string]any) error {
	c, err := connect(ctx, creds)
	if err != nil {
		return nil
	}
	_ = c.Close(ctx)
	return fmt.Errorf("revoked credentials of %v still connect", creds["username"])
}

// checkIsolation returns nil when credsA cannot reach credsB's database.
func checkIsolation(ctx context.Context, credsA, credsB map[string]any) error {
	db, _ := credsB["database"].(string)
	c, err := connect(ctx, withDatabase(credsA, db))
	if err != nil {
		if strings.Contains(err.Error(), "permission denied") {
			return nil
		}
		return fmt.Errorf("connecting to %s failed, but not for lack of permission: %w", db, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	return fmt.Errorf("%v connected to %s, another instance's database", credsA["username"], db)
}

// passwordMatches reports whether password is the one the server stores
// for role, by recomputing its SCRAM verifier with the stored salt. This
// server trusts 127.0.0.1, so logging in would not prove anything about
// the password; TestScramVerifierMatchesServer proves the computation
// agrees with PostgreSQL's own.
func passwordMatches(t *testing.T, role, password string) bool {
	t.Helper()
	ctx := t.Context()
	var stored string
	if err := adminConn(t, ctx, "postgres").QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&stored); err != nil {
		t.Fatalf("read verifier of %s: %v", role, err)
	}
	iter, salt := parseVerifier(t, stored)
	got, err := scramVerifierWithSalt(password, salt, iter)
	if err != nil {
		t.Fatal(err)
	}
	return got == stored
}

func parseVerifier(t *testing.T, v string) (int, []byte) {
	t.Helper()
	// SCRAM-SHA-256$<iterations>:<salt>$<stored key>:<server key>
	parts := strings.Split(v, "$")
	if len(parts) != 3 || parts[0] != "SCRAM-SHA-256" {
		t.Fatalf("not a SCRAM verifier: %.20q...", v)
	}
	iterSalt := strings.SplitN(parts[1], ":", 2)
	iter, err := strconv.Atoi(iterSalt[0])
	if err != nil || len(iterSalt) != 2 {
		t.Fatalf("bad SCRAM iterations in verifier")
	}
	salt, err := base64.StdEncoding.DecodeString(iterSalt[1])
	if err != nil {
		t.Fatalf("bad SCRAM salt: %v", err)
	}
	return iter, salt
}

// serverEnforcesPasswords tells whether a wrong password is refused on the
// test server's TCP address (it is not where pg_hba says trust).
func serverEnforcesPasswords(t *testing.T, creds map[string]any) bool {
	t.Helper()
	u, _ := url.Parse(creds["uri"].(string))
	u.User = url.UserPassword(u.User.Username(), "definitely-wrong")
	c, err := connect(t.Context(), map[string]any{"uri": u.String()})
	if err == nil {
		_ = c.Close(t.Context())
		return false
	}
	return true
}
