package credcheck

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// postgresVerifier uses `postgresql` credentials: the instance's space is
// its database.
type postgresVerifier struct{ dial Dialer }

func (v postgresVerifier) connect(ctx context.Context, l login) (*pgx.Conn, error) {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(l.user, l.password), Host: l.addr(),
		Path: "/" + l.space, RawQuery: l.query.Encode()}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, errors.New("the credentials do not make a PostgreSQL connection string")
	}
	cfg.ConnectTimeout = dialTimeout
	cfg.DialFunc = pgconn.DialFunc(v.dial)
	for _, fb := range cfg.Fallbacks {
		fb.Host, fb.Port = cfg.Host, cfg.Port
	}
	return pgx.ConnectConfig(ctx, cfg)
}

func (v postgresVerifier) Works(ctx context.Context, creds map[string]any) error {
	l, err := parseLogin(creds, "5432", "database")
	if err != nil {
		return err
	}
	c, err := v.connect(ctx, l)
	if err != nil {
		return fmt.Errorf("connect to database %s at %s as %s: %w", l.space, l.addr(), l.user, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	want := probeValue()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"CREATE TABLE IF NOT EXISTS " + probeName + " (k text PRIMARY KEY, v text NOT NULL)", nil},
		{"INSERT INTO " + probeName + " (k, v) VALUES ('probe', $1) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", []any{want}},
	} {
		if _, err := c.Exec(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("as %s in database %s: %s: %w", l.user, l.space, strings.Fields(q.sql)[0], err)
		}
	}
	var got string
	if err := c.QueryRow(ctx, "SELECT v FROM "+probeName+" WHERE k = 'probe'").Scan(&got); err != nil {
		return fmt.Errorf("as %s in database %s: read back what it wrote: %w", l.user, l.space, err)
	}
	if got != want {
		return fmt.Errorf("as %s in database %s: read back %q after writing %q", l.user, l.space, got, want)
	}
	return nil
}

// pgRefused reports whether the server refused the login or the
// database: SQLSTATE class 28 (invalid authorization) or 42501
// (insufficient privilege, such as CONNECT revoked).
func pgRefused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "28") || pe.Code == "42501")
}

func pgNoDatabase(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "3D000"
}

func (v postgresVerifier) Revoked(ctx context.Context, creds map[string]any) error {
	l, err := parseLogin(creds, "5432", "database")
	if err != nil {
		return err
	}
	for _, db := range []string{l.space, "postgres"} {
		l.space = db
		c, err := v.connect(ctx, l)
		switch {
		case err == nil:
			_ = c.Close(context.WithoutCancel(ctx))
			return fmt.Errorf("user %s still logs in to database %s at %s", l.user, db, l.addr())
		case pgRefused(err):
			return nil
		case pgNoDatabase(err):
			// The database went with the instance; the user must have
			// gone too, which another database shows.
			continue
		case isNetError(err):
			return unreachable("connect to "+l.addr(), err)
		default:
			return fmt.Errorf("connect as %s to database %s: want the login refused, got: %w", l.user, db, err)
		}
	}
	return nil
}

func (v postgresVerifier) Isolated(ctx context.Context, a, b map[string]any) error {
	la, lb, err := isolationPair(ctx, v.Works, func(c map[string]any) (login, error) { return parseLogin(c, "5432", "database") }, a, b)
	if err != nil {
		return err
	}
	// A's login, aimed at B's server and database.
	la.host, la.port, la.space = lb.host, lb.port, lb.space
	c, err := v.connect(ctx, la)
	switch {
	case err == nil:
	case pgRefused(err):
		return nil
	case isNetError(err):
		return unreachable("connect to "+la.addr(), err)
	default:
		return fmt.Errorf("connect as %s to database %s: want permission denied, got: %w", la.user, la.space, err)
	}
	defer c.Close(context.WithoutCancel(ctx))
	var got string
	if err := c.QueryRow(ctx, "SELECT v FROM "+probeName+" WHERE k = 'probe'").Scan(&got); err == nil {
		return fmt.Errorf("user %s opened database %s of another instance and read what its credentials wrote", la.user, la.space)
	}
	return fmt.Errorf("user %s opened database %s of another instance", la.user, la.space)
}
