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
