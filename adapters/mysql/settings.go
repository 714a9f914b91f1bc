package mysql

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// Settings is the offering's `config:` section: the server and its admin
// account (host, port, admin_user, admin_password, public_host), and tls.
type Settings struct {
	adapters.ServerSettings
	// TLS is the admin connection's TLS mode, as go-sql-driver/mysql names
	// them: "false", "true" (verify the certificate), "skip-verify" or
	// "preferred" (TLS when the server offers it, unverified).
	TLS string `json:"tls"`
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
	s.FillDefaults(defaultPort, "root")
	if s.TLS == "" {
		s.TLS = "preferred"
	}
}

// Validate reports every problem at once.
func (s Settings) Validate() error {
	errs := []error{s.ServerSettings.Validate()}
	if !slices.Contains(tlsModes, s.TLS) {
		errs = append(errs, fmt.Errorf("tls: %q is not one of %s", s.TLS, strings.Join(tlsModes, ", ")))
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
