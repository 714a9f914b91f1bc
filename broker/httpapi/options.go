package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gorilla/mux"
	"github.com/pivotal-cf/brokerapi/v11/domain"
)

const (
	defaultMaxBodyBytes = 1 << 20
	defaultRetryAfter   = 5 * time.Second
	// readyCheckTimeout bounds each /readyz check so one hung dependency
	// cannot hold the probe past the orchestrator's own probe timeout.
	readyCheckTimeout = 2 * time.Second
)

// Credential is one basic-auth pair the platform may use. Several pairs are
// accepted at once so they can be rotated without downtime.
type Credential struct {
	Username string
	Password string
}

// Check is one dependency probe for /readyz.
type Check struct {
	// Name identifies the check in the /readyz body: "redis", "vault",
	// "adapter:postgres".
	Name string
	// Check returns nil when the dependency is usable. It gets a context that
	// ends after 2s; a check that ignores it is reported as timed out.
	Check func(ctx context.Context) error
	// Required checks make /readyz answer 503 when they fail. Optional ones
	// (one producer's adapter, say) are only reported, so one producer's
	// outage does not pull every replica out of the load balancer.
	Required bool
}

// Options configures NewHandler.
type Options struct {
	// Broker implements the OSB operations behind /v2.
	Broker domain.ServiceBroker
	// CatalogJSON returns the precomputed GET /v2/catalog body. It is called
	// per request because the catalog can be swapped at runtime; it must not
	// marshal per call.
	CatalogJSON func() []byte
	// Credentials are the accepted basic-auth pairs for /v2; at least one.
	Credentials []Credential
	// Logger receives the access log and errors; nil means slog.Default().
	Logger *slog.Logger
	// Checks are run by /readyz.
	Checks []Check
	// MaxBodyBytes caps PUT/PATCH bodies under /v2; 0 means 1 MiB.
	MaxBodyBytes int64
	// RetryAfter is sent on successful last_operation responses; 0 means 5s.
	RetryAfter time.Duration
	// Extra lets the caller mount more routes (/producers, /admin) on the root
	// router after ours. Those routes do their own auth.
	Extra func(r *mux.Router)
}

// withDefaults validates opts and fills in defaults, reporting every problem
// at once so a misconfigured deployment is fixed in one round.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	// problem names the field first, like the catalog validator does, so the
	// operator can find it in the config.
	problem := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if o.Broker == nil {
		problem("Broker", "is required")
	}
	if o.CatalogJSON == nil {
		problem("CatalogJSON", "is required")
	}
	if len(o.Credentials) == 0 {
		problem("Credentials", "at least one pair is required")
	}
	for i, c := range o.Credentials {
		if c.Username == "" || c.Password == "" {
			problem(fmt.Sprintf("Credentials[%d]", i), "username and password must both be non-empty")
		}
	}
	seen := make(map[string]int, len(o.Checks))
	for i, c := range o.Checks {
		field := fmt.Sprintf("Checks[%d]", i)
		if c.Name == "" {
			problem(field, "Name is required")
		} else if j, dup := seen[c.Name]; dup {
			problem(field, "name %q duplicates Checks[%d]", c.Name, j)
		} else {
			seen[c.Name] = i
		}
		if c.Check == nil {
			problem(field, "Check func is required")
		}
	}
	if o.MaxBodyBytes < 0 {
		problem("MaxBodyBytes", "%d is negative", o.MaxBodyBytes)
	}
	if o.RetryAfter < 0 {
		problem("RetryAfter", "%s is negative", o.RetryAfter)
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("httpapi: invalid options: %w", err)
	}

	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = defaultMaxBodyBytes
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = defaultRetryAfter
	}
	return o, nil
}
