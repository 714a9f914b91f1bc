package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/agora-osb/agora/adapters"
)

// PostgreSQL error codes the adapter treats as expected.
const (
	codeDuplicateObject   = "42710" // CREATE ROLE of a role that exists
	codeDuplicateDatabase = "42P04" // CREATE DATABASE of a database that exists
	codeInvalidCatalog    = "3D000" // connecting to a database that does not exist
	codeUndefinedObject   = "42704" // ALTER or GRANT of a role that does not exist
)

const connectTimeout = 10 * time.Second

// Factory returns the factory catalog.yml refers to as `adapter: postgres`.
func Factory() adapters.Factory {
	return adapters.Factory{
		Name:        "postgres",
		Description: "A PostgreSQL database per instance, a login role per binding (data-team)",
		New:         adapters.Constructor(New),
		Check:       adapters.CheckConfig[Settings, PlanSettings, Adapter](),
	}
}

// Adapter provisions databases and roles on one PostgreSQL server.
type Adapter struct {
	settings Settings
	plans    adapters.PlanSettings[PlanSettings]
	pool     *pgxpool.Pool
	logger   *slog.Logger
}

// New decodes and validates cfg, reporting every problem at once, and
// prepares a connection pool. It does not connect: a server that is down
// at startup is reported by Ping.
func New(_ context.Context, cfg adapters.Config) (*Adapter, error) {
	settings, plans, err := adapters.DecodeConfig[Settings, PlanSettings](cfg)
	if err != nil {
		return nil, err // as is: see DecodeConfig
	}
	poolCfg, err := pgxpool.ParseConfig(adminConnString(settings))
	if err != nil {
		return nil, fmt.Errorf("connection settings: %w", err)
	}
	// Nearly every statement here is DDL with a generated name: caching
	// prepared statements would only fill the server's memory.
	poolCfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	poolCfg.MaxConns = 4
	poolCfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connection pool: %w", err)
	}
	return &Adapter{
		settings: settings,
		plans:    plans,
		pool:     pool,
		logger:   cfg.Logger,
	}, nil
}

// adminConnString spells out every setting in a URL so that pgx's
// defaults from PG* environment variables cannot change which server or
// user the adapter talks to.
func adminConnString(s Settings) string {
	q := url.Values{}
	q.Set("sslmode", s.SSLMode)
	q.Set("connect_timeout", strconv.Itoa(int(connectTimeout/time.Second)))
	q.Set("application_name", "agora-postgres-adapter")
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.AdminUser, s.AdminPassword),
		Host:     s.Addr(),
		Path:     "/" + s.AdminDatabase,
		RawQuery: q.Encode(),
	}
	return u.String()
}

// Ping reports whether the server answers with the admin credentials.
func (a *Adapter) Ping(ctx context.Context) error {
	if err := a.pool.Ping(ctx); err != nil {
		return a.fail("ping", err)
	}
	return nil
}

// Close releases the pool's connections.
func (a *Adapter) Close() error {
	a.pool.Close()
	return nil
}

// fail wraps a backend error so that it names the server: an operator sees
// at once which one failed and that the data-team owns the fix.
func (a *Adapter) fail(action string, err error) error {
	return fmt.Errorf("postgres at %s: %s: %w", a.settings.Addr(), action, err)
}

// withInstanceDB runs f on a short-lived admin connection to the instance
// database: REASSIGN OWNED, DROP OWNED and CREATE EXTENSION act only on the
// database they run in. It reports found=false when the database is gone.
func (a *Adapter) withInstanceDB(ctx context.Context, database string, f func(*pgx.Conn) error) (found bool, err error) {
	cc := a.pool.Config().ConnConfig.Copy()
	cc.Database = database
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		if pgCode(err) == codeInvalidCatalog {
			return false, nil
		}
		return false, a.fail("connect to database "+database, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return true, f(conn)
}

func pgCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// Compile-time guards: the capabilities Agora finds by type assertion.
var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Updater = (*Adapter)(nil)
	_ adapters.Pinger  = (*Adapter)(nil)
	_ adapters.Closer  = (*Adapter)(nil)
)
