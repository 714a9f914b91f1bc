package adapters

import "testing"

func TestCompareVersions(t *testing.T) {
	// Each row is in ascending order (semver.org's precedence example).
	ordered := []string{"not-a-version", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0"}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := CompareVersions(a, b); got != want {
				t.Errorf("CompareVersions(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
	if got := CompareVersions("1.1.0+build.7", "1.1.0"); got != 0 {
		t.Errorf("build metadata changed the order: %d", got)
	}
}
