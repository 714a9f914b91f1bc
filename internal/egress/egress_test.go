package egress

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
)

func mustPolicy(t *testing.T, cfg Config) *Policy {
	t.Helper()
	p, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckURL(t *testing.T) {
	own := []Endpoint{{Name: "Agora's Redis", HostPort: "127.0.0.1:6379"}, {Name: "Agora's Vault", HostPort: "vault.internal:8200"}}
	tests := []struct {
		name     string
		allow    []string
		url      string
		wantRule string // "" allows
	}{
		{"public address, no allow-list", nil, "http://192.0.2.10:9090", ""},
		{"loopback refused by default", nil, "http://127.0.0.1:9090", "loopback, link-local"},
		{"localhost resolves to loopback", nil, "http://localhost:9090", "loopback, link-local"},
		{"IPv6 loopback", nil, "http://[::1]:9090", "loopback, link-local"},
		{"metadata address", nil, "http://169.254.169.254/latest", "loopback, link-local"},
		{"unspecified", nil, "http://0.0.0.0:9090", "loopback, link-local"},
		{"loopback allowed by CIDR", []string{"127.0.0.0/8"}, "http://127.0.0.1:9090", ""},
		{"own Redis even with loopback allowed", []string{"127.0.0.0/8"}, "http://127.0.0.1:6379", "own Redis and Vault"},
		{"own Vault by name", nil, "https://vault.internal:8200/v1", "own Redis and Vault"},
		{"host on the allow-list, address refused", []string{"localhost"}, "http://localhost:9090", "loopback, link-local"},
		{"not on the allow-list", []string{"10.0.0.0/8"}, "http://192.0.2.10:9090", "gate.egress.allow"},
		{"inside an allowed CIDR", []string{"192.0.2.0/24"}, "http://192.0.2.10:9090", ""},
		{"not http", nil, "ftp://192.0.2.10/", "http(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPolicy(t, Config{Allow: tt.allow, Own: own})
			err := p.CheckURL(context.Background(), tt.url)
			if tt.wantRule == "" {
				if err != nil {
					t.Fatalf("CheckURL(%s) = %v, want allowed", tt.url, err)
				}
				return
			}
			var re *RefusedError
			if !errors.As(err, &re) || !strings.Contains(re.Rule, tt.wantRule) {
				t.Fatalf("CheckURL(%s) = %v, want refused by a rule naming %q", tt.url, err, tt.wantRule)
			}
			if !strings.Contains(err.Error(), "rule:") {
				t.Errorf("the message %q does not name its rule", err)
			}
		})
	}
}

func TestDialRefusesWhatTheHostResolvesToNow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	// A host allowed by name whose address turns out to be loopback at
	// dial time, as after a rebinding: refused on the address dialled.
	p := mustPolicy(t, Config{Allow: []string{"adapter.example.com"}})
	_, err = p.DialContext(context.Background(), "tcp", ln.Addr().String())
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "loopback") {
		t.Fatalf("dial %s = %v, want refused as loopback", ln.Addr(), err)
	}
	allowing := mustPolicy(t, Config{Allow: []string{"127.0.0.0/8"}})
	c, err := allowing.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial with loopback allowed: %v", err)
	}
	_ = c.Close()
	// Agora's own endpoint stays refused when loopback is allowed.
	ownHere := mustPolicy(t, Config{Allow: []string{"127.0.0.0/8"}, Own: []Endpoint{{Name: "Agora's Redis", HostPort: ln.Addr().String()}}})
	if _, err := ownHere.DialContext(context.Background(), "tcp", ln.Addr().String()); !errors.As(err, &re) || !strings.Contains(re.Reason, "Agora's Redis") {
		t.Fatalf("dial of Agora's own Redis = %v, want refused naming it", err)
	}
}

func TestBadAllowEntries(t *testing.T) {
	_, err := New(context.Background(), Config{Allow: []string{"10.0.0.0/33", "exa mple", "ok.example.com"}})
	if err == nil || !strings.Contains(err.Error(), "gate.egress.allow[0]") || !strings.Contains(err.Error(), "gate.egress.allow[1]") {
		t.Fatalf("New = %v, want both bad entries named", err)
	}
}

// TestDialAppliesTheAllowListToEveryHost: the gate's verifiers dial the
// hosts an adapter's credentials name, with no CheckURL before; the
// allow-list's host names must hold for them too, before any packet.
func TestDialAppliesTheAllowListToEveryHost(t *testing.T) {
	p := mustPolicy(t, Config{Allow: []string{"*.adapters.example.com"}})
	var re *RefusedError
	// 192.0.2.0/24 is TEST-NET-1: a dial there would hang, not refuse.
	_, err := p.DialContext(t.Context(), "tcp", "192.0.2.10:5432")
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "not on the allow-list") || !strings.Contains(re.Rule, "gate.egress.allow") {
		t.Fatalf("dial of a credential host outside the allow-list = %v, want refused naming gate.egress.allow", err)
	}
	if _, err := p.DialContext(t.Context(), "tcp", "no-port"); !errors.As(err, &re) {
		t.Fatalf("dial of an address without a port = %v, want refused", err)
	}
	// Agora's own Redis named by its host name, as a credential may.
	own := mustPolicy(t, Config{Allow: []string{"127.0.0.0/8"}, Own: []Endpoint{{Name: "Agora's Redis", HostPort: "localhost:6379"}}})
	if _, err := own.DialContext(t.Context(), "tcp", "LOCALHOST:6379"); !errors.As(err, &re) || !strings.Contains(re.Reason, "Agora's Redis") {
		t.Fatalf("dial of Agora's Redis by name = %v, want refused naming it", err)
	}
}
