package credcheck_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters/conformance/credcheck"
	"github.com/agora-osb/agora/internal/devvault"
)

// The verifiers' happy path runs in every built-in adapter's conformance
// test (adaptertest.RequireVerified). These prove the other half: they
// fail credentials that do not work, and they do not call credentials
// revoked while the server still accepts them. Each case needs its real
// server and is skipped without it.

func reachable(t *testing.T, addr string) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real server at " + addr)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Skipf("no server at %s: %v", addr, err)
	}
	_ = c.Close()
}

func TestVerifiersJudgeCredentials(t *testing.T) {
	verifiers := credcheck.Defaults(nil)
	tests := []struct {
		name, typ, addr string
		// unknown are credentials of a user the server does not have;
		// live are the server's own admin login.
		unknown, live map[string]any
		wantWorks     string
	}{
		{
			name: "postgresql", typ: "postgresql", addr: "127.0.0.1:5432",
			unknown:   map[string]any{"uri": "postgres://agora_no_such_user:pw@127.0.0.1:5432/postgres?sslmode=disable"},
			live:      map[string]any{"uri": "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"},
			wantWorks: "agora_no_such_user",
		},
		{
			name: "mysql", typ: "mysql", addr: "127.0.0.1:3306",
			unknown:   map[string]any{"host": "127.0.0.1", "port": 3306, "username": "agora_no_such_user", "password": "pw", "database": "mysql"},
			live:      map[string]any{"uri": "mysql://root@127.0.0.1:3306/"},
			wantWorks: "Access denied",
		},
		{
			name: "redis", typ: "redis", addr: "127.0.0.1:6379",
			unknown:   map[string]any{"uri": "redis://agora-no-such-user:pw@127.0.0.1:6379/0", "key_prefix": "agoratest-credcheck:"},
			live:      map[string]any{"uri": "redis://127.0.0.1:6379/0"},
			wantWorks: "WRONGPASS",
		},
		{
			name: "rabbitmq", typ: "rabbitmq", addr: "127.0.0.1:5672",
			unknown:   map[string]any{"uri": "amqp://agora-no-such-user:pw@127.0.0.1:5672/%2F"},
			live:      map[string]any{"uri": "amqp://guest:guest@127.0.0.1:5672/%2F"},
			wantWorks: "username or password not allowed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reachable(t, tt.addr)
			v := verifiers[tt.typ]
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if err := v.Works(ctx, tt.unknown); err == nil || !strings.Contains(err.Error(), tt.wantWorks) {
				t.Errorf("Works with an unknown user = %v, want an error saying %q", err, tt.wantWorks)
			}
			if err := v.Revoked(ctx, tt.unknown); err != nil {
				t.Errorf("Revoked with an unknown user = %v, want nil", err)
			}
			if err := v.Revoked(ctx, tt.live); err == nil {
				t.Error("Revoked with the server's own login = nil, want an error: it still works")
			}
		})
	}
}

func TestVaultVerifierJudgesCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the dev Vault")
	}
	root, err := devvault.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := devvault.EnsureBinary(t.Context(), root, io.Discard)
	if err != nil {
		t.Fatalf("the dev Vault binary: %v", err)
	}
	srv, err := devvault.Start(t.Context(), bin, devvault.Options{RootToken: "root"})
	if err != nil {
		t.Fatalf("start the dev Vault: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	v := credcheck.Defaults(nil)["vault"]
	bad := map[string]any{"vault_addr": srv.Addr, "auth_path": "auth/approle/login", "role_id": "no-such-role",
		"secret_id": "no-such-secret", "kv_mount": "secret", "path": "agoratest-credcheck"}
	if err := v.Works(t.Context(), bad); err == nil {
		t.Error("Works with an unknown role = nil, want an error")
	}
	if err := v.Revoked(t.Context(), bad); err != nil {
		t.Errorf("Revoked with an unknown role = %v, want nil", err)
	}
}

// TestDialerDecidesWhereVerifiersConnect is what the producer gate relies
// on: a verifier connects only through the dialer it was given.
func TestDialerDecidesWhereVerifiersConnect(t *testing.T) {
	refused := errors.New("egress to this address is not allowed")
	var asked []string
	deny := func(_ context.Context, _, addr string) (net.Conn, error) {
		asked = append(asked, addr)
		return nil, refused
	}
	creds := map[string]string{
		"postgresql": "postgres://u:p@10.9.8.7:5432/db",
		"mysql":      "mysql://u:p@10.9.8.7:3306/db",
		"redis":      "redis://u:p@10.9.8.7:6379/0",
		"rabbitmq":   "amqp://u:p@10.9.8.7:5672/vh",
	}
	for typ, v := range credcheck.Defaults(deny) {
		asked = nil
		c := map[string]any{"uri": creds[typ]}
		if typ == "vault" {
			c = map[string]any{"vault_addr": "http://10.9.8.7:8200", "auth_path": "auth/approle/login", "role_id": "r",
				"secret_id": "s", "kv_mount": "secret", "path": "p"}
		}
		err := v.Works(t.Context(), c)
		if !errors.Is(err, refused) && (err == nil || !strings.Contains(err.Error(), refused.Error())) {
			t.Errorf("%s: Works = %v, want the dialer's refusal", typ, err)
		}
		if len(asked) == 0 || !strings.HasPrefix(asked[0], "10.9.8.7:") {
			t.Errorf("%s: the dialer was asked for %q, want 10.9.8.7", typ, asked)
		}
	}
}
