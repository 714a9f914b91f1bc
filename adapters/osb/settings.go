package osb

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Defaults for what an offering's config may leave out.
const (
	// DefaultAPIVersion is what Cloud Foundry's Cloud Controller sends, so
	// every broker already registered with CF accepts it.
	DefaultAPIVersion = "2.15"
	// DefaultTimeout is Cloud Controller's own broker timeout: an upstream
	// that answered CF in time answers Agora in time.
	DefaultTimeout = 60 * time.Second
)

// apiVersionRE is the OSB version header's MAJOR.MINOR form, major 2.
var apiVersionRE = regexp.MustCompile(`^2\.[0-9]+$`)

// Settings is an offering's `config:` section.
type Settings struct {
	// URL is the upstream broker's base URL, without credentials.
	URL      string `json:"url"`
	Username string `json:"username"`
	// Password is usually a vault reference in catalog.yml; the adapter
	// sees it resolved.
	Password string `json:"password"`
	// APIVersion is sent as X-Broker-API-Version; default 2.15.
	APIVersion string `json:"api_version"`
	// Timeout bounds each HTTP call to the upstream; default 60s.
	Timeout string `json:"timeout"`
	// UpstreamServiceID is the offering's ID in the upstream's catalog.
	UpstreamServiceID string `json:"upstream_service_id"`
}

// PlanSettings is a plan's `config:` section.
type PlanSettings struct {
	// UpstreamPlanID is the plan's ID in the upstream's catalog.
	UpstreamPlanID string `json:"upstream_plan_id"`
}

// Validate reports a plan that does not say which upstream plan it is.
func (p PlanSettings) Validate() error {
	if p.UpstreamPlanID == "" {
		return errors.New("upstream_plan_id: required (the plan's id in the upstream's catalog)")
	}
	return nil
}

// endpoint is a validated upstream: where, as whom, how long to wait.
type endpoint struct {
	base       *url.URL
	username   string
	password   string
	apiVersion string
	timeout    time.Duration
}

// Validate reports every problem of the offering's settings at once, so
// an operator fixes the section in one round instead of one per restart.
func (s Settings) Validate() error {
	_, err := s.endpoint()
	if s.UpstreamServiceID == "" {
		err = errors.Join(err, errors.New("upstream_service_id: required (the offering's id in the upstream's catalog)"))
	}
	return err
}

func (s Settings) endpoint() (endpoint, error) {
	return parseEndpoint(s.URL, s.Username, s.Password, s.APIVersion, s.Timeout)
}

// parseEndpoint checks the connection settings that the adapter and the
// importer share, reporting every problem at once.
func parseEndpoint(rawURL, username, password, apiVersion, timeout string) (endpoint, error) {
	var errs []error
	ep := endpoint{username: username, password: password, apiVersion: apiVersion, timeout: DefaultTimeout}
	switch u, err := url.Parse(rawURL); {
	case rawURL == "":
		errs = append(errs, errors.New("url: required (the upstream broker's base URL)"))
	case err != nil:
		// url.Parse's error repeats the URL, which may hold a password.
		errs = append(errs, errors.New("url: not a URL"))
	case u.User != nil:
		errs = append(errs, fmt.Errorf("url: %s must not carry credentials; set username and password instead", u.Redacted()))
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		errs = append(errs, fmt.Errorf("url: %q must be an absolute http or https URL", rawURL))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, fmt.Errorf("url: %s must not have a query or fragment", u))
	default:
		// Paths are joined as base + "/v2/...", so "https://b/" and
		// "https://b" mean the same broker.
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		ep.base = u
	}
	if (username == "") != (password == "") {
		errs = append(errs, errors.New("username, password: set both for basic auth, or neither"))
	}
	// A reference that reached the adapter unresolved would otherwise
	// surface later as a confusing 401 on every request.
	if strings.HasPrefix(password, "vault:") {
		errs = append(errs, errors.New("password: looks like an unresolved vault: reference"))
	}
	if ep.apiVersion == "" {
		ep.apiVersion = DefaultAPIVersion
	} else if !apiVersionRE.MatchString(ep.apiVersion) {
		errs = append(errs, fmt.Errorf("api_version: %q must be an OSB 2.x version such as 2.15", ep.apiVersion))
	}
	if timeout != "" {
		d, err := time.ParseDuration(timeout)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("timeout: %q is not a duration such as 60s", timeout))
		case d <= 0:
			errs = append(errs, errors.New("timeout: must be greater than zero"))
		default:
			ep.timeout = d
		}
	}
	return ep, errors.Join(errs...)
}

// String names the upstream in errors and logs: its URL, which never
// carries credentials (parseEndpoint refuses them).
func (ep endpoint) String() string {
	return ep.base.String()
}
