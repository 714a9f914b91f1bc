// Command devvaultbuild builds the dev Vault (tools/devvault, its own
// module) into Agora's cache directory, or reuses the cached binary, and
// prints its path. CI and `make test` run it first so that the slow cold
// build (minutes on two cores) shows progress instead of looking hung
// inside a test.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/agora-osb/agora/internal/devvault"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "devvaultbuild:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := devvault.FindRepoRoot(cwd)
	if err != nil {
		return err
	}
	bin, err := devvault.EnsureBinary(ctx, root, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Println(bin)
	return nil
}
