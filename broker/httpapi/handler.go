package httpapi

import (
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/gorilla/mux"
	"github.com/pivotal-cf/brokerapi/v11"
	"github.com/pivotal-cf/brokerapi/v11/middlewares"
)

// handler holds what the middleware and routes need, computed once.
type handler struct {
	logger            *slog.Logger
	catalogJSON       func() []byte
	credentials       []credentialDigest
	checks            []Check
	maxBodyBytes      int64
	retryAfterSeconds string
}

// NewHandler builds the broker's root HTTP handler:
//
//	/v2/catalog   our handler, serving CatalogJSON() bytes
//	/v2/...       brokerapi v11, behind auth, version, ID and body guards
//	/healthz      liveness, no auth
//	/readyz       readiness from opts.Checks, no auth
//	(Extra)       whatever opts.Extra mounts, with its own auth
//
// Unknown routes answer 404 JSON and panics answer 500 JSON.
func NewHandler(opts Options) (http.Handler, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	h := &handler{
		logger:            opts.Logger,
		catalogJSON:       opts.CatalogJSON,
		credentials:       digestCredentials(opts.Credentials),
		checks:            opts.Checks,
		maxBodyBytes:      opts.MaxBodyBytes,
		retryAfterSeconds: strconv.Itoa(int(math.Ceil(opts.RetryAfter.Seconds()))),
	}

	root := mux.NewRouter()
	// OSB IDs are opaque: without these, mux would 301 "//" and ".." to a
	// cleaned path and match on the decoded one, so "a%2Fb" would look like
	// two segments. guardIDs decides instead, with a clear 400.
	root.SkipClean(true)
	root.UseEncodedPath()
	root.NotFoundHandler = http.HandlerFunc(notFound)
	root.MethodNotAllowedHandler = http.HandlerFunc(methodNotAllowed)

	// Order matters. Request id first, so every answer after it carries it;
	// the access log outside auth, so rejections are logged; auth before
	// anything that reads the body or tells the caller about versions.
	osb := func(next http.Handler) http.Handler {
		return chain(next,
			h.withRequestID,
			h.withOriginatingIdentity,
			h.withAccessLog,
			h.requireAuth,
			h.requireAPIVersion,
			h.guardIDs,
			h.guardBody,
			h.withRetryAfter,
		)
	}
	v2 := root.PathPrefix("/v2").Subrouter()
	v2.Handle("/catalog", osb(http.HandlerFunc(h.serveCatalog))).Methods(http.MethodGet)
	// brokerapi's chi router wants the full /v2/... path, so no StripPrefix.
	v2.PathPrefix("/").Handler(osb(newBrokerAPI(opts)))

	root.Handle("/healthz", http.HandlerFunc(serveHealth)).Methods(http.MethodGet, http.MethodHead)
	root.Handle("/readyz", http.HandlerFunc(h.serveReady)).Methods(http.MethodGet, http.MethodHead)

	// Extra goes last so it cannot shadow /v2 or the probes.
	if opts.Extra != nil {
		opts.Extra(root)
	}
	return h.recoverPanics(root), nil
}

// newBrokerAPI builds brokerapi's router ourselves rather than through
// brokerapi.New, for two reasons: its 404/405 must be JSON like ours, and
// its version check (any 2.x) is redundant behind requireAPIVersion. The
// context middleware is brokerapi's own default list minus that check, so
// the broker still finds correlation id, originating identity, info
// location and request identity where brokerapi puts them.
func newBrokerAPI(opts Options) http.Handler {
	r := chi.NewRouter()
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	r.Use(
		middlewares.AddCorrelationIDToContext,
		middlewares.AddOriginatingIdentityToContext,
		middlewares.AddInfoLocationToContext,
		middlewares.AddRequestIdentityToContext,
	)
	brokerapi.AttachRoutes(r, opts.Broker, opts.Logger)
	return r
}

// serveCatalog writes the precomputed catalog bytes. brokerapi's catalog
// handler would call Broker.Services and re-marshal on every poll.
func (h *handler) serveCatalog(w http.ResponseWriter, _ *http.Request) {
	body := h.catalogJSON()
	if len(body) == 0 {
		// Serving "{}" would make the platform drop every offering.
		writeError(w, http.StatusServiceUnavailable, "the catalog is not loaded yet; retry shortly")
		return
	}
	writeRawJSON(w, http.StatusOK, body)
}
