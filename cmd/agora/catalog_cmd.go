package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/vaultstore"
	"github.com/agora-osb/agora/internal/config"
)

const catalogUsage = "usage: agora catalog check [-catalog catalog.yml] [-config agora.yml | -offline]"

// catalogCmd checks a catalog: every rule, and, when it can reach Agora's
// Vault, every vault: reference. It never calls a backend or an upstream
// broker. Without a Vault it says the references were not checked rather
// than calling the catalog valid.
func catalogCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return errors.New(catalogUsage)
	}
	fs := flag.NewFlagSet("catalog check", flag.ContinueOnError)
	path := fs.String("catalog", "catalog.yml", "catalog file")
	configPath := fs.String("config", "", "agora serve's config (default ./agora.yml when present): its vault settings, with AGORA_* on top, say where to resolve vault: references")
	offline := fs.Bool("offline", false, "do not contact Vault; vault: references are reported as not checked")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	reg, err := registry()
	if err != nil {
		return err
	}
	file, err := catalog.ParseFile(*path)
	if err != nil {
		return err
	}
	opts := catalog.BuildOptions{Registry: reg}
	refs := map[string]bool{}
	opts.Resolve = func(_ context.Context, p, key string) (string, error) {
		refs[p+"#"+key] = true
		return "not-checked", nil
	}
	vaultCfg, configured, err := vaultForCheck(*configPath, *offline)
	if err != nil {
		return err
	}
	// First every rule without Vault, so a broken catalog is reported in
	// full even when Vault is away.
	if err := catalog.CheckWithSecrets(ctx, opts, file); err != nil {
		return fmt.Errorf("%s is not valid:\n%w", *path, err)
	}
	switch {
	case len(refs) == 0:
		fmt.Fprintf(stdout, "%s is valid (it has no vault: references)\n", *path)
		return nil
	case !configured:
		fmt.Fprintf(stdout, "%s: every rule holds, but its %d vault: references were NOT checked: no Vault is configured "+
			"(give -config agora.yml, or set AGORA_VAULT_ADDR and the login, e.g. AGORA_VAULT_TOKEN)\n", *path, len(refs))
		return nil
	}
	session, err := connectVault(ctx, vaultCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("could not check the %d vault: references of %s: %w", len(refs), *path, err)
	}
	opts.Resolve = vaultstore.Resolver(session.Client())
	if err := catalog.CheckWithSecrets(ctx, opts, file); err != nil {
		return fmt.Errorf("%s is not valid:\n%w", *path, err)
	}
	fmt.Fprintf(stdout, "%s is valid; its %d vault: references resolve in Vault at %s\n", *path, len(refs), vaultCfg.Addr)
	return nil
}

// vaultForCheck finds the Vault to check references against: the config file
// (given, or ./agora.yml) and AGORA_* variables, as agora serve reads
// them. configured is false when nothing names a Vault, or with offline.
func vaultForCheck(path string, offline bool) (config.Vault, bool, error) {
	if offline {
		return config.Vault{}, false, nil
	}
	if path == "" {
		if _, err := os.Stat("agora.yml"); err == nil {
			path = "agora.yml"
		}
	}
	_, fromEnv := os.LookupEnv("AGORA_VAULT_ADDR")
	if path == "" && !fromEnv {
		return config.Vault{}, false, nil
	}
	cfg, err := config.Read(path, os.LookupEnv)
	err = errors.Join(append([]error{err}, cfg.Vault.Validate()...)...)
	if err != nil {
		return config.Vault{}, false, fmt.Errorf("configuration:\n%w", err)
	}
	return cfg.Vault, true, nil
}
