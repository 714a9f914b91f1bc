package secrets

import (
	"strings"
	"testing"
)

// TestNamesArePinned pins the Vault paths, policy, role and entity names
// the adapter derives from IDs to the values it has always generated.
// Instances whose receipt was lost, and every binding, are found by these
// names alone: a change here would orphan them.
func TestNamesArePinned(t *testing.T) {
	a := &Adapter{settings: Settings{KVMount: DefaultKVMount, PathPrefix: DefaultPathPrefix}}
	tests := []struct{ instanceID, path, policy, role string }{
		{"6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f", "agora-secrets/6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f", "agora-secrets-6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f", "agora-6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f-binding"},
		{"abc123", "agora-secrets/abc123", "agora-secrets-abc123", "agora-abc123-binding"},
		{"Team-A/Instance #7: Ünïcødé & a very long tail past every limit", "agora-secrets/team-a-instance-7-n-c-d-a-very-long-tail--f153715603bf0c4b", "agora-secrets-team-a-instance-7-n-c-d-a-very-long-tail--f153715603bf0c4b", "agora-team-a-instance-7-n-c-d-a-very-long-tail--e393ce264ed6e907"},
		{"", "agora-secrets/id--e3b0c44298fc1c14", "agora-secrets-id--e3b0c44298fc1c14", "agora-binding--9eb0090438774326"},
		{"a-b", "agora-secrets/a-b", "agora-secrets-a-b", "agora-a-b-binding"},
	}
	for _, tt := range tests {
		sp := a.spaceFor(tt.instanceID)
		// The binding ID is derived from the instance ID to keep the table short.
		binding := tt.instanceID + "-binding"
		got := []string{sp.path, sp.policy, roleName(binding), entityName(binding)}
		want := []string{tt.path, tt.policy, tt.role, tt.role}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("names of %q: got %q, want %q", tt.instanceID, got[i], want[i])
			}
		}
	}
	for id, want := range map[string]string{
		"ABC":                   "abc--b5d4045c3f466fa9",
		"a--b":                  "a-b--90827a2e56361a8f",
		"-abc-":                 "abc--4d40a3ac32581aa3",
		"é":                     "id--4a99557e4033c353",
		strings.Repeat("x", 64): strings.Repeat("x", 64),
		strings.Repeat("x", 65): strings.Repeat("x", 40) + "--9537c5fdf120482f",
	} {
		if got := vaultName(id); got != want {
			t.Errorf("vaultName(%q) = %q, want %q", id, got, want)
		}
	}
}
