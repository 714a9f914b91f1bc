package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/adapters/secrets"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/internal/devvault"
	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

// keyPrefix starts every Redis key the tool writes: Agora's redis.prefix.
// A Redis holding any other key is refused.
const keyPrefix = "agora-scale"

const (
	user, pass = "bench", "bench-password"
	apiVersion = "2.15"
	// The producer whose slice holds the seeded instances, and her offering.
	producerName = "bench"
	producerOff  = "bench-secrets"
	producerPlan = "standard"
)

// shared is what both sizes use: the dev Vault, the agora binary and the
// producer's adapter.
type shared struct {
	dir      string
	agoraBin string
	vault    *devvault.Server
	// adapterVault is the producer's own Vault: the gate never lets an
	// adapter's credentials point at Agora's Vault.
	adapterVault *devvault.Server
	// adapterURL and adapterSecret are the producer's remote adapter: the
	// secrets adapter served over protocol v1.
	adapterURL, adapterSecret string
	closers                   []func()
}

func (s *shared) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

func setUpShared(ctx context.Context) (*shared, error) {
	s := &shared{}
	var err error
	if s.dir, err = os.MkdirTemp("", "agora-benchscale-"); err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() { _ = os.RemoveAll(s.dir) })
	cwd, _ := os.Getwd()
	root, err := devvault.FindRepoRoot(cwd)
	if err != nil {
		return s, err
	}
	fmt.Println("building agora and (or reusing) the dev Vault")
	s.agoraBin = filepath.Join(s.dir, "agora")
	build := exec.CommandContext(ctx, "go", "build", "-o", s.agoraBin, "./cmd/agora")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return s, fmt.Errorf("go build ./cmd/agora: %w\n%s", err, out)
	}
	bin, err := devvault.EnsureBinary(ctx, root, os.Stderr)
	if err != nil {
		return s, err
	}
	if s.vault, err = devvault.Start(ctx, bin, devvault.Options{}); err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() { _ = s.vault.Stop() })
	if s.adapterVault, err = devvault.Start(ctx, bin, devvault.Options{}); err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() { _ = s.adapterVault.Stop() })

	// The producer's adapter: the real secrets adapter on her own Vault,
	// behind the remote protocol, as a producer team would run it.
	a, err := secrets.New(ctx, adapters.Config{
		Offering: producerOff, Producer: producerName, Logger: slog.New(slog.DiscardHandler),
		Settings: adapters.MapSettings(map[string]any{"vault_addr": s.adapterVault.Addr, "token": s.adapterVault.RootToken, "path_prefix": "agora-scale-remote"}),
		Plans:    []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p", Name: producerPlan}}},
	})
	if err != nil {
		return s, err
	}
	s.closers = append(s.closers, func() { _ = a.Close() })
	s.adapterSecret = randomHex(16)
	srv := httptest.NewServer(remote.Handler(a, remote.HandlerOptions{Name: "secrets", Version: "1.0.0", Secret: s.adapterSecret}))
	s.closers = append(s.closers, srv.Close)
	s.adapterURL = srv.URL
	return s, nil
}

// env is one size: its Redis, its Agora, the producer's token there, and
// the IDs the measurements use.
type env struct {
	size      int
	name      string // "1k", "1M"
	rdb       *redis.Client
	ownRedis  *exec.Cmd
	agora     *exec.Cmd
	agoraLog  *bytes.Buffer
	url       string
	http      *http.Client
	prodToken string
	// The seeded instances' offering and plan (the producer's).
	seedService, seedPlan string
	// The measured offerings: catalog.yml's secrets and postgres.
	secretsService, secretsPlan   string
	postgresService, postgresPlan string
	closers                       []func()
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.Itoa(n/1_000_000) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// setUpEnv starts (or checks) the Redis, starts Agora on it and makes the
// producer's slice live. e is returned even on error, for its closers.
func setUpEnv(ctx context.Context, sh *shared, size int, redisAddr string) (*env, error) {
	e := &env{size: size, name: sizeName(size), http: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}}
	e.secretsService, e.secretsPlan = catalog.DeriveOfferingID("platform-team", "secrets"), catalog.DerivePlanID("platform-team", "secrets", "standard")
	e.postgresService, e.postgresPlan = catalog.DeriveOfferingID("data-team", "postgres"), catalog.DerivePlanID("data-team", "postgres", "small")
	e.seedService, e.seedPlan = catalog.DeriveOfferingID(producerName, producerOff), catalog.DerivePlanID(producerName, producerOff, producerPlan)
	dir := filepath.Join(sh.dir, e.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return e, err
	}
	if redisAddr == "" {
		addr, cmd, err := startRedis(ctx, dir)
		if err != nil {
			return e, err
		}
		e.ownRedis = cmd
		e.closers = append(e.closers, func() { killAndWait(cmd) })
		redisAddr = addr
	}
	e.rdb = redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 16, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	e.closers = append(e.closers, func() { _ = e.rdb.Close() })
	if err := refuseForeignKeys(ctx, e.rdb); err != nil {
		return e, fmt.Errorf("redis at %s: %w", redisAddr, err)
	}
	if e.ownRedis == nil {
		// A Redis we did not start keeps running: take our keys with us.
		e.closers = append(e.closers, func() { deleteBenchKeys(e.rdb) })
	}
	// Every command over a millisecond is logged, so the longest one is known.
	if err := e.rdb.ConfigSet(ctx, "slowlog-log-slower-than", "1000").Err(); err != nil {
		return e, err
	}
	if err := e.rdb.ConfigSet(ctx, "slowlog-max-len", "10000").Err(); err != nil {
		return e, err
	}
	if err := e.startAgora(ctx, sh, dir, redisAddr); err != nil {
		return e, err
	}
	return e, e.registerProducer(ctx, sh)
}

// startRedis starts a redis-server on a free loopback port that keeps
// nothing on disk.
func startRedis(ctx context.Context, dir string) (string, *exec.Cmd, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("bench-scale starts a Redis of its own: %w", err)
	}
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return "", nil, err
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var log bytes.Buffer
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--protected-mode", "yes")
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.SysProcAttr = childAttr()
		if err := cmd.Start(); err != nil {
			return "", nil, err
		}
		c := redis.NewClient(&redis.Options{Addr: addr})
		ok := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
			if c.Ping(ctx).Err() == nil {
				ok = true
				break
			}
		}
		_ = c.Close()
		if ok {
			return addr, cmd, nil
		}
		killAndWait(cmd)
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		if !strings.Contains(log.String(), "Address already in use") {
			return "", nil, fmt.Errorf("redis-server on %s did not answer:\n%s", addr, log.String())
		}
	}
	return "", nil, errors.New("redis-server found no free port in three tries")
}

// refuseForeignKeys fails when the Redis holds any key outside the
// bench's prefix: the bench must never measure, or delete, anyone's data.
func refuseForeignKeys(ctx context.Context, rdb *redis.Client) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "", 1000).Result()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, keyPrefix) {
				return fmt.Errorf("it holds %q, which is not a bench key: bench-scale runs only on a Redis of its own (start one, or leave -redis out)", k)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// deleteBenchKeys removes what the bench wrote to a Redis it did not start.
func deleteBenchKeys(rdb *redis.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, keyPrefix+"*", 5000).Result()
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchscale: cleaning up the bench keys:", err)
			return
		}
		if len(keys) > 0 {
			_ = rdb.Unlink(ctx, keys...).Err()
		}
		if cursor = next; cursor == 0 {
			return
		}
	}
}

const catalogYAML = `producers:
  - name: platform-team
    contact: platform@example.com
    offerings:
      - name: secrets
        description: Secrets.
        adapter: secrets
        instances_retrievable: true
        bindings_retrievable: true
        config:
          vault_addr: %[1]s
          token: %[2]s
          path_prefix: agora-scale-%[3]s
        plans:
          - name: standard
            description: Sync.
  - name: data-team
    contact: data@example.com
    offerings:
      - name: postgres
        description: PostgreSQL.
        adapter: postgres
        config:
          host: 127.0.0.1
          port: 5432
          admin_user: postgres
          admin_password: postgres
          admin_database: postgres
          sslmode: disable
        plans:
          - name: small
            description: Sync.
`

const configYAML = `listen: %[1]s
catalog: %[2]s
credentials:
  - username: %[3]s
    password: %[4]s
redis:
  url: redis://%[5]s/0
  prefix: %[6]s
vault:
  addr: %[7]s
  token: %[8]s
  prefix: agora-scale-%[9]s
workers:
  concurrency: 2
log_level: warn
log_format: json
audit:
  enabled: false
gate:
  # The producer's adapter listens on loopback, which the gate refuses
  # unless allowed (docs/operations.md, "The gate's egress").
  egress:
    allow: [127.0.0.0/8]
`

func (e *env) startAgora(ctx context.Context, sh *shared, dir, redisAddr string) error {
	catPath := filepath.Join(dir, "catalog.yml")
	if err := os.WriteFile(catPath, fmt.Appendf(nil, catalogYAML, sh.vault.Addr, sh.vault.RootToken, e.name), 0o600); err != nil {
		return err
	}
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		cfgPath := filepath.Join(dir, "agora.yml")
		cfg := fmt.Sprintf(configYAML, listen, catPath, user, pass, redisAddr, keyPrefix, sh.vault.Addr, sh.vault.RootToken, e.name)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return err
		}
		e.agoraLog = &bytes.Buffer{}
		cmd := exec.Command(sh.agoraBin, "serve", "-config", cfgPath)
		cmd.Dir = dir
		// Only what Agora needs: nothing from the developer's shell.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		cmd.Stdout, cmd.Stderr = e.agoraLog, e.agoraLog
		cmd.SysProcAttr = childAttr()
		if err := cmd.Start(); err != nil {
			return err
		}
		e.url = "http://" + listen
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		ready := false
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && !ready; time.Sleep(100 * time.Millisecond) {
			select {
			case <-exited:
				deadline = time.Now()
			case <-ctx.Done():
				_ = cmd.Process.Kill()
				<-exited
				return ctx.Err()
			default:
			}
			if resp, err := e.http.Get(e.url + "/readyz"); err == nil {
				resp.Body.Close()
				ready = resp.StatusCode == http.StatusOK
			}
		}
		if ready {
			e.agora = cmd
			e.closers = append(e.closers, func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-exited
				}
			})
			return nil
		}
		_ = cmd.Process.Kill()
		<-exited
		if !strings.Contains(e.agoraLog.String(), "address already in use") {
			return fmt.Errorf("agora serve (%s) did not become ready:\n%s", e.name, e.agoraLog.String())
		}
	}
	return errors.New("agora serve found no free port in three tries")
}

// registerProducer creates the producer and makes her slice live: the
// conformance gate runs against her adapter, as in production.
func (e *env) registerProducer(ctx context.Context, sh *shared) error {
	admin := &producerapi.Client{BaseURL: e.url, Username: user, Password: pass}
	created, err := admin.CreateProducer(ctx, producers.CreateRequest{Name: producerName, Contact: "bench@example.com", AutoApproveSlices: true})
	if err != nil {
		return fmt.Errorf("create producer %s: %w", producerName, err)
	}
	e.prodToken = created.Token
	she := &producerapi.Client{BaseURL: e.url, Token: created.Token}
	slice := fmt.Sprintf(`offerings:
  - name: %s
    description: Secrets from the producer's own adapter.
    adapter: remote
    instances_retrievable: true
    config: {url: %q, secret: %q}
    plans:
      - {name: %s, description: Sync.}
`, producerOff, sh.adapterURL, sh.adapterSecret, producerPlan)
	res, err := she.Apply(ctx, producerName, []byte(slice))
	if err != nil {
		return fmt.Errorf("apply the producer's slice: %w", err)
	}
	if res.Status != producers.SliceLive {
		return fmt.Errorf("the producer's slice is %s, not live: %+v", res.Status, res.Gate)
	}
	// Every replica follows the catalog generation within about a second.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		body, err := e.get(ctx, "/v2/catalog", "")
		if err == nil && bytes.Contains(body, []byte(e.seedService)) {
			return nil
		}
	}
	return errors.New("the producer's offering never reached the catalog")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func killAndWait(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// rssKiB reads a process's resident set (VmRSS) and its peak (VmHWM).
func rssKiB(pid int) (rss, peak int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v
		case "VmHWM:":
			peak = v
		}
	}
	return rss, peak
}
