package integration

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/internal/syncbuf"
)

// Catalog IDs as documented in docs/catalog.md: derived from the names, so
// they are the same on every replica and after every restart.
const (
	secretsServiceID = "06a8a546-bcf9-58b0-92c9-b2ffc466192b"
)

var (
	// Derived like the offering ID; the suite checks them against the
	// catalog package too.
	standardPlanID = derivePlanID("standard")
	asyncPlanID    = derivePlanID("async")
)

// catalogTemplate is the per-run catalog: the secrets offering with a sync
// and an async plan, its adapter pointed at a chosen Vault. The adapter's
// token is a Vault reference resolved through the broker's own Vault.
var catalogTemplate = template.Must(template.New("catalog").Parse(`
producers:
  - name: platform-team
    contact: platform@example.com
    offerings:
      - name: secrets
        description: A private folder in Vault's KV store, with an AppRole login for it per binding.
        adapter: secrets
        config:
          vault_addr: {{.AdapterVaultAddr}}
          token: vault:secret/agora-config/secrets-adapter#token
        bindable: true
        instances_retrievable: true
        bindings_retrievable: true
        tags: [secrets, vault]
        plans:
          - name: standard
            description: A secrets folder, ready when the create call returns.
            config:
              token_ttl: 10m
            maintenance_info:
              version: 1.0.0
          - name: async
            description: The same secrets folder, created in the background.
            async: true
            operation_timeout: 2m
            config:
              token_ttl: 10m
            maintenance_info:
              version: 1.0.0
`))

// BrokerOptions describes one `agora serve` process.
type BrokerOptions struct {
	// Name labels the process in failure output ("A", "B").
	Name string
	// Prefix is the Redis key prefix; replicas sharing it share state.
	Prefix string
	// VaultAddr is the broker's credential store (default: the suite's Vault).
	VaultAddr string
	// VaultPrefix is vault.prefix (default: vaultPrefix(), the run's). A
	// spec that lists what Vault holds needs one of its own.
	VaultPrefix string
	// AdapterVaultAddr is the Vault the secrets adapter works on (default:
	// the suite's Vault, directly).
	AdapterVaultAddr string
	// Concurrency is workers.concurrency (0: the broker's default).
	Concurrency int
	// RedisAddr is the Redis the broker keeps its state in (default: the
	// suite's shared Redis).
	RedisAddr string
	// RedisClusterAddrs, when set, makes the broker use a Redis Cluster
	// (redis.addrs) instead of RedisAddr.
	RedisClusterAddrs []string
	// Catalog, when set, is the catalog file's whole content instead of
	// catalogTemplate (adapters_test.go serves the repository's offerings).
	Catalog string
	// LogFormat and LogLevel are log_format and log_level (default json,
	// info).
	LogFormat, LogLevel string
	// AuditFile, when set, is audit.file; else the audit log goes to the
	// process's standard output, into its log buffer.
	AuditFile string
	// CatalogWebhook, when set, is catalog_webhook.url, signed with
	// catalogWebhookSecret.
	CatalogWebhook string
	// ExtraConfig is appended to the config file: sections a spec needs
	// that no other spec does (marketplace, say).
	ExtraConfig string
	// VaultAuth, when set, replaces "token: root" in the vault section:
	// YAML lines indented by two spaces (auth: approle, ...).
	VaultAuth string
	// TLS, when set, is added to the config (a tls: section, probe_listen)
	// and ClientTLS is what the suite's clients connect with: the broker's
	// URL is then https.
	TLS       string
	ClientTLS *tls.Config
	// Gate, when set, replaces the gate: section every broker gets: the
	// egress allow-list opened to loopback (the suite's adapters listen
	// there), the examples' agora-files credentials allowed unverified,
	// and the canary off.
	Gate string
}

// loopbackGate lets the gate and the canary call the suite's adapters on
// loopback (Agora's own Redis and Vault stay refused), canary off. It
// allows the example adapters' custom credential type, agora-files, as a
// platform engineer who trusts them would (docs/producers.md, "Credentials
// the kit cannot use"): their slices may then go live automatically, while
// the report still shows the type unverified.
const loopbackGate = `gate:
  egress:
    allow: [127.0.0.0/8, "::1/128"]
  allow_unverified_types: [agora-files]
  canary:
    interval: 0s
`

// catalogWebhookSecret signs every broker's catalog webhook deliveries.
const catalogWebhookSecret = "integration-webhook-secret"

// Broker is a running `agora serve` subprocess.
type Broker struct {
	Name   string
	URL    string
	Prefix string
	OSB    *OSBClient

	cmd    *exec.Cmd
	stderr *syncbuf.Buffer
	exited chan struct{}
	// http reaches /readyz the way the platform would (over TLS, with
	// its certificate).
	http  *http.Client
	mu    sync.Mutex
	ended bool
}

// claimIdle is workers.claim_idle of every broker started here: short, so
// a killed replica's jobs are taken over within seconds.
const claimIdle = 3 * time.Second

// specPrefix returns a Redis key prefix of its own for one spec, under the
// run's prefix (cleaned up at the end of the suite, and by the spec).
func specPrefix() string {
	GinkgoHelper()
	p := fmt.Sprintf("%s-%s", runPrefix, randomHex(3))
	DeferCleanup(func(ctx SpecContext) {
		_, err := deleteKeys(ctx, p+":*")
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(20*time.Second))
	return p
}

// StartBroker writes a config and a catalog, starts `agora serve` on a free
// port and waits until /readyz answers 200. The process is stopped (SIGTERM)
// when the spec ends, and its log printed if the spec failed.
func StartBroker(ctx context.Context, opts BrokerOptions) *Broker {
	GinkgoHelper()
	if opts.VaultAddr == "" {
		opts.VaultAddr = vault.Addr
	}
	if opts.AdapterVaultAddr == "" {
		opts.AdapterVaultAddr = vault.Addr
	}
	if opts.Name == "" {
		opts.Name = "broker"
	}
	if opts.RedisAddr == "" {
		opts.RedisAddr = redisAddr
	}
	Expect(opts.Prefix).NotTo(BeEmpty(), "every broker needs a Redis prefix of its own")

	dir, err := os.MkdirTemp(workDir, "broker-")
	Expect(err).NotTo(HaveOccurred())
	catalogPath := filepath.Join(dir, "catalog.yml")
	var cat bytes.Buffer
	if opts.Catalog != "" {
		cat.WriteString(opts.Catalog)
	} else {
		Expect(catalogTemplate.Execute(&cat, opts)).To(Succeed())
	}
	Expect(os.WriteFile(catalogPath, cat.Bytes(), 0o600)).To(Succeed())

	user, pass := "platform", randomHex(12)
	var lastErr error
	// A free port can be taken between our probe and the broker's listen;
	// try a few.
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort()
		configPath := filepath.Join(dir, fmt.Sprintf("agora-%d.yml", attempt))
		Expect(os.WriteFile(configPath, []byte(brokerConfig(opts, port, catalogPath, user, pass)), 0o600)).To(Succeed())
		scheme := "http"
		if opts.ClientTLS != nil {
			scheme = "https"
		}
		b := &Broker{Name: opts.Name, Prefix: opts.Prefix, URL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, port), stderr: &syncbuf.Buffer{}, exited: make(chan struct{}),
			http: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: opts.ClientTLS}}}
		b.OSB = newOSBClient(b.URL, user, pass)
		b.OSB.http.Transport = &http.Transport{TLSClientConfig: opts.ClientTLS}
		b.cmd = exec.Command(agoraBin, "serve", "-config", configPath)
		b.cmd.Dir = dir
		// Only what the broker needs: no AGORA_* or VAULT_* from the
		// developer's shell may change what is tested.
		b.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		b.cmd.Stdout = b.stderr
		b.cmd.Stderr = b.stderr
		b.cmd.SysProcAttr = childProcAttr()
		Expect(b.cmd.Start()).To(Succeed())
		go func() {
			_ = b.cmd.Wait()
			close(b.exited)
		}()
		DeferCleanup(func() {
			b.Stop()
			if CurrentSpecReport().Failed() {
				fmt.Fprintf(GinkgoWriter, "---- log of agora serve %q (%s, prefix %s) ----\n%s\n", b.Name, b.URL, b.Prefix, b.stderr.String())
			}
		})
		if lastErr = b.waitReady(ctx, 30*time.Second); lastErr == nil {
			return b
		}
		b.Kill()
		if !strings.Contains(b.stderr.String(), "address already in use") {
			break
		}
	}
	Fail(fmt.Sprintf("agora serve %q did not become ready: %v", opts.Name, lastErr))
	return nil
}

func brokerConfig(opts BrokerOptions, port int, catalogPath, user, pass string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:%d
catalog: %s
credentials:
  - username: %s
    password: %s
redis:
%s
  prefix: %s
vault:
  addr: %s
%s
  prefix: %s
workers:
  concurrency: %d
  claim_idle: %s
sync_timeout: 20s
shutdown_grace: 5s
log_level: %s
log_format: %s
audit:
  enabled: true
  file: %q
%s
%s
%s`, port, catalogPath, user, pass, redisConfig(opts), opts.Prefix, opts.VaultAddr, cmp.Or(opts.VaultAuth, "  token: root"), cmp.Or(opts.VaultPrefix, vaultPrefix()), opts.Concurrency, claimIdle,
		cmp.Or(opts.LogLevel, "info"), cmp.Or(opts.LogFormat, "json"), opts.AuditFile, opts.TLS, opts.ExtraConfig, cmp.Or(opts.Gate, loopbackGate)) + webhookConfig(opts.CatalogWebhook)
}

// redisConfig is where the redis section says the state lives.
func redisConfig(opts BrokerOptions) string {
	if len(opts.RedisClusterAddrs) > 0 {
		return "  addrs: [" + strings.Join(opts.RedisClusterAddrs, ", ") + "]"
	}
	return "  url: redis://" + opts.RedisAddr + "/0"
}

// vaultPrefix is vault.prefix of every broker of this run.
func vaultPrefix() string { return runPrefix }

func (b *Broker) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-b.exited:
			return fmt.Errorf("exited before becoming ready:\n%s", b.stderr.String())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		status, body := b.Readyz()
		if status == http.StatusOK {
			return nil
		}
		last = fmt.Sprintf("%d %s", status, body)
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("/readyz not 200 after %s (last answer: %s)", timeout, last)
}

// Readyz returns the status and body of GET /readyz (0 when unreachable).
func (b *Broker) Readyz() (int, string) {
	resp, err := b.http.Get(b.URL + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.String()
}

// Stop sends SIGTERM and waits for the process to exit (SIGKILL after 15s).
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.ended = true
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(15 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
}

// Kill sends SIGKILL (kill -9) and waits until the process is gone.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	_ = b.cmd.Process.Kill()
	<-b.exited
}

// Pid is the process ID (the broker's worker consumer names contain it).
func (b *Broker) Pid() int { return b.cmd.Process.Pid }

// Log returns everything the process wrote so far.
func (b *Broker) Log() string { return b.stderr.String() }

// LogRecords returns the broker's JSON log records whose msg is msg.
func (b *Broker) LogRecords(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.stderr.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func freePort() int {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func listenLocal() net.Listener {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	return ln
}

func webhookConfig(url string) string {
	if url == "" {
		return ""
	}
	return fmt.Sprintf("catalog_webhook:\n  url: %q\n  secret: %q\n  timeout: 5s\n", url, catalogWebhookSecret)
}

// serveLocal serves h on a free loopback port until the current node
// ends, and returns its URL.
func serveLocal(h http.Handler) string {
	GinkgoHelper()
	ln := listenLocal()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	DeferCleanup(srv.Close)
	return "http://" + ln.Addr().String()
}
