package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/pivotal-cf/brokerapi/v11"
	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"
	"github.com/pivotal-cf/brokerapi/v11/middlewares"

	"github.com/agora-osb/agora/broker/requestinfo"
)

const (
	headerAPIVersion          = "X-Broker-API-Version"
	headerOriginatingIdentity = "X-Broker-API-Originating-Identity"

	minAPIMinor = 13 // 2.13: the oldest version whose behaviour we rely on
	maxAPIMinor = 17 // 2.17: the spec we implement
	maxIDBytes  = 255
)

// The OSB endpoints, as the edge names them in logs and metrics.
const (
	EndpointCatalog              = "catalog"
	EndpointProvision            = "provision"
	EndpointUpdate               = "update"
	EndpointDeprovision          = "deprovision"
	EndpointGetInstance          = "get_instance"
	EndpointLastOperation        = "last_operation"
	EndpointBind                 = "bind"
	EndpointUnbind               = "unbind"
	EndpointGetBinding           = "get_binding"
	EndpointLastBindingOperation = "last_binding_operation"
	endpointUnknown              = "unknown"
)

// osbRoute is what the path of a /v2 request names: the endpoint and the
// IDs in it, still percent-encoded.
type osbRoute struct {
	endpoint string
	ids      []idSegment
}

type idSegment struct {
	kind string // "instance" or "binding", for the error message
	raw  string // still percent-encoded
}

// parseOSBRoute classifies a /v2 path without routing it: brokerapi's
// router still decides, this only names the endpoint and finds the IDs.
func parseOSBRoute(method, escapedPath string) osbRoute {
	if escapedPath == "/v2/catalog" {
		return osbRoute{endpoint: EndpointCatalog}
	}
	rest, found := strings.CutPrefix(escapedPath, "/v2/service_instances/")
	if !found {
		return osbRoute{endpoint: endpointUnknown}
	}
	seg := strings.Split(rest, "/")
	inst := []idSegment{{"instance", seg[0]}}
	switch {
	case len(seg) == 1:
		byMethod := map[string]string{http.MethodPut: EndpointProvision, http.MethodPatch: EndpointUpdate,
			http.MethodDelete: EndpointDeprovision, http.MethodGet: EndpointGetInstance}
		return osbRoute{endpoint: orUnknown(byMethod[method]), ids: inst}
	case len(seg) == 2 && seg[1] == "last_operation":
		return osbRoute{endpoint: EndpointLastOperation, ids: inst}
	case len(seg) == 3 && seg[1] == "service_bindings":
		byMethod := map[string]string{http.MethodPut: EndpointBind, http.MethodDelete: EndpointUnbind, http.MethodGet: EndpointGetBinding}
		return osbRoute{endpoint: orUnknown(byMethod[method]), ids: append(inst, idSegment{"binding", seg[2]})}
	case len(seg) == 4 && seg[1] == "service_bindings" && seg[3] == "last_operation":
		return osbRoute{endpoint: EndpointLastBindingOperation, ids: append(inst, idSegment{"binding", seg[2]})}
	}
	return osbRoute{endpoint: endpointUnknown}
}

// classifyOSB names a /v2 request's endpoint and what it is about.
func classifyOSB(r *http.Request) (string, map[string]string) {
	route := parseOSBRoute(r.Method, r.URL.EscapedPath())
	if len(route.ids) == 0 {
		return route.endpoint, nil
	}
	resource := make(map[string]string, 4)
	for _, id := range route.ids {
		if decoded, err := url.PathUnescape(id.raw); err == nil {
			resource[id.kind+"_id"] = decoded
		}
	}
	if r.Method == http.MethodDelete {
		q := r.URL.Query()
		for _, name := range []string{"service_id", "plan_id"} {
			if v := q.Get(name); v != "" {
				resource[name] = v
			}
		}
	}
	return route.endpoint, resource
}

func orUnknown(s string) string {
	if s == "" {
		return endpointUnknown
	}
	return s
}

// osb holds what the /v2 surface needs beyond the common edge.
type osb struct {
	*edge
	catalogJSON       func() []byte
	knownPlan         func(serviceID, planID string) error
	instancePlan      func(ctx context.Context, instanceID string) (serviceID, planID string, err error)
	retryAfterSeconds string
	retryAfter        []string // the same, as a header value the fast path shares
}

func newOSB(e *edge, opts Options) *osb {
	seconds := strconv.Itoa(int(math.Ceil(opts.RetryAfter.Seconds())))
	return &osb{
		edge:              e,
		catalogJSON:       opts.CatalogJSON,
		knownPlan:         opts.KnownPlan,
		instancePlan:      opts.InstancePlan,
		retryAfterSeconds: seconds,
		retryAfter:        []string{seconds},
	}
}

// handler is the whole /v2 surface. Order matters: request info first, so
// every answer after it carries the request id; the access log outside
// auth, so rejections are logged; auth before anything that reads the
// body or tells the caller about versions.
func (s *osb) handler(auth *BasicAuth, broker domain.ServiceBroker) http.Handler {
	api := newBrokerAPI(broker)
	// GET /v2/catalog and last_operation never get here: fastOSB serves them.
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requestinfo.From(r.Context()).Endpoint == EndpointGetInstance {
			serveWithReplyFields(api, w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
	return chain(serve,
		s.withInfo(requestinfo.SurfaceOSB, classifyOSB),
		s.withAccessLog,
		RequireBasic(auth, requestinfo.PrincipalPlatform, "agora", "broker credentials"),
		s.requireAPIVersion,
		s.guardIDs,
		s.capBody,
		s.decodeBody,
		s.requireQuery,
		s.withRetryAfter,
	)
}

// newBrokerAPI builds brokerapi's router ourselves rather than through
// brokerapi.New, for three reasons: its 404/405 must be JSON like ours;
// its version check and context middleware are redundant behind the edge,
// which decoded the request once; and its logger must see nothing. Its
// handlers log whole request details, parameters included, at ERROR for
// every client mistake: Agora logs each request once, at the edge, with
// the outcome the broker recorded.
func newBrokerAPI(broker domain.ServiceBroker) http.Handler {
	r := chi.NewRouter()
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	r.Use(func(next http.Handler) http.Handler {
		// brokerapi echoes X-Broker-API-Request-Identity from its own
		// context key (as "<nil>" when unset, not at all when empty) on
		// every answer: give it the platform's id, the one the edge
		// echoes; withAccessLog adds Agora's own to error answers.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), middlewares.RequestIdentityKey, headerValue(r.Header, canonicalRequestID))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	})
	brokerapi.AttachRoutes(r, broker, slog.New(slog.DiscardHandler))
	return r
}

// serveWithReplyFields runs brokerapi's handler into a buffer and adds
// the fields the broker recorded with SetReplyField to a 200 answer:
// brokerapi v11's GetInstanceDetailsSpec has no maintenance_info, which
// OSB's GET instance carries. Other answers pass through as they are.
func serveWithReplyFields(api http.Handler, w http.ResponseWriter, r *http.Request) {
	rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	api.ServeHTTP(rec, r)
	body := rec.body.Bytes()
	if fields := requestinfo.From(r.Context()).ReplyFields(); rec.status == http.StatusOK && len(fields) > 0 {
		var doc map[string]any
		if err := json.Unmarshal(body, &doc); err == nil {
			maps.Copy(doc, fields)
			if merged, err := json.Marshal(doc); err == nil {
				body = merged
			}
		}
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	WriteRawJSON(w, rec.status, body)
}

// bufferedResponse keeps a handler's answer for serveWithReplyFields.
type bufferedResponse struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if !b.wroteHeader {
		b.status, b.wroteHeader = code, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.wroteHeader = true
	return b.body.Write(p)
}

const supportedVersions = "this broker supports X-Broker-API-Version 2.13 to 2.17"

// requireAPIVersion enforces 2.13–2.17. brokerapi only insists on 2.x,
// which would let a 2.18 platform assume behaviour we do not implement.
func (s *osb) requireAPIVersion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if problem := versionProblem(requestinfo.From(r.Context()), headerValue(r.Header, canonicalAPIVersion)); problem != "" {
			WriteError(w, r, http.StatusPreconditionFailed, "", problem)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// versionProblem is why the 412 is sent, or "" when the version header v
// (decoded into info) is one this broker speaks for info's endpoint.
func versionProblem(info *requestinfo.Info, v string) string {
	switch {
	case v == "":
		return headerAPIVersion + " header is missing; " + supportedVersions
	case info.APIVersion.Major != 2 || info.APIVersion.Minor < minAPIMinor || info.APIVersion.Minor > maxAPIMinor:
		return fmt.Sprintf("%s %s is not supported; %s", headerAPIVersion, requestinfo.Quote(v), supportedVersions)
	case (info.Endpoint == EndpointGetInstance || info.Endpoint == EndpointGetBinding) && !info.APIVersion.AtLeast(2, 14):
		// brokerapi refuses it too, without the request id; the spec
		// added fetching instances in 2.14.
		return "fetching a service instance or binding needs " + headerAPIVersion + " 2.14 or later"
	}
	return ""
}

// guardIDs rejects odd instance and binding IDs before brokerapi sees them,
// because they end up in Redis keys, Vault paths and backend resource
// names, where "..", "/" or a control character does damage. It also hands
// brokerapi the decoded path: chi routes on RawPath when there is one, and
// would otherwise give the broker "a%41" where the platform meant "aA".
func (s *osb) guardIDs(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := parseOSBRoute(r.Method, r.URL.EscapedPath())
		if problem := idProblem(route.ids); problem != "" {
			WriteError(w, r, http.StatusBadRequest, "", problem)
			return
		}
		if len(route.ids) > 0 && r.URL.RawPath != "" {
			// Every ID decoded cleanly and holds no "/", so Path alone is
			// unambiguous. Copy the URL so the caller's stays as sent.
			u := *r.URL
			u.RawPath = ""
			r = r.WithContext(r.Context())
			r.URL = &u
		}
		next.ServeHTTP(w, r)
	})
}

// idProblem is the 400's description for the first unusable ID, or "".
func idProblem(ids []idSegment) string {
	for _, id := range ids {
		if err := validateID(id.raw); err != nil {
			shown := id.raw
			if decoded, uerr := url.PathUnescape(id.raw); uerr == nil {
				shown = decoded
			}
			return fmt.Sprintf("%s ID %s %s", id.kind, requestinfo.Quote(shown), err)
		}
	}
	return ""
}

// validateID returns why the percent-encoded path segment is not a usable
// ID; the result completes "instance ID ...".
func validateID(escaped string) error {
	id, err := url.PathUnescape(escaped)
	switch {
	case err != nil:
		return errors.New("is not validly percent-encoded")
	case id == "":
		return errors.New("is empty")
	case len(id) > maxIDBytes:
		return fmt.Errorf("is %d bytes long; the limit is %d", len(id), maxIDBytes)
	case id == "." || id == "..":
		return errors.New("is not allowed")
	case strings.Contains(id, "/"):
		return errors.New(`contains "/" (sent as %2F)`)
	case !utf8.ValidString(id):
		return errors.New("is not valid UTF-8")
	case strings.ContainsFunc(id, unicode.IsControl):
		return errors.New("contains a control character")
	}
	return nil
}

// bodyRules are the fields each mutating endpoint requires. brokerapi
// checks them too, but with "service_id missing" and no request id.
var bodyRules = map[string][]string{
	EndpointProvision: {"service_id", "plan_id"},
	EndpointUpdate:    {"service_id"},
	EndpointBind:      {"service_id", "plan_id"},
}

// decodeBody reads and decodes PUT and PATCH bodies, once, before
// brokerapi does. A body that is not exactly one JSON object, or whose
// fields have the wrong JSON type, gets a 400 that names the field and the
// type in plain words; brokerapi would answer 422 with Go's unmarshal text.
func (s *osb) decodeBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut && r.Method != http.MethodPatch {
			next.ServeHTTP(w, r) // GET and DELETE bodies mean nothing in OSB
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mediaType, _, err := mime.ParseMediaType(ct)
			if err != nil || mediaType != "application/json" {
				WriteError(w, r, http.StatusUnsupportedMediaType, "", fmt.Sprintf("Content-Type %s is not supported; send application/json", requestinfo.Quote(ct)))
				return
			}
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				WriteError(w, r, http.StatusRequestEntityTooLarge, "", tooLarge(s.maxBody))
				return
			}
			WriteError(w, r, http.StatusBadRequest, "", "could not read the request body: "+err.Error())
			return
		}
		trimmed := bytes.TrimSpace(raw)
		if len(trimmed) == 0 {
			WriteError(w, r, http.StatusBadRequest, "", "request body is empty; "+r.Method+" needs a JSON object")
			return
		}
		// Valid rejects syntax errors and anything after the first value,
		// without building anything; the error's wording needs a decode.
		if !json.Valid(trimmed) {
			err := json.Unmarshal(trimmed, new(json.RawMessage))
			WriteError(w, r, http.StatusBadRequest, "", "request body is not valid JSON: "+jsonSyntaxText(err))
			return
		}
		if trimmed[0] != '{' {
			WriteError(w, r, http.StatusBadRequest, "", "request body must be a JSON object")
			return
		}
		info := requestinfo.From(r.Context())
		body, err := requestinfo.DecodeBody(trimmed)
		if err != nil {
			WriteError(w, r, http.StatusBadRequest, "", "request body: "+err.Error())
			return
		}
		if info.Endpoint == EndpointBind && body.PredecessorBindingID != "" && (!body.Has("service_id") || !body.Has("plan_id")) {
			var ok bool
			if trimmed, ok = s.completeRotation(w, r, trimmed); !ok {
				return
			}
			if body, err = requestinfo.DecodeBody(trimmed); err != nil {
				WriteError(w, r, http.StatusBadRequest, "", "request body: "+err.Error())
				return
			}
		}
		for _, field := range bodyRules[info.Endpoint] {
			if !body.Has(field) || (field == "service_id" && body.ServiceID == "") || (field == "plan_id" && body.PlanID == "") {
				WriteError(w, r, http.StatusBadRequest, "", "request body: "+field+" is required and must be a non-empty string")
				return
			}
		}
		if field, empty := body.EmptyField(); empty {
			WriteError(w, r, http.StatusBadRequest, "", "request body: "+field+" must be a non-empty string when present (leave it out instead)")
			return
		}
		if info.Endpoint == EndpointProvision && s.knownPlan != nil {
			if err := s.knownPlan(body.ServiceID, body.PlanID); err != nil {
				WriteError(w, r, http.StatusBadRequest, "", err.Error())
				return
			}
		}
		info.Body = body
		r.Body = io.NopCloser(bytes.NewReader(trimmed))
		r.ContentLength = int64(len(trimmed))
		next.ServeHTTP(w, r)
	})
}

// completeRotation fills in service_id and plan_id of a binding
// rotation's body from the instance it binds to. OSB 2.17 makes
// predecessor_binding_id the only required field of a rotation, and
// Crossplane's provider-osb sends nothing else; brokerapi v11 knows no
// rotation and answers such a body "400 service_id missing" before the
// broker runs. Completing the body here, rather than answering rotations
// beside brokerapi, keeps brokerapi the one writer of bind answers (201,
// 200, 202 and their bodies) for a price of one Redis read per rotation,
// which happens once per credential lifetime. The broker judges the
// rotation itself, under the instance's lock; the values filled in are
// the instance's, which a bind must name anyway.
func (s *osb) completeRotation(w http.ResponseWriter, r *http.Request, raw []byte) ([]byte, bool) {
	if s.instancePlan == nil {
		return raw, true // bodyRules then names what is missing
	}
	route := parseOSBRoute(r.Method, r.URL.EscapedPath())
	instanceID, err := url.PathUnescape(route.ids[0].raw)
	if err != nil {
		return raw, true // guardIDs let only clean IDs through
	}
	serviceID, planID, err := s.instancePlan(r.Context(), instanceID)
	if err != nil {
		if fr, ok := errors.AsType[*apiresponses.FailureResponse](err); ok {
			WriteJSON(w, fr.ValidatedStatusCode(nil), fr.ErrorResponse())
		} else {
			WriteError(w, r, http.StatusInternalServerError, "", "could not read the service instance of this binding rotation")
		}
		return nil, false
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return raw, true // DecodeBody accepted it; cannot happen
	}
	for name, value := range map[string]string{"service_id": serviceID, "plan_id": planID} {
		if v, sent := fields[name]; !sent || string(bytes.TrimSpace(v)) == "null" {
			fields[name], _ = json.Marshal(value)
		}
	}
	completed, err := json.Marshal(fields)
	if err != nil {
		return raw, true
	}
	return completed, true
}

// jsonSyntaxText drops Go's type names from encoding/json's syntax errors
// and keeps where the problem is.
func jsonSyntaxText(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(se.Error(), "json: "), se.Offset)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// requireQuery checks the query parameters the spec requires on DELETE,
// before brokerapi would answer "service_id missing" without a request id.
func (s *osb) requireQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := requestinfo.From(r.Context()).Endpoint
		if endpoint == EndpointDeprovision || endpoint == EndpointUnbind {
			q := r.URL.Query()
			for _, name := range []string{"service_id", "plan_id"} {
				if q.Get(name) == "" {
					WriteError(w, r, http.StatusBadRequest, "", "query parameter "+name+" is required on DELETE")
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func tooLarge(limit int64) string {
	return fmt.Sprintf("request body is larger than %d bytes", limit)
}

// withRetryAfter tells the platform how long to wait between last_operation
// polls. Only a 200 gets it: on a 404 or 410 it would invite a pointless
// retry.
func (s *osb) withRetryAfter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := requestinfo.From(r.Context()).Endpoint
		if endpoint != EndpointLastOperation && endpoint != EndpointLastBindingOperation {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&retryAfterWriter{ResponseWriter: w, seconds: s.retryAfterSeconds}, r)
	})
}

type retryAfterWriter struct {
	http.ResponseWriter
	seconds string
	decided bool
}

func (w *retryAfterWriter) WriteHeader(code int) {
	if !w.decided && code >= http.StatusOK {
		w.decided = true
		if code == http.StatusOK {
			w.Header().Set("Retry-After", w.seconds)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *retryAfterWriter) Write(b []byte) (int, error) {
	if !w.decided {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *retryAfterWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
