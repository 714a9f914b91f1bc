package redis

import "testing"

// TestNamesArePinned pins the user names and key namespaces the adapter
// derives from IDs to the values it has always generated. Existing
// bindings and keys on real servers are found by these names alone: a
// change here would orphan them.
func TestNamesArePinned(t *testing.T) {
	tests := []struct{ instanceID, userPrefix, user, keyPrefix string }{
		{"6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f", "agora-6f1c2b1e8d2a4c3b9e4f0a1b2c3d4e5f-", "agora-6f1c2b1e8d2a4c3b9e4f0a1b2c3d4e5f-x94b0cd3f6d3351c35d1493fe7e93189", "cache:6f1c2b1e8d2a4c3b9e4f0a1b2c3d4e5f:"},
		{"abc123", "agora-abc123-", "agora-abc123-x4b31b3d5715eeed7ff6c276aca282a4", "cache:abc123:"},
		{"Team-A/Instance #7: Ünïcødé & a very long tail past every limit", "agora-xf153715603bf0c4b3867527b8aca5d0-", "agora-xf153715603bf0c4b3867527b8aca5d0-xe393ce264ed6e9076bc09b8a7c40019", "cache:xf153715603bf0c4b3867527b8aca5d0:"},
		{"", "agora-xe3b0c44298fc1c149afbf4c8996fb92-", "agora-xe3b0c44298fc1c149afbf4c8996fb92-x9eb0090438774326a15c83e5046c01e", "cache:xe3b0c44298fc1c149afbf4c8996fb92:"},
		{"a-b", "agora-xd44362d67d921091c7b9674d752e9e2-", "agora-xd44362d67d921091c7b9674d752e9e2-xafb5df5fc20f8e1062b06f1a8bdadca", "cache:xd44362d67d921091c7b9674d752e9e2:"},
	}
	for _, tt := range tests {
		// The binding ID is derived from the instance ID to keep the table short.
		got := []string{instanceUserPrefix(tt.instanceID), bindingUserName(tt.instanceID, tt.instanceID+"-binding"), keyPrefix("cache", tt.instanceID)}
		want := []string{tt.userPrefix, tt.user, tt.keyPrefix}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("names of %q: got %q, want %q", tt.instanceID, got[i], want[i])
			}
		}
	}
}
