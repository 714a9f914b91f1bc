// Package producerapi is the HTTP face of producer self-service: the
// routes under /producers (a producer's bearer token, or the admin's basic
// auth) and /admin/producers (the admin's basic auth: the broker's own
// credentials), and a Go client for both that the CLI, scripts and tests
// use.
//
// What this package must never do: answer one producer with another's
// data, or echo a token after the response that created it.
package producerapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/agora-osb/agora/broker/livecatalog"
	"github.com/agora-osb/agora/broker/producers"
)

// Credential is one admin basic-auth pair.
type Credential struct {
	Username string
	Password string
}

// Options configures the API.
type Options struct {
	Service *producers.Service
	// Admins are the accepted admin pairs: Agora's broker credentials.
	Admins []Credential
	// Loader, when set, lets GET /admin/catalog report this replica's
	// catalog generation next to the one in Redis.
	Loader *livecatalog.Loader
	Logger *slog.Logger
	// RegisterPerMinute bounds self-registrations per replica (default 10),
	// so an open endpoint cannot flood Redis.
	RegisterPerMinute int
	// MaxBodyBytes caps request bodies (default 1 MiB).
	MaxBodyBytes int64
}

// API serves the routes.
type API struct {
	svc      *producers.Service
	admins   []digest
	loader   *livecatalog.Loader
	log      *slog.Logger
	register *bucket
	maxBody  int64
}

type digest struct{ user, pass [32]byte }

// New returns the API.
func New(opts Options) (*API, error) {
	if opts.Service == nil {
		return nil, errors.New("producerapi: Service is required")
	}
	if len(opts.Admins) == 0 {
		return nil, errors.New("producerapi: at least one admin credential is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RegisterPerMinute <= 0 {
		opts.RegisterPerMinute = 10
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	a := &API{svc: opts.Service, loader: opts.Loader, log: opts.Logger, maxBody: opts.MaxBodyBytes,
		register: newBucket(opts.RegisterPerMinute, time.Minute)}
	for _, c := range opts.Admins {
		a.admins = append(a.admins, digest{sha256.Sum256([]byte(c.Username)), sha256.Sum256([]byte(c.Password))})
	}
	return a, nil
}

// Mount adds the routes to r (httpapi.Options.Extra):
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
//	GET    /producers/{name}/instances                           her instances and bindings, no credentials
//	GET    /producers/{name}/operations[?failed=true]            latest operations, failures with reasons
//	GET    /admin/producers                                      every producer
//	POST   /admin/producers                                      create an active producer and her token
//	GET    /admin/producers/{name}
//	PATCH  /admin/producers/{name}                               contact, auto_approve_slices
//	POST   /admin/producers/{name}/approve | /suspend | /token
//	GET    /admin/producers/{name}/slices                        her versions
//	POST   /admin/producers/{name}/slices/{version}/approve | /reject
//	GET    /admin/catalog                                        catalog generation (Redis, this replica)
func (a *API) Mount(r *mux.Router) {
	r.HandleFunc("/producers/register", a.registerProducer).Methods(http.MethodPost)

	p := r.PathPrefix("/producers/{name}").Subrouter()
	p.Handle("", a.producer(a.getStatus)).Methods(http.MethodGet)
	p.Handle("/slice", a.producer(a.putSlice)).Methods(http.MethodPut)
	p.Handle("/slice", a.producer(a.getLive)).Methods(http.MethodGet)
	p.Handle("/slice/versions", a.producer(a.getVersions)).Methods(http.MethodGet)
	p.Handle("/slice/versions/{version}", a.producer(a.getVersion)).Methods(http.MethodGet)
	p.Handle("/slice/restore/{version}", a.producer(a.restore)).Methods(http.MethodPost)
	p.Handle("/offerings", a.producer(a.getOfferings)).Methods(http.MethodGet)
	p.Handle("/offerings/{offering}/plans/{plan}/deprecate", a.producer(a.deprecate)).Methods(http.MethodPost)
	p.Handle("/offerings/{offering}", a.producer(a.removeOffering)).Methods(http.MethodDelete)
	p.Handle("/instances", a.producer(a.getInstances)).Methods(http.MethodGet)
	p.Handle("/operations", a.producer(a.getOperations)).Methods(http.MethodGet)

	ad := r.PathPrefix("/admin").Subrouter()
	ad.Handle("/producers", a.admin(a.listProducers)).Methods(http.MethodGet)
	ad.Handle("/producers", a.admin(a.createProducer)).Methods(http.MethodPost)
	ad.Handle("/producers/{name}", a.admin(a.adminGet)).Methods(http.MethodGet)
	ad.Handle("/producers/{name}", a.admin(a.updateProducer)).Methods(http.MethodPatch)
	ad.Handle("/producers/{name}/approve", a.admin(a.approveProducer)).Methods(http.MethodPost)
	ad.Handle("/producers/{name}/suspend", a.admin(a.suspendProducer)).Methods(http.MethodPost)
	ad.Handle("/producers/{name}/token", a.admin(a.rotateToken)).Methods(http.MethodPost)
	ad.Handle("/producers/{name}/slices", a.admin(a.adminVersions)).Methods(http.MethodGet)
	ad.Handle("/producers/{name}/slices/{version}/approve", a.admin(a.approveSlice)).Methods(http.MethodPost)
	ad.Handle("/producers/{name}/slices/{version}/reject", a.admin(a.rejectSlice)).Methods(http.MethodPost)
	ad.Handle("/catalog", a.admin(a.catalogStatus)).Methods(http.MethodGet)
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

// producer guards a /producers/{name}/... route: the producer's own token
// (401 without a valid one, 403 for another producer's), or an admin.
func (a *API) producer(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := mux.Vars(r)["name"]
		if !producers.ValidName(name) {
			writeErr(w, a.log, &producers.Error{Kind: producers.ErrNotFound, Message: fmt.Sprintf("%q is not a producer name", name)})
			return
		}
		who, ok := a.authenticate(w, r)
		if !ok {
			return
		}
		if who.admin == "" && who.producer != name {
			writeErr(w, a.log, &producers.Error{Kind: producers.ErrForbidden, Message: fmt.Sprintf("this token belongs to producer %q: it cannot read or change producer %q", who.producer, name)})
			return
		}
		h(w, r, who)
	})
}

// admin guards an /admin route: basic auth with Agora's credentials.
func (a *API) admin(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); ok && a.isAdmin(user, pass) {
			if name, ok := mux.Vars(r)["name"]; ok && !producers.ValidName(name) {
				writeErr(w, a.log, &producers.Error{Kind: producers.ErrNotFound, Message: fmt.Sprintf("%q is not a producer name", name)})
				return
			}
			h(w, r, caller{admin: user})
			return
		}
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			writeErr(w, a.log, &producers.Error{Kind: producers.ErrForbidden, Message: "admin routes need the platform's credentials (HTTP basic auth), not a producer token"})
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="agora-admin"`)
		writeErr(w, a.log, &producers.Error{Kind: producers.ErrUnauthenticated, Message: "missing or wrong admin credentials (HTTP basic auth: Agora's broker credentials)"})
	})
}

func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (caller, bool) {
	if user, pass, ok := r.BasicAuth(); ok {
		if a.isAdmin(user, pass) {
			return caller{admin: user}, true
		}
	} else if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		p, err := a.svc.Authenticate(r.Context(), strings.TrimSpace(token))
		if err == nil {
			if p.State == producers.StateSuspended {
				writeErr(w, a.log, &producers.Error{Kind: producers.ErrForbidden, Message: fmt.Sprintf("producer %q is suspended: ask the platform team", p.Name)})
				return caller{}, false
			}
			return caller{producer: p.Name}, true
		}
		if !errors.Is(err, producers.ErrUnauthenticated) {
			writeErr(w, a.log, err)
			return caller{}, false
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="agora-producers"`)
	writeErr(w, a.log, &producers.Error{Kind: producers.ErrUnauthenticated, Message: "missing or invalid producer token (Authorization: Bearer agp_...)"})
	return caller{}, false
}

// isAdmin compares against every pair without stopping early.
func (a *API) isAdmin(user, pass string) bool {
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	match := 0
	for _, d := range a.admins {
		match |= subtle.ConstantTimeCompare(u[:], d.user[:]) & subtle.ConstantTimeCompare(p[:], d.pass[:])
	}
	return match == 1
}

func (a *API) registerProducer(w http.ResponseWriter, r *http.Request) {
	if !a.register.take() {
		w.Header().Set("Retry-After", "60")
		writeJSON(w, http.StatusTooManyRequests, errorBody{Error: "rate_limited", Description: "too many registrations right now; retry in a minute"})
		return
	}
	var req producers.CreateRequest
	if !a.decode(w, r, &req) {
		return
	}
	created, err := a.svc.Register(r.Context(), req)
	a.respond(w, http.StatusCreated, created, err)
}

func (a *API) getStatus(w http.ResponseWriter, r *http.Request, _ caller) {
	st, err := a.svc.Status(r.Context(), mux.Vars(r)["name"])
	a.respond(w, http.StatusOK, st, err)
}

func (a *API) putSlice(w http.ResponseWriter, r *http.Request, who caller) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err != nil {
		writeErr(w, a.log, &producers.Error{Kind: producers.ErrInvalid, Message: fmt.Sprintf("cannot read the slice (at most %d bytes): %v", a.maxBody, err)})
		return
	}
	res, err := a.svc.Apply(r.Context(), mux.Vars(r)["name"], who.author(), body)
	a.respond(w, http.StatusCreated, res, err)
}

func (a *API) getLive(w http.ResponseWriter, r *http.Request, _ caller) {
	v, err := a.svc.Live(r.Context(), mux.Vars(r)["name"])
	a.respond(w, http.StatusOK, v, err)
}

func (a *API) getVersions(w http.ResponseWriter, r *http.Request, _ caller) {
	vs, err := a.svc.Versions(r.Context(), mux.Vars(r)["name"])
	a.respond(w, http.StatusOK, vs, err)
}

func (a *API) getVersion(w http.ResponseWriter, r *http.Request, _ caller) {
	v, ok := versionVar(w, r, a.log)
	if !ok {
		return
	}
	sv, err := a.svc.Version(r.Context(), mux.Vars(r)["name"], v)
	a.respond(w, http.StatusOK, sv, err)
}

func (a *API) restore(w http.ResponseWriter, r *http.Request, who caller) {
	v, ok := versionVar(w, r, a.log)
	if !ok {
		return
	}
	res, err := a.svc.Restore(r.Context(), mux.Vars(r)["name"], who.author(), v)
	a.respond(w, http.StatusCreated, res, err)
}

func (a *API) getOfferings(w http.ResponseWriter, r *http.Request, _ caller) {
	offs, err := a.svc.Offerings(r.Context(), mux.Vars(r)["name"])
	a.respond(w, http.StatusOK, offs, err)
}

func (a *API) deprecate(w http.ResponseWriter, r *http.Request, who caller) {
	vars := mux.Vars(r)
	res, err := a.svc.Deprecate(r.Context(), vars["name"], who.author(), vars["offering"], vars["plan"])
	a.respond(w, http.StatusOK, res, err)
}

func (a *API) removeOffering(w http.ResponseWriter, r *http.Request, who caller) {
	vars := mux.Vars(r)
	res, err := a.svc.RemoveOffering(r.Context(), vars["name"], who.author(), vars["offering"])
	a.respond(w, http.StatusOK, res, err)
}

func (a *API) getInstances(w http.ResponseWriter, r *http.Request, _ caller) {
	insts, err := a.svc.Instances(r.Context(), mux.Vars(r)["name"])
	a.respond(w, http.StatusOK, insts, err)
}

func (a *API) getOperations(w http.ResponseWriter, r *http.Request, _ caller) {
	failed, _ := strconv.ParseBool(r.URL.Query().Get("failed"))
	ops, err := a.svc.Operations(r.Context(), mux.Vars(r)["name"], failed)
	a.respond(w, http.StatusOK, ops, err)
}

func (a *API) listProducers(w http.ResponseWriter, r *http.Request, _ caller) {
	ps, err := a.svc.List(r.Context())
	if ps == nil && err == nil {
		ps = []producers.Producer{}
	}
	a.respond(w, http.StatusOK, ps, err)
}

func (a *API) createProducer(w http.ResponseWriter, r *http.Request, _ caller) {
	var req producers.CreateRequest
	if !a.decode(w, r, &req) {
		return
	}
	created, err := a.svc.Create(r.Context(), req)
	a.respond(w, http.StatusCreated, created, err)
}

func (a *API) adminGet(w http.ResponseWriter, r *http.Request, _ caller) {
	p, err := a.svc.Get(r.Context(), mux.Vars(r)["name"])
	a.respond(w, http.StatusOK, p, err)
}

func (a *API) updateProducer(w http.ResponseWriter, r *http.Request, who caller) {
	var req producers.UpdateRequest
	if !a.decode(w, r, &req) {
		return
	}
	p, err := a.svc.Update(r.Context(), mux.Vars(r)["name"], who.author(), req)
	a.respond(w, http.StatusOK, p, err)
}

func (a *API) approveProducer(w http.ResponseWriter, r *http.Request, who caller) {
	p, err := a.svc.Approve(r.Context(), mux.Vars(r)["name"], who.author())
	a.respond(w, http.StatusOK, p, err)
}

func (a *API) suspendProducer(w http.ResponseWriter, r *http.Request, who caller) {
	p, err := a.svc.Suspend(r.Context(), mux.Vars(r)["name"], who.author())
	a.respond(w, http.StatusOK, p, err)
}

func (a *API) rotateToken(w http.ResponseWriter, r *http.Request, who caller) {
	c, err := a.svc.RotateToken(r.Context(), mux.Vars(r)["name"], who.author())
	a.respond(w, http.StatusOK, c, err)
}

func (a *API) adminVersions(w http.ResponseWriter, r *http.Request, _ caller) {
	vs, err := a.svc.Versions(r.Context(), mux.Vars(r)["name"])
	a.respond(w, http.StatusOK, vs, err)
}

func (a *API) approveSlice(w http.ResponseWriter, r *http.Request, who caller) {
	v, ok := versionVar(w, r, a.log)
	if !ok {
		return
	}
	res, err := a.svc.ApproveSlice(r.Context(), mux.Vars(r)["name"], v, who.author())
	a.respond(w, http.StatusOK, res, err)
}

// RejectRequest says why a version is rejected.
type RejectRequest struct {
	Reason string `json:"reason"`
}

func (a *API) rejectSlice(w http.ResponseWriter, r *http.Request, who caller) {
	v, ok := versionVar(w, r, a.log)
	if !ok {
		return
	}
	var req RejectRequest
	if r.ContentLength != 0 && !a.decode(w, r, &req) {
		return
	}
	res, err := a.svc.RejectSlice(r.Context(), mux.Vars(r)["name"], v, who.author(), req.Reason)
	a.respond(w, http.StatusOK, res, err)
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
	a.respond(w, http.StatusOK, st, err)
}

// decode reads a JSON body strictly; false means the error is answered.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeErr(w, a.log, &producers.Error{Kind: producers.ErrInvalid, Message: "the request body must be a JSON object with known fields only: " + err.Error()})
		return false
	}
	return true
}

func versionVar(w http.ResponseWriter, r *http.Request, log *slog.Logger) (int, bool) {
	v, err := strconv.Atoi(mux.Vars(r)["version"])
	if err != nil || v <= 0 {
		writeErr(w, log, &producers.Error{Kind: producers.ErrNotFound, Message: fmt.Sprintf("%q is not a version number", mux.Vars(r)["version"])})
		return 0, false
	}
	return v, true
}

func (a *API) respond(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		writeErr(w, a.log, err)
		return
	}
	writeJSON(w, status, v)
}

// errorBody is every error answer. Problems carry field paths relative
// to the slice; Gate is the conformance report of a failed gate.
type errorBody struct {
	Error       string                   `json:"error"`
	Description string                   `json:"description"`
	Problems    []producers.FieldProblem `json:"problems,omitempty"`
	Gate        *producers.GateResult    `json:"gate,omitempty"`
}

// writeErr maps every failure to its status, in this one place.
func writeErr(w http.ResponseWriter, log *slog.Logger, err error) {
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
	body := errorBody{Error: code, Description: "internal error; the platform team finds the cause in Agora's log"}
	var pe *producers.Error
	if errors.As(err, &pe) {
		body.Description, body.Problems, body.Gate = pe.Message, pe.Problems, pe.Gate
	}
	if status >= 500 {
		log.Error("producer API request failed", "status", status, "error", err)
	}
	if errors.Is(err, context.Canceled) {
		return // the client left
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":"internal","description":"cannot encode the response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Cache-Control", "no-store") // tokens are in some answers
	w.WriteHeader(status)
	_, _ = w.Write(body)
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
