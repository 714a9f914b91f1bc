package remote

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// Settings is an offering's `config:` section for adapter "remote".
type Settings struct {
	// URL is the adapter's base URL; the protocol's paths go below it.
	URL string `json:"url"`
	// Secret is the HMAC key shared with the producer, usually written as
	// a vault:<path>#<key> reference in catalog.yml. It may be left out
	// only when TLS authenticates Agora with a client certificate.
	Secret string `json:"secret,omitempty"`
	// Timeout bounds each HTTP attempt (a Go duration); default 30s, so a
	// call with its retries still fits Cloud Controller's 60s for a
	// synchronous plan when the adapter fails fast.
	Timeout string `json:"timeout,omitempty"`
	// Retries is how many times a failed idempotent call is repeated on a
	// network error, a 5xx or a 429; default 2. A pointer, so that an
	// explicit 0 is kept.
	Retries *int `json:"retries,omitempty"`
	// TLS configures https: a CA to trust and a client certificate for
	// mTLS. Nil uses the system roots and no client certificate.
	TLS *TLSSettings `json:"tls,omitempty"`
	// Producer names the adapter's owner in error messages; default the
	// catalog's producer name.
	Producer string `json:"producer,omitempty"`
	// Capabilities are the optional parts of the protocol Agora may use:
	// "update" (PATCH, for plan and parameter updates) and "status"
	// (pending operations followed by polling). Default none. They decide
	// the adapter's Go type, so the catalog rejects an offering that
	// promises updates without "update". Each must also be declared by
	// the adapter at GET /v1/capabilities; one it does not declare fails
	// the calls that need it, and Ping.
	Capabilities []string `json:"capabilities,omitempty"`
}

// TLSSettings are file paths, read once when the client is built.
type TLSSettings struct {
	CAFile   string `json:"ca_file,omitempty"`
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
}

const (
	defaultTimeout = 30 * time.Second
	defaultRetries = 2
	maxRetries     = 10
	maxTimeout     = 10 * time.Minute
)

// Validate reports every problem at once, each with its field name. It
// never repeats the secret.
func (s Settings) Validate() error {
	var errs []error
	if s.URL == "" {
		errs = append(errs, errors.New("url: required (the adapter's base URL, such as https://files.example.com)"))
	} else if u, err := url.Parse(s.URL); err != nil {
		// url.Error repeats the whole URL, password included; its cause
		// does not.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		errs = append(errs, fmt.Errorf("url: %w", err))
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("url: scheme %q: must be http or https", u.Scheme))
		case u.Host == "":
			errs = append(errs, errors.New("url: no host"))
		}
		// Userinfo would end up in every error message and log line.
		if u.User != nil {
			errs = append(errs, errors.New("url: must not hold a user or password; use secret or tls"))
		}
		if u.RawQuery != "" || u.Fragment != "" {
			errs = append(errs, errors.New("url: must not have a query or fragment"))
		}
		if s.TLS != nil && u.Scheme != "https" {
			errs = append(errs, errors.New("tls: set, but url is not https"))
		}
	}
	if s.Secret == "" && (s.TLS == nil || s.TLS.CertFile == "") {
		errs = append(errs, errors.New("secret: required unless tls.cert_file authenticates Agora by mTLS"))
	}
	if s.Timeout != "" {
		if d, err := time.ParseDuration(s.Timeout); err != nil {
			errs = append(errs, fmt.Errorf("timeout: %q is not a duration such as 30s or 2m", s.Timeout))
		} else if d <= 0 || d > maxTimeout {
			errs = append(errs, fmt.Errorf("timeout: %s must be above 0 and at most %s", d, maxTimeout))
		}
	}
	if s.Retries != nil && (*s.Retries < 0 || *s.Retries > maxRetries) {
		errs = append(errs, fmt.Errorf("retries: %d must be 0 to %d", *s.Retries, maxRetries))
	}
	if t := s.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("tls: cert_file and key_file go together"))
	}
	seen := map[string]bool{}
	for i, c := range s.Capabilities {
		switch {
		case !slices.Contains(knownCapabilities(), c):
			errs = append(errs, fmt.Errorf("capabilities[%d]: %q is not a capability of protocol v1; allowed: %s",
				i, c, strings.Join(knownCapabilities(), ", ")))
		case seen[c]:
			errs = append(errs, fmt.Errorf("capabilities[%d]: %q is listed twice", i, c))
		}
		seen[c] = true
	}
	return errors.Join(errs...)
}

func (s Settings) timeout() time.Duration {
	if d, err := time.ParseDuration(s.Timeout); err == nil && d > 0 {
		return d
	}
	return defaultTimeout
}

func (s Settings) retries() int {
	if s.Retries == nil {
		return defaultRetries
	}
	return *s.Retries
}

// tlsConfig reads the files and reports every problem at once. Nil
// settings give nil: Go's defaults (system roots, no client certificate).
func (t *TLSSettings) tlsConfig() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var errs []error
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("tls.ca_file: %w", err))
		default:
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", t.CAFile))
			}
			cfg.RootCAs = pool
		}
	}
	if t.CertFile != "" && t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// The key's bytes never reach this message: LoadX509KeyPair
			// names files and parse failures only.
			errs = append(errs, fmt.Errorf("tls.cert_file/key_file: %w", err))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// baseURL drops a trailing slash, so joining "/v1/..." never doubles it.
func (s Settings) baseURL() string {
	return strings.TrimRight(s.URL, "/")
}

// declared is what an adapter built from these settings implements:
// Updater with "update", Poller with "status".
func (s Settings) declared() adapters.Capabilities {
	return adapters.Capabilities{
		Updater: slices.Contains(s.Capabilities, CapabilityUpdate),
		Poller:  slices.Contains(s.Capabilities, CapabilityStatus),
		Missing: missingCapabilityHint,
	}
}
