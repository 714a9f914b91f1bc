package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/alicebob/miniredis/v2"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/vaultstore"
	"github.com/agora-osb/agora/internal/app"
	"github.com/agora-osb/agora/internal/config"
	"github.com/agora-osb/agora/internal/devvault"
)

// devSecrets are what catalog.yml's vault: references point at, with this
// machine's local defaults (trust auth, root without a password, guest).
// In production the platform team stores the real values at these paths.
func devSecrets(rootToken string) map[string]map[string]any {
	return map[string]map[string]any{
		"agora-config/secrets-adapter": {"token": rootToken},
		"agora-config/postgres":        {"admin_password": ""},
		"agora-config/mysql":           {"admin_password": ""},
		"agora-config/redis":           {"admin_password": ""},
		"agora-config/rabbitmq":        {"admin_password": "guest"},
	}
}

// devOptions are agora dev's flags.
type devOptions struct {
	listen, vaultAddr, catalogPath *string
}

func devFlags(fs *flag.FlagSet) devOptions {
	return devOptions{
		listen:      fs.String("listen", "127.0.0.1:8080", "broker address"),
		vaultAddr:   fs.String("vault-listen", "127.0.0.1:8200", "dev Vault address (catalog.yml's secrets offering expects 127.0.0.1:8200)"),
		catalogPath: fs.String("catalog", "", "catalog file (default: the repository's catalog.yml)"),
	}
}

// dev runs everything on embedded defaults: miniredis (unless REDIS_URL),
// a real dev Vault built on first use, and the broker on 127.0.0.1:8080
// with the repository's catalog.yml.
func dev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("dev")
	opts := devFlags(fs)
	listen, vaultAddr, catalogPath := opts.listen, opts.vaultAddr, opts.catalogPath
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := devvault.FindRepoRoot(cwd)
	if err != nil {
		return fmt.Errorf("run agora dev inside the Agora repository: %w", err)
	}
	if *catalogPath == "" {
		*catalogPath = filepath.Join(root, "catalog.yml")
	}
	say := func(format string, a ...any) { fmt.Fprintf(stderr, "agora dev: "+format+"\n", a...) }
	// Both addresses are checked before minutes go into a Vault build.
	if err := addressFree(*listen, "-listen", "127.0.0.1:8090"); err != nil {
		return err
	}
	if err := addressFree(*vaultAddr, "-vault-listen", "127.0.0.1:8210"); err != nil {
		return fmt.Errorf("%w (catalog.yml's secrets offering expects the dev Vault at 127.0.0.1:8200: give it another catalog with -catalog, or free the port)", err)
	}

	cfg := config.Defaults()
	cfg.Listen = *listen
	cfg.Catalog = *catalogPath
	cfg.Workers.ClaimIdle = config.Duration(10 * time.Second)
	// The welcome text owns standard output; agora serve has the audit log.
	cfg.Audit = config.Audit{}
	// A producer developing on her laptop runs her adapter on loopback;
	// the canary would only add noise to her terminal.
	cfg.Gate.Egress.Allow = []string{"127.0.0.0/8", "::1/128"}
	cfg.Gate.Canary.Interval = 0

	// State: the given Redis, or an in-process miniredis that dies with us.
	if url := os.Getenv("REDIS_URL"); url != "" {
		cfg.Redis.URL = url
		say("state in Redis at %s (prefix %q)", url, cfg.Redis.Prefix)
	} else {
		mr := miniredis.NewMiniRedis()
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return fmt.Errorf("start in-process redis: %w", err)
		}
		defer mr.Close()
		cfg.Redis.URL = "redis://" + mr.Addr()
		say("WARNING: broker state lives in an in-process miniredis at %s and is LOST when agora dev exits. Set REDIS_URL=redis://127.0.0.1:6379/0 to keep it.", mr.Addr())
	}

	// Credentials: a real Vault, built once into the cache directory.
	bin, err := devvault.EnsureBinary(ctx, root, stderr)
	if err != nil {
		return fmt.Errorf("dev Vault: %w", err)
	}
	vault, err := devvault.Start(ctx, bin, devvault.Options{Addr: *vaultAddr, RootToken: "root"})
	if err != nil {
		return fmt.Errorf("dev Vault: %w", err)
	}
	defer vault.Stop()
	cfg.Vault.Addr, cfg.Vault.Token = vault.Addr, vault.RootToken
	say("dev Vault at %s (root token %q, in memory: lost on exit)", vault.Addr, vault.RootToken)
	vs, err := vaultstore.Connect(ctx, vaultstore.ConnectConfig{Address: vault.Addr, Auth: vaultstore.Auth{Token: vault.RootToken}})
	if err != nil {
		return err
	}
	vc := vs.Client()
	if err := seedDevVault(ctx, vc); err != nil {
		return err
	}

	user := "admin"
	pass, kept, err := devPassword()
	if err != nil {
		return err
	}
	if kept != "" {
		say("the broker password is kept in %s, so AGORA_PASSWORD stays valid across runs (delete the file for a new one)", kept)
	}
	cfg.Credentials = []config.Credential{{Username: user, Password: pass}}
	log := app.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)

	cat, err := devCatalog(ctx, cfg, vaultstore.Resolver(vc), say, log)
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

	return app.Run(ctx, app.Options{Config: cfg, Catalog: cat, Redis: rdb, Vault: vs, Logger: log, Producers: prod, ExposeErrorDetails: true, Ready: func(addr string) {
		printWelcome(stdout, "http://"+addr, user, pass, cat)
	}})
}

// seedDevVault stores what catalog.yml references: the adapters' admin
// credentials.
func seedDevVault(ctx context.Context, client *vaultapi.Client) error {
	for path, data := range devSecrets(client.Token()) {
		if _, err := client.KVv2("secret").Put(ctx, path, data); err != nil {
			return fmt.Errorf("seed dev Vault at secret/%s: %w", path, err)
		}
	}
	return nil
}

// devCatalog builds the catalog and keeps only the offerings whose backend
// answers, saying which ones it skipped and why: a laptop without
// RabbitMQ should still get every other service.
func devCatalog(ctx context.Context, cfg config.Config, resolve catalog.SecretResolver, say func(string, ...any), log interface{ Info(string, ...any) }) (*catalog.Catalog, error) {
	cat, err := loadCatalog(ctx, cfg.Catalog, resolve, log)
	if err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, off := range cat.Offerings() {
		p, ok := off.Adapter.(adapters.Pinger)
		if !ok {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := p.Ping(pctx)
		cancel()
		if err != nil {
			skip[off.Name] = true
			say("skipped offering %q (adapter %s, producer %s): its backend does not answer: %v\n  to serve it: %s", off.Name, off.AdapterName, off.Producer, err, devFix(off.AdapterName))
		}
	}
	if len(skip) == 0 {
		return cat, nil
	}
	_ = cat.Close()
	file, err := catalog.ParseFile(cfg.Catalog)
	if err != nil {
		return nil, err
	}
	for i := range file.Producers {
		kept := file.Producers[i].Offerings[:0]
		for _, o := range file.Producers[i].Offerings {
			if !skip[o.Name] {
				kept = append(kept, o)
			}
		}
		file.Producers[i].Offerings = kept
	}
	reg, err := registry()
	if err != nil {
		return nil, err
	}
	cat, err = catalog.Build(ctx, buildOptions(reg, resolve), file)
	if err != nil {
		return nil, fmt.Errorf("catalog without the skipped offerings: %w", err)
	}
	if len(cat.Offerings()) == 0 {
		return nil, errors.New("no offering's backend answers; nothing to serve")
	}
	return cat, nil
}

func printWelcome(w io.Writer, url, user, pass string, cat *catalog.Catalog) {
	off := cat.Offerings()[0]
	for _, o := range cat.Offerings() {
		if o.Name == "secrets" {
			off = o
		}
	}
	plan := off.Plans[0]
	for _, p := range off.Plans {
		if !p.Async {
			plan = p
			break
		}
	}
	auth := fmt.Sprintf("-u %s:%s -H 'X-Broker-API-Version: 2.17'", user, pass)
	fmt.Fprintf(w, `
Agora is running (Ctrl-C stops everything).

  broker URL   %s
  username     %s
  password     %s
  offerings    %d (GET /v2/catalog lists them)

Try it:

  # the catalog
  curl -s %s %s/v2/catalog

  # provision an instance of %q (plan %q)
  curl -s %s -X PUT %s/v2/service_instances/demo-1 \
    -H 'Content-Type: application/json' \
    -d '{"service_id":"%s","plan_id":"%s","organization_guid":"org","space_guid":"space"}'

  # bind it: the credentials are stored in Vault and returned once here
  curl -s %s -X PUT %s/v2/service_instances/demo-1/service_bindings/bind-1 \
    -H 'Content-Type: application/json' \
    -d '{"service_id":"%s","plan_id":"%s"}'

  # unbind and deprovision
  curl -s %s -X DELETE '%s/v2/service_instances/demo-1/service_bindings/bind-1?service_id=%s&plan_id=%s'
  curl -s %s -X DELETE '%s/v2/service_instances/demo-1?service_id=%s&plan_id=%s'

Register it with Cloud Foundry:  cf create-service-broker agora %s %s %s
`, url, user, pass, len(cat.Offerings()),
		auth, url,
		off.Name, plan.Name, auth, url, off.ID, plan.ID,
		auth, url, off.ID, plan.ID,
		auth, url, off.ID, plan.ID,
		auth, url, off.ID, plan.ID,
		user, pass, url)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// devFix says how to bring up the backend of a skipped offering on a
// developer's machine, for the adapters catalog.yml uses with the local
// defaults the README lists.
func devFix(adapter string) string {
	switch adapter {
	case "postgres":
		return "start PostgreSQL on 127.0.0.1:5432 with trust auth for local connections (Debian: pg_ctlcluster $(ls /etc/postgresql) main start)"
	case "mysql":
		return "start MariaDB or MySQL on 127.0.0.1:3306 with root and no password (Debian: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd)"
	case "redis":
		return "start Redis on 127.0.0.1:6379 (redis-server --daemonize yes --port 6379)"
	case "rabbitmq":
		return "start RabbitMQ (rabbitmq-server -detached) and enable the management API the adapter uses: rabbitmq-plugins enable rabbitmq_management"
	case "secrets":
		return "catalog.yml's secrets offering works on the dev Vault at 127.0.0.1:8200: run agora dev with -vault-listen 127.0.0.1:8200 (the default)"
	case "remote", "osb":
		return "start the adapter or broker at the url in its offering's config, or remove the offering from your catalog"
	}
	return "start its backend at the address in the offering's config (see the adapter's README)"
}

// addressFree fails with the flag to change when addr is taken, instead
// of a bind error minutes later.
func addressFree(addr, flag, example string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is not free (%v): another agora dev may be running; pick another address with %s %s", addr, err, flag, example)
	}
	return ln.Close()
}

// devPassword is the broker password of agora dev, kept in the user's
// cache directory so that the AGORA_PASSWORD a developer exported stays
// valid across runs. Where there is no cache directory, it is new each
// run and kept is empty.
func devPassword() (password, kept string, err error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return randomHex(12), "", nil
	}
	path := filepath.Join(dir, "agora", "dev-password")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), path, nil
	}
	password = randomHex(12)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", fmt.Errorf("keep the dev password: %w", err)
	}
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("keep the dev password: %w", err)
	}
	return password, path, nil
}
