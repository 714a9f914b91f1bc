package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yml", `
listen: 127.0.0.1:9999
credentials: [{username: a, password: b}]
vault: {token: t}
workers: {concurrency: 2, claim_idle: 5s}
`)
	tests := []struct {
		name    string
		path    string
		env     map[string]string
		wantErr []string
		check   func(t *testing.T, c Config)
	}{
		{name: "file values", path: good, check: func(t *testing.T, c Config) {
			if c.Listen != "127.0.0.1:9999" || c.Workers.Concurrency != 2 || time.Duration(c.Workers.ClaimIdle) != 5*time.Second {
				t.Errorf("got %+v", c)
			}
			if c.Redis.URL != "redis://127.0.0.1:6379/0" || c.Vault.Mount != "secret" {
				t.Errorf("defaults not applied: %+v", c)
			}
		}},
		{name: "environment overrides the file", path: good, env: map[string]string{
			"PORT": "8081", "AGORA_CREDENTIALS": "x:y,z:w", "REDIS_URL": "redis://r:1/2", "AGORA_VAULT_TOKEN": "tok",
		}, check: func(t *testing.T, c Config) {
			if c.Listen != "0.0.0.0:8081" || len(c.Credentials) != 2 || c.Credentials[1].Username != "z" || c.Redis.URL != "redis://r:1/2" || c.Vault.Token != "tok" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "VAULT_TOKEN is not read", env: map[string]string{"VAULT_TOKEN": "sneaky", "AGORA_CREDENTIALS": "a:b"},
			wantErr: []string{"vault.token: is required"}},
		{name: "bound redis service", path: good, env: map[string]string{
			"VCAP_SERVICES": `{"p-redis":[{"tags":["redis"],"credentials":{"host":"10.0.0.5","port":6379,"password":"pw"}}]}`,
		}, check: func(t *testing.T, c Config) {
			if c.Redis.URL != "redis://:pw@10.0.0.5:6379" {
				t.Errorf("redis url %q", c.Redis.URL)
			}
		}},
		{name: "every problem at once", path: write("bad.yml", "log_level: loud\nlog_format: xml\n"),
			wantErr: []string{"credentials:", "vault.token:", "log_level:", "log_format:"}},
		{name: "unknown field", path: write("typo.yml", "listne: x\n"), wantErr: []string{"listne"}},
		{name: "bad duration", path: write("dur.yml", "sync_timeout: soon\n"), wantErr: []string{"not a duration"}},
		{name: "bad credentials env", env: map[string]string{"AGORA_CREDENTIALS": "nocolon"}, wantErr: []string{"user:password"}},
		{name: "per-producer limit unset: the broker derives it", path: good, check: func(t *testing.T, c Config) {
			if c.Workers.PerProducer != 0 {
				t.Errorf("per_producer %d, want 0 (half of concurrency, decided by the broker)", c.Workers.PerProducer)
			}
		}},
		{name: "per-producer limit from the file", path: write("pp.yml", `
credentials: [{username: a, password: b}]
vault: {token: t}
workers: {concurrency: 6, per_producer: 2}
`), check: func(t *testing.T, c Config) {
			if c.Workers.PerProducer != 2 {
				t.Errorf("per_producer %d, want 2", c.Workers.PerProducer)
			}
		}},
		{name: "per-producer limit from the environment", path: good, env: map[string]string{"AGORA_WORKERS_PER_PRODUCER": "1"},
			check: func(t *testing.T, c Config) {
				if c.Workers.PerProducer != 1 {
					t.Errorf("per_producer %d, want 1", c.Workers.PerProducer)
				}
			}},
		{name: "per-producer limit not a number", path: good, env: map[string]string{"AGORA_WORKERS_PER_PRODUCER": "half"},
			wantErr: []string{"AGORA_WORKERS_PER_PRODUCER", `"half"`}},
		{name: "per-producer limit out of range", path: good, env: map[string]string{"AGORA_WORKERS_PER_PRODUCER": "3"},
			wantErr: []string{"workers.per_producer: 3 is more than workers.concurrency (2)"}},
		{name: "marketplace on by default, without a read-only credential", path: good, check: func(t *testing.T, c Config) {
			if !c.Marketplace.Enabled || c.Marketplace.Username != "" {
				t.Errorf("marketplace %+v, want enabled with no credential of its own", c.Marketplace)
			}
		}},
		{name: "marketplace credential from the file stays enabled", path: write("mp.yml", `
credentials: [{username: a, password: b}]
vault: {token: t}
marketplace: {username: browse, password: pw}
`), check: func(t *testing.T, c Config) {
			if !c.Marketplace.Enabled || c.Marketplace.Username != "browse" || c.Marketplace.Password != "pw" {
				t.Errorf("marketplace %+v", c.Marketplace)
			}
		}},
		{name: "marketplace off", path: write("mpoff.yml", `
credentials: [{username: a, password: b}]
vault: {token: t}
marketplace: {enabled: false}
`), check: func(t *testing.T, c Config) {
			if c.Marketplace.Enabled {
				t.Errorf("marketplace %+v, want disabled", c.Marketplace)
			}
		}},
		{name: "marketplace credential from the environment", path: good,
			env: map[string]string{"AGORA_MARKETPLACE_USERNAME": "browse", "AGORA_MARKETPLACE_PASSWORD": "pw"},
			check: func(t *testing.T, c Config) {
				if c.Marketplace.Username != "browse" || c.Marketplace.Password != "pw" {
					t.Errorf("marketplace %+v", c.Marketplace)
				}
			}},
		{name: "every marketplace problem at once, with the others", path: write("mpbad.yml", `
credentials: [{username: a, password: b}]
marketplace: {username: "a"}
log_level: loud
`), wantErr: []string{
			"marketplace: username and password go together",
			`marketplace.username: "a" is credentials[0]'s username too`,
			"vault.token:", "log_level:",
		}},
		{name: "marketplace username with a colon", path: good,
			env:     map[string]string{"AGORA_MARKETPLACE_USERNAME": "a:b", "AGORA_MARKETPLACE_PASSWORD": "pw"},
			wantErr: []string{`marketplace.username: must not contain ":"`}},
		{name: "negative per-producer limit", path: good, env: map[string]string{"AGORA_WORKERS_PER_PRODUCER": "-1"},
			wantErr: []string{"workers.per_producer: must not be negative"}},
		{name: "catalog webhook without a usable URL or secret", path: good,
			env:     map[string]string{"AGORA_CATALOG_WEBHOOK_URL": "hooks.example.com/agora", "AGORA_CATALOG_WEBHOOK_SECRET": "short"},
			wantErr: []string{"catalog_webhook.url: \"hooks.example.com/agora\" is not an http or https URL", "catalog_webhook.secret: must be at least 16 characters"}},
		{name: "gate defaults: no allow-list, no unverified type, canary every 10m", path: good, check: func(t *testing.T, c Config) {
			if len(c.Gate.Egress.Allow) != 0 || len(c.Gate.AllowUnverifiedTypes) != 0 || time.Duration(c.Gate.Canary.Interval) != 10*time.Minute {
				t.Errorf("gate %+v", c.Gate)
			}
		}},
		{name: "gate from the file", path: write("gate.yml", `
credentials: [{username: a, password: b}]
vault: {token: t}
gate:
  allow_unverified_types: [x-custom]
  egress: {allow: [10.0.0.0/8, "*.adapters.example.com"]}
  canary: {interval: 0s}
`), check: func(t *testing.T, c Config) {
			if len(c.Gate.Egress.Allow) != 2 || c.Gate.AllowUnverifiedTypes[0] != "x-custom" || c.Gate.Canary.Interval != 0 {
				t.Errorf("gate %+v", c.Gate)
			}
		}},
		{name: "gate from the environment", path: good,
			env: map[string]string{"AGORA_GATE_EGRESS_ALLOW": "10.0.0.0/8, adapters.example.com", "AGORA_GATE_CANARY_INTERVAL": "1m"},
			check: func(t *testing.T, c Config) {
				if len(c.Gate.Egress.Allow) != 2 || c.Gate.Egress.Allow[1] != "adapters.example.com" || time.Duration(c.Gate.Canary.Interval) != time.Minute {
					t.Errorf("gate %+v", c.Gate)
				}
			}},
		{name: "every gate problem at once", path: good,
			env: map[string]string{"AGORA_GATE_EGRESS_ALLOW": "10.0.0.0/8,,10.0.0.0/33,not a host", "AGORA_GATE_CANARY_INTERVAL": "1s"},
			wantErr: []string{"gate.canary.interval: 1s is shorter than 5s", "gate.egress.allow[1]: is empty",
				`gate.egress.allow[2]: "10.0.0.0/33" is not a CIDR`, `gate.egress.allow[3]: "not a host" is neither a CIDR nor a host name`}},
		{name: "catalog webhook", path: good,
			env: map[string]string{"AGORA_CATALOG_WEBHOOK_URL": "https://hooks.example.com/agora", "AGORA_CATALOG_WEBHOOK_SECRET": "sixteen-chars-or-more"},
			check: func(t *testing.T, c Config) {
				if c.CatalogWebhook.URL != "https://hooks.example.com/agora" || c.CatalogWebhook.Secret != "sixteen-chars-or-more" {
					t.Errorf("catalog_webhook %+v", c.CatalogWebhook)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.path, env(tt.env))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error containing %q, got none", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestVaultAuthAndTLS(t *testing.T) {
	base := map[string]string{"AGORA_CREDENTIALS": "a:b"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		wantErr []string
		check   func(t *testing.T, c Config)
	}{
		{name: "approle from the file", file: `
vault: {auth: approle, approle: {role_id: r-1, secret_id_file: /etc/agora/secret-id}}
`, check: func(t *testing.T, c Config) {
			if c.Vault.Auth != "approle" || c.Vault.AppRole.RoleID != "r-1" || c.Vault.AppRole.SecretIDFile != "/etc/agora/secret-id" {
				t.Errorf("got %+v", c.Vault)
			}
		}},
		{name: "kubernetes from the environment", env: map[string]string{"AGORA_VAULT_AUTH": "kubernetes", "AGORA_VAULT_KUBERNETES_ROLE": "agora"},
			check: func(t *testing.T, c Config) {
				if c.Vault.Auth != "kubernetes" || c.Vault.Kubernetes.Role != "agora" || c.Vault.Token != "" {
					t.Errorf("got %+v", c.Vault)
				}
			}},
		{name: "each method says what it lacks", env: map[string]string{"AGORA_VAULT_AUTH": "approle"},
			wantErr: []string{"vault.approle.role_id: is required", "vault.approle.secret_id_file: is required"}},
		{name: "kubernetes needs its role", file: "vault: {auth: kubernetes}\n", wantErr: []string{"vault.kubernetes.role: is required"}},
		{name: "another method's fields are a mistake", file: "vault: {auth: kubernetes, token: t, kubernetes: {role: r}, approle: {role_id: x}}\n",
			wantErr: []string{"vault.token: is set, but vault.auth is kubernetes", "vault.approle: is set, but vault.auth is kubernetes"}},
		{name: "an unknown method", file: "vault: {auth: ldap}\n", wantErr: []string{`vault.auth: "ldap" is not token, approle or kubernetes`}},
		{name: "tls from the file", file: "vault: {token: t}\ntls: {cert_file: c.pem, key_file: k.pem, client_ca_file: ca.pem}\n",
			check: func(t *testing.T, c Config) {
				if !c.TLS.Enabled() || c.TLS.ClientCAFile != "ca.pem" {
					t.Errorf("got %+v", c.TLS)
				}
			}},
		{name: "tls problems at once", file: "vault: {token: t}\ntls: {cert_file: c.pem, client_auth: always, min_version: '1.0'}\n",
			wantErr: []string{"tls: cert_file and key_file go together", `tls.client_auth: "always" is not require or verify_if_given`, `tls.min_version: "1.0" is not 1.2 or 1.3`}},
		{name: "client certificates need tls", env: map[string]string{"AGORA_VAULT_TOKEN": "t", "AGORA_TLS_CLIENT_CA_FILE": "ca.pem"},
			wantErr: []string{"tls.client_ca_file: client certificates need TLS"}},
		{name: "probe listener apart from the broker's", file: "vault: {token: t}\nlisten: 0.0.0.0:8080\nprobe_listen: 0.0.0.0:8080\n",
			wantErr: []string{"probe_listen: must differ from listen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = filepath.Join(t.TempDir(), "agora.yml")
				if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c, err := Load(path, env(with(tt.env)))
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want errors %q, got none", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// A config file with many kinds of mistakes gets one report naming each
// field in the file's words, and no Go type.
func TestEveryProblemAtOnceWithoutGoTypes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agora.yml")
	body := `listen: 127.0.0.1:8080
listne: typo
credentials: admin:secret
redis:
  db: first
vault:
  auth: approle
  approle: {role_idd: x}
workers:
  concurrency: many
  claim_idle: soon
metrics: true
log_level: loud
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, env(nil))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		path + ": line 2: listne: unknown field (known: ",
		path + `: line 3: credentials: text is not a list`,
		path + `: line 5: redis.db: "first" is not a whole number`,
		path + ": line 8: vault.approle.role_idd: unknown field (known: mount, role_id, secret_id_file)",
		path + `: line 10: workers.concurrency: "many" is not a whole number`,
		path + `: line 11: workers.claim_idle: "soon" is not a duration like 30s or 5m`,
		path + `: line 12: metrics: "true" is not a mapping`,
		"vault.approle.role_id: is required",
		`log_level: "loud" is not debug`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the report does not say %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "admin:s") {
		t.Errorf("the report quotes a credential:\n%s", msg)
	}
	for _, goType := range []string{"config.", "[]", "int", "!!", "unmarshal", "type "} {
		if strings.Contains(msg, goType) {
			t.Errorf("the report shows Go's words (%q):\n%s", goType, msg)
		}
	}
}

func TestRedisProtocolIsTwoOrThree(t *testing.T) {
	for protocol, wantErr := range map[string]bool{"": false, "2": false, "3": false, "4": true} {
		body := "credentials: [{username: u, password: p}]\n"
		if protocol != "" {
			body += "redis:\n  protocol: " + protocol + "\n"
		}
		path := filepath.Join(t.TempDir(), "agora.yml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path, env(nil))
		if gotErr := err != nil && strings.Contains(err.Error(), "redis.protocol: 4 is not a RESP version"); gotErr != wantErr {
			t.Errorf("protocol %q: error %v, want one: %v", protocol, err, wantErr)
		}
	}
}
