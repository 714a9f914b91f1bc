package secrets_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/agora-osb/agora/internal/devvault"
)

// devVault is the one real Vault the tests of this package share; each test
// uses its own instance and binding IDs. It is started in TestMain so the
// (cached, but slow on first use) binary is obtained once.
type devVault struct {
	srv *devvault.Server
	err error // why there is no server; tests that need one fail with it
}

var vault devVault

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	flag.Parse() // testing.Short needs parsed flags
	if testing.Short() {
		vault.err = fmt.Errorf("skipped: -short")
		return m.Run()
	}
	srv, err := startDevVault()
	if err != nil {
		vault.err = err
		return m.Run()
	}
	vault.srv = srv
	defer func() { _ = srv.Stop() }()
	return m.Run()
}

func startDevVault() (*devvault.Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := devvault.FindRepoRoot(wd)
	if err != nil {
		return nil, err
	}
	bin, err := devvault.EnsureBinary(ctx, root, os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("obtain the dev Vault binary: %w", err)
	}
	srv, err := devvault.Start(ctx, bin, devvault.Options{RootToken: "root"})
	if err != nil {
		return nil, fmt.Errorf("start the dev Vault: %w", err)
	}
	return srv, nil
}

// needVault skips in -short mode and fails, never passes silently, when
// the real Vault could not be started.
func needVault(t *testing.T) *devvault.Server {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real dev Vault; skipped with -short")
	}
	if vault.srv == nil {
		t.Fatalf("no dev Vault: %v", vault.err)
	}
	return vault.srv
}
