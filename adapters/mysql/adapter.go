package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/agora-osb/agora/adapters"
)

// MySQL and MariaDB error numbers the adapter treats as expected.
const (
	errCannotUser    = 1396 // CREATE USER of a user that exists (a race)
	errUnknownThread = 1094 // KILL of a session that already ended
)

const dialTimeout = 10 * time.Second

// Factory returns the factory catalog.yml refers to as `adapter: mysql`.
func Factory() adapters.Factory {
	return adapters.Factory{
		Name:        "mysql",
		Description: "A MariaDB/MySQL database per instance, a user per binding (data-team)",
		New:         adapters.Constructor(New),
		Check:       adapters.CheckConfig[Settings, PlanSettings, Adapter](),
	}
}

// Adapter provisions databases and users on one MariaDB or MySQL server.
type Adapter struct {
	settings Settings
	plans    adapters.PlanSettings[PlanSettings]
	db       *sql.DB
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
	dc := mysql.NewConfig()
	dc.Net = "tcp"
	dc.Addr = settings.Addr()
	dc.User = settings.AdminUser
	dc.Passwd = settings.AdminPassword
	dc.TLSConfig = settings.TLS
	dc.Timeout = dialTimeout
	// The driver escapes arguments into the statement text itself (knowing
	// the session's sql_mode), so `?` works where MySQL takes no
	// server-side placeholders: user names and passwords in CREATE USER.
	dc.InterpolateParams = true
	// The driver otherwise prints to the standard logger.
	dc.Logger = driverLogger{cfg.Logger}
	connector, err := mysql.NewConnector(dc)
	if err != nil {
		return nil, fmt.Errorf("connection settings: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Adapter{settings: settings, plans: plans, db: db, logger: cfg.Logger}, nil
}

// driverLogger sends go-sql-driver/mysql's messages to the adapter's log.
type driverLogger struct{ l *slog.Logger }

func (d driverLogger) Print(v ...any) { d.l.Warn("mysql driver: " + fmt.Sprint(v...)) }

// Ping reports whether the server answers with the admin credentials.
func (a *Adapter) Ping(ctx context.Context) error {
	if err := a.db.PingContext(ctx); err != nil {
		return a.fail("ping", err)
	}
	return nil
}

// Close releases the pool's connections.
func (a *Adapter) Close() error { return a.db.Close() }

// fail wraps a backend error so that it names the server: an operator sees
// at once which one failed and that the data-team owns the fix.
func (a *Adapter) fail(action string, err error) error {
	return fmt.Errorf("mysql at %s: %s: %w", a.settings.Addr(), action, err)
}

func errNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// Provision creates the instance's database. CREATE DATABASE IF NOT EXISTS
// is the whole job, so a repeat, or a database made by hand, is fine.
func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	if _, err := a.plans.Lookup(req.Plan); err != nil {
		return adapters.ProvisionResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.ProvisionResult{}, err
	}
	n := namesFor(req.InstanceID)
	if _, err := a.db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(n.database)+" CHARACTER SET utf8mb4"); err != nil {
		return adapters.ProvisionResult{}, a.fail("create database "+n.database, err)
	}
	a.logger.InfoContext(ctx, "provisioned", "instance_id", req.InstanceID, "database", n.database)
	return adapters.ProvisionResult{
		Metadata: adapters.Metadata{Attributes: map[string]any{"database": n.database}},
		Receipt:  adapters.Receipt{"database": n.database},
	}, nil
}

// Update applies the new plan's max_user_connections to every existing
// binding user of the instance; new bindings get it from Bind.
func (a *Adapter) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	plan, err := a.plans.Lookup(req.Plan)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.UpdateResult{}, err
	}
	n := namesFor(req.InstanceID)
	exists, err := a.databaseExists(ctx, n)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	if !exists {
		return adapters.UpdateResult{}, fmt.Errorf("mysql at %s: database %s: %w", a.settings.Addr(), n.database, adapters.ErrNotFound)
	}
	users, err := a.instanceUsers(ctx, n)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	for _, u := range users {
		_, err := a.db.ExecContext(ctx, "ALTER USER ?@? WITH MAX_USER_CONNECTIONS "+strconv.Itoa(plan.maxUserConnections()), u.name, u.host)
		if err != nil {
			return adapters.UpdateResult{}, a.fail("set max_user_connections of "+u.name, err)
		}
	}
	return adapters.UpdateResult{
		Metadata: adapters.Metadata{Attributes: map[string]any{"database": n.database}},
		Receipt:  adapters.Receipt{"database": n.database},
	}, nil
}

// Deprovision drops every user of the instance, ends their sessions and
// drops the database. It returns ErrNotFound when none of them existed.
func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	n := namesFor(req.InstanceID)
	exists, err := a.databaseExists(ctx, n)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	users, err := a.instanceUsers(ctx, n)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	if len(users) > 0 {
		list := make([]string, len(users))
		args := make([]any, 0, 2*len(users))
		for i, u := range users {
			list[i] = "?@?"
			args = append(args, u.name, u.host)
		}
		// Dropped first, so nobody logs in again while the sessions end.
		if _, err := a.db.ExecContext(ctx, "DROP USER IF EXISTS "+strings.Join(list, ", "), args...); err != nil {
			return adapters.DeprovisionResult{}, a.fail("drop users of "+n.database, err)
		}
	}
	// Sessions survive DROP USER; they go every time, even when no user
	// is left, because a crash may have come between the two steps.
	killed, err := a.killSessions(ctx, "LEFT(USER, ?) = ?", len(n.prefix), n.prefix)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	if !exists && len(users) == 0 && killed == 0 {
		return adapters.DeprovisionResult{}, fmt.Errorf("mysql at %s: instance %s: %w", a.settings.Addr(), n.database, adapters.ErrNotFound)
	}
	if _, err := a.db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(n.database)); err != nil {
		return adapters.DeprovisionResult{}, a.fail("drop database "+n.database, err)
	}
	a.logger.InfoContext(ctx, "deprovisioned", "instance_id", req.InstanceID, "database", n.database, "users", len(users))
	return adapters.DeprovisionResult{}, nil
}

func (a *Adapter) databaseExists(ctx context.Context, n instanceNames) (bool, error) {
	var exists bool
	err := a.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?)", n.database).Scan(&exists)
	if err != nil {
		return false, a.fail("read information_schema", err)
	}
	return exists, nil
}

type account struct{ name, host string }

// instanceUsers finds the instance's users by their name prefix, on any
// host: Bind only creates '%' accounts, but a hand-made one with the
// prefix belongs to the instance all the same.
func (a *Adapter) instanceUsers(ctx context.Context, n instanceNames) ([]account, error) {
	rows, err := a.db.QueryContext(ctx, "SELECT User, Host FROM mysql.user WHERE LEFT(User, ?) = ? ORDER BY User, Host", len(n.prefix), n.prefix)
	if err != nil {
		return nil, a.fail("list users of "+n.database, err)
	}
	defer rows.Close()
	var out []account
	for rows.Next() {
		var u account
		if err := rows.Scan(&u.name, &u.host); err != nil {
			return nil, a.fail("list users of "+n.database, err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, a.fail("list users of "+n.database, err)
	}
	return out, nil
}

// killSessions ends the sessions that match the PROCESSLIST condition and
// reports how many there were.
func (a *Adapter) killSessions(ctx context.Context, where string, args ...any) (int, error) {
	rows, err := a.db.QueryContext(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE "+where, args...)
	if err != nil {
		return 0, a.fail("list sessions", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, a.fail("list sessions", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, a.fail("list sessions", err)
	}
	for _, id := range ids {
		// KILL takes no placeholders server-side; the id is our own integer.
		if _, err := a.db.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10)); err != nil && errNumber(err) != errUnknownThread {
			return 0, a.fail("kill session "+strconv.FormatInt(id, 10), err)
		}
	}
	return len(ids), nil
}

// Bind creates the binding's user with a fresh password and grants it the
// instance's database. It costs three round trips: one catalog read, the
// CREATE (or ALTER) USER and the GRANT.
//
// A repeat for a binding whose user exists resets the password and returns
// the new credentials: Agora keeps no copy it could hand back, so a repeat
// after a lost response must still yield working credentials. The previous
// password stops working.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	plan, err := a.plans.Lookup(req.Plan)
	if err != nil {
		return adapters.BindResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.BindResult{}, err
	}
	n := namesFor(req.InstanceID)
	user := n.user(req.BindingID)
	var dbExists, userExists bool
	err = a.db.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?),
		EXISTS (SELECT 1 FROM mysql.user WHERE User = ? AND Host = '%')`, n.database, user).Scan(&dbExists, &userExists)
	if err != nil {
		return adapters.BindResult{}, a.fail("read catalogs", err)
	}
	if !dbExists {
		return adapters.BindResult{}, fmt.Errorf("mysql at %s: instance %s is not provisioned: %w", a.settings.Addr(), n.database, adapters.ErrNotFound)
	}
	password, err := adapters.NewPassword(adapters.PasswordLength)
	if err != nil {
		return adapters.BindResult{}, err
	}
	limit := " WITH MAX_USER_CONNECTIONS " + strconv.Itoa(plan.maxUserConnections())
	if !userExists {
		_, err = a.db.ExecContext(ctx, "CREATE USER ?@'%' IDENTIFIED BY ?"+limit, user, password)
		if errNumber(err) == errCannotUser {
			// A concurrent repeat created it first; the last writer's
			// password wins, and it is the one this call returns.
			userExists = true
		} else if err != nil {
			return adapters.BindResult{}, a.fail("create user "+user, redact(err, password))
		}
	}
	if userExists {
		if _, err := a.db.ExecContext(ctx, "ALTER USER ?@'%' IDENTIFIED BY ?"+limit, user, password); err != nil {
			return adapters.BindResult{}, a.fail("reset password of "+user, redact(err, password))
		}
	}
	if _, err := a.db.ExecContext(ctx, "GRANT ALL PRIVILEGES ON "+grantTarget(n.database)+" TO ?@'%'", user); err != nil {
		return adapters.BindResult{}, a.fail("grant "+n.database+" to "+user, err)
	}
	a.logger.InfoContext(ctx, "bound", "instance_id", req.InstanceID, "binding_id", req.BindingID, "user", user, "password_reset", userExists)
	return adapters.DatabaseCredentials{
		Type: adapters.TypeMySQL, Scheme: "mysql", JDBCScheme: "mysql",
		Host: a.settings.AppHost(), Port: a.settings.Port,
		Database: n.database, Username: user, Password: password,
	}.BindResult(), nil
}

// Unbind drops the binding's user and ends its sessions, in that order so
// that an application reconnecting at once cannot slip in between. It
// returns ErrNotFound when neither a user nor a session was left.
func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	n := namesFor(req.InstanceID)
	user := n.user(req.BindingID)
	var exists bool
	if err := a.db.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM mysql.user WHERE User = ? AND Host = '%')", user).Scan(&exists); err != nil {
		return adapters.UnbindResult{}, a.fail("read mysql.user", err)
	}
	if exists {
		if _, err := a.db.ExecContext(ctx, "DROP USER IF EXISTS ?@'%'", user); err != nil {
			return adapters.UnbindResult{}, a.fail("drop user "+user, err)
		}
	}
	// Sessions survive DROP USER, so they go every time: a crash may have
	// come between the two steps.
	killed, err := a.killSessions(ctx, "USER = ?", user)
	if err != nil {
		return adapters.UnbindResult{}, err
	}
	if !exists && killed == 0 {
		return adapters.UnbindResult{}, fmt.Errorf("mysql at %s: user %s: %w", a.settings.Addr(), user, adapters.ErrNotFound)
	}
	a.logger.InfoContext(ctx, "unbound", "instance_id", req.InstanceID, "binding_id", req.BindingID, "user", user, "sessions_killed", killed)
	return adapters.UnbindResult{}, nil
}

// Compile-time guards: the capabilities Agora finds by type assertion.
var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Updater = (*Adapter)(nil)
	_ adapters.Pinger  = (*Adapter)(nil)
	_ adapters.Closer  = (*Adapter)(nil)
)
