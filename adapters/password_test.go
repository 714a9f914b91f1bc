package adapters

import (
	"strings"
	"testing"
)

func TestNewPassword(t *testing.T) {
	tests := []struct {
		name    string
		length  int
		wantErr bool
	}{
		{name: "one character", length: 1},
		{name: "the built-in adapters' length", length: PasswordLength},
		{name: "longer than one read of random bytes", length: 200},
		{name: "zero", length: 0, wantErr: true},
		{name: "negative", length: -1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPassword(tt.length)
			if tt.wantErr {
				if err == nil {
					t.Errorf("NewPassword(%d) = %q; want an error", tt.length, p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != tt.length {
				t.Errorf("len = %d; want %d", len(p), tt.length)
			}
			if strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") != "" {
				t.Errorf("%q has characters other than letters and digits", p)
			}
		})
	}
}

func TestNewPasswordIsUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		p, err := NewPassword(40)
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] {
			t.Fatalf("%q repeated", p)
		}
		seen[p] = true
	}
}

// TestNewPasswordUsesTheWholeAlphabet: rejection sampling must reach every
// character, and none far more often than the others (a modulo bias would
// favour the first 8 by about 25%).
func TestNewPasswordUsesTheWholeAlphabet(t *testing.T) {
	counts := map[rune]int{}
	const n = 62 * 2000
	p, err := NewPassword(n)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range p {
		counts[r]++
	}
	if len(counts) != 62 {
		t.Fatalf("%d distinct characters; want 62", len(counts))
	}
	for r, c := range counts {
		// 2000 expected per character; ±20% is beyond 8 standard deviations.
		if c < 1600 || c > 2400 {
			t.Errorf("%q appears %d times; want about 2000", r, c)
		}
	}
}
