// Package config reads `agora serve`'s configuration: a YAML file, then
// environment variables on top (so a cf push or a Kubernetes Deployment can
// override any secret without a file). It never reads the environment on
// its own: the caller passes a lookup function, which keeps tests hermetic.
package config

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/internal/egress"
)

// Config is everything `agora serve` needs.
type Config struct {
	// Listen is the HTTP address (default 127.0.0.1:8080; $PORT on Cloud
	// Foundry makes it 0.0.0.0:$PORT).
	Listen string `yaml:"listen"`
	// TLS serves Listen over TLS (and optionally requires client
	// certificates); off when no certificate is set.
	TLS TLS `yaml:"tls"`
	// ProbeListen is an optional second address, plain HTTP, that serves
	// only /healthz, /readyz and /metrics: for kubelets and scrapers that
	// cannot present a client certificate when tls.client_auth requires
	// one.
	ProbeListen string `yaml:"probe_listen"`
	// Catalog is the path of catalog.yml.
	Catalog string `yaml:"catalog"`
	// Credentials are the basic-auth pairs the platform may use; several
	// pairs allow rotation.
	Credentials []Credential `yaml:"credentials"`
	Redis       Redis        `yaml:"redis"`
	Vault       Vault        `yaml:"vault"`
	Workers     Workers      `yaml:"workers"`
	// SyncTimeout bounds inline adapter calls (default 50s; Cloud Foundry
	// gives up after 60s).
	SyncTimeout Duration `yaml:"sync_timeout"`
	// ShutdownGrace is how long in-flight requests may finish on SIGTERM.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// Audit says where the audit log goes.
	Audit Audit `yaml:"audit"`
	// Metrics configures GET /metrics.
	Metrics Metrics `yaml:"metrics"`
	// CatalogWebhook, when its URL is set, announces every change of the
	// merged catalog.
	CatalogWebhook CatalogWebhook `yaml:"catalog_webhook"`
	// Marketplace configures the marketplace page, GET /marketplace.
	Marketplace Marketplace `yaml:"marketplace"`
	// Gate configures the producer gate and the canary: what may go live
	// automatically, where they may connect, how often the canary runs.
	Gate Gate `yaml:"gate"`
}

// Gate configures the conformance gate of producers' slices and the
// canary that runs the same kit against live offerings.
type Gate struct {
	// AllowUnverifiedTypes are credential types ("type" of a binding's
	// credentials) that the kit cannot verify by using them and whose
	// slices may still go live automatically. Empty: every unverified
	// type waits for the platform engineer.
	AllowUnverifiedTypes []string `yaml:"allow_unverified_types"`
	Egress               Egress   `yaml:"egress"`
	Canary               Canary   `yaml:"canary"`
}

// Egress is where the gate and the canary may connect (docs/operations.md,
// "The gate's egress").
type Egress struct {
	// Allow are CIDRs and host names ("*.example.com" for subdomains).
	// Empty allows every address except loopback, link-local and Agora's
	// own Redis and Vault, which are refused unless a CIDR here contains
	// them (Redis and Vault always).
	Allow []string `yaml:"allow"`
}

// Canary runs the conformance kit against every live remote offering.
type Canary struct {
	// Interval between runs of one offering; 0 turns the canary off
	// (default 10m for agora serve; agora dev leaves it off).
	Interval Duration `yaml:"interval"`
}

// CatalogWebhook configures the announcement of catalog changes: an
// HMAC-signed JSON POST per change (docs/catalog-webhook.md).
type CatalogWebhook struct {
	URL string `yaml:"url"`
	// Secret keys the signature; at least 16 characters.
	Secret string `yaml:"secret"`
	// Timeout bounds one delivery (default 10s).
	Timeout Duration `yaml:"timeout"`
}

// Marketplace configures the read-only marketplace page of offerings,
// plans, parameters and producer health. The admin credentials always
// open it, and a producer's token opens it with her own instance counts
// and failures besides.
type Marketplace struct {
	// Enabled serves it (default true).
	Enabled bool `yaml:"enabled"`
	// Username and Password, when set, are a credential for the page and
	// nothing else: give it to app developers who browse what exists.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Metrics configures the Prometheus endpoint, GET /metrics on the
// broker's listener.
type Metrics struct {
	// Enabled serves it (default true).
	Enabled bool `yaml:"enabled"`
	// Username and Password, when set, put it behind basic auth of its
	// own (not the broker's credentials: a scraper needs no more).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Audit configures the audit log: one JSON line per mutation on the OSB,
// producer and admin surfaces.
type Audit struct {
	// Enabled turns it on (default true for agora serve).
	Enabled bool `yaml:"enabled"`
	// File appends the lines to a file; empty writes them to standard
	// output, each marked "audit": true, apart from the log on standard
	// error.
	File string `yaml:"file"`
}

// Credential is one basic-auth pair.
type Credential struct {
	Username string `yaml:"username"`
	Password string `yaml:"password"`
}

// Redis says where broker state lives: a URL (redis://, rediss://), or
// the address list of a Sentinel set (MasterName) or a Cluster.
type Redis struct {
	URL        string   `yaml:"url"`
	Addrs      []string `yaml:"addrs"`
	MasterName string   `yaml:"master_name"`
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"`
	// Protocol is the RESP version Agora speaks: 2 (the default) or 3.
	// Agora needs nothing RESP3 adds, and go-redis checks every RESP3
	// reply for push notifications (3% of a poll's CPU). A url's
	// ?protocol= wins.
	Protocol int `yaml:"protocol"`
	// Prefix namespaces every key, so brokers (or tests) can share a Redis.
	Prefix string `yaml:"prefix"`
}

// Vault says where binding credentials live and how Agora logs in.
type Vault struct {
	Addr string `yaml:"addr"`
	// CACert is a PEM file of the CAs that sign Vault's certificate
	// (default: the system's).
	CACert string `yaml:"ca_cert"`
	// Auth is how Agora logs in: token (the default), approle or
	// kubernetes, with that method's fields below.
	Auth       string          `yaml:"auth"`
	Token      string          `yaml:"token"`
	AppRole    VaultAppRole    `yaml:"approle"`
	Kubernetes VaultKubernetes `yaml:"kubernetes"`
	// Mount is the KV v2 mount (default secret); Prefix the path below it
	// that Agora owns (default agora).
	Mount  string `yaml:"mount"`
	Prefix string `yaml:"prefix"`
}

// VaultAppRole logs in with AppRole: a role_id, and a secret_id read from
// a file at every login.
type VaultAppRole struct {
	RoleID       string `yaml:"role_id"`
	SecretIDFile string `yaml:"secret_id_file"`
	// Mount is where AppRole is mounted (default approle).
	Mount string `yaml:"mount"`
}

// VaultKubernetes logs in with the pod's service-account token.
type VaultKubernetes struct {
	Role string `yaml:"role"`
	// JWTFile defaults to the token Kubernetes mounts in every pod.
	JWTFile string `yaml:"jwt_file"`
	// Mount is where Kubernetes auth is mounted (default kubernetes).
	Mount string `yaml:"mount"`
}

// TLS configures the listener's certificates. The files are read again
// when they change (and on SIGHUP), so a renewed certificate needs no
// restart.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile turns on client certificates (mTLS): they must be
	// signed by one of its CAs.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is require (the default with a client CA: a connection
	// without a valid certificate is refused) or verify_if_given.
	ClientAuth string `yaml:"client_auth"`
	// MinVersion is 1.2 (the default) or 1.3.
	MinVersion string `yaml:"min_version"`
}

// Enabled reports whether the listener serves TLS.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Workers tunes the async engine.
type Workers struct {
	// Concurrency is how many async jobs a replica runs at once
	// (AGORA_WORKERS; default 4).
	Concurrency int `yaml:"concurrency"`
	// PerProducer is how many of those one producer's jobs may take at
	// once, so one producer's failing backend cannot starve the others'
	// async work (AGORA_WORKERS_PER_PRODUCER). 0, the default, means half
	// of Concurrency, at least 1. A job whose producer is at its limit is
	// put back for a moment, not waited for.
	PerProducer int `yaml:"per_producer"`
	// ClaimIdle is how long a job may go without a heartbeat before another
	// replica takes it over. A worker whose heartbeats fail stops its
	// attempt before then.
	ClaimIdle Duration `yaml:"claim_idle"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		// A TypeError is collected with the file's other problems.
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration like 30s or 5m", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// Defaults returns the configuration used when nothing is set.
func Defaults() Config {
	return Config{
		Listen:        "127.0.0.1:8080",
		Catalog:       "catalog.yml",
		Redis:         Redis{URL: "redis://127.0.0.1:6379/0", Prefix: "agora"},
		Vault:         Vault{Addr: "http://127.0.0.1:8200", Auth: "token", Mount: "secret", Prefix: "agora"},
		Workers:       Workers{Concurrency: 4, ClaimIdle: Duration(30 * time.Second)},
		SyncTimeout:   Duration(50 * time.Second),
		ShutdownGrace: Duration(20 * time.Second),
		LogLevel:      "info",
		LogFormat:     "text",
		Audit:         Audit{Enabled: true},
		Metrics:       Metrics{Enabled: true},
		Marketplace:   Marketplace{Enabled: true},
		Gate:          Gate{Canary: Canary{Interval: Duration(10 * time.Minute)}},
	}
}

// Load reads path (optional: "" means defaults only), applies the
// environment through lookup, and validates, reporting every problem at
// once.
func Load(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg, err := Read(path, lookup)
	return cfg, errors.Join(err, cfg.Validate())
}

// Read is Load without the validation: the file and the environment, with
// every problem they have. `agora catalog check` uses it to find Vault
// without requiring the rest of a broker's settings.
func Read(path string, lookup func(string) (string, bool)) (Config, error) {
	cfg := Defaults()
	var errs []error
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if err := decodeYAML(data, &cfg); err != nil {
			errs = append(errs, prefixLines(path+": ", err))
		}
	}
	errs = append(errs, applyEnv(&cfg, lookup))
	return cfg, errors.Join(errs...)
}

// prefixLines puts prefix before each of err's problems.
func prefixLines(prefix string, err error) error {
	var out []error
	for _, line := range strings.Split(err.Error(), "\n") {
		out = append(out, errors.New(prefix+line))
	}
	return errors.Join(out...)
}

// The environment variables Agora reads, all documented in the README.
// VAULT_* are deliberately not among them: vault/api would pick those up
// silently, and Agora's Vault must be configured explicitly.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok && v != "" {
			*dst = v
		}
	}
	if port, ok := lookup("PORT"); ok && port != "" {
		cfg.Listen = "0.0.0.0:" + port
	}
	str("AGORA_LISTEN", &cfg.Listen)
	str("AGORA_CATALOG", &cfg.Catalog)
	str("REDIS_URL", &cfg.Redis.URL)
	str("AGORA_REDIS_URL", &cfg.Redis.URL)
	str("AGORA_REDIS_PREFIX", &cfg.Redis.Prefix)
	str("AGORA_VAULT_ADDR", &cfg.Vault.Addr)
	str("AGORA_VAULT_TOKEN", &cfg.Vault.Token)
	str("AGORA_VAULT_MOUNT", &cfg.Vault.Mount)
	str("AGORA_VAULT_PREFIX", &cfg.Vault.Prefix)
	str("AGORA_VAULT_CA_CERT", &cfg.Vault.CACert)
	str("AGORA_VAULT_AUTH", &cfg.Vault.Auth)
	str("AGORA_VAULT_ROLE_ID", &cfg.Vault.AppRole.RoleID)
	str("AGORA_VAULT_SECRET_ID_FILE", &cfg.Vault.AppRole.SecretIDFile)
	str("AGORA_VAULT_KUBERNETES_ROLE", &cfg.Vault.Kubernetes.Role)
	str("AGORA_TLS_CERT_FILE", &cfg.TLS.CertFile)
	str("AGORA_TLS_KEY_FILE", &cfg.TLS.KeyFile)
	str("AGORA_TLS_CLIENT_CA_FILE", &cfg.TLS.ClientCAFile)
	str("AGORA_PROBE_LISTEN", &cfg.ProbeListen)
	str("AGORA_LOG_LEVEL", &cfg.LogLevel)
	str("AGORA_LOG_FORMAT", &cfg.LogFormat)
	str("AGORA_METRICS_USERNAME", &cfg.Metrics.Username)
	str("AGORA_METRICS_PASSWORD", &cfg.Metrics.Password)
	str("AGORA_CATALOG_WEBHOOK_URL", &cfg.CatalogWebhook.URL)
	str("AGORA_CATALOG_WEBHOOK_SECRET", &cfg.CatalogWebhook.Secret)
	str("AGORA_MARKETPLACE_USERNAME", &cfg.Marketplace.Username)
	str("AGORA_MARKETPLACE_PASSWORD", &cfg.Marketplace.Password)
	// AGORA_GATE_EGRESS_ALLOW="10.0.0.0/8,*.adapters.example.com" replaces
	// the file's list.
	if v, ok := lookup("AGORA_GATE_EGRESS_ALLOW"); ok && v != "" {
		cfg.Gate.Egress.Allow = nil
		for _, a := range strings.Split(v, ",") {
			cfg.Gate.Egress.Allow = append(cfg.Gate.Egress.Allow, strings.TrimSpace(a))
		}
	}
	if v, ok := lookup("AGORA_GATE_CANARY_INTERVAL"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("AGORA_GATE_CANARY_INTERVAL: %q is not a duration like 10m", v))
		} else {
			cfg.Gate.Canary.Interval = Duration(d)
		}
	}
	// AGORA_AUDIT is "off", "stdout" or a file path.
	if v, ok := lookup("AGORA_AUDIT"); ok && v != "" {
		switch v {
		case "off":
			cfg.Audit = Audit{}
		case "stdout":
			cfg.Audit = Audit{Enabled: true}
		default:
			cfg.Audit = Audit{Enabled: true, File: v}
		}
	}
	num := func(name string, dst *int) {
		if v, ok := lookup(name); ok && v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a number", name, v))
				return
			}
			*dst = n
		}
	}
	num("AGORA_WORKERS", &cfg.Workers.Concurrency)
	num("AGORA_WORKERS_PER_PRODUCER", &cfg.Workers.PerProducer)
	// AGORA_CREDENTIALS="user1:pass1,user2:pass2" replaces the file's pairs.
	if v, ok := lookup("AGORA_CREDENTIALS"); ok && v != "" {
		cfg.Credentials = nil
		for _, pair := range strings.Split(v, ",") {
			u, p, found := strings.Cut(strings.TrimSpace(pair), ":")
			if !found {
				errs = append(errs, errors.New("AGORA_CREDENTIALS: each entry must be user:password"))
				continue
			}
			cfg.Credentials = append(cfg.Credentials, Credential{Username: u, Password: p})
		}
	}
	if v, ok := lookup("VCAP_SERVICES"); ok && v != "" && cfg.Redis.URL == Defaults().Redis.URL {
		if u, err := redisFromVCAP(v); err != nil {
			errs = append(errs, err)
		} else if u != "" {
			cfg.Redis.URL = u
		}
	}
	return errors.Join(errs...)
}

// redisFromVCAP finds a bound Redis service (tagged "redis") on Cloud
// Foundry and returns its URL.
func redisFromVCAP(raw string) (string, error) {
	var vcap map[string][]struct {
		Tags        []string       `json:"tags"`
		Credentials map[string]any `json:"credentials"`
	}
	if err := json.Unmarshal([]byte(raw), &vcap); err != nil {
		return "", fmt.Errorf("VCAP_SERVICES: %w", err)
	}
	for _, services := range vcap {
		for _, s := range services {
			isRedis := false
			for _, t := range s.Tags {
				isRedis = isRedis || strings.EqualFold(t, "redis")
			}
			if !isRedis {
				continue
			}
			if u, _ := s.Credentials["uri"].(string); u != "" {
				return u, nil
			}
			host, _ := s.Credentials["host"].(string)
			if host == "" {
				host, _ = s.Credentials["hostname"].(string)
			}
			port := fmt.Sprint(s.Credentials["port"])
			pass, _ := s.Credentials["password"].(string)
			if host != "" {
				u := url.URL{Scheme: "redis", Host: host + ":" + port}
				if pass != "" {
					u.User = url.UserPassword("", pass)
				}
				return u.String(), nil
			}
		}
	}
	return "", nil
}

// Validate reports the Vault settings' problems, each with its field:
// what the chosen login method needs, and no other method's fields.
func (v Vault) Validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if v.Addr == "" {
		add("vault.addr: is required (or AGORA_VAULT_ADDR)")
	}
	appRole, k8s := v.AppRole != VaultAppRole{}, v.Kubernetes != VaultKubernetes{}
	switch v.Auth {
	case "token", "":
		if v.Token == "" {
			add("vault.token: is required with vault.auth token (or AGORA_VAULT_TOKEN)")
		}
	case "approle":
		if v.AppRole.RoleID == "" {
			add("vault.approle.role_id: is required with vault.auth approle (or AGORA_VAULT_ROLE_ID)")
		}
		if v.AppRole.SecretIDFile == "" {
			add("vault.approle.secret_id_file: is required with vault.auth approle (or AGORA_VAULT_SECRET_ID_FILE)")
		}
	case "kubernetes":
		if v.Kubernetes.Role == "" {
			add("vault.kubernetes.role: is required with vault.auth kubernetes (or AGORA_VAULT_KUBERNETES_ROLE)")
		}
	default:
		add("vault.auth: %q is not token, approle or kubernetes", v.Auth)
	}
	if v.Token != "" && v.Auth != "token" && v.Auth != "" {
		add("vault.token: is set, but vault.auth is %s", v.Auth)
	}
	if appRole && v.Auth != "approle" {
		add("vault.approle: is set, but vault.auth is %s", cmp.Or(v.Auth, "token"))
	}
	if k8s && v.Auth != "kubernetes" {
		add("vault.kubernetes: is set, but vault.auth is %s", cmp.Or(v.Auth, "token"))
	}
	return errs
}

func (t TLS) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if (t.CertFile == "") != (t.KeyFile == "") {
		add("tls: cert_file and key_file go together (or AGORA_TLS_CERT_FILE and AGORA_TLS_KEY_FILE)")
	}
	if t.ClientCAFile != "" && !t.Enabled() {
		add("tls.client_ca_file: client certificates need TLS: set tls.cert_file and tls.key_file too")
	}
	switch t.ClientAuth {
	case "", "require", "verify_if_given":
		if t.ClientAuth != "" && t.ClientCAFile == "" {
			add("tls.client_auth: needs tls.client_ca_file, the CAs client certificates are checked against")
		}
	default:
		add("tls.client_auth: %q is not require or verify_if_given", t.ClientAuth)
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		add("tls.min_version: %q is not 1.2 or 1.3", t.MinVersion)
	}
	return errs
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Listen == "" {
		add("listen: is required")
	}
	if c.Catalog == "" {
		add("catalog: is required")
	}
	if len(c.Credentials) == 0 {
		add("credentials: at least one username/password pair is required (or AGORA_CREDENTIALS=user:pass)")
	}
	for i, cr := range c.Credentials {
		if cr.Username == "" || cr.Password == "" {
			add("credentials[%d]: username and password are required", i)
		}
	}
	if c.Redis.URL == "" && len(c.Redis.Addrs) == 0 {
		add("redis: url or addrs is required")
	}
	if p := c.Redis.Protocol; p != 0 && p != 2 && p != 3 {
		add("redis.protocol: %d is not a RESP version Agora speaks (2 or 3)", p)
	}
	if c.Vault.Addr == "" {
		add("vault.addr: is required (or AGORA_VAULT_ADDR)")
	}
	errs = append(errs, c.Vault.Validate()...)
	errs = append(errs, c.TLS.validate()...)
	if c.ProbeListen != "" && c.ProbeListen == c.Listen {
		add("probe_listen: must differ from listen (%s)", c.Listen)
	}
	if c.Workers.Concurrency < 0 {
		add("workers.concurrency: must not be negative")
	}
	switch {
	case c.Workers.PerProducer < 0:
		add("workers.per_producer: must not be negative")
	case c.Workers.Concurrency > 0 && c.Workers.PerProducer > c.Workers.Concurrency:
		add("workers.per_producer: %d is more than workers.concurrency (%d)", c.Workers.PerProducer, c.Workers.Concurrency)
	}
	if (c.Metrics.Username == "") != (c.Metrics.Password == "") {
		add("metrics: username and password go together (or AGORA_METRICS_USERNAME and AGORA_METRICS_PASSWORD)")
	}
	if w := c.CatalogWebhook; w.URL != "" || w.Secret != "" {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("catalog_webhook.url: %q is not an http or https URL (or AGORA_CATALOG_WEBHOOK_URL)", w.URL)
		}
		if len(w.Secret) < 16 {
			add("catalog_webhook.secret: must be at least 16 characters, to sign the deliveries (or AGORA_CATALOG_WEBHOOK_SECRET)")
		}
	}
	if iv := time.Duration(c.Gate.Canary.Interval); iv != 0 && iv < 5*time.Second {
		add("gate.canary.interval: %s is shorter than 5s (0 turns the canary off)", iv)
	}
	if _, _, err := egress.ParseAllow(c.Gate.Egress.Allow); err != nil {
		errs = append(errs, err)
	}
	if c.CatalogWebhook.Timeout < 0 {
		add("catalog_webhook.timeout: must not be negative")
	}
	c.Marketplace.validate(c.Credentials, add)
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		add("log_format: %q is not text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// validate reports the read-only credential's problems through add.
func (m Marketplace) validate(admins []Credential, add func(string, ...any)) {
	if (m.Username == "") != (m.Password == "") {
		add("marketplace: username and password go together (or AGORA_MARKETPLACE_USERNAME and AGORA_MARKETPLACE_PASSWORD)")
	}
	if strings.Contains(m.Username, ":") {
		add("marketplace.username: must not contain \":\" (HTTP basic auth cannot carry it)")
	}
	// One username, one kind of access: the log's principal then says
	// which one a request used.
	for i, cr := range admins {
		if m.Username != "" && cr.Username == m.Username {
			add("marketplace.username: %q is credentials[%d]'s username too; the read-only credential needs a name of its own", m.Username, i)
		}
	}
}
