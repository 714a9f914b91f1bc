package vaultstore

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/internal/devvault"
)

// The login tests run against the real dev Vault (tools/devvault), one
// per package run, started in TestMain; each test uses mounts and tokens
// of its own.
var devVault struct {
	bin string
	srv *devvault.Server
	err error
}

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		devVault.bin, devVault.srv, devVault.err = startDevVault()
	}
	code := m.Run()
	if devVault.srv != nil {
		_ = devVault.srv.Stop()
	}
	os.Exit(code)
}

func startDevVault() (string, *devvault.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	wd, err := os.Getwd()
	if err != nil {
		return "", nil, err
	}
	root, err := devvault.FindRepoRoot(wd)
	if err != nil {
		return "", nil, err
	}
	bin, err := devvault.EnsureBinary(ctx, root, os.Stderr)
	if err != nil {
		return "", nil, fmt.Errorf("obtain the dev Vault binary: %w", err)
	}
	srv, err := devvault.Start(ctx, bin, devvault.Options{RootToken: "root"})
	return bin, srv, err
}

// needVault returns a root client of the shared dev Vault.
func needVault(t *testing.T) *vault.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real dev Vault; skipped with -short")
	}
	if devVault.srv == nil {
		t.Fatalf("no dev Vault: %v", devVault.err)
	}
	return rootClient(t, devVault.srv.Addr)
}

func rootClient(t *testing.T, addr string) *vault.Client {
	t.Helper()
	c, err := NewClient(addr, "root", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logBuffer collects a session's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// records returns the messages logged at level (e.g. "ERROR").
func (b *logBuffer) records(level string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, line := range strings.Split(b.buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["level"] == level {
			out = append(out, rec["msg"].(string))
		}
	}
	return out
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustWrite(t *testing.T, c *vault.Client, path string, data map[string]any) *vault.Secret {
	t.Helper()
	s, err := c.Logical().Write(path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

// newToken creates a token with the given request fields (ttl, renewable,
// policies...), as the platform team would hand one to Agora.
func newToken(t *testing.T, root *vault.Client, req map[string]any) string {
	t.Helper()
	return mustWrite(t, root, "auth/token/create", req).Auth.ClientToken
}

// runSession runs s.Run until the test ends.
func runSession(t *testing.T, s *Session) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after %s: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestTokenIsRenewedBeforeItExpires(t *testing.T) {
	root := needVault(t)
	t.Parallel()
	token := newToken(t, root, map[string]any{"ttl": "3s", "explicit_max_ttl": "1h", "renewable": true})
	var log logBuffer
	s, err := Connect(context.Background(), ConnectConfig{Address: devVault.srv.Addr, Auth: Auth{Token: token}, Logger: log.logger()})
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Describe(); !strings.Contains(d, "renewable token valid until") {
		t.Errorf("Describe() = %q", d)
	}
	runSession(t, s)
	time.Sleep(7 * time.Second) // more than twice the TTL
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check after twice the TTL: %v\n%s", err, log.String())
	}
	info, err := root.Auth().Token().Lookup(token)
	if err != nil {
		t.Fatalf("the token is gone: %v", err)
	}
	if info.Data["last_renewal_time"] == nil {
		t.Errorf("the token was never renewed: %v", info.Data)
	}
	if errs := log.records("ERROR"); len(errs) != 0 {
		t.Errorf("errors logged: %v", errs)
	}
	if strings.Contains(log.String(), token) {
		t.Error("the token is in the log")
	}
}

func TestTokenThatCannotBeRenewedIsWarnedAboutThenNotReady(t *testing.T) {
	root := needVault(t)
	t.Parallel()
	token := newToken(t, root, map[string]any{"ttl": "4s", "renewable": false})
	var log logBuffer
	s, err := Connect(context.Background(), ConnectConfig{Address: devVault.srv.Addr, Auth: Auth{Token: token}, Logger: log.logger()})
	if err != nil {
		t.Fatal(err)
	}
	expires := time.Now().Add(4 * time.Second)
	runSession(t, s)
	eventually(t, 4*time.Second, "a warning before the token expires", func() error {
		for _, msg := range log.records("ERROR") {
			if strings.Contains(msg, "cannot be renewed") {
				return nil
			}
		}
		return fmt.Errorf("no warning yet")
	})
	if time.Now().After(expires) {
		t.Errorf("the warning came after the token expired")
	}
	if err := s.Check(context.Background()); err != nil {
		t.Errorf("Check before expiry: %v", err)
	}
	eventually(t, 10*time.Second, "readiness names Vault once the token expired", func() error {
		err := s.Check(context.Background())
		if err == nil {
			return fmt.Errorf("Check still passes")
		}
		if !strings.Contains(err.Error(), "vault at "+devVault.srv.Addr) || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("Check error does not name Vault and the expiry: %v", err)
		}
		return nil
	})
}

func TestRevokedTokenTurnsCheckNotReady(t *testing.T) {
	root := needVault(t)
	t.Parallel()
	token := newToken(t, root, map[string]any{"ttl": "1h"})
	s, err := Connect(context.Background(), ConnectConfig{Address: devVault.srv.Addr, Auth: Auth{Token: token}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check with a live token: %v", err)
	}
	if err := root.Auth().Token().RevokeOrphan(token); err != nil {
		t.Fatal(err)
	}
	err = s.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "vault at ") || !strings.Contains(err.Error(), "no longer works") {
		t.Fatalf("Check with a revoked token: %v", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Error("the error holds the token")
	}
}

func TestConnectRefusesABadToken(t *testing.T) {
	needVault(t)
	_, err := Connect(context.Background(), ConnectConfig{Address: devVault.srv.Addr, Auth: Auth{Token: "not-a-token"}})
	if err == nil || !strings.Contains(err.Error(), "vault at "+devVault.srv.Addr) || !strings.Contains(err.Error(), "lookup-self") {
		t.Fatalf("Connect with a bad token: %v", err)
	}
	if strings.Contains(err.Error(), "not-a-token") {
		t.Error("the error holds the token")
	}
}

// appRole enables AppRole at a mount of the test's own and returns a role
// whose tokens live ttl (max maxTTL), with its role_id and a secret_id
// file.
func appRole(t *testing.T, root *vault.Client, ttl, maxTTL string) (mount, roleID, secretIDFile string) {
	t.Helper()
	mount = fmt.Sprintf("approle-%d", time.Now().UnixNano()) // unique across -count runs
	if err := root.Sys().EnableAuthWithOptions(mount, &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, root, "sys/policies/acl/"+mount, map[string]any{"policy": `path "secret/data/` + mount + `/*" { capabilities = ["create", "read", "update"] }`})
	mustWrite(t, root, "auth/"+mount+"/role/agora", map[string]any{"token_ttl": ttl, "token_max_ttl": maxTTL, "token_policies": "default," + mount})
	rid, err := root.Logical().Read("auth/" + mount + "/role/agora/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid := mustWrite(t, root, "auth/"+mount+"/role/agora/secret-id", nil)
	secretIDFile = filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(secretIDFile, []byte(sid.Data["secret_id"].(string)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return mount, rid.Data["role_id"].(string), secretIDFile
}

func TestAppRoleLogsInAgainPastTheTokensMaxTTL(t *testing.T) {
	root := needVault(t)
	t.Parallel()
	mount, roleID, secretIDFile := appRole(t, root, "2s", "4s")
	var log logBuffer
	s, err := Connect(context.Background(), ConnectConfig{Address: devVault.srv.Addr, Logger: log.logger(),
		Auth: Auth{Method: MethodAppRole, RoleID: roleID, SecretIDFile: secretIDFile, Mount: mount}})
	if err != nil {
		t.Fatal(err)
	}
	first := s.Client().Token()
	runSession(t, s)
	time.Sleep(6 * time.Second) // past the first token's max TTL
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check past the max TTL: %v\n%s", err, log.String())
	}
	if s.Client().Token() == first {
		t.Error("still the first token past its max TTL")
	}
	kv := s.Client().KVv2("secret")
	if _, err := kv.Put(context.Background(), mount+"/probe", map[string]any{"v": "1"}); err != nil {
		t.Fatalf("the store cannot write with the new token: %v", err)
	}
	if errs := log.records("ERROR"); len(errs) != 0 {
		t.Errorf("errors logged: %v\n%s", errs, log.String())
	}

	// A revoked token is noticed by readiness, which wakes the session:
	// it logs in again at once.
	if err := root.Auth().Token().RevokeOrphan(s.Client().Token()); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(context.Background()); err == nil {
		t.Fatal("Check passes with a revoked token")
	}
	eventually(t, 5*time.Second, "a new login after revocation", func() error { return s.Check(context.Background()) })
	secretID := readFile(t, secretIDFile)

	// A login that keeps failing is retried on its backoff schedule, not
	// once per readiness probe.
	if err := os.WriteFile(secretIDFile, []byte("0c6a5f1e-not-the-secret-id"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := root.Auth().Token().RevokeOrphan(s.Client().Token()); err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if err := s.Check(context.Background()); err == nil {
			t.Fatal("Check passes with a revoked token and a wrong secret_id")
		}
		time.Sleep(100 * time.Millisecond)
	}
	failures := 0
	for _, msg := range log.records("ERROR") {
		if strings.Contains(msg, "keeping Agora's token alive failed") {
			failures++
		}
	}
	if failures < 1 || failures > 3 {
		t.Errorf("%d failed logins logged over 4s of probes, want 1 to 3 (2s, 4s backoff)", failures)
	}
	for _, secret := range []string{first, s.Client().Token(), secretID} {
		if strings.Contains(log.String(), strings.TrimSpace(secret)) {
			t.Error("a token or the secret_id is in the log")
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoginFailuresNameVaultAndTheMethod(t *testing.T) {
	root := needVault(t)
	mount, roleID, _ := appRole(t, root, "1m", "1h")
	wrongSecret := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(wrongSecret, []byte("0c6a5f1e-wrong-secret-id"), 0o600); err != nil {
		t.Fatal(err)
	}
	jwt := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwt, []byte("eyJhbGciOi.jwt-marker.sig"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		auth   Auth
		want   []string
		secret string
	}{
		{"a wrong secret_id", Auth{Method: MethodAppRole, RoleID: roleID, SecretIDFile: wrongSecret, Mount: mount},
			[]string{"vault at " + devVault.srv.Addr, "AppRole", mount}, "wrong-secret-id"},
		{"a missing secret_id file", Auth{Method: MethodAppRole, RoleID: roleID, SecretIDFile: "/nonexistent/secret-id", Mount: mount},
			[]string{"vault at ", "AppRole", "/nonexistent/secret-id"}, ""},
		{"Kubernetes auth not enabled at that mount", Auth{Method: MethodKubernetes, Role: "agora", JWTFile: jwt},
			[]string{"vault at " + devVault.srv.Addr, `Kubernetes auth (mount "kubernetes", role "agora")`}, "jwt-marker"},
		{"a missing service-account token", Auth{Method: MethodKubernetes, Role: "agora", JWTFile: "/nonexistent/token"},
			[]string{"vault at ", "Kubernetes auth", "/nonexistent/token"}, ""},
		{"an unknown method", Auth{Method: "ldap"}, []string{`unknown login method "ldap"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Connect(context.Background(), ConnectConfig{Address: devVault.srv.Addr, Auth: tt.auth})
			if err == nil {
				t.Fatal("Connect succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
}

func TestRenewalFailuresAreLoggedOncePerAttempt(t *testing.T) {
	needVault(t)
	t.Parallel()
	// A Vault of its own: this test stops it.
	srv, err := devvault.Start(context.Background(), devVault.bin, devvault.Options{RootToken: "root"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	token := newToken(t, rootClient(t, srv.Addr), map[string]any{"ttl": "6s", "renewable": true})
	var log logBuffer
	s, err := Connect(context.Background(), ConnectConfig{Address: srv.Addr, Auth: Auth{Token: token}, Logger: log.logger(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	runSession(t, s)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// Requests and probes keep coming while Vault is away; none of them
	// may add a renewal line.
	for deadline := time.Now().Add(9 * time.Second); time.Now().Before(deadline); {
		for range 20 {
			err := s.Check(context.Background())
			if err == nil || !strings.Contains(err.Error(), "vault at "+srv.Addr) {
				t.Fatalf("Check with Vault gone: %v", err)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	failures := 0
	for _, msg := range log.records("ERROR") {
		if strings.Contains(msg, "keeping Agora's token alive failed") {
			failures++
		}
	}
	// Renewal is due at 4s; retries back off 2s, 4s, ... and the token
	// ends at 6s: a handful of attempts, not one per probe.
	if failures < 1 || failures > 4 {
		t.Errorf("%d renewal failures logged, want between 1 and 4:\n%s", failures, log.String())
	}
	err = s.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "vault at "+srv.Addr) {
		t.Errorf("Check after expiry: %v", err)
	}
}

func TestNextStep(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		method   string
		lease    lease
		broken   error
		failures int
		want     time.Duration
	}{
		{"a root token never expires", MethodToken, lease{}, nil, 0, idle},
		{"renew at two thirds of what is left", MethodToken, lease{expires: now.Add(90 * time.Second), period: 90 * time.Second, renewable: true}, nil, 0, time.Minute},
		{"an overdue step runs now", MethodToken, lease{expires: now.Add(-time.Second), period: time.Minute}, nil, 0, 0},
		{"a failure backs off", MethodToken, lease{expires: now.Add(time.Hour), period: time.Hour, renewable: true}, nil, 2, 4 * time.Second},
		{"backoff stops at a minute", MethodAppRole, lease{expires: now.Add(time.Hour), period: time.Hour}, nil, 20, time.Minute},
		{"a retry never waits past the end", MethodToken, lease{expires: now.Add(time.Second), period: time.Hour, renewable: true}, nil, 3, time.Second},
		{"a dead token only the operator can replace", MethodToken, lease{expires: now.Add(time.Hour)}, fmt.Errorf("revoked"), 1, idle},
		{"a dead login token is replaced soon", MethodKubernetes, lease{expires: now.Add(time.Hour)}, fmt.Errorf("revoked"), 1, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Session{auth: Auth{Method: tt.method}, now: func() time.Time { return now }, lease: tt.lease, broken: tt.broken, failures: tt.failures}
			if got := s.nextStep(); got != tt.want {
				t.Errorf("nextStep() = %s, want %s", got, tt.want)
			}
		})
	}
}
