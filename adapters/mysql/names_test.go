package mysql

import "testing"

// TestNamesArePinned pins the names the adapter derives from IDs to the
// values it has always generated. Existing instances on real servers are
// found by these names alone: a change here would orphan them.
func TestNamesArePinned(t *testing.T) {
	tests := []struct{ instanceID, prefix, database, user string }{
		{"6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f", "agora_c7e98758a5f8b866_", "agora_c7e98758a5f8b866_6f1c2b1e_8d2a_4c3b_9e4f_", "agora_c7e98758a5f8b866_94b0cd3f6"},
		{"abc123", "agora_6ca13d52ca70c883_", "agora_6ca13d52ca70c883_abc123", "agora_6ca13d52ca70c883_4b31b3d57"},
		{"Team-A/Instance #7: Ünïcødé & a very long tail past every limit", "agora_f153715603bf0c4b_", "agora_f153715603bf0c4b_team_a_instance__7___n_c", "agora_f153715603bf0c4b_e393ce264"},
		{"", "agora_e3b0c44298fc1c14_", "agora_e3b0c44298fc1c14_", "agora_e3b0c44298fc1c14_9eb009043"},
		{"a-b", "agora_d44362d67d921091_", "agora_d44362d67d921091_a_b", "agora_d44362d67d921091_afb5df5fc"},
	}
	for _, tt := range tests {
		n := namesFor(tt.instanceID)
		// The binding ID is derived from the instance ID to keep the table short.
		got := []string{n.prefix, n.database, n.user(tt.instanceID + "-binding")}
		want := []string{tt.prefix, tt.database, tt.user}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("names of %q: got %q, want %q", tt.instanceID, got[i], want[i])
			}
		}
	}
}
