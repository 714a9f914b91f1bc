package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

const (
	minAPIMinor = 13 // 2.13: the oldest version whose behaviour we rely on
	maxAPIMinor = 17 // 2.17: the spec we implement
	maxIDBytes  = 255
)

// middleware is the usual net/http decorator.
type middleware func(http.Handler) http.Handler

// chain applies mws so that mws[0] runs first.
func chain(h http.Handler, mws ...middleware) http.Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// statusRecorder remembers the status written, for the access log and for
// deciding whether a panic can still be answered with a clean 500.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 && code >= http.StatusOK { // 1xx are informational, not the answer
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
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
// platform with a reset connection and no explanation. It wraps the whole
// root router, so it covers /v2, health and whatever Extra mounts.
func (h *handler) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p) // a deliberate abort; net/http handles it quietly
			}
			requestID := w.Header().Get(headerRequestID)
			h.logger.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.EscapedPath()),
				slog.String("request_id", requestID),
				slog.Any("panic", p),
				slog.String("stack", string(debug.Stack())),
			)
			if rec.status != 0 {
				// Too late for a clean 500. Aborting makes the client see a
				// broken response instead of a truncated one that looks whole.
				panic(http.ErrAbortHandler)
			}
			// Drop whatever the failed handler set (Content-Type, Retry-After)
			// but keep the request id the 500 cites.
			keep := http.CanonicalHeaderKey(headerRequestID)
			for k := range w.Header() {
				if k != keep {
					delete(w.Header(), k)
				}
			}
			writeError(w, http.StatusInternalServerError, "internal error in the broker; quote the request id when reporting it")
		}()
		next.ServeHTTP(rec, r)
	})
}

// withRequestID runs first on /v2, so every answer after it, errors from
// our own middleware included, echoes the request identity.
func (h *handler) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(headerRequestID)
		if id == "" {
			id = newRequestID()
			// brokerapi reads the header into its own context key; setting it
			// here keeps its logs and ours on one id.
			r.Header.Set(headerRequestID, id)
		}
		w.Header().Set(headerRequestID, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// withOriginatingIdentity parses the platform user once, at the edge. A
// malformed header is a platform bug, not the app developer's: the spec
// says not to fail the request for it, so it is logged and dropped.
func (h *handler) withOriginatingIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get(headerOriginatingIdentity)
		if header == "" {
			next.ServeHTTP(w, r)
			return
		}
		id, err := parseOriginatingIdentity(header)
		if err != nil {
			// The header value itself is not logged: it is user data of
			// unknown shape, and the error says what is wrong with it.
			h.logger.LogAttrs(r.Context(), slog.LevelWarn, "ignoring malformed "+headerOriginatingIdentity,
				slog.String("request_id", RequestID(r.Context())),
				slog.String("error", err.Error()),
			)
			next.ServeHTTP(w, r)
			return
		}
		if id.UserID == "" && (id.Platform == platformCloudFoundry || id.Platform == platformKubernetes) {
			h.logger.LogAttrs(r.Context(), slog.LevelWarn, headerOriginatingIdentity+" names no user",
				slog.String("request_id", RequestID(r.Context())),
				slog.String("platform", id.Platform),
			)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), originatingIdentityKey, id)))
	})
}

// withAccessLog logs each /v2 request once, when it completes. It sits
// outside auth so rejected requests are logged too.
func (h *handler) withAccessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		path := r.URL.EscapedPath() // captured now: guardIDs rewrites the URL for brokerapi
		rec := &statusRecorder{ResponseWriter: w}
		completed := false
		defer func() {
			status := rec.status
			if status == 0 {
				status = http.StatusOK // a handler that wrote nothing
				if !completed {
					status = http.StatusInternalServerError // panicking: recoverPanics answers 500
				}
			}
			h.requestDone(r, path, status, time.Since(start))
		}()
		next.ServeHTTP(rec, r)
		completed = true
	})
}

// requestDone is the one place a finished /v2 request is reported.
//
// Metrics seam: when metrics land, add an observer to Options and call it
// here with method, route shape and status next to the log line; every /v2
// request, rejected ones included, passes through.
func (h *handler) requestDone(r *http.Request, path string, status int, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", path),
		slog.Int("status", status),
		slog.Duration("duration", took),
		slog.String("request_id", RequestID(r.Context())),
	}
	if id, ok := OriginatingIdentityFrom(r.Context()); ok {
		attrs = append(attrs, slog.String("platform", id.Platform), slog.String("user", id.UserID))
	}
	h.logger.LogAttrs(r.Context(), slog.LevelInfo, "osb request", attrs...)
}

// credentialDigest holds sha256 digests so comparisons are of fixed length
// and leak neither the length nor the content of a configured secret.
type credentialDigest struct {
	username, password [sha256.Size]byte
}

func digestCredentials(creds []Credential) []credentialDigest {
	out := make([]credentialDigest, len(creds))
	for i, c := range creds {
		out[i] = credentialDigest{sha256.Sum256([]byte(c.Username)), sha256.Sum256([]byte(c.Password))}
	}
	return out
}

// authorized compares against every pair without stopping early, so the
// time taken does not reveal which pair (or which half) matched.
func (h *handler) authorized(username, password string) bool {
	u := sha256.Sum256([]byte(username))
	p := sha256.Sum256([]byte(password))
	match := 0
	for _, c := range h.credentials {
		match |= subtle.ConstantTimeCompare(u[:], c.username[:]) & subtle.ConstantTimeCompare(p[:], c.password[:])
	}
	return match == 1
}

func (h *handler) requireAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		username, password, ok := r.BasicAuth()
		if !ok || !h.authorized(username, password) {
			w.Header().Set("WWW-Authenticate", `Basic realm="agora"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong broker credentials (HTTP basic auth)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireAPIVersion enforces 2.13–2.17. brokerapi only insists on 2.x,
// which would let a 2.18 platform assume behaviour we do not implement.
func (h *handler) requireAPIVersion(next http.Handler) http.Handler {
	const supported = "this broker supports X-Broker-API-Version 2.13 to 2.17"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("X-Broker-API-Version")
		if v == "" {
			writeError(w, http.StatusPreconditionFailed, "X-Broker-API-Version header is missing; "+supported)
			return
		}
		major, minor, ok := parseAPIVersion(v)
		if !ok || major != 2 || minor < minAPIMinor || minor > maxAPIMinor {
			writeError(w, http.StatusPreconditionFailed, fmt.Sprintf("X-Broker-API-Version %q is not supported; %s", v, supported))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// parseAPIVersion accepts exactly "<digits>.<digits>".
func parseAPIVersion(v string) (major, minor int, ok bool) {
	majorText, minorText, found := strings.Cut(v, ".")
	if !found || !allDigits(majorText) || !allDigits(minorText) {
		return 0, 0, false
	}
	major, errMajor := strconv.Atoi(majorText)
	minor, errMinor := strconv.Atoi(minorText)
	return major, minor, errMajor == nil && errMinor == nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// guardIDs rejects odd instance and binding IDs before brokerapi sees them,
// because they end up in Redis keys, Vault paths and backend resource
// names, where "..", "/" or a control character does damage. It also hands
// brokerapi the decoded path: chi routes on RawPath when there is one, and
// would otherwise give the broker "a%41" where the platform meant "aA".
func (h *handler) guardIDs(next http.Handler) http.Handler {
	const prefix = "/v2/service_instances/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		escaped := r.URL.EscapedPath()
		rest, found := strings.CutPrefix(escaped, prefix)
		if !found {
			next.ServeHTTP(w, r)
			return
		}
		segments := strings.Split(rest, "/")
		var ids []idSegment
		switch {
		case len(segments) == 1,
			len(segments) == 2 && segments[1] == "last_operation":
			ids = []idSegment{{"instance", segments[0]}}
		case len(segments) == 3 && segments[1] == "service_bindings",
			len(segments) == 4 && segments[1] == "service_bindings" && segments[3] == "last_operation":
			ids = []idSegment{{"instance", segments[0]}, {"binding", segments[2]}}
		default:
			next.ServeHTTP(w, r) // not an OSB route; brokerapi answers 404/405
			return
		}
		for _, id := range ids {
			if err := validateID(id.raw); err != nil {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("%s ID %s", id.kind, err))
				return
			}
		}
		if r.URL.RawPath != "" {
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

type idSegment struct {
	kind string // "instance" or "binding", for the error message
	raw  string // still percent-encoded
}

// validateID returns why the percent-encoded path segment is not a usable
// ID; the result completes "instance ID ...".
func validateID(escaped string) error {
	id, err := url.PathUnescape(escaped)
	switch {
	case err != nil:
		return fmt.Errorf("is not validly percent-encoded: %w", err)
	case id == "":
		return errors.New("is empty")
	case len(id) > maxIDBytes:
		return fmt.Errorf("is %d bytes long; the limit is %d", len(id), maxIDBytes)
	case id == "." || id == "..":
		return fmt.Errorf("%q is not allowed", id)
	case strings.Contains(id, "/"):
		return errors.New(`contains "/" (sent as %2F)`)
	case !utf8.ValidString(id):
		return errors.New("is not valid UTF-8")
	case strings.ContainsFunc(id, unicode.IsControl):
		return errors.New("contains a control character")
	}
	return nil
}

// guardBody checks PUT and PATCH bodies before brokerapi decodes them.
// brokerapi answers a bad body with 422 and Go decoder text, and silently
// ignores trailing garbage; the platform deserves a 4xx that says what is
// wrong, and the broker a body that is exactly one JSON object.
func (h *handler) guardBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut && r.Method != http.MethodPatch {
			next.ServeHTTP(w, r) // GET and DELETE bodies mean nothing in OSB
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mediaType, _, err := mime.ParseMediaType(ct)
			if err != nil || mediaType != "application/json" {
				writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not supported; send application/json", ct))
				return
			}
		}
		tooLarge := fmt.Sprintf("request body is larger than %d bytes", h.maxBodyBytes)
		if r.ContentLength > h.maxBodyBytes {
			writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		// MaxBytesReader also tells the server to close the connection
		// rather than drain an oversized body.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBodyBytes))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				writeError(w, http.StatusRequestEntityTooLarge, tooLarge)
				return
			}
			writeError(w, http.StatusBadRequest, "could not read the request body: "+err.Error())
			return
		}
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) == 0 {
			writeError(w, http.StatusBadRequest, "request body is empty; "+r.Method+" needs a JSON object")
			return
		}
		// Unmarshal rejects syntax errors and anything after the first value.
		if err := json.Unmarshal(trimmed, new(json.RawMessage)); err != nil {
			writeError(w, http.StatusBadRequest, "request body is not valid JSON: "+err.Error())
			return
		}
		if trimmed[0] != '{' {
			writeError(w, http.StatusBadRequest, "request body is not valid JSON: want a single JSON object")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// withRetryAfter tells the platform how long to wait between last_operation
// polls. Only a 200 gets it: on a 404 or 410 it would invite a pointless
// retry.
func (h *handler) withRetryAfter(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/last_operation") {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&retryAfterWriter{ResponseWriter: w, seconds: h.retryAfterSeconds}, r)
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
