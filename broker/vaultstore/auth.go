package vaultstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
	"github.com/hashicorp/vault/api/auth/kubernetes"
)

// The ways Agora logs in to Vault.
const (
	MethodToken      = "token"
	MethodAppRole    = "approle"
	MethodKubernetes = "kubernetes"
)

// DefaultJWTFile is where Kubernetes mounts a pod's service-account token.
const DefaultJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Auth says how Agora logs in to Vault. Only the chosen method's fields
// are used.
type Auth struct {
	// Method is MethodToken (the default), MethodAppRole or
	// MethodKubernetes.
	Method string
	// Token is MethodToken's token.
	Token string
	// RoleID and SecretIDFile are AppRole's. The file is read at every
	// login, so a secret_id replaced in place is picked up.
	RoleID, SecretIDFile string
	// Role and JWTFile are Kubernetes auth's (JWTFile defaults to
	// DefaultJWTFile). The file is read at every login: projected
	// service-account tokens rotate.
	Role, JWTFile string
	// Mount is where the auth method is mounted (default "approle" or
	// "kubernetes").
	Mount string
}

// Describe names the method for logs and errors, never a secret.
func (a Auth) Describe() string {
	switch a.Method {
	case MethodAppRole:
		return fmt.Sprintf("AppRole (mount %q)", a.mountOr("approle"))
	case MethodKubernetes:
		return fmt.Sprintf("Kubernetes auth (mount %q, role %q)", a.mountOr("kubernetes"), a.Role)
	}
	return "a token"
}

func (a Auth) mountOr(def string) string {
	if m := strings.Trim(a.Mount, "/"); m != "" {
		return m
	}
	return def
}

// loginMethod returns vault/api's helper for the login methods, nil for a
// token. It is built anew for every login so the files are read again.
func (a Auth) loginMethod() (vault.AuthMethod, error) {
	switch a.Method {
	case MethodAppRole:
		return approle.NewAppRoleAuth(a.RoleID, &approle.SecretID{FromFile: a.SecretIDFile}, approle.WithMountPath(a.mountOr("approle")))
	case MethodKubernetes:
		jwt := a.JWTFile
		if jwt == "" {
			jwt = DefaultJWTFile
		}
		return kubernetes.NewKubernetesAuth(a.Role, kubernetes.WithServiceAccountTokenPath(jwt), kubernetes.WithMountPath(a.mountOr("kubernetes")))
	}
	return nil, nil
}

// ConnectConfig is what Connect needs: where Vault is, how to trust it and
// how to log in.
type ConnectConfig struct {
	Address string
	// CACert is a PEM file of the CAs that sign Vault's certificate; empty
	// uses the system's.
	CACert string
	// Timeout bounds each Vault request (default 10s).
	Timeout time.Duration
	Auth    Auth
	// Logger hears about renewals, logins and their failures; nil
	// discards.
	Logger *slog.Logger
}

// Session keeps the process's one Vault client authenticated: it logs in,
// renews the token before it expires, logs in again when the token can no
// longer be renewed (AppRole, Kubernetes auth), and tells readiness when
// the token no longer works. Every store of the process uses Client.
//
// It never logs a token or a secret_id.
type Session struct {
	client *vault.Client
	auth   Auth
	log    *slog.Logger
	now    func() time.Time
	// wake asks Run to act now: a readiness check found the token dead.
	wake chan struct{}

	mu    sync.Mutex
	lease lease
	// broken says why the token no longer works; nil while it does.
	broken error
	// failures counts consecutive failed renewals or logins, for backoff.
	failures int
}

// lease is what Vault said about the current token.
type lease struct {
	// expires is when the token ends; zero for a token without expiry
	// (a root token).
	expires time.Time
	// period is the TTL the token was issued with, asked for again at
	// each renewal.
	period    time.Duration
	renewable bool
	// capped is set once a renewal granted less than period: the token
	// is near its max TTL, and renewing will not keep it alive.
	capped bool
}

func newLease(now time.Time, ttl time.Duration, renewable bool) lease {
	l := lease{period: ttl, renewable: renewable}
	if ttl > 0 {
		l.expires = now.Add(ttl)
	}
	return l
}

// Connect makes the process's one Vault client and logs it in. It fails
// when the login does, with an error that names Vault and the method, so
// a replica with wrong Vault credentials never starts serving.
func Connect(ctx context.Context, cfg ConnectConfig) (*Session, error) {
	switch cfg.Auth.Method {
	case "":
		cfg.Auth.Method = MethodToken
	case MethodToken, MethodAppRole, MethodKubernetes:
	default:
		return nil, fmt.Errorf("vault: unknown login method %q (want token, approle or kubernetes)", cfg.Auth.Method)
	}
	client, err := newClient(cfg.Address, cfg.Auth.Token, cfg.Timeout, cfg.CACert)
	if err != nil {
		return nil, err
	}
	s := newSession(client, cfg.Auth, cfg.Logger)
	if cfg.Auth.Method == MethodToken {
		if cfg.Auth.Token == "" {
			return nil, errors.New("vault: a token is required")
		}
		err = s.lookup(ctx)
	} else {
		err = s.login(ctx)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func newSession(client *vault.Client, auth Auth, log *slog.Logger) *Session {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Session{client: client, auth: auth, log: log, now: time.Now, wake: make(chan struct{}, 1)}
}

// Client is the authenticated client every store shares.
func (s *Session) Client() *vault.Client { return s.client }

// Describe says how the session is logged in and until when, for the
// startup line.
func (s *Session) Describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch exp := s.lease.expires; {
	case exp.IsZero():
		return s.auth.Describe() + ", token without expiry"
	case s.lease.renewable:
		return fmt.Sprintf("%s, renewable token valid until %s", s.auth.Describe(), exp.UTC().Format(time.RFC3339))
	default:
		return fmt.Sprintf("%s, token valid until %s, not renewable", s.auth.Describe(), exp.UTC().Format(time.RFC3339))
	}
}

func (s *Session) canLogin() bool { return s.auth.Method != MethodToken }

// lookup reads the current token's lease (auth/token/lookup-self).
func (s *Session) lookup(ctx context.Context) error {
	secret, err := s.client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return s.errorf("looking up Agora's token failed (is it valid, and does its policy allow auth/token/lookup-self?): %w", err)
	}
	ttl, err := secret.TokenTTL()
	if err != nil {
		return s.errorf("reading the token's TTL: %w", err)
	}
	renewable, _ := secret.TokenIsRenewable()
	s.setLease(newLease(s.now(), ttl, renewable))
	return nil
}

// login logs in with the configured method and puts the new token on the
// client. It logs in on a copy without a token: a dead token must not
// travel with the login request.
func (s *Session) login(ctx context.Context) error {
	method, err := s.auth.loginMethod()
	if err != nil {
		return s.errorf("%s: %w", s.auth.Describe(), err)
	}
	anon, err := s.client.Clone()
	if err != nil {
		return s.errorf("%s: %w", s.auth.Describe(), err)
	}
	anon.ClearToken()
	secret, err := anon.Auth().Login(ctx, method)
	if err != nil {
		return s.errorf("logging in with %s failed: %w", s.auth.Describe(), err)
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return s.errorf("logging in with %s returned no token", s.auth.Describe())
	}
	s.client.SetToken(secret.Auth.ClientToken)
	s.setLease(newLease(s.now(), time.Duration(secret.Auth.LeaseDuration)*time.Second, secret.Auth.Renewable))
	return nil
}

// renew extends the current token by the TTL it was issued with
// (auth/token/renew-self). Vault grants less near the token's max TTL;
// the lease is then capped.
func (s *Session) renew(ctx context.Context) error {
	s.mu.Lock()
	period := s.lease.period
	s.mu.Unlock()
	secret, err := s.client.Auth().Token().RenewSelfWithContext(ctx, int(period/time.Second))
	if err != nil {
		return s.errorf("renewing Agora's token failed: %w", err)
	}
	if secret == nil || secret.Auth == nil {
		return s.errorf("renewing Agora's token returned nothing")
	}
	granted := time.Duration(secret.Auth.LeaseDuration) * time.Second
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lease = lease{expires: s.now().Add(granted), period: period, renewable: secret.Auth.Renewable, capped: granted < period}
	s.broken, s.failures = nil, 0
	return nil
}

func (s *Session) setLease(l lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lease, s.broken, s.failures = l, nil, 0
}

func (s *Session) errorf(format string, args ...any) error {
	return fmt.Errorf("vault at %s: "+format, append([]any{s.client.Address()}, args...)...)
}

// Run keeps the token alive until ctx ends. At two thirds of what is left
// of the token it renews it, or logs in again (AppRole, Kubernetes auth)
// when renewing cannot help; a token it can neither renew nor replace is
// warned about at each such step, and marked dead at its end. A failed
// attempt is logged once and retried with backoff, never per request.
func (s *Session) Run(ctx context.Context) {
	timer := time.NewTimer(s.nextStep())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
		s.step(ctx)
		timer.Reset(s.nextStep())
	}
}

// idle is Run's wait when nothing is due: a token without expiry, or a
// dead token only the operator can replace. A readiness check still
// wakes it.
const idle = time.Hour

// nextStep is how long Run waits before its next step.
func (s *Session) nextStep() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := s.lease.expires.Sub(s.now())
	switch {
	case s.broken != nil && !s.canLogin():
		return idle
	case s.broken != nil || s.failures > 0:
		d := retryDelay(s.failures)
		if !s.lease.expires.IsZero() && left > 0 {
			// Act right at the end too, so readiness turns at once.
			d = min(d, left)
		}
		return d
	case s.lease.expires.IsZero():
		return idle
	}
	return max(left*2/3, 0)
}

// retryDelay backs off from 2s to a minute over consecutive failures.
func retryDelay(failures int) time.Duration {
	return min(time.Second<<min(failures, 6), time.Minute)
}

// step does what is due now.
func (s *Session) step(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s.mu.Lock()
	l, broken, now := s.lease, s.broken, s.now()
	s.mu.Unlock()
	expired := !l.expires.IsZero() && !now.Before(l.expires)

	switch {
	case s.canLogin() && (broken != nil || expired || !l.renewable || l.capped):
		// Renewing cannot help, or already failed: get a new token.
		s.loginAgain(ctx, expired)
	case broken != nil, l.expires.IsZero():
	case expired:
		s.markBroken(s.errorf("Agora's token expired at %s; give Agora a new token (vault.token) and restart it, or log in with approle or kubernetes auth",
			l.expires.UTC().Format(time.RFC3339)))
		s.log.Error("vault: Agora's token expired; replicas are not ready until it is replaced", "vault", s.client.Address(), "expired", l.expires.UTC())
	case l.renewable && !l.capped:
		s.renewOnce(ctx)
	default:
		s.log.Error("vault: Agora's token cannot be renewed any further and will expire; give Agora a new token (vault.token) and restart it, or log in with approle or kubernetes auth",
			"vault", s.client.Address(), "expires", l.expires.UTC(), "left", l.expires.Sub(now).Round(time.Second))
	}
}

func (s *Session) loginAgain(ctx context.Context, expired bool) {
	if err := s.login(ctx); err != nil {
		s.failed(err, expired)
		return
	}
	s.log.Info("vault: logged in again", "vault", s.client.Address(), "auth", s.Describe())
}

// renewOnce renews the token, and handles Vault's refusals: a login method
// logs in afresh instead; a token that works but may not renew itself, or
// that reached its max TTL, is left to expire (warned about by step).
func (s *Session) renewOnce(ctx context.Context) {
	err := s.renew(ctx)
	switch {
	case err == nil:
		s.log.Debug("vault: token renewed", "vault", s.client.Address(), "auth", s.Describe())
	case s.canLogin():
		s.loginAgain(ctx, false)
	case isPermissionDenied(err) && s.lookup(ctx) == nil:
		s.mu.Lock()
		s.lease.renewable = false
		exp := s.lease.expires
		s.mu.Unlock()
		s.log.Error("vault: Agora's token may not renew itself (its policy lacks update on auth/token/renew-self); it will expire", "vault", s.client.Address(), "expires", exp.UTC())
	case strings.Contains(err.Error(), "past the max TTL"):
		s.mu.Lock()
		s.lease.capped = true
		s.mu.Unlock()
	default:
		s.failed(err, false)
	}
}

// failed records a failed renewal or login, logged once per attempt. A
// 403 means the token is dead (revoked, or past its end).
func (s *Session) failed(err error, expired bool) {
	s.mu.Lock()
	s.failures++
	exp, failures := s.lease.expires, s.failures
	s.mu.Unlock()
	if expired || isPermissionDenied(err) {
		s.markBroken(err)
	}
	attrs := []any{"error", err, "retry_in", retryDelay(failures)}
	if !exp.IsZero() {
		attrs = append(attrs, "token_expires", exp.UTC())
	}
	s.log.Error("vault: keeping Agora's token alive failed; retrying", attrs...)
}

func (s *Session) markBroken(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken = err
}

func isPermissionDenied(err error) bool {
	var re *vault.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

// Check is readiness's Vault check: Vault answers, is unsealed, and
// Agora's token still works (auth/token/lookup-self). A dead token wakes
// Run at once, which logs in again where it can.
func (s *Session) Check(ctx context.Context) error {
	h, err := s.client.Sys().HealthWithContext(ctx)
	if err != nil {
		return s.errorf("%w", err)
	}
	if !h.Initialized || h.Sealed {
		return s.errorf("initialized=%t sealed=%t", h.Initialized, h.Sealed)
	}
	s.mu.Lock()
	broken, exp, now := s.broken, s.lease.expires, s.now()
	s.mu.Unlock()
	if broken != nil {
		s.poke()
		return broken
	}
	if !exp.IsZero() && !now.Before(exp) {
		s.poke()
		return s.errorf("Agora's token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if _, err := s.client.Auth().Token().LookupSelfWithContext(ctx); err != nil {
		if isPermissionDenied(err) {
			err = s.errorf("Agora's token no longer works (revoked or expired): %w", err)
			s.markBroken(err)
			s.poke()
			return err
		}
		return s.errorf("looking up Agora's token: %w", err)
	}
	return nil
}

// poke wakes Run to replace a dead token, unless Run is already retrying
// on its backoff schedule: readiness probes must not turn a failing login
// into one attempt (and one log line) per probe.
func (s *Session) poke() {
	s.mu.Lock()
	retrying := s.failures > 0
	s.mu.Unlock()
	if retrying {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// newClient is NewClient with Vault's CA certificates from caFile.
func newClient(address, token string, timeout time.Duration, caFile string) (*vault.Client, error) {
	var roots *x509.CertPool
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("vault: CA certificate: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("vault: CA certificate %s holds no PEM certificate", caFile)
		}
	}
	return buildClient(address, token, timeout, func(t *http.Transport) {
		if roots != nil {
			t.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
	})
}
