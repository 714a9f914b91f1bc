package secrets

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Settings is an offering's `config:` section. Agora decodes it strictly, so
// a misspelt field is an error rather than a silently ignored default.
type Settings struct {
	// VaultAddr is where the adapter reaches Vault, e.g. http://127.0.0.1:8200.
	VaultAddr string `json:"vault_addr"`
	// Token is the adapter's own Vault token. In catalog.yml it is usually a
	// `vault:<path>#<key>` reference that Agora resolves before the adapter
	// sees it. See README.md for the policy it needs.
	Token string `json:"token"`
	// KVMount is the mount path of the KV v2 engine. Default "secret".
	KVMount string `json:"kv_mount"`
	// PathPrefix is the folder under KVMount that holds one sub-folder per
	// instance. Default "agora-secrets".
	PathPrefix string `json:"path_prefix"`
	// ApproleMount is the mount path of the AppRole auth method. Default
	// "approle"; Bind enables it there when it is missing.
	ApproleMount string `json:"approle_mount"`
	// PublicVaultAddr is the address apps should use, when it differs from
	// the one Agora uses (another network, a load balancer). Default VaultAddr.
	PublicVaultAddr string `json:"public_vault_addr"`
}

// Defaults of the optional settings.
const (
	DefaultKVMount      = "secret"
	DefaultPathPrefix   = "agora-secrets"
	DefaultApproleMount = "approle"
)

// vaultPathSegment is what we allow in mount paths and the path prefix.
// These strings end up inside policy HCL and URLs, so anything that could
// act as a glob ("*", "+"), a quote or an escape is refused up front.
var vaultPathSegment = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// ApplyDefaults fills the optional settings and trims the slashes people
// habitually write around mount paths ("secret/").
func (s *Settings) ApplyDefaults() {
	s.VaultAddr = strings.TrimRight(strings.TrimSpace(s.VaultAddr), "/")
	s.PublicVaultAddr = strings.TrimRight(strings.TrimSpace(s.PublicVaultAddr), "/")
	s.KVMount = strings.Trim(s.KVMount, "/")
	s.PathPrefix = strings.Trim(s.PathPrefix, "/")
	s.ApproleMount = strings.Trim(s.ApproleMount, "/")
	if s.KVMount == "" {
		s.KVMount = DefaultKVMount
	}
	if s.PathPrefix == "" {
		s.PathPrefix = DefaultPathPrefix
	}
	if s.ApproleMount == "" {
		s.ApproleMount = DefaultApproleMount
	}
	if s.PublicVaultAddr == "" {
		s.PublicVaultAddr = s.VaultAddr
	}
}

// Validate reports every problem at once. DecodeConfig calls it after
// ApplyDefaults, so it checks the values the adapter will use.
func (s Settings) Validate() error {
	var errs []error
	if s.VaultAddr == "" {
		errs = append(errs, errors.New("vault_addr: required"))
	} else if err := checkHTTPURL(s.VaultAddr); err != nil {
		errs = append(errs, fmt.Errorf("vault_addr: %w", err))
	}
	if strings.TrimSpace(s.Token) == "" {
		errs = append(errs, errors.New("token: required"))
	}
	if err := checkVaultPath(s.KVMount); err != nil {
		errs = append(errs, fmt.Errorf("kv_mount: %w", err))
	}
	if err := checkVaultPath(s.PathPrefix); err != nil {
		errs = append(errs, fmt.Errorf("path_prefix: %w", err))
	}
	if err := checkVaultPath(s.ApproleMount); err != nil {
		errs = append(errs, fmt.Errorf("approle_mount: %w", err))
	}
	if s.PublicVaultAddr != "" {
		if err := checkHTTPURL(s.PublicVaultAddr); err != nil {
			errs = append(errs, fmt.Errorf("public_vault_addr: %w", err))
		}
	}
	return errors.Join(errs...)
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want an http:// or https:// URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: has no host", raw)
	}
	return nil
}

func checkVaultPath(p string) error {
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." || !vaultPathSegment.MatchString(seg) {
			return fmt.Errorf("%q: want path segments of letters, digits, '_', '.' and '-'", p)
		}
	}
	return nil
}

// PlanSettings is one plan's `config:` section.
type PlanSettings struct {
	// TokenTTL is the TTL of the tokens an app gets from an AppRole login,
	// as a Go duration ("1h"). Default 1h. Apps renew or log in again.
	TokenTTL string `json:"token_ttl"`
	// SecretIDTTL is how long the binding's secret_id stays valid. "0s"
	// (the default) means until Unbind.
	SecretIDTTL string `json:"secret_id_ttl"`
	// MaxSecrets is advisory: Vault has no per-path count quota, so the
	// adapter only reports it in the instance metadata for apps and
	// operators to honour. It is not enforced.
	MaxSecrets *int `json:"max_secrets"`
	// RenewWindow is how long before a binding's secret_id expires the
	// platform should rotate it (OSB renew_before = expires_at minus
	// this), as a Go duration. Only with a secret_id_ttl; default a third
	// of it, which leaves the platform time to bind the successor and the
	// app time to switch over.
	RenewWindow string `json:"renew_window"`
}

// Defaults of the plan settings.
const (
	DefaultTokenTTL    = time.Hour
	DefaultSecretIDTTL = time.Duration(0)
)

// planConfig is a validated PlanSettings.
type planConfig struct {
	tokenTTL    time.Duration
	secretIDTTL time.Duration
	maxSecrets  int // 0: not set
	// renewWindow is how long before expiry a binding should be rotated;
	// 0 when secret_id_ttl is 0 (nothing expires).
	renewWindow time.Duration
}

// Validate reports every problem at once.
func (p PlanSettings) Validate() error {
	_, err := p.parse()
	return err
}

func (p PlanSettings) parse() (planConfig, error) {
	cfg := planConfig{tokenTTL: DefaultTokenTTL, secretIDTTL: DefaultSecretIDTTL}
	var errs []error
	if p.TokenTTL != "" {
		d, err := time.ParseDuration(p.TokenTTL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("token_ttl: %w", err))
		case d < time.Second:
			// Vault counts TTLs in whole seconds, and 0 would silently mean
			// "the mount's default" instead of what the plan says.
			errs = append(errs, fmt.Errorf("token_ttl: %q: want at least 1s", p.TokenTTL))
		default:
			cfg.tokenTTL = d
		}
	}
	if p.SecretIDTTL != "" {
		d, err := time.ParseDuration(p.SecretIDTTL)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("secret_id_ttl: %w", err))
		case d < 0:
			errs = append(errs, fmt.Errorf("secret_id_ttl: %q: must not be negative (0s means never expires)", p.SecretIDTTL))
		case d > 0 && d < time.Second:
			errs = append(errs, fmt.Errorf("secret_id_ttl: %q: want 0s or at least 1s", p.SecretIDTTL))
		default:
			cfg.secretIDTTL = d
		}
	}
	cfg.renewWindow = cfg.secretIDTTL / 3
	if p.RenewWindow != "" {
		d, err := time.ParseDuration(p.RenewWindow)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("renew_window: %w", err))
		case cfg.secretIDTTL == 0:
			errs = append(errs, fmt.Errorf("renew_window: %q: needs a secret_id_ttl (without one, bindings never expire)", p.RenewWindow))
		case d <= 0 || d >= cfg.secretIDTTL:
			errs = append(errs, fmt.Errorf("renew_window: %q: want more than 0s and less than secret_id_ttl (%s)", p.RenewWindow, cfg.secretIDTTL))
		default:
			cfg.renewWindow = d
		}
	}
	if p.MaxSecrets != nil {
		if *p.MaxSecrets < 1 {
			errs = append(errs, fmt.Errorf("max_secrets: %d: want at least 1, or leave it out", *p.MaxSecrets))
		} else {
			cfg.maxSecrets = *p.MaxSecrets
		}
	}
	return cfg, errors.Join(errs...)
}
