package mysql

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// Settings is the offering's `config:` section. admin_password may be a
// catalog `vault:path#key` reference: Agora resolves it before the adapter
// sees the settings.
type Settings struct {
	Host          string `json:"host"`
	Port          int    `json:"port"`
	AdminUser     string `json:"admin_user"`
	AdminPassword string `json:"admin_password"`
	// TLS is the admin connection's TLS mode, as go-sql-driver/mysql names
	// them: "false", "true" (verify the certificate), "skip-verify" or
	// "preferred" (TLS when the server offers it, unverified).
	TLS string `json:"tls"`
	// PublicHost is the host name applications use, when it differs from
	// the one Agora reaches the server by.
	PublicHost string `json:"public_host"`
}

// PlanSettings is one plan's `config:` section.
type PlanSettings struct {
	// MaxUserConnections caps the sessions of each binding's user; 0 means
	// no cap. Nil means defaultMaxUserConnections.
	MaxUserConnections *int `json:"max_user_connections"`
}

const (
	defaultPort = 3306
	// A small default keeps one binding from exhausting the server's
	// max_connections; plans that need more say so.
	defaultMaxUserConnections = 10
)

var tlsModes = []string{"false", "true", "skip-verify", "preferred"}

// ApplyDefaults fills the fields an operator may leave out.
func (s *Settings) ApplyDefaults() {
	if s.Port == 0 {
		s.Port = defaultPort
	}
	if s.AdminUser == "" {
		s.AdminUser = "root"
	}
	if s.TLS == "" {
		s.TLS = "preferred"
	}
}

// Validate reports every problem at once.
func (s Settings) Validate() error {
	var errs []error
	if err := checkHost(s.Host); err != nil {
		errs = append(errs, fmt.Errorf("host: %w", err))
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d is not between 1 and 65535", s.Port))
	}
	if strings.TrimSpace(s.AdminUser) == "" {
		errs = append(errs, errors.New("admin_user: must not be blank"))
	}
	if !slices.Contains(tlsModes, s.TLS) {
		errs = append(errs, fmt.Errorf("tls: %q is not one of %s", s.TLS, strings.Join(tlsModes, ", ")))
	}
	if s.PublicHost != "" {
		if err := checkHost(s.PublicHost); err != nil {
			errs = append(errs, fmt.Errorf("public_host: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem at once.
func (p PlanSettings) Validate() error {
	if p.MaxUserConnections != nil && *p.MaxUserConnections < 0 {
		return fmt.Errorf("max_user_connections: %d must be 0 (no cap) or more", *p.MaxUserConnections)
	}
	return nil
}

func (p PlanSettings) maxUserConnections() int {
	if p.MaxUserConnections == nil {
		return defaultMaxUserConnections
	}
	return *p.MaxUserConnections
}

// checkHost accepts a host name or an IP address and rejects what would
// silently change the meaning of the URIs built from it.
func checkHost(h string) error {
	switch {
	case strings.TrimSpace(h) == "":
		return errors.New("must not be blank")
	case strings.ContainsAny(h, " \t\r\n/@?#"):
		return fmt.Errorf("%q is not a host name or IP address", h)
	}
	return nil
}

// planSet holds the decoded settings of every plan, by ID and by name.
type planSet struct {
	adapters.PlanSettings[PlanSettings]
}

func (ps planSet) lookup(p adapters.Plan) (PlanSettings, error) {
	if s, ok := ps.For(p); ok {
		return s, nil
	}
	// The catalog and the adapter disagree: no retry can fix that.
	return PlanSettings{}, adapters.Terminal(fmt.Errorf("%w: plan %q (%s) is not configured for this offering", adapters.ErrNotSupported, p.Name, p.ID))
}

// decodeConfig decodes and validates the offering's and every plan's
// settings, reporting every problem at once. A plan without settings gets
// the defaults.
func decodeConfig(cfg adapters.Config) (Settings, planSet, error) {
	s, plans, err := adapters.ConfigDecoder[Settings, PlanSettings]{
		Label: "settings",
	}.Decode(cfg)
	return s, planSet{plans}, err
}

// rejectParameters refuses every parameter: the offering takes none, and a
// parameter silently ignored is a surprise for the app developer.
func rejectParameters(params map[string]any) error {
	if len(params) == 0 {
		return nil
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, fmt.Sprintf("%q", k))
	}
	sortStrings(keys)
	return adapters.InvalidParameters("unknown parameter(s) %s; this offering takes no parameters", strings.Join(keys, ", "))
}
