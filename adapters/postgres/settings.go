package postgres

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// Settings is the offering's `config:` section: the server and its admin
// account (host, port, admin_user, admin_password, public_host), the
// database the admin connects to, and sslmode.
type Settings struct {
	adapters.ServerSettings
	AdminDatabase string `json:"admin_database"`
	SSLMode       string `json:"sslmode"`
}

// PlanSettings is one plan's `config:` section.
type PlanSettings struct {
	// ConnectionLimit becomes the database's CONNECTION LIMIT; -1 means
	// unlimited. Nil means defaultConnectionLimit.
	ConnectionLimit *int `json:"connection_limit"`
	// AllowedExtensions lists the extensions a provision may ask for.
	AllowedExtensions []string `json:"allowed_extensions"`
	// Versions maps a plan's maintenance_info versions to the work each
	// brings: an instance provisioned on, or upgraded to, version V gets
	// the extensions of every listed version up to and including V. So the
	// producer publishes 1.1.0 in maintenance_info and lists what it adds
	// here; `cf update-service --upgrade` then creates it.
	Versions map[string]VersionSettings `json:"versions"`
}

// VersionSettings is the backend work of one maintenance_info version.
type VersionSettings struct {
	// Extensions are created in every instance on this version or later
	// (never dropped: that would destroy the application's data).
	Extensions []string `json:"extensions"`
}

const (
	defaultPort = 5432
	// A small default keeps one noisy instance from exhausting the
	// server's max_connections; plans that need more say so.
	defaultConnectionLimit = 20
)

var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// extensionName is deliberately narrower than what PostgreSQL accepts: it
// covers every contrib extension (uuid-ossp has a hyphen) and keeps
// operators from listing something that is not a plain name.
var extensionName = regexp.MustCompile(`^[a-z0-9_][a-z0-9_-]{0,62}$`)

// ApplyDefaults fills the fields an operator may leave out.
func (s *Settings) ApplyDefaults() {
	s.FillDefaults(defaultPort, "postgres")
	if s.AdminDatabase == "" {
		s.AdminDatabase = "postgres"
	}
	if s.SSLMode == "" {
		s.SSLMode = "prefer"
	}
}

// Validate reports every problem at once.
func (s Settings) Validate() error {
	errs := []error{s.ServerSettings.Validate()}
	if strings.TrimSpace(s.AdminDatabase) == "" {
		errs = append(errs, errors.New("admin_database: must not be blank"))
	}
	if !slices.Contains(sslModes, s.SSLMode) {
		errs = append(errs, fmt.Errorf("sslmode: %q is not one of %s", s.SSLMode, strings.Join(sslModes, ", ")))
	}
	return errors.Join(errs...)
}

// Validate reports every problem at once.
func (p PlanSettings) Validate() error {
	var errs []error
	if p.ConnectionLimit != nil && *p.ConnectionLimit != -1 && *p.ConnectionLimit < 1 {
		// 0 is legal SQL but locks every binding out of its own database.
		errs = append(errs, fmt.Errorf("connection_limit: %d must be -1 (unlimited) or at least 1", *p.ConnectionLimit))
	}
	for i, e := range p.AllowedExtensions {
		if !extensionName.MatchString(e) {
			errs = append(errs, fmt.Errorf("allowed_extensions[%d]: %q is not an extension name", i, e))
		}
	}
	for _, v := range slices.Sorted(maps.Keys(p.Versions)) {
		if !adapters.ValidVersion(v) {
			errs = append(errs, fmt.Errorf("versions: %q is not a semantic version (such as 1.1.0), as maintenance_info.version must be", v))
		}
		for i, e := range p.Versions[v].Extensions {
			if !extensionName.MatchString(e) {
				errs = append(errs, fmt.Errorf("versions.%s.extensions[%d]: %q is not an extension name", v, i, e))
			}
		}
	}
	return errors.Join(errs...)
}

// versionExtensions are the extensions an instance on version v has: those
// of every listed version up to and including v, in version order. None
// when v is "" (a plan without maintenance_info).
func (p PlanSettings) versionExtensions(v string) []string {
	if v == "" {
		return nil
	}
	versions := slices.SortedFunc(maps.Keys(p.Versions), adapters.CompareVersions)
	var out []string
	for _, listed := range versions {
		if adapters.CompareVersions(listed, v) > 0 {
			break
		}
		for _, e := range p.Versions[listed].Extensions {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	}
	return out
}

func (p PlanSettings) connectionLimit() int {
	if p.ConnectionLimit == nil {
		return defaultConnectionLimit
	}
	return *p.ConnectionLimit
}
