package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// observed is one RequestDone call.
type observed struct {
	surface, endpoint, method, instance string
	principal                           requestinfo.Principal
	platform                            string
	status                              int
}

type recordingObserver struct {
	mu   sync.Mutex
	seen []observed
}

func (o *recordingObserver) RequestDone(info *requestinfo.Info, method string, status int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	got := observed{surface: string(info.Surface), endpoint: info.Endpoint, method: method, instance: info.Resource["instance_id"], principal: info.Principal, status: status}
	if info.Originating != nil {
		got.platform = info.Originating.Platform
	}
	o.seen = append(o.seen, got)
}

func (o *recordingObserver) all() []observed {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observed(nil), o.seen...)
}

// pollCase is one request of the OSB rules a poll must keep, and what
// both paths must answer.
type pollCase struct {
	name   string
	target string
	opts   []reqOption
	want   int
}

var pollCases = []pollCase{
	{"in progress", "/v2/service_instances/i1/last_operation", nil, http.StatusOK},
	{"operation asked for", "/v2/service_instances/i1/last_operation?operation=op-1&plan_id=plan", nil, http.StatusOK},
	{"operation encoded, repeated", "/v2/service_instances/i1/last_operation?operation=op%2F2&operation=op-3", nil, http.StatusOK},
	{"gone", "/v2/service_instances/" + missingID + "/last_operation", nil, http.StatusGone},
	{"not found", "/v2/service_instances/" + unknownID + "/last_operation", nil, http.StatusNotFound},
	{"store down", "/v2/service_instances/" + brokenID + "/last_operation", nil, http.StatusServiceUnavailable},
	{"plain error", "/v2/service_instances/" + plainErrorID + "/last_operation", nil, http.StatusInternalServerError},
	{"panic", "/v2/service_instances/" + panicID + "/last_operation", nil, http.StatusInternalServerError},
	{"no auth", "/v2/service_instances/i1/last_operation", []reqOption{withoutHeader("Authorization")}, http.StatusUnauthorized},
	{"wrong password", "/v2/service_instances/i1/last_operation", []reqOption{withAuth(testUser, "nope")}, http.StatusUnauthorized},
	{"rotated credentials", "/v2/service_instances/i1/last_operation", []reqOption{withAuth("rotated", "next-pass")}, http.StatusOK},
	{"no version", "/v2/service_instances/i1/last_operation", []reqOption{withoutHeader(headerAPIVersion)}, http.StatusPreconditionFailed},
	{"version 2.12", "/v2/service_instances/i1/last_operation", []reqOption{withHeader(headerAPIVersion, "2.12")}, http.StatusPreconditionFailed},
	{"version 2.18", "/v2/service_instances/i1/last_operation", []reqOption{withHeader(headerAPIVersion, "2.18")}, http.StatusPreconditionFailed},
	{"version 3.0", "/v2/service_instances/i1/last_operation", []reqOption{withHeader(headerAPIVersion, "3.0")}, http.StatusPreconditionFailed},
	{"version garbage", "/v2/service_instances/i1/last_operation", []reqOption{withHeader(headerAPIVersion, "two")}, http.StatusPreconditionFailed},
	{"version 2.13", "/v2/service_instances/i1/last_operation", []reqOption{withHeader(headerAPIVersion, "2.13")}, http.StatusOK},
	{"version 2.17", "/v2/service_instances/i1/last_operation", []reqOption{withHeader(headerAPIVersion, "2.17")}, http.StatusOK},
	{"no auth before version", "/v2/service_instances/i1/last_operation", []reqOption{withoutHeader("Authorization"), withoutHeader(headerAPIVersion)}, http.StatusUnauthorized},
	{"id ..", "/v2/service_instances/../last_operation", nil, http.StatusBadRequest},
	{"id empty", "/v2/service_instances//last_operation", nil, http.StatusBadRequest},
	{"id with %2F", "/v2/service_instances/a%2Fb/last_operation", nil, http.StatusBadRequest},
	{"id with a control character", "/v2/service_instances/a%00b/last_operation", nil, http.StatusBadRequest},
	{"id too long", "/v2/service_instances/" + strings.Repeat("x", 256) + "/last_operation", nil, http.StatusBadRequest},
	{"id percent-encoded", "/v2/service_instances/a%41%20b/last_operation", nil, http.StatusOK},
	{"id unicode", "/v2/service_instances/%C3%A9t%C3%A9/last_operation", nil, http.StatusOK},
	{"body too large", "/v2/service_instances/i1/last_operation", []reqOption{func(r *http.Request) { r.ContentLength = 1 << 30 }}, http.StatusRequestEntityTooLarge},
	{"originating identity", "/v2/service_instances/i1/last_operation", []reqOption{withHeader(headerOriginatingIdentity, encodeIdentity("cloudfoundry", `{"user_id":"u-1"}`))}, http.StatusOK},
	{"malformed originating identity", "/v2/service_instances/i1/last_operation", []reqOption{withHeader(headerOriginatingIdentity, "cloudfoundry !!!")}, http.StatusOK},
	{"catalog", "/v2/catalog", nil, http.StatusOK},
	{"catalog, no auth", "/v2/catalog", []reqOption{withoutHeader("Authorization")}, http.StatusUnauthorized},
	{"catalog, version 2.12", "/v2/catalog", []reqOption{withHeader(headerAPIVersion, "2.12")}, http.StatusPreconditionFailed},
	{"catalog, body too large", "/v2/catalog", []reqOption{func(r *http.Request) { r.ContentLength = 1 << 30 }}, http.StatusRequestEntityTooLarge},
}

// answer is what a client and the operator see of one request.
type answer struct {
	status                                           int
	body, contentType, retryAfter, wwwAuth, echoedID string
	calls                                            []seenCall
	operation                                        string
	logged                                           []map[string]any
	panics                                           int
	observed                                         []observed
}

func serveOn(t *testing.T, p path, tc pollCase, requestID string) answer {
	t.Helper()
	obs := &recordingObserver{}
	env := newPathEnv(t, p, func(o *Options) { o.Observer = obs })
	w := env.serve(osbRequest(http.MethodGet, tc.target, "", append([]reqOption{withHeader(headerRequestID, requestID)}, tc.opts...)...))
	a := answer{
		status: w.Code, body: w.Body.String(), contentType: w.Header().Get("Content-Type"),
		retryAfter: w.Header().Get("Retry-After"), wwwAuth: w.Header().Get("WWW-Authenticate"), echoedID: w.Header().Get(headerRequestID),
		calls: env.broker.Calls(), operation: env.broker.lastOperation(), observed: obs.all(),
	}
	for _, rec := range env.logs.records(t, "request") {
		delete(rec, "time")
		delete(rec, "duration_ms")
		a.logged = append(a.logged, rec)
	}
	a.panics = len(env.logs.records(t, "panic serving request"))
	for _, c := range a.calls {
		if c.requestID != requestID && requestID != "" {
			t.Errorf("%s path: the broker saw request id %q, want %q", p, c.requestID, requestID)
		}
	}
	return a
}

// TestPollsAnswerAlikeOnBothPaths runs the OSB rules of a poll and of the
// catalog against the chain (brokerapi) and the fast path, and wants the
// same answer from both: status, body, headers, what the broker was
// asked, the access log line and what the Observer was told.
func TestPollsAnswerAlikeOnBothPaths(t *testing.T) {
	for _, tc := range pollCases {
		t.Run(tc.name, func(t *testing.T) {
			slow := serveOn(t, slowPath, tc, "rid-1")
			fast := serveOn(t, fastPath, tc, "rid-1")
			if slow.status != tc.want || fast.status != tc.want {
				t.Fatalf("status chain %d, fast %d, want %d; bodies %q, %q", slow.status, fast.status, tc.want, slow.body, fast.body)
			}
			for _, diff := range []struct{ what, slow, fast string }{
				{"body", slow.body, fast.body},
				{"Content-Type", slow.contentType, fast.contentType},
				{"Retry-After", slow.retryAfter, fast.retryAfter},
				{"WWW-Authenticate", slow.wwwAuth, fast.wwwAuth},
				{"echoed request id", slow.echoedID, fast.echoedID},
				{"operation asked for", slow.operation, fast.operation},
				{"broker calls", callsText(slow.calls), callsText(fast.calls)},
				{"access log", logText(slow.logged), logText(fast.logged)},
				{"observer", observedText(slow.observed), observedText(fast.observed)},
				{"panic log lines", strconv.Itoa(slow.panics), strconv.Itoa(fast.panics)},
			} {
				if diff.slow != diff.fast {
					t.Errorf("%s differs:\n chain %s\n fast  %s", diff.what, diff.slow, diff.fast)
				}
			}
			if len(fast.logged) != 1 || len(fast.observed) != 1 {
				t.Errorf("fast path: %d access log lines and %d observer calls, want one each", len(fast.logged), len(fast.observed))
			}
			if fast.status == http.StatusOK && tc.target != "/v2/catalog" && fast.retryAfter != "5" {
				t.Errorf("a 200 poll's Retry-After = %q, want 5", fast.retryAfter)
			}
			agoraSaid := fast.status != http.StatusGone && fast.status >= 400 && !strings.Contains(tc.target, brokenID) && !strings.Contains(tc.target, plainErrorID)
			if agoraSaid && !strings.Contains(fast.body, "rid-1") {
				t.Errorf("error body %q does not cite the request id", fast.body)
			}
		})
	}
}

// Without a request id from the platform both paths make one up for the
// log line, and send it back only with an error answer, whose body cites it.
func TestOwnRequestIDIsSentOnlyWithErrors(t *testing.T) {
	for _, p := range []path{slowPath, fastPath} {
		for _, target := range []string{"/v2/service_instances/i1/last_operation", "/v2/service_instances/" + unknownID + "/last_operation", "/v2/catalog"} {
			a := serveOn(t, p, pollCase{target: target}, "")
			if len(a.logged) != 1 || !uuidPattern.MatchString(stringOf(a.logged[0]["request_id"])) {
				t.Fatalf("%s path %s: access log %v, want one line with a generated request id", p, target, a.logged)
			}
			made := stringOf(a.logged[0]["request_id"])
			switch {
			case a.status == http.StatusOK && a.echoedID != "":
				t.Errorf("%s path %s: a 200 carries request id %q the platform never sent", p, target, a.echoedID)
			case a.status != http.StatusOK && a.echoedID != made:
				t.Errorf("%s path %s: error answer carries request id %q, the log line %q", p, target, a.echoedID, made)
			case a.status != http.StatusOK && !strings.Contains(a.body, made):
				t.Errorf("%s path %s: body %q does not cite %q", p, target, a.body, made)
			}
		}
	}
}

// The fast path is taken only for what it serves; the rest reaches the
// chain, and brokerapi answers polls of a broker without ready answers.
func TestFastPathServesOnlyPollsAndTheCatalog(t *testing.T) {
	env := newPathEnv(t, fastPath, nil)
	for _, tc := range []struct {
		method, target string
		wantMethod     string
	}{
		{http.MethodGet, "/v2/service_instances/i1/last_operation", "LastOperation"},
		{http.MethodGet, "/v2/service_instances/i1/service_bindings/b1/last_operation", "LastBindingOperation"},
		{http.MethodGet, "/v2/service_instances/i1", "GetInstance"},
		{http.MethodDelete, "/v2/service_instances/i1/last_operation", ""},
	} {
		before := len(env.broker.Calls())
		w := env.serve(osbRequest(tc.method, tc.target, ""))
		calls := env.broker.Calls()[before:]
		got := ""
		if len(calls) > 0 {
			got = calls[0].method
		}
		if got != tc.wantMethod {
			t.Errorf("%s %s reached %q (status %d), want %q", tc.method, tc.target, got, w.Code, tc.wantMethod)
		}
	}
	if w := env.serve(osbRequest(http.MethodDelete, "/v2/service_instances/i1/last_operation", "")); w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusNotFound {
		t.Errorf("DELETE last_operation = %d, want the chain's 404 or 405", w.Code)
	}
}

// The catalog's Content-Length follows a swapped catalog.
func TestFastCatalogFollowsASwap(t *testing.T) {
	current := []byte(testCatalog)
	var mu sync.Mutex
	env := newTestEnv(t, func(o *Options) {
		o.CatalogJSON = func() []byte { mu.Lock(); defer mu.Unlock(); return current }
	})
	for _, next := range []string{testCatalog, `{"services":[]}`, `{"services":[] }`} {
		mu.Lock()
		current = []byte(next)
		mu.Unlock()
		w := env.serve(osbRequest(http.MethodGet, "/v2/catalog", ""))
		if w.Body.String() != next || w.Header().Get("Content-Length") != strconv.Itoa(len(next)) {
			t.Errorf("catalog %q with Content-Length %s, want %q with %d", w.Body, w.Header().Get("Content-Length"), next, len(next))
		}
	}
}

// A poll's answer reaches the platform with its Content-Length (not
// chunked): the fast path leaves counting it to net/http.
func TestFastPollHasContentLength(t *testing.T) {
	env := newPathEnv(t, fastPath, nil)
	srv := httptest.NewServer(env.handler)
	t.Cleanup(srv.Close)
	req := osbRequest(http.MethodGet, srv.URL+"/v2/service_instances/i1/last_operation", "")
	req.RequestURI = ""
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 {
		t.Errorf("poll: %d, Content-Length %d, Transfer-Encoding %v, body %d bytes", resp.StatusCode, resp.ContentLength, resp.TransferEncoding, len(body))
	}
}

func callsText(calls []seenCall) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.method + " " + c.instanceID + " " + c.requestID)
		if c.identity != nil {
			b.WriteString(" " + c.identity.Platform + ":" + c.identity.UserID)
		}
		b.WriteString("; ")
	}
	return b.String()
}

func logText(records []map[string]any) string {
	var b strings.Builder
	for _, r := range records {
		for _, k := range []string{"level", "surface", "endpoint", "method", "path", "status", "request_id", "principal", "platform", "user", "error", "error_code", "owner"} {
			if v, ok := r[k]; ok {
				b.WriteString(k + "=" + strings.TrimSpace(strings.ReplaceAll(stringOf(v), "\n", " ")) + " ")
			}
		}
		b.WriteString("; ")
	}
	return b.String()
}

func stringOf(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.Itoa(int(v))
	}
	return "?"
}

func observedText(seen []observed) string {
	var b strings.Builder
	for _, o := range seen {
		b.WriteString(o.surface + " " + o.endpoint + " " + o.method + " " + o.instance + " " + string(o.principal.Kind) + ":" + o.principal.Name + " " + o.platform + " " + strconv.Itoa(o.status) + "; ")
	}
	return b.String()
}

// BenchmarkPoll and BenchmarkCatalog report a request's CPU and
// allocations on each path (in process, no network): go test -bench
// 'Poll|Catalog' -benchmem ./broker/httpapi/.
func BenchmarkPoll(b *testing.B) {
	for _, p := range []path{slowPath, fastPath} {
		b.Run(string(p), func(b *testing.B) {
			env := newPathEnv(b, p, func(o *Options) { o.Logger = discardLogger() })
			benchmarkRequest(b, env.handler, "/v2/service_instances/i1/last_operation?operation=op-1")
		})
	}
}

func BenchmarkCatalog(b *testing.B) {
	b.Run("agora", func(b *testing.B) {
		env := newTestEnv(b, func(o *Options) { o.Logger = discardLogger() })
		benchmarkRequest(b, env.handler, "/v2/catalog")
	})
	// The floor: the same bytes behind the same basic auth, and nothing
	// else (tools/bench measures against it over HTTP).
	b.Run("floor", func(b *testing.B) {
		auth := NewBasicAuth([]Credential{{Username: testUser, Password: testPassword}})
		body := []byte(testCatalog)
		length := strconv.Itoa(len(body))
		benchmarkRequest(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || !auth.Match(u, p) {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", length)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body)
		}), "/v2/catalog")
	})
}

func benchmarkRequest(b *testing.B, h http.Handler, target string) {
	req := osbRequest(http.MethodGet, target, "")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
	}
}

// discardWriter is the cheapest ResponseWriter, so the benchmark counts
// the handler's allocations, not a recorder's.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }

// The lookup spellings must be what net/http makes of the spec's.
func TestCanonicalHeaderNames(t *testing.T) {
	for spec, canonical := range map[string]string{
		headerRequestID: canonicalRequestID, headerAPIVersion: canonicalAPIVersion, headerOriginatingIdentity: canonicalOriginatingIdentity,
	} {
		if got := http.CanonicalHeaderKey(spec); got != canonical {
			t.Errorf("CanonicalHeaderKey(%q) = %q, the constant says %q", spec, got, canonical)
		}
	}
}

// queryValue must read the query as brokerapi's FormValue does.
func TestQueryValueIsParseQuerys(t *testing.T) {
	for _, q := range []string{
		"", "operation=op-1", "plan_id=p&operation=op-1", "operation=a&operation=b", "operation=", "operation",
		"operation=a%2Fb", "operation=a+b", "op%65ration=x", "operation=%zz&operation=ok", "%zz=1&operation=ok",
		"operation=a;b&operation=c", "a=1;operation=x", "&&operation=x&", "operation=x=y", "OPERATION=x", "operation=%E2%9C%93",
	} {
		want := ""
		if v, _ := url.ParseQuery(q); v != nil {
			want = v.Get("operation")
		}
		if got := queryValue(q, "operation"); got != want {
			t.Errorf("queryValue(%q) = %q, ParseQuery says %q", q, got, want)
		}
	}
}

// checkingObserver fails when the Info it is told about is not the one of
// the request it reports: the request id each request sent names its
// instance, so a reused Info (returned to the pool too early, or read
// by two requests at once) shows up as a mismatch, and under -race as a
// data race.
type checkingObserver struct {
	t    *testing.T
	mu   sync.Mutex
	seen int
}

func (o *checkingObserver) RequestDone(info *requestinfo.Info, _ string, _ int, _ time.Duration) {
	want := ""
	switch info.Endpoint {
	case EndpointCatalog:
		want = "rid-catalog"
		if len(info.Resource) != 0 {
			o.t.Errorf("catalog request %s: resource %v", info.ID, info.Resource)
		}
	case EndpointLastOperation:
		want = "rid-" + info.Resource["instance_id"]
	}
	if !strings.HasPrefix(info.ID, want+"-") || info.Principal.Kind != requestinfo.PrincipalPlatform {
		o.t.Errorf("observer got request %q principal %v for %s %v", info.ID, info.Principal, info.Endpoint, info.Resource)
	}
	o.mu.Lock()
	o.seen++
	o.mu.Unlock()
}

// TestFastPathReusesNoInfoInFlight runs catalog requests and polls at
// once; each request's Info must stay its own until its observer ran.
func TestFastPathReusesNoInfoInFlight(t *testing.T) {
	obs := &checkingObserver{t: t}
	env := newPathEnv(t, fastPath, func(o *Options) { o.Observer = obs; o.Logger = discardLogger() })
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				target, rid := "/v2/catalog", "rid-catalog"
				if i%2 == 1 {
					instance := "inst-" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
					target, rid = "/v2/service_instances/"+instance+"/last_operation", "rid-"+instance
				}
				rid += "-" + strconv.Itoa(g*each+i)
				w := env.serve(osbRequest(http.MethodGet, target, "", withHeader(headerRequestID, rid)))
				if got := w.Header().Get(headerRequestID); got != rid {
					t.Errorf("%s: request id %q echoed as %q", target, rid, got)
				}
			}
		}()
	}
	wg.Wait()
	if obs.seen != workers*each {
		t.Fatalf("observer told of %d requests, want %d", obs.seen, workers*each)
	}
}

// The echoed request id shares the request's header slice; adding to
// the answer's header must not write into the request's.
func TestRequestIDEchoLeavesTheRequestAlone(t *testing.T) {
	for _, p := range []path{slowPath, fastPath} {
		env := newPathEnv(t, p, nil)
		req := osbRequest(http.MethodGet, "/v2/catalog", "")
		req.Header[canonicalRequestID] = []string{"first", "second"}
		w := env.serve(req)
		if got := w.Header()[canonicalRequestID]; len(got) != 1 || got[0] != "first" {
			t.Fatalf("%s: echoed %v, want [first]", p, got)
		}
		w.Header().Add(headerRequestID, "added")
		if got := req.Header[canonicalRequestID]; len(got) != 2 || got[0] != "first" || got[1] != "second" {
			t.Errorf("%s: request's ids became %v", p, got)
		}
	}
}

// The fast path makes the Date header itself, once a second; it must be
// what net/http would have sent, and one answer's header must not leak
// into another's.
func TestFastPathDateHeader(t *testing.T) {
	env := newPathEnv(t, fastPath, nil)
	before := time.Now().Truncate(time.Second)
	first := env.serve(osbRequest(http.MethodGet, "/v2/catalog", ""))
	first.Header().Add("Date", "changed by a handler")
	second := env.serve(osbRequest(http.MethodGet, "/v2/catalog", ""))
	after := time.Now()
	for i, w := range []*httptest.ResponseRecorder{first, second} {
		dates := w.Header()["Date"]
		if i == 1 && len(dates) != 1 {
			t.Fatalf("answer %d: Date %q, want one value", i, dates)
		}
		got, err := http.ParseTime(dates[0])
		if err != nil || dates[0] != got.UTC().Format(http.TimeFormat) || got.Before(before) || got.After(after) {
			t.Errorf("answer %d: Date %q (%v), want net/http's format between %s and %s", i, dates[0], err, before, after)
		}
	}
}
