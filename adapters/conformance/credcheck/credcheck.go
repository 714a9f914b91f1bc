// Package credcheck uses typed credentials the way a bound application
// would, so the conformance kit can prove what an adapter promises
// without knowing the adapter: the credentials work, they stop working
// once revoked, and one instance's credentials cannot reach another
// instance's data. The credentials' servicebinding.io `type` key picks
// the Verifier (docs/adapter-protocol.md, "Typed credentials").
//
// Every connection a verifier makes goes through its Dialer, so whoever
// runs the kit decides where it may connect: the producer gate passes one
// that enforces its egress allow-list, since a remote adapter chooses the
// hosts in its credentials. The package keeps no state between calls and
// none at package level.
package credcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
)

// Dialer opens a network connection, as net.Dialer.DialContext does.
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// Set maps credential types to their verifiers, as
// conformance.Options.Verifiers takes them.
type Set = map[string]conformance.Verifier

// dialTimeout bounds one connection attempt when ctx allows longer.
const dialTimeout = 10 * time.Second

// Defaults returns a verifier for each type Agora's built-in adapters
// issue: postgresql, mysql, redis, rabbitmq and vault. Every connection
// goes through dial; nil means a plain net.Dialer.
func Defaults(dial Dialer) Set {
	if dial == nil {
		d := &net.Dialer{Timeout: dialTimeout}
		dial = d.DialContext
	}
	return Set{
		adapters.TypePostgreSQL: postgresVerifier{dial: dial},
		adapters.TypeMySQL:      mysqlVerifier{dial: dial},
		adapters.TypeRedis:      redisVerifier{dial: dial},
		adapters.TypeRabbitMQ:   rabbitVerifier{dial: dial},
		adapters.TypeVault:      vaultVerifier{dial: dial},
	}
}

// probeName is the table, queue, key or KV entry the verifiers write in
// an instance's space: recognisable, so a producer knows where it came
// from.
const probeName = "agora_conformance_probe"

// probeValue is a fresh value per write, so a read proves this write.
func probeValue() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "agora-" + hex.EncodeToString(b[:])
}

// login is a server login as the credentials describe it: from uri when
// present, else from the separate keys.
type login struct {
	scheme         string
	host, port     string
	user, password string
	// space is the database, vhost or database number: the uri's path
	// without its slash, or the credentials' spaceKey.
	space string
	query url.Values
}

func (l login) addr() string { return net.JoinHostPort(l.host, l.port) }

// parseLogin reads a login from creds. defaultPort fills a missing port;
// spaceKey names the key that holds the space when there is no uri.
func parseLogin(creds map[string]any, defaultPort, spaceKey string) (login, error) {
	if raw, ok := creds["uri"].(string); ok && raw != "" {
		u, err := url.Parse(raw)
		if err != nil {
			// url's error repeats the URI, password included.
			return login{}, errors.New("the uri key is not a URL")
		}
		l := login{scheme: u.Scheme, host: u.Hostname(), port: u.Port(), query: u.Query()}
		if u.User != nil {
			l.user = u.User.Username()
			l.password, _ = u.User.Password()
		}
		if p := u.EscapedPath(); len(p) > 1 {
			space, err := url.PathUnescape(p[1:])
			if err != nil {
				return login{}, fmt.Errorf("the uri's path: %w", err)
			}
			l.space = space
		}
		if l.port == "" {
			l.port = defaultPort
		}
		if l.host == "" {
			return login{}, errors.New("the uri has no host")
		}
		return l, nil
	}
	l := login{host: str(creds, "host"), port: str(creds, "port"), user: str(creds, "username"),
		password: str(creds, "password"), space: str(creds, spaceKey)}
	if l.port == "" {
		l.port = defaultPort
	}
	if l.host == "" {
		return login{}, errors.New("the credentials have neither a uri nor a host")
	}
	return l, nil
}

// str reads a string or a number (a port) from creds.
func str(creds map[string]any, key string) string {
	switch v := creds[key].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// errUnreachable marks a failure that says nothing about the credentials:
// the server did not answer.
var errUnreachable = errors.New("the server did not answer, so the credentials could not be judged")

func unreachable(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, errUnreachable, err)
}

// isNetError tells a connection that never reached the server from a
// refusal by it.
func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, context.DeadlineExceeded)
}

// isolationPair writes with b in its own space, as Verifier.Isolated
// promises, and reads both logins.
func isolationPair[L any](ctx context.Context, works func(context.Context, map[string]any) error,
	parse func(map[string]any) (L, error), a, b map[string]any) (la, lb L, err error) {
	if err = works(ctx, b); err != nil {
		return la, lb, fmt.Errorf("the other instance's own credentials: %w", err)
	}
	if la, err = parse(a); err != nil {
		return la, lb, err
	}
	lb, err = parse(b)
	return la, lb, err
}
