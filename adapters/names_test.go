package adapters

import (
	"strings"
	"testing"
)

func TestShortHash(t *testing.T) {
	tests := []struct {
		id     string
		digits int
		want   string
	}{
		// SHA-256 of "" and of "abc", the standard test vectors.
		{"", 16, "e3b0c44298fc1c14"},
		{"abc", 9, "ba7816bf8"},
		{"abc", 64, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"ABC", 9, "b5d4045c3"},
	}
	for _, tt := range tests {
		if got := ShortHash(tt.id, tt.digits); got != tt.want {
			t.Errorf("ShortHash(%q, %d) = %q, want %q", tt.id, tt.digits, got, tt.want)
		}
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct {
		id   string
		sep  byte
		max  int
		want string
	}{
		{"abc123", '_', 24, "abc123"},
		{"Team-A/Instance #7", '_', 0, "team_a_instance__7"},
		{"Team-A/Instance #7", '-', 0, "team-a-instance--7"},
		// One sep per character, multi-byte ones included.
		{"Ünïcødé", '_', 0, "_n_c_d_"},
		{"a`; DROP DATABASE x; --", '_', 0, "a___drop_database_x____"},
		{strings.Repeat("ab", 20), '_', 24, strings.Repeat("ab", 12)},
		{"ÜÜÜÜ", '_', 3, "___"},
		{"", '_', 24, ""},
	}
	for _, tt := range tests {
		if got := Sanitize(tt.id, tt.sep, tt.max); got != tt.want {
			t.Errorf("Sanitize(%q, %q, %d) = %q, want %q", tt.id, tt.sep, tt.max, got, tt.want)
		}
	}
}

func TestSafeID(t *testing.T) {
	tests := []struct{ id, want string }{
		{"6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f", "6f1c2b1e8d2a4c3b9e4f0a1b2c3d4e5f"},
		{"abc123", "abc123"},
		{strings.Repeat("a", 24), strings.Repeat("a", 24)},
		// Hashed: a '-' outside a UUID, upper case (it would alias
		// "abc"), glob characters, too long, empty, an upper-case UUID.
		{"a-b", "xd44362d67d921091c7b9674d752e9e2"},
		{"ABC", "xb5d4045c3f466fa91fe2cc6abe79232"},
		{"a*b", "x" + ShortHash("a*b", 31)},
		{strings.Repeat("a", 25), "x" + ShortHash(strings.Repeat("a", 25), 31)},
		{"", "xe3b0c44298fc1c149afbf4c8996fb92"},
		{"6F1C2B1E-8D2A-4C3B-9E4F-0A1B2C3D4E5F", "x" + ShortHash("6F1C2B1E-8D2A-4C3B-9E4F-0A1B2C3D4E5F", 31)},
	}
	for _, tt := range tests {
		got := SafeID(tt.id)
		if got != tt.want {
			t.Errorf("SafeID(%q) = %q, want %q", tt.id, got, tt.want)
		}
		if len(got) > MaxSafeIDLen || strings.Trim(got, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Errorf("SafeID(%q) = %q: want at most %d of [a-z0-9]", tt.id, got, MaxSafeIDLen)
		}
	}
}

func TestSafeName(t *testing.T) {
	const uuid = "6f1c2b1e-8d2a-4c3b-9e4f-0a1b2c3d4e5f"
	tests := []struct {
		prefix string
		ids    []string
		want   string
	}{
		{"agora", nil, "agora"},
		{"agora", []string{"abc"}, "agora-abc"},
		{"agora", []string{uuid, "b1"}, "agora-6f1c2b1e8d2a4c3b9e4f0a1b2c3d4e5f-b1"},
		{"agora", []string{"a-b"}, "agora-xd44362d67d921091c7b9674d752e9e2"},
	}
	for _, tt := range tests {
		if got := SafeName(tt.prefix, tt.ids...); got != tt.want {
			t.Errorf("SafeName(%q, %q) = %q, want %q", tt.prefix, tt.ids, got, tt.want)
		}
	}
	long := strings.Repeat("Ω", 300)
	if got := SafeName("agora", long, long); len(got) > len("agora")+2*(1+MaxSafeIDLen) {
		t.Errorf("SafeName of two long IDs is %d bytes: %q", len(got), got)
	}
	// Instance "a" must not claim the names of instance "a-b" or "a-b-c".
	instancePrefix := SafeName("agora", "a") + "-"
	for _, other := range [][]string{{"a-b", "c"}, {"a-b-c"}, {"ab", "c"}} {
		if name := SafeName("agora", other...); strings.HasPrefix(name, instancePrefix) {
			t.Errorf("%q, a name of %q, starts with instance a's prefix %q", name, other, instancePrefix)
		}
	}
	if name := SafeName("agora", "a", "b-c"); !strings.HasPrefix(name, instancePrefix) {
		t.Errorf("%q, a binding of instance a, lacks its prefix %q", name, instancePrefix)
	}
}
