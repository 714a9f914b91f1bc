package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// PollAnswerer is implemented by a broker that keeps the answers to
// last_operation polls ready-made (broker.Broker does). When
// Options.Broker implements it, an instance's GET last_operation takes
// the fast path; otherwise it goes through brokerapi like the rest.
type PollAnswerer interface {
	// LastOperationAnswer returns the body of the 200 answer, byte for
	// byte as brokerapi would write it, or the error LastOperation would
	// return (a *apiresponses.FailureResponse keeps its status and body).
	LastOperationAnswer(ctx context.Context, instanceID, operationID string) ([]byte, error)
}

// fastOSB serves the two requests platforms send most, GET /v2/catalog
// and an instance's GET last_operation (every few seconds per async
// operation, per platform), without gorilla/mux, chi, brokerapi and the
// middleware chain: routing, request-scoped copies of the request and
// the layers of wrapped writers were most of a poll's CPU outside Redis.
//
// It keeps every rule the chain keeps, in the chain's order: request info
// (request id echoed, version and originating identity decoded), the
// access log line and the Observer, basic auth, the API version
// (2.13-2.17), the ID guard, the body cap, then the answer, with
// Retry-After on a poll's 200 only; a panic is answered as recoverPanics
// answers it. The OSB tests of this package run against both paths
// (fast_test.go). Everything else goes to next.
type fastOSB struct {
	*osb
	auth *BasicAuth
	poll PollAnswerer // nil: polls take the chain
	next http.Handler

	// catalog caches the catalog's Content-Length for the bytes
	// catalogJSON returned last, which change only with the catalog.
	catalog atomic.Pointer[catalogAnswer]

	// infos holds *fastInfo: a fast request's Info (and a poll's
	// Resource map) is reused once its log line and observers ran, as
	// allocating them was most of the garbage a catalog request made
	// beyond the floor's.
	infos sync.Pool

	// date is the Date header of the current second, made once a second
	// rather than by net/http on every answer (formatting it was 0.6% of
	// a catalog request's CPU in make bench).
	date atomic.Pointer[dateHeader]
}

type dateHeader struct {
	second int64
	value  []string
}

// dateAt is the Date header for an answer made at now: net/http's own
// format and resolution (whole seconds, UTC), which it uses as given.
func (f *fastOSB) dateAt(now time.Time) []string {
	second := now.Unix()
	if d := f.date.Load(); d != nil && d.second == second {
		return d.value
	}
	// A one-value literal has no spare capacity, so an Add copies rather
	// than writes into the slice other answers share.
	value := []string{now.UTC().Format(http.TimeFormat)}
	f.date.Store(&dateHeader{second: second, value: value})
	return value
}

// fastInfo is what a fast request takes from fastOSB.infos.
type fastInfo struct {
	info     requestinfo.Info
	resource map[string]string
}

func (f *fastOSB) getInfo() *fastInfo {
	if fi, ok := f.infos.Get().(*fastInfo); ok {
		return fi
	}
	return &fastInfo{resource: make(map[string]string, 1)}
}

// putInfo returns fi to the pool once nothing reads it: the answer is
// written, the observers (which copy what they keep, see Observer) and
// the access log ran, and no goroutine of the request holds its context.
func (f *fastOSB) putInfo(fi *fastInfo) {
	fi.info.Reset()
	clear(fi.resource)
	f.infos.Put(fi)
}

type catalogAnswer struct {
	body   []byte
	length []string
}

// netHTTPBuffered is how much of a body net/http (HTTP/1.1: 2 KB; HTTP/2:
// 4 KB) buffers before it sends the header: when the handler returns
// with no more written, net/http counts the Content-Length itself
// without allocating, so a poll's answer (a few hundred bytes) leaves it
// to net/http.
const netHTTPBuffered = 2048

// Header values that never change are shared rather than allocated per
// request; net/http only reads them.
var (
	jsonContentType = []string{"application/json"}
)

func (f *fastOSB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		path := r.URL.EscapedPath()
		if path == "/v2/catalog" {
			f.serve(w, r, path, EndpointCatalog, "")
			return
		}
		if f.poll != nil {
			if rest, ok := strings.CutPrefix(path, "/v2/service_instances/"); ok {
				if raw, ok := strings.CutSuffix(rest, "/last_operation"); ok && !strings.Contains(raw, "/") {
					f.serve(w, r, path, EndpointLastOperation, raw)
					return
				}
			}
		}
	}
	f.next.ServeHTTP(w, r)
}

// serve is withInfo and withAccessLog for one fast request.
func (f *fastOSB) serve(w http.ResponseWriter, r *http.Request, path, endpoint, rawID string) {
	start := time.Now()
	fi := f.getInfo()
	var resource map[string]string
	instanceID := ""
	if endpoint == EndpointLastOperation {
		resource = fi.resource
		if decoded, err := url.PathUnescape(rawID); err == nil {
			resource["instance_id"] = decoded
			instanceID = decoded
		}
	}
	info := &fi.info
	f.fillInfo(info, w, r, requestinfo.SurfaceOSB, endpoint, resource)
	w.Header()["Date"] = f.dateAt(start)
	status := 0
	defer func() {
		if status != 0 {
			f.requestDone(r, info, path, status, time.Since(start))
			f.putInfo(fi)
			return
		}
		// Panicking: logged as the 500 it is answered with, as the chain
		// (withAccessLog inside recoverPanics) logs it. The fast path
		// writes its answer in one go at the end, so no status is out yet.
		// fi is not reused: whatever panicked may still hold it.
		p := recover()
		f.requestDone(r, info, path, http.StatusInternalServerError, time.Since(start))
		echoOwnID(w.Header(), info)
		f.answerPanic(w, r, p, false)
	}()
	status = f.answer(w, r, info, endpoint, rawID, instanceID)
}

// answer is the chain's guards and the answer; it returns the status sent.
func (f *fastOSB) answer(w http.ResponseWriter, r *http.Request, info *requestinfo.Info, endpoint, rawID, instanceID string) int {
	// fail writes an error answer, which cites the request id it finds
	// in the request's context.
	fail := func(status int, description string) int {
		echoOwnID(w.Header(), info)
		WriteError(w, r.WithContext(requestinfo.With(r.Context(), info)), status, "", description)
		return status
	}
	if !f.auth.authenticate(r, info, requestinfo.PrincipalPlatform) {
		echoOwnID(w.Header(), info)
		denyBasic(w, r.WithContext(requestinfo.With(r.Context(), info)), "agora", "broker credentials")
		return http.StatusUnauthorized
	}
	if problem := versionProblem(info, headerValue(r.Header, canonicalAPIVersion)); problem != "" {
		return fail(http.StatusPreconditionFailed, problem)
	}
	if endpoint == EndpointLastOperation {
		if problem := idProblem([]idSegment{{"instance", rawID}}); problem != "" {
			return fail(http.StatusBadRequest, problem)
		}
	}
	if r.ContentLength > f.maxBody {
		return fail(http.StatusRequestEntityTooLarge, tooLarge(f.maxBody))
	}
	if endpoint == EndpointCatalog {
		body := f.catalogJSON()
		if len(body) == 0 {
			// Serving "{}" would make the platform drop every offering.
			return fail(http.StatusServiceUnavailable, "the catalog is not loaded yet; retry shortly")
		}
		return f.serveCatalog(w, body)
	}
	// brokerapi reads the operation with FormValue, which for a GET is
	// the query's first value.
	operation := queryValue(r.URL.RawQuery, "operation")
	body, err := f.poll.LastOperationAnswer(requestinfo.With(r.Context(), info), instanceID, operation)
	if err != nil {
		echoOwnID(w.Header(), info)
		return writeBrokerError(w, err)
	}
	h := w.Header()
	h["Retry-After"] = f.retryAfter
	h["Content-Type"] = jsonContentType
	if len(body) > netHTTPBuffered {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

// serveCatalog writes the precomputed catalog bytes. brokerapi's catalog
// handler would call Broker.Services and re-marshal on every request.
func (f *fastOSB) serveCatalog(w http.ResponseWriter, body []byte) int {
	c := f.catalog.Load()
	if c == nil || len(c.body) != len(body) || &c.body[0] != &body[0] {
		c = &catalogAnswer{body: body, length: []string{strconv.Itoa(len(body))}}
		f.catalog.Store(c)
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = c.length
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return http.StatusOK
}

// queryValue is url.ParseQuery(query).Get(name) without building the
// map: the first value of the first pair named name that ParseQuery
// keeps (it drops pairs with a ";" or a bad escape).
func queryValue(query, name string) string {
	for query != "" {
		var pair string
		pair, query, _ = strings.Cut(query, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(key)
		if err != nil || key != name {
			continue
		}
		if value, err = url.QueryUnescape(value); err != nil {
			continue
		}
		return value
	}
	return ""
}

// writeBrokerError answers a broker's error as brokerapi's handlers do:
// a FailureResponse with its status and body, anything else 500 with the
// error's text.
func writeBrokerError(w http.ResponseWriter, err error) int {
	status, body := http.StatusInternalServerError, any(apiresponses.ErrorResponse{Description: err.Error()})
	if fr, ok := err.(*apiresponses.FailureResponse); ok { // brokerapi's own test: the type, not the chain
		status, body = fr.ValidatedStatusCode(nil), fr.ErrorResponse()
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body) // a write error means the client left
	return status
}
