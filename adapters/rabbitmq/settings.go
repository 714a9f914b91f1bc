package rabbitmq

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// Settings is the offering's `config:` section in catalog.yml.
type Settings struct {
	// ManagementURL is the base URL of the management HTTP API, e.g.
	// http://127.0.0.1:15672 (the rabbitmq_management plugin).
	ManagementURL string `json:"management_url"`
	// AdminUser needs the "administrator" tag: it creates vhosts and users.
	AdminUser string `json:"admin_user"`
	// AdminPassword may be a `vault:path#key` reference in catalog.yml;
	// Agora resolves it before the adapter sees it.
	AdminPassword string `json:"admin_password"`
	// AMQPHost and AMQPPort are the AMQP listener applications connect to.
	AMQPHost string `json:"amqp_host"`
	AMQPPort int    `json:"amqp_port"`
	// PublicHost replaces AMQPHost (and the management URL's host) in
	// credentials, when applications reach RabbitMQ under another name.
	PublicHost string `json:"public_host"`
}

// PlanSettings is one plan's `config:` section. Unset limits mean none.
type PlanSettings struct {
	// MaxConnections becomes the vhost limit "max-connections".
	MaxConnections *int `json:"max_connections"`
	// MaxQueues becomes the vhost limit "max-queues".
	MaxQueues *int `json:"max_queues"`
}

// Validate reports every problem at once, so an operator fixes the section
// in one round instead of one error per restart.
func (s Settings) Validate() error {
	var errs []error
	if s.ManagementURL == "" {
		errs = append(errs, errors.New("management_url: required, e.g. http://127.0.0.1:15672"))
	} else if u, err := url.Parse(s.ManagementURL); err != nil {
		errs = append(errs, fmt.Errorf("management_url: %w", err))
	} else {
		if u.Scheme != "http" && u.Scheme != "https" {
			errs = append(errs, fmt.Errorf("management_url: scheme %q must be http or https", u.Scheme))
		}
		if u.Host == "" {
			errs = append(errs, fmt.Errorf("management_url: %q has no host", s.ManagementURL))
		}
		// Credentials in the URL would leak into every error message.
		if u.User != nil {
			errs = append(errs, errors.New("management_url: must not contain credentials; use admin_user and admin_password"))
		}
		if u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, errors.New("management_url: must not have a query or fragment"))
		}
	}
	if s.AdminUser == "" {
		errs = append(errs, errors.New("admin_user: required (a user with the administrator tag)"))
	}
	switch {
	case s.AdminPassword == "":
		errs = append(errs, errors.New("admin_password: required"))
	case strings.HasPrefix(s.AdminPassword, "vault:"):
		// Unresolved, it would surface later as a 401 on every request.
		errs = append(errs, errors.New("admin_password: looks like an unresolved vault: reference"))
	}
	if err := adapters.CheckHost(s.AMQPHost); err != nil {
		errs = append(errs, fmt.Errorf("amqp_host: %w", err))
	}
	if s.AMQPPort < 1 || s.AMQPPort > 65535 {
		errs = append(errs, fmt.Errorf("amqp_port: %d must be from 1 to 65535", s.AMQPPort))
	}
	if s.PublicHost != "" {
		if err := adapters.CheckHost(s.PublicHost); err != nil {
			errs = append(errs, fmt.Errorf("public_host: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Validate rejects limits that would make an instance unusable: RabbitMQ
// reads 0 as "none allowed" and a negative value as "no limit", and neither
// is what a plan author writing a number means.
func (p PlanSettings) Validate() error {
	var errs []error
	if p.MaxConnections != nil && *p.MaxConnections < 1 {
		errs = append(errs, fmt.Errorf("max_connections: %d must be at least 1 (leave it out for no limit)", *p.MaxConnections))
	}
	if p.MaxQueues != nil && *p.MaxQueues < 1 {
		errs = append(errs, fmt.Errorf("max_queues: %d must be at least 1 (leave it out for no limit)", *p.MaxQueues))
	}
	return errors.Join(errs...)
}

// vhostLimit is one RabbitMQ vhost limit; Value nil means "remove it".
type vhostLimit struct {
	Name  string
	Value *int
}

// limits lists every limit the adapter manages, set or not, so an update
// can remove a limit the new plan no longer has.
func (p PlanSettings) limits() []vhostLimit {
	return []vhostLimit{
		{Name: "max-connections", Value: p.MaxConnections},
		{Name: "max-queues", Value: p.MaxQueues},
	}
}
