package postgres

import "testing"

// TestNamesArePinned pins the names the adapter derives from IDs to the
// values it has always generated. Existing instances on real servers are
// found by these names alone: a change here would orphan them. The lock
// key is pinned too: two replicas of different versions must still
// serialize on the same advisory lock.
func TestNamesArePinned(t *testing.T) {
	tests := []struct{ instanceID, database, owner, bindingPrefix, bindingRole, lockStmt string }{
		{"6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f", "agora_c7e98758a5f8b866_6f1c2b1e_8d2a_4c3b_9e4f_", "agora_c7e98758a5f8b866_owner", "agora_c7e98758a5f8b866_b_", "agora_c7e98758a5f8b866_b_94b0cd3f6d33_6f1c2b1e_8d2a_4c3b_9e4f_", "SELECT pg_advisory_xact_lock(6424495211420041498)"},
		{"abc123", "agora_6ca13d52ca70c883_abc123", "agora_6ca13d52ca70c883_owner", "agora_6ca13d52ca70c883_b_", "agora_6ca13d52ca70c883_b_4b31b3d5715e_abc123_binding", "SELECT pg_advisory_xact_lock(-5927965690628203868)"},
		{"Team-A/Instance #7: Ünïcødé & a very long tail past every limit", "agora_f153715603bf0c4b_team_a_instance__7___n_c", "agora_f153715603bf0c4b_owner", "agora_f153715603bf0c4b_b_", "agora_f153715603bf0c4b_b_e393ce264ed6_team_a_instance__7___n_c", "SELECT pg_advisory_xact_lock(-8594059791041567253)"},
		{"", "agora_e3b0c44298fc1c14_", "agora_e3b0c44298fc1c14_owner", "agora_e3b0c44298fc1c14_b_", "agora_e3b0c44298fc1c14_b_9eb009043877__binding", "SELECT pg_advisory_xact_lock(-7882863525157582582)"},
		{"a-b", "agora_d44362d67d921091_a_b", "agora_d44362d67d921091_owner", "agora_d44362d67d921091_b_", "agora_d44362d67d921091_b_afb5df5fc20f_a_b_binding", "SELECT pg_advisory_xact_lock(5632043212367846272)"},
	}
	for _, tt := range tests {
		n := namesFor(tt.instanceID)
		// The binding ID is derived from the instance ID to keep the table short.
		got := []string{n.database, n.owner, n.bindingPrefix, n.bindingRole(tt.instanceID + "-binding"), n.lockStmt()}
		want := []string{tt.database, tt.owner, tt.bindingPrefix, tt.bindingRole, tt.lockStmt}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("names of %q: got %q, want %q", tt.instanceID, got[i], want[i])
			}
		}
	}
}
