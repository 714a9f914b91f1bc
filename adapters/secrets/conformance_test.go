package secrets_test

import (
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/secrets"
)

// TestConformance runs Agora's conformance kit against the real dev Vault.
// The kit plays the bound app itself, by the credentials' type (vault):
// an AppRole login, then KV v2 under the binding's path.
func TestConformance(t *testing.T) {
	srv := needVault(t)
	report := adaptertest.RunT(t, conformance.Options{
		Factory:                    secrets.Factory(),
		Settings:                   adapters.MapSettings(map[string]any{"vault_addr": srv.Addr, "token": srv.RootToken}),
		Plans:                      defaultPlans(),
		InvalidProvisionParameters: map[string]any{"size": "big"},
	})
	adaptertest.RequireVerified(t, report)
}
