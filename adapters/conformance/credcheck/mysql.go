package credcheck

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// mysqlVerifier uses `mysql` credentials: the instance's space is its
// database.
type mysqlVerifier struct{ dial Dialer }

// MySQL and MariaDB error numbers the verifier tells apart.
const (
	erDBAccessDenied       = 1044
	erAccessDenied         = 1045
	erBadDB                = 1049
	erTableAccessDenied    = 1142
	erAccessDeniedNoPasswd = 1698
)

func mysqlErrNo(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// session opens one connection as l; done closes it.
func (v mysqlVerifier) session(ctx context.Context, l login) (*sql.Conn, func(), error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = l.user, l.password, "tcp", l.addr(), l.space
	cfg.Timeout = dialTimeout
	cfg.DialFunc = v.dial
	if tls := l.query.Get("tls"); tls != "" {
		cfg.TLSConfig = tls
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, err
	}
	db := sql.OpenDB(conn)
	c, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return c, func() { _ = c.Close(); _ = db.Close() }, nil
}

func quoteMySQL(name string) string {
	out := []byte{'`'}
	for i := 0; i < len(name); i++ {
		if name[i] == '`' {
			out = append(out, '`')
		}
		out = append(out, name[i])
	}
	return string(append(out, '`'))
}

func (v mysqlVerifier) Works(ctx context.Context, creds map[string]any) error {
	l, err := parseLogin(creds, "3306", "database")
	if err != nil {
		return err
	}
	c, done, err := v.session(ctx, l)
	if err != nil {
		return fmt.Errorf("connect to database %s at %s as %s: %w", l.space, l.addr(), l.user, err)
	}
	defer done()
	want := probeValue()
	if _, err := c.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS "+probeName+" (k VARCHAR(64) PRIMARY KEY, v TEXT NOT NULL)"); err != nil {
		return fmt.Errorf("as %s in database %s: CREATE TABLE: %w", l.user, l.space, err)
	}
	if _, err := c.ExecContext(ctx, "REPLACE INTO "+probeName+" (k, v) VALUES ('probe', ?)", want); err != nil {
		return fmt.Errorf("as %s in database %s: write: %w", l.user, l.space, err)
	}
	var got string
	if err := c.QueryRowContext(ctx, "SELECT v FROM "+probeName+" WHERE k = 'probe'").Scan(&got); err != nil {
		return fmt.Errorf("as %s in database %s: read back what it wrote: %w", l.user, l.space, err)
	}
	if got != want {
		return fmt.Errorf("as %s in database %s: read back %q after writing %q", l.user, l.space, got, want)
	}
	return nil
}

func (v mysqlVerifier) Revoked(ctx context.Context, creds map[string]any) error {
	l, err := parseLogin(creds, "3306", "database")
	if err != nil {
		return err
	}
	for _, db := range []string{l.space, ""} {
		l.space = db
		_, done, err := v.session(ctx, l)
		switch n := mysqlErrNo(err); {
		case err == nil:
			done()
			return fmt.Errorf("user %s still logs in at %s", l.user, l.addr())
		case n == erAccessDenied || n == erAccessDeniedNoPasswd:
			return nil
		case n == erBadDB || n == erDBAccessDenied:
			// The database went with the instance; the user must have
			// gone too, which a login without a database shows.
			continue
		case isNetError(err):
			return unreachable("connect to "+l.addr(), err)
		default:
			return fmt.Errorf("connect as %s: want access denied, got: %w", l.user, err)
		}
	}
	return nil
}

func (v mysqlVerifier) Isolated(ctx context.Context, a, b map[string]any) error {
	la, lb, err := isolationPair(ctx, v.Works, func(c map[string]any) (login, error) { return parseLogin(c, "3306", "database") }, a, b)
	if err != nil {
		return err
	}
	if la.addr() != lb.addr() {
		// Another server: A's login there must be refused.
		la.host, la.port, la.space = lb.host, lb.port, lb.space
		_, done, err := v.session(ctx, la)
		if err == nil {
			done()
			return fmt.Errorf("user %s logged in to the other instance's server %s", la.user, la.addr())
		}
		return nil
	}
	// Same server: A may neither open B's database nor reach into it
	// from its own.
	other := la
	other.space = lb.space
	if _, done, err := v.session(ctx, other); err == nil {
		done()
		return fmt.Errorf("user %s opened database %s of another instance", la.user, lb.space)
	}
	c, done, err := v.session(ctx, la)
	if err != nil {
		return fmt.Errorf("connect as %s to its own database: %w", la.user, err)
	}
	defer done()
	for _, stmt := range []string{
		"SELECT v FROM " + quoteMySQL(lb.space) + "." + probeName,
		"INSERT INTO " + quoteMySQL(lb.space) + "." + probeName + " (k, v) VALUES ('intruder', 'x')",
	} {
		_, err := c.ExecContext(ctx, stmt)
		switch n := mysqlErrNo(err); {
		case err == nil:
			return fmt.Errorf("user %s ran %q on another instance's database", la.user, stmt)
		case n != erTableAccessDenied && n != erDBAccessDenied:
			return fmt.Errorf("user %s ran %q: want access denied, got: %w", la.user, stmt, err)
		}
	}
	return nil
}
