// Package producerapi is the HTTP face of producer self-service: the
// routes under /producers (a producer's bearer token, or the admin's basic
// auth) and /admin/producers (the admin's basic auth: the broker's own
// credentials), and a Go client for both that the CLI, scripts and tests
// use. It returns routes, not a server: httpapi mounts them behind the one
// edge every surface shares (request id, access log, body cap), and only
// the auth here is the producer API's own.
//
// What this package must never do: answer one producer with another's
// data, or echo a token after the response that created it.
package producerapi

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/broker/livecatalog"
	"github.com/agora-osb/agora/broker/requestinfo"
	"github.com/agora-osb/agora/producers"
)

// Options configures the API.
type Options struct {
	Service *producers.Service
	// Admins checks the admin's basic auth: Agora's broker credentials.
	Admins *httpapi.BasicAuth
	// Loader, when set, lets GET /admin/catalog report this replica's
	// catalog generation next to the one in Redis.
	Loader *livecatalog.Loader
	// RegisterPerMinute bounds self-registrations per replica (default 10),
	// so an open endpoint cannot flood Redis.
	RegisterPerMinute int
	// Repairs are the platform engineer's repairs (the broker); nil leaves
	// the repair routes out.
	Repairs Repairs
	// Upgrades runs bulk upgrades (the broker); nil answers 503.
	Upgrades Upgrades
}

// Repairs is what the admin routes ask the broker to do.
type Repairs interface {
	Retry(ctx context.Context, instanceID, bindingID string) (*broker.Operation, error)
	ForceFail(ctx context.Context, instanceID, bindingID, reason string) (*broker.Operation, error)
	Reconcile(ctx context.Context, instanceID string) (*broker.Reconciliation, error)
	SecretFolders(ctx context.Context) ([]string, error)
	Sweep(ctx context.Context, instanceIDs []string, apply bool) ([]broker.Orphan, error)
	SweepFolders(ctx context.Context, instanceIDs []string, apply bool) ([]broker.Orphan, error)
}

// API serves the routes.
type API struct {
	svc      *producers.Service
	repairs  Repairs
	upgrades Upgrades
	admins   *httpapi.BasicAuth
	loader   *livecatalog.Loader
	register *bucket
}

// New returns the API.
func New(opts Options) (*API, error) {
	if opts.Service == nil {
		return nil, errors.New("producerapi: Service is required")
	}
	if opts.Admins == nil {
		return nil, errors.New("producerapi: Admins is required")
	}
	if opts.RegisterPerMinute <= 0 {
		opts.RegisterPerMinute = 10
	}
	return &API{svc: opts.Service, repairs: opts.Repairs, upgrades: opts.Upgrades, admins: opts.Admins, loader: opts.Loader,
		register: newBucket(opts.RegisterPerMinute, time.Minute)}, nil
}

// Routes are the producer and admin routes, for httpapi.Options.Routes:
//
//	POST   /producers/register                                   anyone: a pending producer and her token
//	GET    /producers/{name}                                     her record and overview
//	PUT    /producers/{name}/slice                               apply a slice (YAML or JSON): validation, gate, new version
//	GET    /producers/{name}/slice                               the live version, with its text
//	GET    /producers/{name}/slice/versions                      every version, newest first
//	GET    /producers/{name}/slice/versions/{version}            one version, with its text and gate report
//	POST   /producers/{name}/slice/restore/{version}             restore an earlier version, as a new one
//	GET    /producers/{name}/offerings                           her live offerings, plans, instance counts
//	POST   /producers/{name}/offerings/{offering}/plans/{plan}/deprecate
//	DELETE /producers/{name}/offerings/{offering}                only while it has no instance
//	GET    /producers/{name}/instances[?cursor=&limit=]          a page of her instances and bindings, no credentials
//	GET    /producers/{name}/operations[?failed=true&cursor=&limit=]  latest operations of a page of instances, failures with reasons
//	GET    /admin/producers                                      every producer
//	POST   /admin/producers                                      create an active producer and her token
//	GET    /admin/producers/{name}
//	PATCH  /admin/producers/{name}                               contact, auto_approve_slices
//	POST   /admin/producers/{name}/approve | /suspend | /token
//	GET    /admin/producers/{name}/slices                        her versions
//	POST   /admin/producers/{name}/slices/{version}/approve | /reject
//	GET    /admin/catalog                                        catalog generation (Redis, this replica)
//	GET    /admin/canary                                         the canary's latest verdict on every live offering
//	GET    /admin/instances[?producer=&offering=&state=failed|in_progress|stuck&stuck_for=30m&cursor=&limit=]
//	GET    /admin/instances/{id}                                 one instance: bindings, latest operation in full, receipt
//	POST   /admin/instances/{id}/retry                           {"binding_id"}: run its failed operation again
//	POST   /admin/instances/{id}/force-fail                      {"binding_id", "reason"}: end a stuck operation
//	POST   /admin/instances/{id}/reconcile                       ask the adapter whether it exists; correct the record
//	GET    /admin/orphans?from=records|vault[&cursor=&limit=]    a page of the orphan sweep: report
//	POST   /admin/orphans?from=records|vault[&cursor=&limit=]    the same page, repaired
//
// and the bulk upgrade routes (upgradeRoutes).
func (a *API) Routes() []httpapi.Route {
	producer := func(endpoint, method, path string, h handlerFunc) httpapi.Route {
		return httpapi.Route{Surface: requestinfo.SurfaceProducer, Endpoint: "producer_" + endpoint, Method: method,
			Path: "/producers/{name}" + path, Auth: a.producerAuth, Handler: a.withCaller(h)}
	}
	admin := func(endpoint, method, path string, h handlerFunc) httpapi.Route {
		return httpapi.Route{Surface: requestinfo.SurfaceAdmin, Endpoint: "admin_" + endpoint, Method: method,
			Path: "/admin" + path, Auth: a.adminAuth, Handler: a.withCaller(h)}
	}
	return append([]httpapi.Route{
		{Surface: requestinfo.SurfaceProducer, Endpoint: "producer_register", Method: http.MethodPost,
			Path: "/producers/register", Handler: http.HandlerFunc(a.registerProducer)},
		producer("status", http.MethodGet, "", a.getStatus),
		producer("apply", http.MethodPut, "/slice", a.putSlice),
		producer("live_slice", http.MethodGet, "/slice", a.getLive),
		producer("versions", http.MethodGet, "/slice/versions", a.getVersions),
		producer("version", http.MethodGet, "/slice/versions/{version}", a.getVersion),
		producer("restore", http.MethodPost, "/slice/restore/{version}", a.restore),
		producer("offerings", http.MethodGet, "/offerings", a.getOfferings),
		producer("deprecate", http.MethodPost, "/offerings/{offering}/plans/{plan}/deprecate", a.deprecate),
		producer("remove_offering", http.MethodDelete, "/offerings/{offering}", a.removeOffering),
		producer("instances", http.MethodGet, "/instances", a.getInstances),
		producer("operations", http.MethodGet, "/operations", a.getOperations),
		admin("list_producers", http.MethodGet, "/producers", a.listProducers),
		admin("create_producer", http.MethodPost, "/producers", a.createProducer),
		admin("get_producer", http.MethodGet, "/producers/{name}", a.adminGet),
		admin("update_producer", http.MethodPatch, "/producers/{name}", a.updateProducer),
		admin("approve_producer", http.MethodPost, "/producers/{name}/approve", a.approveProducer),
		admin("suspend_producer", http.MethodPost, "/producers/{name}/suspend", a.suspendProducer),
		admin("rotate_token", http.MethodPost, "/producers/{name}/token", a.rotateToken),
		admin("slice_versions", http.MethodGet, "/producers/{name}/slices", a.adminVersions),
		admin("approve_slice", http.MethodPost, "/producers/{name}/slices/{version}/approve", a.approveSlice),
		admin("reject_slice", http.MethodPost, "/producers/{name}/slices/{version}/reject", a.rejectSlice),
		admin("catalog", http.MethodGet, "/catalog", a.catalogStatus),
		admin("canary", http.MethodGet, "/canary", a.canaryHealth),
		admin("list_instances", http.MethodGet, "/instances", a.listInstances),
		admin("get_instance", http.MethodGet, "/instances/{id}", a.getInstance),
		admin("retry", http.MethodPost, "/instances/{id}/retry", a.retry),
		admin("force_fail", http.MethodPost, "/instances/{id}/force-fail", a.forceFail),
		admin("reconcile", http.MethodPost, "/instances/{id}/reconcile", a.reconcile),
		admin("orphans", http.MethodGet, "/orphans", a.sweep(false)),
		admin("sweep_orphans", http.MethodPost, "/orphans", a.sweep(true)),
	}, a.upgradeRoutes(producer, admin)...)
}

// caller is who made an authenticated request.
type caller struct {
	admin string // the admin's username, or ""
	// producer is the token's producer, when a producer token was used.
	producer string
}

func (c caller) author() string {
	if c.admin != "" {
		return "admin:" + c.admin
	}
	return "producer:" + c.producer
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, who caller)

// withCaller hands a handler the caller its route's auth recorded.
func (a *API) withCaller(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var who caller
		switch p := requestinfo.From(r.Context()).Principal; p.Kind {
		case requestinfo.PrincipalAdmin:
			who.admin = p.Name
		case requestinfo.PrincipalProducer:
			who.producer = p.Name
		}
		h(w, r, who)
	})
}

// producerAuth guards a /producers/{name}/... route: the producer's own
// token (401 without a valid one, 403 for another producer's), or an
// admin.
func (a *API) producerAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := mux.Vars(r)["name"]
		if !producers.ValidName(name) {
			a.writeErr(w, r, &producers.Error{Kind: producers.ErrNotFound, Message: fmt.Sprintf("%s is not a producer name", requestinfo.Quote(name))})
			return
		}
		if !a.authenticate(w, r) {
			return
		}
		if p := requestinfo.From(r.Context()).Principal; p.Kind == requestinfo.PrincipalProducer && p.Name != name {
			a.writeErr(w, r, &producers.Error{Kind: producers.ErrForbidden, Message: fmt.Sprintf("this token belongs to producer %q: it cannot read or change producer %q", p.Name, name)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminAuth guards an /admin route: basic auth with Agora's credentials.
func (a *API) adminAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.admins.Request(r, requestinfo.PrincipalAdmin) {
			if name, ok := mux.Vars(r)["name"]; ok && !producers.ValidName(name) {
				a.writeErr(w, r, &producers.Error{Kind: producers.ErrNotFound, Message: fmt.Sprintf("%s is not a producer name", requestinfo.Quote(name))})
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			a.writeErr(w, r, &producers.Error{Kind: producers.ErrForbidden, Message: "admin routes need the platform's credentials (HTTP basic auth), not a producer token"})
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="agora-admin"`)
		a.writeErr(w, r, &producers.Error{Kind: producers.ErrUnauthenticated, Message: "missing or wrong admin credentials (HTTP basic auth: Agora's broker credentials)"})
	})
}

// authenticate takes the admin's basic auth or a producer's bearer token
// and records the principal; false means the error is answered.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) bool {
	if _, _, ok := r.BasicAuth(); ok {
		if a.admins.Request(r, requestinfo.PrincipalAdmin) {
			return true
		}
	} else if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		p, err := a.svc.Authenticate(r.Context(), strings.TrimSpace(token))
		if err == nil {
			if p.State == producers.StateSuspended {
				a.writeErr(w, r, &producers.Error{Kind: producers.ErrForbidden, Message: fmt.Sprintf("producer %q is suspended: ask the platform team", p.Name)})
				return false
			}
			requestinfo.From(r.Context()).Principal = requestinfo.Principal{Kind: requestinfo.PrincipalProducer, Name: p.Name}
			return true
		}
		if !errors.Is(err, producers.ErrUnauthenticated) {
			a.writeErr(w, r, err)
			return false
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="agora-producers"`)
	a.writeErr(w, r, &producers.Error{Kind: producers.ErrUnauthenticated, Message: "missing or invalid producer token (Authorization: Bearer agp_...)"})
	return false
}

func (a *API) registerProducer(w http.ResponseWriter, r *http.Request) {
	if !a.register.take() {
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, httpapi.ErrorBody{Error: "rate_limited", Description: httpapi.Cite(r.Context(), "too many registrations right now; retry in a minute")})
		return
	}
	var req producers.CreateRequest
	if !a.decode(w, r, &req) {
		return
	}
	created, err := a.svc.Register(r.Context(), req)
	a.respond(w, r, http.StatusCreated, created, err)
}

func (a *API) getStatus(w http.ResponseWriter, r *http.Request, _ caller) {
	st, err := a.svc.Status(r.Context(), mux.Vars(r)["name"])
	a.respond(w, r, http.StatusOK, st, err)
}

func (a *API) putSlice(w http.ResponseWriter, r *http.Request, who caller) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		a.writeErr(w, r, &producers.Error{Kind: producers.ErrInvalid, Message: fmt.Sprintf("cannot read the slice: %v", err)})
		return
	}
	res, err := a.svc.Apply(r.Context(), mux.Vars(r)["name"], who.author(), body)
	a.respond(w, r, http.StatusCreated, res, err)
}

func (a *API) getLive(w http.ResponseWriter, r *http.Request, _ caller) {
	v, err := a.svc.Live(r.Context(), mux.Vars(r)["name"])
	a.respond(w, r, http.StatusOK, v, err)
}

func (a *API) getVersions(w http.ResponseWriter, r *http.Request, _ caller) {
	vs, err := a.svc.Versions(r.Context(), mux.Vars(r)["name"])
	a.respond(w, r, http.StatusOK, vs, err)
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request, _ caller) {
	v, ok := a.versionVar(w, r)
	if !ok {
		return
	}
	sv, err := a.svc.Version(r.Context(), mux.Vars(r)["name"], v)
	a.respond(w, r, http.StatusOK, sv, err)
}

func (a *API) restore(w http.ResponseWriter, r *http.Request, who caller) {
	v, ok := a.versionVar(w, r)
	if !ok {
		return
	}
	res, err := a.svc.Restore(r.Context(), mux.Vars(r)["name"], who.author(), v)
	a.respond(w, r, http.StatusCreated, res, err)
}

func (a *API) getOfferings(w http.ResponseWriter, r *http.Request, _ caller) {
	offs, err := a.svc.Offerings(r.Context(), mux.Vars(r)["name"])
	a.respond(w, r, http.StatusOK, offs, err)
}

func (a *API) deprecate(w http.ResponseWriter, r *http.Request, who caller) {
	vars := mux.Vars(r)
	res, err := a.svc.Deprecate(r.Context(), vars["name"], who.author(), vars["offering"], vars["plan"])
	a.respond(w, r, http.StatusOK, res, err)
}

func (a *API) removeOffering(w http.ResponseWriter, r *http.Request, who caller) {
	vars := mux.Vars(r)
	res, err := a.svc.RemoveOffering(r.Context(), vars["name"], who.author(), vars["offering"])
	a.respond(w, r, http.StatusOK, res, err)
}

// pageParams reads ?cursor= and ?limit=; false means the error is
// answered.
func (a *API) pageParams(w http.ResponseWriter, r *http.Request) (cursor string, limit int, ok bool) {
	q := r.URL.Query()
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > producers.MaxPageSize {
			a.writeErr(w, r, producers.Fail(producers.ErrInvalid, "limit %s must be a number from 1 to %d", requestinfo.Quote(l), producers.MaxPageSize))
			return "", 0, false
		}
		limit = n
	}
	return q.Get("cursor"), limit, true
}

func (a *API) getInstances(w http.ResponseWriter, r *http.Request, _ caller) {
	cursor, limit, ok := a.pageParams(w, r)
	if !ok {
		return
	}
	page, err := a.svc.Instances(r.Context(), mux.Vars(r)["name"], cursor, limit)
	a.respond(w, r, http.StatusOK, page, err)
}

func (a *API) getOperations(w http.ResponseWriter, r *http.Request, _ caller) {
	cursor, limit, ok := a.pageParams(w, r)
	if !ok {
		return
	}
	failed, _ := strconv.ParseBool(r.URL.Query().Get("failed"))
	page, err := a.svc.Operations(r.Context(), mux.Vars(r)["name"], failed, cursor, limit)
	a.respond(w, r, http.StatusOK, page, err)
}

func (a *API) listProducers(w http.ResponseWriter, r *http.Request, _ caller) {
	ps, err := a.svc.List(r.Context())
	if ps == nil && err == nil {
		ps = []producers.Producer{}
	}
	a.respond(w, r, http.StatusOK, ps, err)
}

func (a *API) createProducer(w http.ResponseWriter, r *http.Request, _ caller) {
	var req producers.CreateRequest
	if !a.decode(w, r, &req) {
		return
	}
	created, err := a.svc.Create(r.Context(), req)
	a.respond(w, r, http.StatusCreated, created, err)
}

func (a *API) adminGet(w http.ResponseWriter, r *http.Request, _ caller) {
	p, err := a.svc.Get(r.Context(), mux.Vars(r)["name"])
	a.respond(w, r, http.StatusOK, p, err)
}

func (a *API) updateProducer(w http.ResponseWriter, r *http.Request, who caller) {
	var req producers.UpdateRequest
	if !a.decode(w, r, &req) {
		return
	}
	p, err := a.svc.Update(r.Context(), mux.Vars(r)["name"], who.author(), req)
	a.respond(w, r, http.StatusOK, p, err)
}

func (a *API) approveProducer(w http.ResponseWriter, r *http.Request, who caller) {
	p, err := a.svc.Approve(r.Context(), mux.Vars(r)["name"], who.author())
	a.respond(w, r, http.StatusOK, p, err)
}

func (a *API) suspendProducer(w http.ResponseWriter, r *http.Request, who caller) {
	p, err := a.svc.Suspend(r.Context(), mux.Vars(r)["name"], who.author())
	a.respond(w, r, http.StatusOK, p, err)
}

func (a *API) rotateToken(w http.ResponseWriter, r *http.Request, who caller) {
	c, err := a.svc.RotateToken(r.Context(), mux.Vars(r)["name"], who.author())
	a.respond(w, r, http.StatusOK, c, err)
}

func (a *API) adminVersions(w http.ResponseWriter, r *http.Request, _ caller) {
	vs, err := a.svc.Versions(r.Context(), mux.Vars(r)["name"])
	a.respond(w, r, http.StatusOK, vs, err)
}

func (a *API) approveSlice(w http.ResponseWriter, r *http.Request, who caller) {
	v, ok := a.versionVar(w, r)
	if !ok {
		return
	}
	res, err := a.svc.ApproveSlice(r.Context(), mux.Vars(r)["name"], v, who.author())
	a.respond(w, r, http.StatusOK, res, err)
}

// RejectRequest says why a version is rejected.
type RejectRequest struct {
	Reason string `json:"reason"`
}

func (a *API) rejectSlice(w http.ResponseWriter, r *http.Request, who caller) {
	v, ok := a.versionVar(w, r)
	if !ok {
		return
	}
	var req RejectRequest
	if r.ContentLength != 0 && !a.decode(w, r, &req) {
		return
	}
	res, err := a.svc.RejectSlice(r.Context(), mux.Vars(r)["name"], v, who.author(), req.Reason)
	a.respond(w, r, http.StatusOK, res, err)
}

// CatalogStatus is GET /admin/catalog.
type CatalogStatus struct {
	// Generation is the one in Redis: what every replica converges to.
	Generation int64 `json:"generation"`
	// Replica is this replica's catalog; another replica may differ for
	// up to a poll interval.
	Replica *livecatalog.Status `json:"replica,omitempty"`
}

func (a *API) catalogStatus(w http.ResponseWriter, r *http.Request, _ caller) {
	gen, err := a.svc.Generation(r.Context())
	st := CatalogStatus{Generation: gen}
	if a.loader != nil {
		s := a.loader.Status()
		st.Replica = &s
	}
	a.respond(w, r, http.StatusOK, st, err)
}

func (a *API) canaryHealth(w http.ResponseWriter, r *http.Request, _ caller) {
	h, err := a.svc.Health(r.Context())
	a.respond(w, r, http.StatusOK, h, err)
}

// decode reads a JSON body strictly; false means the error is answered.
// The edge already capped the body's size.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		a.writeErr(w, r, &producers.Error{Kind: producers.ErrInvalid, Message: "the request body must be a JSON object with known fields only: " + strings.TrimPrefix(err.Error(), "json: ")})
		return false
	}
	return true
}

func (a *API) versionVar(w http.ResponseWriter, r *http.Request) (int, bool) {
	v, err := strconv.Atoi(mux.Vars(r)["version"])
	if err != nil || v <= 0 {
		a.writeErr(w, r, &producers.Error{Kind: producers.ErrNotFound, Message: fmt.Sprintf("%s is not a version number", requestinfo.Quote(mux.Vars(r)["version"]))})
		return 0, false
	}
	return v, true
}

func (a *API) respond(w http.ResponseWriter, r *http.Request, status int, v any, err error) {
	if err != nil {
		a.writeErr(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

// errorBody is every error answer: the edge's ErrorBody, plus problems
// with field paths relative to the slice, and the conformance report of a
// failed gate.
type errorBody struct {
	httpapi.ErrorBody
	Problems []producers.FieldProblem `json:"problems,omitempty"`
	Gate     *producers.GateResult    `json:"gate,omitempty"`
}

// writeErr maps every failure to its status, in this one place. The
// description cites the request id; the full chain goes to the request's
// access-log line, never to the caller.
func (a *API) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	status, code := http.StatusInternalServerError, "internal"
	for _, m := range []struct {
		kind   error
		status int
		code   string
	}{
		{producers.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated"},
		{producers.ErrForbidden, http.StatusForbidden, "forbidden"},
		{producers.ErrNotFound, http.StatusNotFound, "not_found"},
		{producers.ErrConflict, http.StatusConflict, "conflict"},
		{producers.ErrInvalid, http.StatusBadRequest, "invalid"},
		{producers.ErrGateFailed, http.StatusUnprocessableEntity, "gate_failed"},
		{producers.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	} {
		if errors.Is(err, m.kind) {
			status, code = m.status, m.code
			break
		}
	}
	description := "internal error; the platform team finds the cause in Agora's log"
	body := errorBody{}
	var pe *producers.Error
	if errors.As(err, &pe) {
		description, body.Problems, body.Gate = pe.Message, pe.Problems, pe.Gate
	}
	outcome := requestinfo.Outcome{Error: err.Error(), Code: code}
	if status >= 500 {
		outcome.Owner = "agora"
	}
	requestinfo.From(r.Context()).SetOutcome(outcome)
	if errors.Is(err, context.Canceled) {
		return // the client left
	}
	body.ErrorBody = httpapi.ErrorBody{Error: code, Description: httpapi.Cite(r.Context(), description)}
	writeJSON(w, status, body)
}

// writeJSON is httpapi.WriteJSON, never cached: tokens are in some answers.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, status, v)
}

// bucket is a token bucket: n takes per period, refilled continuously.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	max    float64
	rate   float64 // per second
	last   time.Time
}

func newBucket(n int, per time.Duration) *bucket {
	return &bucket{tokens: float64(n), max: float64(n), rate: float64(n) / per.Seconds(), last: time.Now()}
}

func (b *bucket) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.max, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (a *API) listInstances(w http.ResponseWriter, r *http.Request, _ caller) {
	cursor, limit, ok := a.pageParams(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := producers.InstanceFilter{Producer: q.Get("producer"), Offering: q.Get("offering"), State: q.Get("state")}
	if v := q.Get("stuck_for"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			a.writeErr(w, r, producers.Fail(producers.ErrInvalid, "stuck_for %s is not a duration such as 30m", requestinfo.Quote(v)))
			return
		}
		f.StuckFor = d
	}
	page, err := a.svc.AllInstances(r.Context(), f, cursor, limit)
	a.respond(w, r, http.StatusOK, page, err)
}

func (a *API) getInstance(w http.ResponseWriter, r *http.Request, _ caller) {
	d, err := a.svc.InstanceDetail(r.Context(), mux.Vars(r)["id"])
	a.respond(w, r, http.StatusOK, d, err)
}

// RepairRequest names the binding a repair is for (empty: the instance)
// and, for a force-fail, why.
type RepairRequest struct {
	BindingID string `json:"binding_id,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

func (a *API) retry(w http.ResponseWriter, r *http.Request, _ caller) {
	a.repair(w, r, func(req RepairRequest) (*broker.Operation, error) {
		return a.repairs.Retry(r.Context(), mux.Vars(r)["id"], req.BindingID)
	})
}

func (a *API) forceFail(w http.ResponseWriter, r *http.Request, _ caller) {
	a.repair(w, r, func(req RepairRequest) (*broker.Operation, error) {
		return a.repairs.ForceFail(r.Context(), mux.Vars(r)["id"], req.BindingID, req.Reason)
	})
}

func (a *API) reconcile(w http.ResponseWriter, r *http.Request, _ caller) {
	if a.repairs == nil {
		a.writeErr(w, r, producers.Unavailable(nil, "repairs are not configured on this Agora"))
		return
	}
	rec, err := a.repairs.Reconcile(r.Context(), mux.Vars(r)["id"])
	a.respond(w, r, http.StatusOK, rec, repairError(err))
}

// repair decodes the request, runs the repair, and words its refusals.
func (a *API) repair(w http.ResponseWriter, r *http.Request, run func(RepairRequest) (*broker.Operation, error)) {
	if a.repairs == nil {
		a.writeErr(w, r, producers.Unavailable(nil, "repairs are not configured on this Agora"))
		return
	}
	var req RepairRequest
	if r.ContentLength != 0 && !a.decode(w, r, &req) {
		return
	}
	op, err := run(req)
	a.respond(w, r, http.StatusOK, op, repairError(err))
}

// repairError words a repair's failure: 409 while a request holds the
// instance or its state does not allow the repair, 404 for what does not
// exist, 503 naming the adapter and its producer when the adapter could
// not answer, and 503 for Redis or Vault.
func repairError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrRepairRefused):
		return &producers.Error{Kind: producers.ErrConflict, Message: err.Error(), Cause: err}
	case errors.Is(err, broker.ErrNotFound):
		return &producers.Error{Kind: producers.ErrNotFound, Message: err.Error(), Cause: err}
	case errors.Is(err, broker.ErrAdapterUnanswered):
		return producers.Unavailable(err, "%s; nothing changed", err.Error())
	}
	return producers.Unavailable(err, "the repair could not be recorded (Redis or Vault); nothing changed, retry shortly")
}

// SweepPage is one page of the orphan sweep.
type SweepPage struct {
	Orphans    []broker.Orphan `json:"orphans"`
	Checked    int             `json:"checked"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// sweep walks one page of instances, from the records (every offering's
// index) or from Vault's folders, and reports (or, apply, repairs) their
// orphans.
func (a *API) sweep(apply bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ caller) {
		if a.repairs == nil {
			a.writeErr(w, r, producers.Unavailable(nil, "repairs are not configured on this Agora"))
			return
		}
		cursor, limit, ok := a.pageParams(w, r)
		if !ok {
			return
		}
		limit = cmp.Or(limit, producers.DefaultPageSize)
		var ids []string
		run := a.repairs.Sweep
		page := &SweepPage{Orphans: []broker.Orphan{}}
		switch from := r.URL.Query().Get("from"); from {
		case "", "records":
			insts, err := a.svc.AllInstances(r.Context(), producers.InstanceFilter{}, cursor, limit)
			if err != nil {
				a.writeErr(w, r, err)
				return
			}
			for _, in := range insts.Instances {
				ids = append(ids, in.ID)
			}
			page.NextCursor = insts.NextCursor
		case "vault":
			run = a.repairs.SweepFolders
			folders, err := a.repairs.SecretFolders(r.Context())
			if err != nil {
				a.writeErr(w, r, producers.Unavailable(err, "Vault could not list Agora's secrets"))
				return
			}
			// Vault cannot list a page, only everything: the cursor is the
			// last instance ID of the page before (folders are sorted), so
			// that secrets deleted between pages skip nothing.
			at, _ := slices.BinarySearch(folders, cursor)
			if at < len(folders) && folders[at] == cursor {
				at++
			}
			end := min(at+limit, len(folders))
			ids = folders[at:end]
			if end < len(folders) {
				page.NextCursor = folders[end-1]
			}
		default:
			a.writeErr(w, r, producers.Fail(producers.ErrInvalid, "from %s is not records or vault", requestinfo.Quote(from)))
			return
		}
		orphans, err := run(r.Context(), ids, apply)
		if err != nil {
			a.writeErr(w, r, producers.Unavailable(err, "the sweep could not finish this page (Redis or Vault); what it repaired stays repaired, run it again"))
			return
		}
		page.Orphans = append(page.Orphans, orphans...)
		page.Checked = len(ids)
		writeJSON(w, http.StatusOK, page)
	}
}
