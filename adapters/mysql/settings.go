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
	if err := adapters.CheckHost(s.Host); err != nil {
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
		if err := adapters.CheckHost(s.PublicHost); err != nil {
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
