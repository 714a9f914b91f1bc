package secrets_test

import (
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/secrets"
)

// TestExpiringBindingsAndRotation runs against the real dev Vault: a plan
// with a secret_id_ttl tells Agora when each binding expires and when to
// rotate it; the successor of a rotation gets the same access while the
// predecessor keeps working, until it is unbound (by Agora at its
// expires_at, when nobody else does).
func TestExpiringBindingsAndRotation(t *testing.T) {
	srv := needVault(t)
	const ttl, window = 3 * time.Second, time.Second
	plan := adapters.Plan{ID: "plan-rotating-id", Name: "rotating"}
	a, err := secrets.New(t.Context(), adapters.Config{
		Offering: "secrets-test", Producer: "platform-team",
		Settings: adapters.MapSettings(map[string]any{"vault_addr": srv.Addr, "token": srv.RootToken}),
		Plans: []adapters.PlanConfig{{Plan: plan, Settings: adapters.MapSettings(map[string]any{
			"token_ttl": "1h", "secret_id_ttl": ttl.String(), "renew_window": window.String()})}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	ctx := t.Context()
	inst := uniqueID(t, "instance")
	prov, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: inst, Offering: "secrets-test", Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = a.Deprovision(t.Context(), adapters.DeprovisionRequest{InstanceID: inst, Plan: plan, Receipt: prov.Receipt})
	})

	oldID, newID := uniqueID(t, "old"), uniqueID(t, "new")
	before := time.Now()
	old, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: oldID, Plan: plan, InstanceReceipt: prov.Receipt})
	if err != nil {
		t.Fatal(err)
	}
	if old.ExpiresAt.Before(before.Add(ttl)) || old.ExpiresAt.After(time.Now().Add(ttl)) {
		t.Errorf("expires_at %v, want issue time + %s (issued between %v and now)", old.ExpiresAt, ttl, before)
	}
	if got := old.ExpiresAt.Sub(old.RenewBefore); got != window {
		t.Errorf("renew_before is %s before expires_at, want the plan's renew_window %s", got, window)
	}
	oldApp := mustLogin(ctx, t, old.Credentials)

	// The rotation: new credentials, the same folder, and the old ones
	// still work (the spec: both valid in parallel).
	rotated, err := a.Bind(ctx, adapters.BindRequest{InstanceID: inst, BindingID: newID, Plan: plan, InstanceReceipt: prov.Receipt,
		Predecessor: &adapters.Predecessor{BindingID: oldID, Receipt: old.Receipt}})
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Credentials["secret_id"] == old.Credentials["secret_id"] || rotated.Credentials["role_id"] == old.Credentials["role_id"] {
		t.Error("the successor got the predecessor's credentials")
	}
	if rotated.Credentials["path"] != old.Credentials["path"] || rotated.Credentials["policy"] != old.Credentials["policy"] {
		t.Errorf("the successor's access (%v, %v) differs from the predecessor's (%v, %v)",
			rotated.Credentials["path"], rotated.Credentials["policy"], old.Credentials["path"], old.Credentials["policy"])
	}
	newApp := mustLogin(ctx, t, rotated.Credentials)
	path := old.Credentials["path"].(string) + "/shared"
	if _, err := newApp.KVv2("secret").Put(ctx, path, map[string]any{"v": "from the successor"}); err != nil {
		t.Fatalf("the successor writes its folder: %v", err)
	}
	if s, err := oldApp.KVv2("secret").Get(ctx, path); err != nil || s.Data["v"] != "from the successor" {
		t.Fatalf("the predecessor reads the same folder: %v %v", s, err)
	}
	if _, err := login(ctx, t, old.Credentials); err != nil {
		t.Errorf("the predecessor's credentials stopped working at the rotation: %v", err)
	}

	// Vault's AppRole does not refuse an expired secret_id at login: only
	// its tidy, once a minute, deletes it. What stops the predecessor on
	// time is Agora's unbind at its expires_at: the secret_id and every
	// token it gave out stop at once.
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: inst, BindingID: oldID, Plan: plan, InstanceReceipt: prov.Receipt, Receipt: old.Receipt}); err != nil {
		t.Fatal(err)
	}
	if _, err := login(ctx, t, old.Credentials); err == nil {
		t.Error("the predecessor's secret_id still logs in after its unbind")
	}
	_, err = oldApp.KVv2("secret").Get(ctx, path)
	wantStatus(t, "the predecessor's token after its unbind", err, http.StatusForbidden)
	if s, err := newApp.KVv2("secret").Get(ctx, path); err != nil || s.Data["v"] != "from the successor" {
		t.Errorf("the successor stopped working with its predecessor: %v", err)
	}
}
