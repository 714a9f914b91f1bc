package credcheck

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rabbitVerifier uses `rabbitmq` credentials: the instance's space is its
// vhost.
type rabbitVerifier struct{ dial Dialer }

func (v rabbitVerifier) parse(creds map[string]any) (login, error) {
	l, err := parseLogin(creds, "", "vhost")
	if err != nil {
		return l, err
	}
	if l.port == "" {
		l.port = "5672"
		if l.scheme == "amqps" {
			l.port = "5671"
		}
	}
	return l, nil
}

func (v rabbitVerifier) connect(ctx context.Context, l login) (*amqp.Connection, error) {
	scheme := "amqp"
	if l.scheme == "amqps" {
		scheme = "amqps"
	}
	u := url.URL{Scheme: scheme, User: url.UserPassword(l.user, l.password), Host: l.addr(),
		Path: "/" + l.space, RawPath: "/" + url.PathEscape(l.space)}
	cfg := amqp.Config{
		// amqp091 has no ctx of its own: the dial takes the caller's.
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := v.dial(ctx, network, addr)
			if err == nil {
				// Bounds the AMQP handshake too; cleared once open.
				_ = c.SetDeadline(time.Now().Add(dialTimeout))
			}
			return c, err
		},
	}
	if scheme == "amqps" {
		cfg.TLSClientConfig = &tls.Config{ServerName: l.host, MinVersion: tls.VersionTLS12}
	}
	conn, err := amqp.DialConfig(u.String(), cfg)
	if err != nil {
		return nil, redactURL(err, u.String())
	}
	return conn, nil
}

// redactURL keeps the password amqp091 may quote out of an error.
func redactURL(err error, uri string) error {
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return err
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return errors.New("the credentials do not make an AMQP URI")
	}
	return err
}

// amqpRefused reports a refused login (403 ACCESS_REFUSED) or vhost (530
// NOT_ALLOWED).
func amqpRefused(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && (ae.Code == amqp.AccessRefused || ae.Code == amqp.NotAllowed) ||
		errors.Is(err, amqp.ErrSASL) || errors.Is(err, amqp.ErrCredentials)
}

func (v rabbitVerifier) Works(ctx context.Context, creds map[string]any) error {
	l, err := v.parse(creds)
	if err != nil {
		return err
	}
	conn, err := v.connect(ctx, l)
	if err != nil {
		return fmt.Errorf("connect to vhost %s at %s as %s: %w", l.space, l.addr(), l.user, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("as %s on vhost %s: open a channel: %w", l.user, l.space, err)
	}
	if _, err := ch.QueueDeclare(probeName, false, false, false, false, nil); err != nil {
		return fmt.Errorf("as %s on vhost %s: declare queue %s: %w", l.user, l.space, probeName, err)
	}
	defer func() { _, _ = ch.QueueDelete(probeName, false, false, false) }()
	if err := ch.Confirm(false); err != nil {
		return fmt.Errorf("as %s on vhost %s: confirm mode: %w", l.user, l.space, err)
	}
	want := probeValue()
	confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", probeName, false, false, amqp.Publishing{Body: []byte(want)})
	if err != nil {
		return fmt.Errorf("as %s on vhost %s: publish: %w", l.user, l.space, err)
	}
	if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
		return fmt.Errorf("as %s on vhost %s: the broker did not confirm the publish (%v)", l.user, l.space, err)
	}
	// A confirmed message is queued; basic.get sees it.
	for {
		msg, ok, err := ch.Get(probeName, true)
		switch {
		case err != nil:
			return fmt.Errorf("as %s on vhost %s: get: %w", l.user, l.space, err)
		case ok && string(msg.Body) == want:
			return nil
		case ok:
			continue // an older probe's message
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("as %s on vhost %s: the published message never arrived: %w", l.user, l.space, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (v rabbitVerifier) Revoked(ctx context.Context, creds map[string]any) error {
	l, err := v.parse(creds)
	if err != nil {
		return err
	}
	conn, err := v.connect(ctx, l)
	switch {
	case err == nil:
		conn.Close()
		return fmt.Errorf("user %s still opens vhost %s at %s", l.user, l.space, l.addr())
	case amqpRefused(err):
		return nil
	case isNetError(err):
		return unreachable("connect to "+l.addr(), err)
	}
	return fmt.Errorf("connect as %s: want ACCESS_REFUSED, got: %w", l.user, err)
}

func (v rabbitVerifier) Isolated(ctx context.Context, a, b map[string]any) error {
	la, lb, err := isolationPair(ctx, v.Works, v.parse, a, b)
	if err != nil {
		return err
	}
	la.host, la.port, la.space, la.scheme = lb.host, lb.port, lb.space, lb.scheme
	conn, err := v.connect(ctx, la)
	switch {
	case err == nil:
		conn.Close()
		return fmt.Errorf("user %s opened vhost %s of another instance", la.user, la.space)
	case amqpRefused(err):
		return nil
	case isNetError(err):
		return unreachable("connect to "+la.addr(), err)
	}
	return fmt.Errorf("connect as %s to vhost %s: want NOT_ALLOWED, got: %w", la.user, la.space, err)
}
