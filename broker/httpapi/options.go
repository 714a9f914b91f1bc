package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/pivotal-cf/brokerapi/v11/domain"

	"github.com/agora-osb/agora/broker/requestinfo"
)

const (
	defaultMaxBodyBytes = 1 << 20
	defaultRetryAfter   = 5 * time.Second
	// readyCheckTimeout bounds each /readyz check so one hung dependency
	// cannot hold the probe past the orchestrator's own probe timeout.
	readyCheckTimeout = 2 * time.Second
)

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
	// per request because the catalog can be swapped at runtime; it must
	// neither marshal nor copy per call (the bytes are only written).
	CatalogJSON func() []byte
	// Credentials are the accepted basic-auth pairs for /v2; at least one.
	Credentials []Credential
	// KnownPlan, when set, is asked whether a provision's service_id and
	// plan_id name a plan of the catalog, before brokerapi would answer
	// "plan-id not in the catalog" without naming either. Its error text
	// is the 400's description.
	KnownPlan func(serviceID, planID string) error
	// InstancePlan, when set, names an instance's service and plan, so
	// that a binding rotation whose body carries only
	// predecessor_binding_id (as OSB 2.17 allows) reaches the broker (see
	// osb.completeRotation). Its error is written as the answer; a
	// *apiresponses.FailureResponse keeps its status. Without it such a
	// body gets a 400 naming the missing fields.
	InstancePlan func(ctx context.Context, instanceID string) (serviceID, planID string, err error)
	// Logger receives the access log and errors; nil means slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told about every request of every surface.
	Observer Observer
	// Checks are run by /readyz.
	Checks []Check
	// MaxBodyBytes caps request bodies on every surface; 0 means 1 MiB.
	MaxBodyBytes int64
	// RetryAfter is sent on successful last_operation responses; 0 means 5s.
	RetryAfter time.Duration
	// Routes are the other surfaces (producer and admin APIs, metrics),
	// mounted behind the same edge as /v2 with their own auth.
	Routes []Route
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
	for i, rt := range o.Routes {
		field := fmt.Sprintf("Routes[%d]", i)
		switch {
		case rt.Handler == nil || rt.Method == "" || rt.Surface == "" || rt.Endpoint == "":
			problem(field, "Surface, Endpoint, Method, Path and Handler are required")
		case rt.Path == "/v2" || strings.HasPrefix(rt.Path, "/v2/") || rt.Path == "/healthz" || rt.Path == "/readyz":
			problem(field, "path %q belongs to the broker's own surface", rt.Path)
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

// NewHandler builds Agora's root HTTP handler. Every surface goes through
// one edge (recover, request info decoded once, access log and observer,
// body cap); only auth and the surface's own guards differ:
//
//	/v2/...     OSB: the platform's basic auth, API version 2.13-2.17, ID and
//	            body guards, then the precomputed catalog, the broker's
//	            ready-made poll answer (PollAnswerer) or brokerapi v11
//	/healthz    liveness, no auth
//	/readyz     readiness from opts.Checks, no auth
//	Routes      the producer and admin APIs and metrics, each with its auth
//
// Unknown routes answer 404 JSON and panics answer 500 JSON.
func NewHandler(opts Options) (http.Handler, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &edge{logger: opts.Logger, observer: opts.Observer, maxBody: opts.MaxBodyBytes}

	root := mux.NewRouter()
	// OSB IDs are opaque: without these, mux would 301 "//" and ".." to a
	// cleaned path and match on the decoded one, so "a%2Fb" would look like
	// two segments. guardIDs decides instead, with a clear 400.
	root.SkipClean(true)
	root.UseEncodedPath()
	root.NotFoundHandler = e.fallback(notFound)
	root.MethodNotAllowedHandler = e.fallback(methodNotAllowed)

	// brokerapi's chi router wants the full /v2/... path, so no StripPrefix.
	osb, auth := newOSB(e, opts), NewBasicAuth(opts.Credentials)
	root.PathPrefix("/v2/").Handler(osb.handler(auth, opts.Broker))

	probe := func(endpoint string, h http.HandlerFunc) http.Handler {
		return chain(h, e.withInfo(requestinfo.SurfaceHealth, fixed(endpoint)), e.withAccessLog)
	}
	root.Handle("/healthz", probe("healthz", serveHealth)).Methods(http.MethodGet, http.MethodHead)
	root.Handle("/readyz", probe("readyz", readiness(opts.Checks))).Methods(http.MethodGet, http.MethodHead)

	for _, rt := range opts.Routes {
		e.mountRoute(root, rt)
	}
	// The catalog and polls skip the router and brokerapi (fastOSB), and
	// recover from their own panics.
	fast := &fastOSB{osb: osb, auth: auth, next: e.recoverPanics(root)}
	fast.poll, _ = opts.Broker.(PollAnswerer)
	return fast, nil
}
