package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/secrets"
)

// TestConformance runs Agora's conformance kit against the real dev Vault.
// The Check functions play the bound app: an AppRole login, then KV v2.
func TestConformance(t *testing.T) {
	srv := needVault(t)

	// Tokens from successful logins, by secret_id, so CheckRevoked can
	// prove that tokens issued before Unbind die too, not only the
	// secret_id. The kit may call the checks from several goroutines.
	var mu sync.Mutex
	tokens := map[string]string{}

	adaptertest.RunT(t, conformance.Options{
		Factory:                    secrets.Factory(),
		Settings:                   adapters.MapSettings(map[string]any{"vault_addr": srv.Addr, "token": srv.RootToken}),
		Plans:                      defaultPlans(),
		InvalidProvisionParameters: map[string]any{"size": "big"},
		CheckCredentials: func(ctx context.Context, creds map[string]any) error {
			token, err := login(ctx, t, creds)
			if err != nil {
				return fmt.Errorf("approle login: %w", err)
			}
			mu.Lock()
			tokens[fmt.Sprint(creds["secret_id"])] = token
			mu.Unlock()
			kv := plainClient(t, token).KVv2(fmt.Sprint(creds["kv_mount"]))
			p := fmt.Sprint(creds["path"]) + "/conformance-probe"
			if _, err := kv.Put(ctx, p, map[string]any{"v": "ok"}); err != nil {
				return fmt.Errorf("write %s: %w", p, err)
			}
			got, err := kv.Get(ctx, p)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			if got.Data["v"] != "ok" {
				return fmt.Errorf("read %s: got %v", p, got.Data)
			}
			return nil
		},
		CheckRevoked: func(ctx context.Context, creds map[string]any) error {
			if _, err := login(ctx, t, creds); err == nil {
				return errors.New("the secret_id still logs in")
			}
			mu.Lock()
			token, ok := tokens[fmt.Sprint(creds["secret_id"])]
			mu.Unlock()
			if !ok {
				return nil
			}
			_, err := plainClient(t, token).Auth().Token().LookupSelfWithContext(ctx)
			if !isForbidden(err) {
				return fmt.Errorf("a token issued before unbind still works (lookup-self: %v)", err)
			}
			return nil
		},
		CheckIsolation: func(ctx context.Context, credsA, credsB map[string]any) error {
			token, err := login(ctx, t, credsA)
			if err != nil {
				return fmt.Errorf("approle login with A's credentials: %w", err)
			}
			kv := plainClient(t, token).KVv2(fmt.Sprint(credsB["kv_mount"]))
			p := fmt.Sprint(credsB["path"]) + "/conformance-probe"
			if _, err := kv.Put(ctx, p, map[string]any{"v": "intruder"}); !isForbidden(err) {
				return fmt.Errorf("A writes B's %s: %v, want 403", p, err)
			}
			if _, err := kv.Get(ctx, p); !isForbidden(err) {
				return fmt.Errorf("A reads B's %s: %v, want 403", p, err)
			}
			return nil
		},
	})
}

func isForbidden(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}
