package credcheck

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// redisVerifier uses `redis` credentials: the instance's space is the
// keys under key_prefix, or the whole database without one.
type redisVerifier struct{ dial Dialer }

type redisLogin struct {
	opts   *goredis.Options
	prefix string
}

func (v redisVerifier) parse(creds map[string]any) (redisLogin, error) {
	var opts *goredis.Options
	if raw, ok := creds["uri"].(string); ok && raw != "" {
		o, err := goredis.ParseURL(raw)
		if err != nil {
			// Its error may repeat the URI, password included.
			return redisLogin{}, errors.New("the uri key is not a redis:// or rediss:// URL")
		}
		opts = o
	} else {
		l, err := parseLogin(creds, "6379", "db")
		if err != nil {
			return redisLogin{}, err
		}
		db, _ := strconv.Atoi(l.space)
		opts = &goredis.Options{Addr: l.addr(), Username: l.user, Password: l.password, DB: db}
	}
	return redisLogin{opts: opts, prefix: str(creds, "key_prefix")}, nil
}

func (v redisVerifier) client(l redisLogin) *goredis.Client {
	o := *l.opts
	tlsConfig := o.TLSConfig
	o.TLSConfig = nil
	// The dialer replaces go-redis's own, TLS included.
	o.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := v.dial(ctx, network, addr)
		if err != nil || tlsConfig == nil {
			return c, err
		}
		tc := tls.Client(c, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, err
		}
		return tc, nil
	}
	o.MaxRetries = -1
	o.DialTimeout = dialTimeout
	// One attempt: the kit judges what the server answers, and a refused
	// dial (the gate's allow-list) need not be asked five times.
	o.DialerRetries = 1
	o.DisableIdentity = true
	o.PoolSize = 1
	return goredis.NewClient(&o)
}

func redisAuthRefused(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return goredis.IsAuthError(err) || strings.Contains(s, "WRONGPASS") || strings.Contains(s, "NOAUTH") ||
		strings.Contains(s, "invalid password") || strings.Contains(s, "invalid username-password")
}

func (v redisVerifier) Works(ctx context.Context, creds map[string]any) error {
	l, err := v.parse(creds)
	if err != nil {
		return err
	}
	c := v.client(l)
	defer c.Close()
	key, want := l.prefix+probeName, probeValue()
	if err := c.Set(ctx, key, want, 0).Err(); err != nil {
		return fmt.Errorf("as %s at %s: SET %s: %w", l.opts.Username, l.opts.Addr, key, err)
	}
	got, err := c.Get(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("as %s at %s: GET %s: %w", l.opts.Username, l.opts.Addr, key, err)
	}
	if got != want {
		return fmt.Errorf("as %s at %s: GET %s returned %q after SET %q", l.opts.Username, l.opts.Addr, key, got, want)
	}
	return nil
}

func (v redisVerifier) Revoked(ctx context.Context, creds map[string]any) error {
	l, err := v.parse(creds)
	if err != nil {
		return err
	}
	c := v.client(l)
	defer c.Close()
	err = c.Ping(ctx).Err()
	switch {
	case err == nil:
		return fmt.Errorf("user %s still authenticates at %s", l.opts.Username, l.opts.Addr)
	case redisAuthRefused(err):
		return nil
	case isNetError(err):
		return unreachable("connect to "+l.opts.Addr, err)
	}
	return fmt.Errorf("PING as %s: want WRONGPASS, got: %w", l.opts.Username, err)
}

func (v redisVerifier) Isolated(ctx context.Context, a, b map[string]any) error {
	la, lb, err := isolationPair(ctx, v.Works, v.parse, a, b)
	if err != nil {
		return err
	}
	if la.opts.Addr == lb.opts.Addr && la.opts.DB == lb.opts.DB && la.prefix == lb.prefix {
		return fmt.Errorf("both instances' credentials name the same space: database %d at %s, key_prefix %q", la.opts.DB, la.opts.Addr, la.prefix)
	}
	// A's login, aimed at B's server, database and keys.
	target := *la.opts
	target.Addr, target.DB = lb.opts.Addr, lb.opts.DB
	c := v.client(redisLogin{opts: &target})
	defer c.Close()
	key := lb.prefix + probeName
	denied := func(err error) bool { return goredis.IsPermissionError(err) || redisAuthRefused(err) }
	if err := c.Get(ctx, key).Err(); !denied(err) {
		if err == nil {
			return fmt.Errorf("user %s read %s, which another instance's credentials wrote", la.opts.Username, key)
		}
		return fmt.Errorf("GET %s as %s: want NOPERM, got: %w", key, la.opts.Username, err)
	}
	if err := c.Set(ctx, key, "intruder", 0).Err(); !denied(err) {
		if err == nil {
			return fmt.Errorf("user %s overwrote %s, which another instance's credentials wrote", la.opts.Username, key)
		}
		return fmt.Errorf("SET %s as %s: want NOPERM, got: %w", key, la.opts.Username, err)
	}
	return nil
}
