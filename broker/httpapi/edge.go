package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/agora-osb/agora/broker/requestinfo"
)

const headerRequestID = "X-Broker-API-Request-Identity"

// The OSB headers in net/http's canonical spelling, for lookups: a
// non-canonical key costs an allocation on every Get and Set.
const (
	canonicalRequestID           = "X-Broker-Api-Request-Identity"
	canonicalAPIVersion          = "X-Broker-Api-Version"
	canonicalOriginatingIdentity = "X-Broker-Api-Originating-Identity"
)

// headerValue is h.Get(key) for a key already canonical, without Get's
// check of every byte of the key: a fifth of a catalog request's CPU in
// Agora's own code.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Middleware is the usual net/http decorator.
type Middleware func(http.Handler) http.Handler

// chain applies mws so that mws[0] runs first.
func chain(h http.Handler, mws ...Middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		if mws[i] != nil {
			h = mws[i](h)
		}
	}
	return h
}

// Route is one route of a surface other than OSB (the producer and admin
// APIs, the metrics endpoint). It goes through the same edge as /v2; only
// its auth is its own.
type Route struct {
	Surface requestinfo.Surface
	// Endpoint names the operation for logs and metrics, in a bounded
	// vocabulary ("producer_apply", "admin_list_producers").
	Endpoint string
	Method   string
	// Path is a gorilla/mux path template ("/producers/{name}/slice").
	Path string
	// Auth authenticates the request and records its principal; nil means
	// the route is open (self-registration).
	Auth    Middleware
	Handler http.Handler
}

// Observer is told about every request the edge served, of every
// surface, rejected ones included: the metrics seam. info is valid only
// for the length of the call: the fast paths reuse it for a later
// request, so an observer copies what it keeps.
type Observer interface {
	RequestDone(info *requestinfo.Info, method string, status int, took time.Duration)
}

// Observers tells each of its observers, in order (metrics, audit).
type Observers []Observer

// RequestDone implements Observer.
func (o Observers) RequestDone(info *requestinfo.Info, method string, status int, took time.Duration) {
	for _, each := range o {
		each.RequestDone(info, method, status, took)
	}
}

// edge is the one chain every surface goes through: recover, request info
// (identity, API version, originating identity, decoded once), access log
// and observer, then the surface's own auth and guards.
type edge struct {
	logger   *slog.Logger
	observer Observer
	maxBody  int64
}

// withInfo decodes what every surface needs from the request, once, into
// the requestinfo.Info all later layers read. It runs first, so every
// answer after it, errors from the edge included, echoes the request id.
func (e *edge) withInfo(surface requestinfo.Surface, classify func(*http.Request) (endpoint string, resource map[string]string)) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			endpoint, resource := classify(r)
			info := e.newInfo(w, r, surface, endpoint, resource)
			next.ServeHTTP(w, r.WithContext(requestinfo.With(r.Context(), info)))
		})
	}
}

// newInfo is withInfo's work, shared with the fast paths: it decodes the
// request's identity, API version and originating identity, and echoes
// the request id on w.
func (e *edge) newInfo(w http.ResponseWriter, r *http.Request, surface requestinfo.Surface, endpoint string, resource map[string]string) *requestinfo.Info {
	info := &requestinfo.Info{}
	e.fillInfo(info, w, r, surface, endpoint, resource)
	return info
}

// fillInfo is newInfo into an Info the caller provides (zero), so the
// fast paths can reuse one from a pool.
func (e *edge) fillInfo(info *requestinfo.Info, w http.ResponseWriter, r *http.Request, surface requestinfo.Surface, endpoint string, resource map[string]string) {
	info.Surface, info.Endpoint, info.Resource = surface, endpoint, resource
	if sent := r.Header[canonicalRequestID]; len(sent) > 0 && sent[0] != "" {
		// The spec asks a broker to echo the platform's request id. The
		// echo shares the request's slice, capped at one value so that
		// an Add on the answer's header copies rather than writes into
		// the request's: one allocation less per request.
		info.ID = sent[0]
		w.Header()[canonicalRequestID] = sent[:1:1]
	} else {
		// The platform named nothing: Agora names the request for its
		// log, audit and adapters, and sends the name back only with an
		// error answer (echoOwnID), whose description cites it. On every
		// answer it cost a header each client parses: 2% of a catalog
		// request's CPU in make bench.
		info.ID = requestinfo.NewID()
	}
	if v := headerValue(r.Header, canonicalAPIVersion); v != "" {
		info.APIVersion, _ = requestinfo.ParseVersion(v)
	}
	if header := headerValue(r.Header, canonicalOriginatingIdentity); header != "" {
		id, err := requestinfo.ParseOriginatingIdentity(header)
		switch {
		case err != nil:
			// A platform bug, not the app developer's: the spec says
			// not to fail the request, so it is logged and dropped.
			// The value is not logged: user data of unknown shape.
			e.logger.LogAttrs(r.Context(), slog.LevelWarn, "ignoring malformed "+headerOriginatingIdentity,
				slog.String("request_id", info.ID), slog.String("error", err.Error()))
		case id.UserID == "" && (id.Platform == requestinfo.PlatformCloudFoundry || id.Platform == requestinfo.PlatformKubernetes):
			e.logger.LogAttrs(r.Context(), slog.LevelWarn, headerOriginatingIdentity+" names no user",
				slog.String("request_id", info.ID), slog.String("platform", id.Platform))
			info.Originating = id
		default:
			info.Originating = id
		}
	}
}

// withAccessLog reports each request once, when it completes, to the log
// and the observer. It sits outside auth so rejections are reported too.
func (e *edge) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		path := r.URL.EscapedPath() // captured now: the OSB guards rewrite the URL for brokerapi
		info := requestinfo.From(r.Context())
		rec := &statusRecorder{ResponseWriter: w, info: info}
		completed := false
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK // a handler that wrote nothing
				if !completed {
					// Panicking: recoverPanics answers 500, citing the
					// request id it finds on the answer.
					status = http.StatusInternalServerError
					echoOwnID(w.Header(), info)
				}
			}
			e.requestDone(r, info, path, status, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
		completed = true
	})
}

// requestDone is the one place a finished request is reported: one log
// line per request, with the outcome the handling layers recorded.
//
// The level says who must act. ERROR is for the platform engineer (Agora,
// Redis or Vault failed); WARN for a producer's adapter failing and for
// authentication failures; INFO for everything a client caused or got
// right, 4xx included; DEBUG for health probes, which would drown the rest.
func (e *edge) requestDone(r *http.Request, info *requestinfo.Info, path string, status int, took time.Duration) {
	if e.observer != nil {
		e.observer.RequestDone(info, r.Method, status, took)
	}
	outcome := info.Outcome()
	level := slog.LevelInfo
	switch {
	case info.Surface == requestinfo.SurfaceHealth && status < 500:
		level = slog.LevelDebug
	case status >= 500 && outcome.Owner == "adapter":
		level = slog.LevelWarn
	case status >= 500:
		level = slog.LevelError
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		level = slog.LevelWarn
	}
	if !e.logger.Enabled(r.Context(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 14)
	attrs = append(attrs,
		slog.String("surface", string(info.Surface)),
		slog.String("endpoint", info.Endpoint),
		slog.String("method", r.Method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(took.Microseconds())/1000),
		slog.String("request_id", info.ID),
	)
	if p := info.Principal; p.Kind != "" {
		attrs = append(attrs, slog.String("principal", string(p.Kind)+":"+p.Name))
	}
	if id := info.Originating; id != nil {
		attrs = append(attrs, slog.String("platform", id.Platform), slog.String("user", id.UserID))
	}
	if outcome.Error != "" {
		attrs = append(attrs, slog.String("error", outcome.Error))
	}
	if outcome.Code != "" {
		attrs = append(attrs, slog.String("error_code", outcome.Code))
	}
	if outcome.Owner != "" {
		attrs = append(attrs, slog.String("owner", outcome.Owner))
	}
	e.logger.LogAttrs(r.Context(), level, "request", attrs...)
}

// capBody bounds what any handler can read of a body; MaxBytesReader also
// tells the server to close the connection rather than drain the rest.
func (e *edge) capBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > e.maxBody {
			WriteError(w, r, http.StatusRequestEntityTooLarge, "", tooLarge(e.maxBody))
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, e.maxBody)
		}
		next.ServeHTTP(w, r)
	})
}

// statusRecorder remembers the status written, for the access log and for
// deciding whether a panic can still be answered with a clean 500.
type statusRecorder struct {
	http.ResponseWriter
	status int
	// info, when set, is the request's: an error answer gets the request
	// id Agora generated for it (echoOwnID).
	info *requestinfo.Info
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= http.StatusOK { // 1xx are informational, not the answer
		s.status = code
		if code >= http.StatusBadRequest {
			echoOwnID(s.Header(), s.info)
		}
	}
	s.ResponseWriter.WriteHeader(code)
}

// echoOwnID puts the request id Agora generated (the platform sent none)
// on an error answer's header h, before the status is written, so that
// whoever got the error can quote the id its description cites. The
// platform's own id is on every answer already (fillInfo).
func echoOwnID(h http.Header, info *requestinfo.Info) {
	if info != nil && info.ID != "" && h[canonicalRequestID] == nil {
		h[canonicalRequestID] = []string{info.ID}
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (Flush,
// deadlines) through our wrapper.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// recoverPanics turns a handler panic into a logged 500 so one bad request
// (or a producer's adapter bug) cannot take the process down or leave the
// client with a reset connection and no explanation. It wraps the whole
// root router, so it covers every surface.
func (e *edge) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				e.answerPanic(w, r, p, rec.status != 0)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// answerPanic is recoverPanics' answer to a handler's panic p, shared with
// the fast paths, which recover on their own; answered says whether the
// handler had already sent its status.
func (e *edge) answerPanic(w http.ResponseWriter, r *http.Request, p any, answered bool) {
	if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
		panic(p) // a deliberate abort; net/http handles it quietly
	}
	requestID := w.Header().Get(canonicalRequestID)
	e.logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.EscapedPath()),
		slog.String("request_id", requestID),
		slog.Any("panic", p),
		slog.String("stack", string(debug.Stack())),
	)
	if answered {
		// Too late for a clean 500. Aborting makes the client see a
		// broken response instead of a truncated one that looks whole.
		panic(http.ErrAbortHandler)
	}
	// Drop whatever the failed handler set (Content-Type, Retry-After)
	// but keep the request id the 500 cites. The request seen here is
	// the one before withInfo, so the id comes from the header.
	for k := range w.Header() {
		if k != canonicalRequestID {
			delete(w.Header(), k)
		}
	}
	ctx := r.Context()
	if requestID != "" {
		ctx = requestinfo.With(ctx, &requestinfo.Info{ID: requestID})
	}
	WriteError(w, r.WithContext(ctx), http.StatusInternalServerError, "", "internal error in Agora; quote the request id when reporting it")
}

// fixed names every request of a route alike, with no resource.
func fixed(endpoint string) func(*http.Request) (string, map[string]string) {
	return func(*http.Request) (string, map[string]string) { return endpoint, nil }
}

// mountRoute adds one non-OSB route behind the common edge and its auth.
func (e *edge) mountRoute(root *mux.Router, rt Route) {
	classify := func(r *http.Request) (string, map[string]string) { return rt.Endpoint, mux.Vars(r) }
	h := chain(rt.Handler,
		e.withInfo(rt.Surface, classify),
		e.withAccessLog,
		rt.Auth,
		e.capBody,
	)
	root.Handle(rt.Path, h).Methods(rt.Method)
}

// fallback answers unknown routes through the edge too, so they are
// logged and cite a request id.
func (e *edge) fallback(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		surface := requestinfo.SurfaceOSB
		switch path := r.URL.Path; {
		case strings.HasPrefix(path, "/producers"):
			surface = requestinfo.SurfaceProducer
		case strings.HasPrefix(path, "/admin"):
			surface = requestinfo.SurfaceAdmin
		}
		chain(h, e.withInfo(surface, fixed("unknown_route")), e.withAccessLog).ServeHTTP(w, r)
	})
}
