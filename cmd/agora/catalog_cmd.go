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

// catalogCheckOptions are agora catalog check's flags.
type catalogCheckOptions struct {
	path, configPath, output *string
	offline                  *bool
}

func catalogCheckFlags(fs *flag.FlagSet) catalogCheckOptions {
	return catalogCheckOptions{
		path:       fs.String("catalog", "catalog.yml", "catalog file"),
		configPath: fs.String("config", "", "agora serve's config (default ./agora.yml when present): its vault settings, with AGORA_* on top, say where to resolve vault: references"),
		offline:    fs.Bool("offline", false, "do not contact Vault; vault: references are reported as not checked"),
		output:     outputFlag(fs),
	}
}

// catalogCheck is what agora catalog check found, as -o json prints it.
type catalogCheck struct {
	Catalog string `json:"catalog"`
	Valid   bool   `json:"valid"`
	// Problems are every broken rule, each at its field and line.
	Problems []catalogProblem `json:"problems"`
	// VaultReferences counts the catalog's vault: references;
	// ReferencesChecked says whether they were resolved in Vault (at
	// Vault), which needs a configured Vault.
	VaultReferences   int    `json:"vault_references"`
	ReferencesChecked bool   `json:"references_checked"`
	Vault             string `json:"vault,omitempty"`
}

type catalogProblem struct {
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// catalogCmd checks a catalog: every rule, and, when it can reach Agora's
// Vault, every vault: reference. It never calls a backend or an upstream
// broker. Without a Vault it says the references were not checked rather
// than calling the catalog valid.
func catalogCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError("usage: agora catalog check [-catalog catalog.yml] [-config agora.yml | -offline]")
	}
	fs := newFlagSet("catalog check")
	flags := catalogCheckFlags(fs)
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	path, output := *flags.path, *flags.output
	res := catalogCheck{Catalog: path, Problems: []catalogProblem{}}
	// invalid reports a broken catalog: every problem, in the output's
	// form, and an error for the exit status.
	invalid := func(err error) error {
		if output != "json" {
			return fmt.Errorf("%s is not valid:\n%w", path, err)
		}
		var ve *catalog.ValidationError
		if errors.As(err, &ve) {
			for _, fe := range ve.Errors {
				res.Problems = append(res.Problems, catalogProblem{Path: fe.Path, Line: fe.Line, Message: fe.Message})
			}
		} else {
			res.Problems = append(res.Problems, catalogProblem{Message: err.Error()})
		}
		if err := emit(stdout, output, res, nil); err != nil {
			return err
		}
		return fmt.Errorf("%s is not valid (%d problems)", path, len(res.Problems))
	}
	reg, err := registry()
	if err != nil {
		return err
	}
	// A file with unknown fields or mistyped values comes back with its
	// error; the check below reports those with every other problem.
	file, err := catalog.ParseFile(path)
	if file == nil {
		return invalid(err)
	}
	opts := catalog.BuildOptions{Registry: reg}
	refs := map[string]bool{}
	opts.Resolve = func(_ context.Context, p, key string) (string, error) {
		refs[p+"#"+key] = true
		return "not-checked", nil
	}
	vaultCfg, configured, err := vaultForCheck(*flags.configPath, *flags.offline)
	if err != nil {
		return err
	}
	// First every rule without Vault, so a broken catalog is reported in
	// full even when Vault is away.
	if err := catalog.CheckWithSecrets(ctx, opts, file); err != nil {
		return invalid(err)
	}
	res.VaultReferences = len(refs)
	switch {
	case len(refs) == 0:
		res.Valid = true
		return emit(stdout, output, res, func(w io.Writer) {
			fmt.Fprintf(w, "%s is valid (it has no vault: references)\n", path)
		})
	case !configured:
		res.Valid = true
		return emit(stdout, output, res, func(w io.Writer) {
			fmt.Fprintf(w, "%s: every rule holds, but its %d vault: references were NOT checked: no Vault is configured "+
				"(give -config agora.yml, or set AGORA_VAULT_ADDR and the login, e.g. AGORA_VAULT_TOKEN)\n", path, len(refs))
		})
	}
	session, err := connectVault(ctx, vaultCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("could not check the %d vault: references of %s: %w", len(refs), path, err)
	}
	opts.Resolve = vaultstore.Resolver(session.Client())
	res.ReferencesChecked, res.Vault = true, vaultCfg.Addr
	if err := catalog.CheckWithSecrets(ctx, opts, file); err != nil {
		return invalid(err)
	}
	res.Valid = true
	return emit(stdout, output, res, func(w io.Writer) {
		fmt.Fprintf(w, "%s is valid; its %d vault: references resolve in Vault at %s\n", path, len(refs), vaultCfg.Addr)
	})
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
