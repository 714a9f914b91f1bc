package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/agora-osb/agora/adapters"
)

// The tests run against the real MariaDB server this machine provides.
const testAddr = "127.0.0.1:3306"

var (
	smallPlan = adapters.Plan{ID: "mysql-small-id", Name: "small"}
	asyncPlan = adapters.Plan{ID: "mysql-async-id", Name: "async"}
)

func testSettings() map[string]any {
	return map[string]any{"host": "127.0.0.1", "port": 3306, "admin_user": "root", "admin_password": ""}
}

func testPlans() []adapters.PlanConfig {
	return []adapters.PlanConfig{
		{Plan: smallPlan, Settings: adapters.MapSettings(map[string]any{"max_user_connections": 3})},
		{Plan: asyncPlan, Settings: adapters.MapSettings(map[string]any{"max_user_connections": 10})},
	}
}

func integration(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the MariaDB server at 127.0.0.1:3306; skipped with -short")
	}
}

func newAdapter(t *testing.T, settings map[string]any) *Adapter {
	t.Helper()
	a, err := New(t.Context(), adapters.Config{
		Offering: "mysql", Producer: "data-team",
		Settings: adapters.MapSettings(settings), Plans: testPlans(),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func uniqueID(t *testing.T, label string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "test-" + label + "-" + hex.EncodeToString(b)
}

func provisioned(t *testing.T, a *Adapter, plan adapters.Plan) string {
	t.Helper()
	id := uniqueID(t, "inst")
	cleanupInstance(t, id)
	if _, err := a.Provision(t.Context(), adapters.ProvisionRequest{InstanceID: id, Plan: plan}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return id
}

// cleanupInstance deprovisions id at the end of the test with an adapter
// of its own, then checks that nothing with the instance's prefix is left.
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
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil && !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("cleanup Deprovision(%s): %v", id, err)
		}
		if left := leftovers(t, ctx, id); len(left) > 0 {
			t.Errorf("after cleanup of %s, left behind: %v", id, left)
		}
	})
}

func adminDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", "root@tcp("+testAddr+")/?interpolateParams=true")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// leftovers lists every database and user that carries the instance's
// naming prefix.
func leftovers(t *testing.T, ctx context.Context, instanceID string) []string {
	t.Helper()
	p := namesFor(instanceID).prefix
	rows, err := adminDB(t).QueryContext(ctx, `
		SELECT CONCAT('database ', SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ?) = ?
		UNION ALL SELECT CONCAT('user ', User, '@', Host) FROM mysql.user WHERE LEFT(User, ?) = ?`, len(p), p, len(p), p)
	if err != nil {
		t.Fatalf("leftover query: %v", err)
	}
	defer rows.Close()
	var left []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		left = append(left, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
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

// session is one connection opened with issued credentials, through the
// uri an application would use.
func session(ctx context.Context, creds map[string]any) (*sql.Conn, func(), error) {
	uri, _ := creds["uri"].(string)
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "mysql" || u.User == nil {
		return nil, nil, fmt.Errorf("credentials have no usable mysql uri")
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User = "tcp", u.Host, u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = u.Path[1:]
	cfg.Timeout = 10 * time.Second
	// Sessions the adapter kills on purpose would log "unexpected EOF".
	cfg.Logger = log.New(io.Discard, "", 0)
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, err
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return conn, func() { _ = conn.Close(); _ = db.Close() }, nil
}

// checkCredentials does real work with creds: it creates a table if
// missing, writes a row and reads the rows back.
func checkCredentials(ctx context.Context, creds map[string]any) error {
	c, done, err := session(ctx, creds)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer done()
	if _, err := c.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS agora_check (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	if _, err := c.ExecContext(ctx, `INSERT INTO agora_check (note) VALUES (?)`, fmt.Sprint("written by ", creds["username"])); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	var n int
	if err := c.QueryRowContext(ctx, `SELECT COUNT(*) FROM agora_check`).Scan(&n); err != nil {
		return fmt.Errorf("select: %w", err)
	}
	if n < 1 {
		return fmt.Errorf("select found %d rows after an insert", n)
	}
	return nil
}

// checkRevoked returns nil when the server refuses creds.
func checkRevoked(ctx context.Context, creds map[string]any) error {
	_, done, err := session(ctx, creds)
	if err != nil {
		// ER_ACCESS_DENIED_ERROR, or MariaDB's ER_ACCESS_DENIED_NO_PASSWORD_ERROR
		// for a user that no longer exists.
		if n := errNumber(err); n == 1045 || n == 1698 {
			return nil
		}
		return fmt.Errorf("connecting failed, but not with access denied: %w", err)
	}
	done()
	return fmt.Errorf("revoked credentials of %v still connect", creds["username"])
}

// checkIsolation returns nil when credsA can neither open credsB's
// database nor reach into it from its own.
func checkIsolation(ctx context.Context, credsA, credsB map[string]any) error {
	other, _ := credsB["database"].(string)
	u, _ := url.Parse(credsA["uri"].(string))
	u.Path = "/" + other
	_, done, err := session(ctx, map[string]any{"uri": u.String()})
	if err == nil {
		done()
		return fmt.Errorf("%v opened %s, another instance's database", credsA["username"], other)
	}
	if errNumber(err) != 1044 { // ER_DBACCESS_DENIED_ERROR
		return fmt.Errorf("opening %s failed, but not with access denied: %w", other, err)
	}
	c, done, err := session(ctx, credsA)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer done()
	for _, stmt := range []string{
		"SELECT COUNT(*) FROM " + quoteIdent(other) + ".agora_check",
		"CREATE TABLE " + quoteIdent(other) + ".intruder (x INT)",
	} {
		if _, err := c.ExecContext(ctx, stmt); err == nil {
			return fmt.Errorf("%v ran %q on another instance's database", credsA["username"], stmt)
		} else if n := errNumber(err); n != 1142 && n != 1044 { // table or database access denied
			return fmt.Errorf("%q failed, but not with access denied: %w", stmt, err)
		}
	}
	return nil
}
