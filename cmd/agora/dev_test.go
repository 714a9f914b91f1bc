package main

import (
	"net"
	"strings"
	"testing"

	"github.com/agora-osb/agora/broker/catalog"
)

// TestEverySkippedOfferingSaysHowToServeIt: every adapter the repository's
// catalog.yml uses has its own fix for agora dev to print, not the
// generic one.
func TestEverySkippedOfferingSaysHowToServeIt(t *testing.T) {
	file, err := catalog.ParseFile("../../catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	generic := devFix("no-such-adapter")
	for _, p := range file.Producers {
		for _, o := range p.Offerings {
			if fix := devFix(o.Adapter); fix == generic {
				t.Errorf("offering %q (adapter %s) gets only the generic fix", o.Name, o.Adapter)
			}
		}
	}
	if !strings.Contains(devFix("rabbitmq"), "rabbitmq-plugins enable rabbitmq_management") {
		t.Errorf("the rabbitmq fix lacks the plugin command: %s", devFix("rabbitmq"))
	}
}

func TestABusyAddressNamesTheFlag(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = addressFree(ln.Addr().String(), "-listen", "127.0.0.1:8090")
	if err == nil || !strings.Contains(err.Error(), "-listen 127.0.0.1:8090") {
		t.Errorf("busy address: %v, want the -listen hint", err)
	}
	if err := addressFree("127.0.0.1:0", "-listen", "x"); err != nil {
		t.Errorf("free address: %v", err)
	}
}

func TestTheDevPasswordIsKeptAcrossRuns(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	first, kept, err := devPassword()
	if err != nil || kept == "" {
		t.Fatalf("first run: %q, %v", kept, err)
	}
	second, _, err := devPassword()
	if err != nil || second != first {
		t.Errorf("second run got another password (%v)", err)
	}
}
