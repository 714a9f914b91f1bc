package vaultstore

import (
	"strings"
	"testing"
)

func TestSegmentKeepsEveryIDInItsOwnPathSegment(t *testing.T) {
	tests := []struct {
		id, want string
	}{
		{"3f2a-inst_1.x", "3f2a-inst_1.x"},
		{"", "x-"},
		{".", "x-2e"},
		{"..", "x-2e2e"},
		{"a/b", "x-612f62"},
		{"../etc", "x-2e2e2f657463"},
		{"x-41", "x-782d3431"}, // a plain ID never looks like an encoded one
		{"ü", "x-c3bc"},
		{"a b", "x-612062"},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := Segment(tt.id)
		if got != tt.want {
			t.Errorf("Segment(%q) = %q, want %q", tt.id, got, tt.want)
		}
		if strings.ContainsAny(got, "/ ") || got == "." || got == ".." || got == "" {
			t.Errorf("Segment(%q) = %q is not one safe path segment", tt.id, got)
		}
		// The orphan sweep reads IDs back from Vault's listings.
		if back, ok := unsegment(got); !ok || back != tt.id {
			t.Errorf("unsegment(%q) = %q, %t, want %q", got, back, ok, tt.id)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("Segment(%q) and Segment(%q) collide at %q", prev, tt.id, got)
		}
		seen[got] = tt.id
	}
}

func TestBindingRefScheme(t *testing.T) {
	s := &Store{prefix: "agora"}
	if got, want := s.BindingRef("i-1", "b/1"), "agora/instances/i-1/bindings/x-622f31"; got != want {
		t.Errorf("BindingRef = %q, want %q", got, want)
	}
	if got, want := s.ParametersRef("i-1", "op1"), "agora/instances/i-1/operations/op1"; got != want {
		t.Errorf("parametersPath = %q, want %q", got, want)
	}
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	if _, err := New(Config{Address: "http://127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("New without a token: %v", err)
	}
	if _, err := New(Config{Token: "t"}); err == nil || !strings.Contains(err.Error(), "address") {
		t.Errorf("New without an address: %v", err)
	}
}
