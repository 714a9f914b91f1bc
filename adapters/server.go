package adapters

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ServerSettings are the connection settings of an adapter that
// administers one server through an admin account, as the mysql and
// postgres adapters do. Embed it in the offering's settings struct: its
// fields decode from the same `config:` section, and its Validate serves
// the embedding type until that type defines its own.
type ServerSettings struct {
	// Host is where Agora reaches the server: a bare host name or IP
	// address.
	Host string `json:"host"`
	Port int    `json:"port"`
	// AdminUser is the account the adapter administers the server with.
	AdminUser string `json:"admin_user"`
	// AdminPassword may be a catalog `vault:path#key` reference: Agora
	// resolves it before the adapter sees the settings.
	AdminPassword string `json:"admin_password"`
	// PublicHost is the host name applications use, when it differs from
	// the one Agora reaches the server by (a private network, a proxy).
	PublicHost string `json:"public_host"`
}

// FillDefaults sets the port and the admin user an operator left out. Call
// it from the embedding type's ApplyDefaults.
func (s *ServerSettings) FillDefaults(port int, adminUser string) {
	if s.Port == 0 {
		s.Port = port
	}
	if s.AdminUser == "" {
		s.AdminUser = adminUser
	}
}

// Validate reports every problem at once, each naming its field.
func (s ServerSettings) Validate() error {
	var errs []error
	if err := CheckHost(s.Host); err != nil {
		errs = append(errs, fmt.Errorf("host: %w", err))
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d is not between 1 and 65535", s.Port))
	}
	if strings.TrimSpace(s.AdminUser) == "" {
		errs = append(errs, errors.New("admin_user: must not be blank"))
	}
	if s.PublicHost != "" {
		if err := CheckHost(s.PublicHost); err != nil {
			errs = append(errs, fmt.Errorf("public_host: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Addr is host:port as Agora reaches the server. It names the server in
// errors, so an operator sees at once which one failed.
func (s ServerSettings) Addr() string {
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// AppHost is the host applications connect to: PublicHost when set.
func (s ServerSettings) AppHost() string {
	if s.PublicHost != "" {
		return s.PublicHost
	}
	return s.Host
}
