package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/vaultstore"
	"github.com/agora-osb/agora/internal/app"
	"github.com/agora-osb/agora/internal/config"
)

// serveFlags declares agora serve's flags: the config file's path.
func serveFlags(fs *flag.FlagSet) *string {
	return fs.String("config", "", "config file (YAML); AGORA_* environment variables override it")
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve")
	path := serveFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		if _, err := os.Stat("agora.yml"); err == nil {
			*path = "agora.yml"
		}
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := app.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	vs, err := connectVault(ctx, cfg.Vault, log)
	if err != nil {
		return err
	}
	cat, err := loadCatalog(ctx, cfg.Catalog, vaultstore.Resolver(vs.Client()), log)
	if err != nil {
		return err
	}
	defer cat.Close()
	rdb, err := app.RedisClient(cfg.Redis, cfg.Workers.Concurrency)
	if err != nil {
		return err
	}
	defer rdb.Close()
	prod, err := producerSelfService(cfg.Catalog, cat)
	if err != nil {
		return err
	}
	return app.Run(ctx, app.Options{Config: cfg, Catalog: cat, Redis: rdb, Vault: vs, Logger: log, Stdout: stdout, Producers: prod})
}

// connectVault logs in to Agora's Vault as configured: the one client of
// the process.
func connectVault(ctx context.Context, cfg config.Vault, log *slog.Logger) (*vaultstore.Session, error) {
	return vaultstore.Connect(ctx, vaultstore.ConnectConfig{
		Address: cfg.Addr, CACert: cfg.CACert, Logger: log,
		Auth: vaultstore.Auth{
			Method: cfg.Auth, Token: cfg.Token,
			RoleID: cfg.AppRole.RoleID, SecretIDFile: cfg.AppRole.SecretIDFile,
			Role: cfg.Kubernetes.Role, JWTFile: cfg.Kubernetes.JWTFile,
			Mount: cmp.Or(cfg.AppRole.Mount, cfg.Kubernetes.Mount),
		},
	})
}

// loadCatalog parses, validates and builds the catalog; a bad catalog stops
// startup with the full report.
func loadCatalog(ctx context.Context, path string, resolve catalog.SecretResolver, log interface {
	Info(string, ...any)
}) (*catalog.Catalog, error) {
	reg, err := registry()
	if err != nil {
		return nil, err
	}
	// Unknown fields come back with the file; Build reports them with
	// every other problem.
	file, err := catalog.ParseFile(path)
	if file == nil {
		return nil, err
	}
	cat, err := catalog.Build(ctx, buildOptions(reg, resolve), file)
	if err != nil {
		return nil, fmt.Errorf("catalog %s is not valid:\n%w", path, err)
	}
	log.Info("catalog loaded", "path", path, "offerings", len(cat.Offerings()))
	return cat, nil
}
