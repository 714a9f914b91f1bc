package marketplace

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"golang.org/x/net/html"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/broker/requestinfo"
	"github.com/agora-osb/agora/producers"
)

const (
	adaToken = "agp_ada_c2VjcmV0LXRva2VuLW9mLWFkYQ"
	bobToken = "agp_bob_c2VjcmV0LXRva2VuLW9mLWJvYg"
	zedToken = "agp_zed_c2VjcmV0LXRva2VuLW9mLXplZA"
)

// fakeProducers knows three tokens (zed's is suspended) and ada's
// failures.
type fakeProducers struct {
	err error // Redis down
	// reads records what Operations was asked for, to prove the read is
	// one bounded page.
	reads []string
}

func (f *fakeProducers) Authenticate(_ context.Context, token string) (producers.Producer, error) {
	if f.err != nil {
		return producers.Producer{}, producers.Unavailable(f.err, "Redis is unavailable")
	}
	switch token {
	case adaToken:
		return producers.Producer{Name: "ada", State: producers.StateActive}, nil
	case bobToken:
		return producers.Producer{Name: "bob", State: producers.StateActive}, nil
	case zedToken:
		return producers.Producer{Name: "zed", State: producers.StateSuspended}, nil
	}
	return producers.Producer{}, producers.Fail(producers.ErrUnauthenticated, "the token is not valid")
}

func (f *fakeProducers) Operations(_ context.Context, name string, failedOnly bool, cursor string, limit int) (*producers.OperationPage, error) {
	f.reads = append(f.reads, name)
	if !failedOnly || cursor != "" || limit != failurePageInstances {
		return nil, errors.New("the page reads one bounded page of failures")
	}
	page := &producers.OperationPage{Operations: []producers.OperationView{}}
	if name == "ada" {
		page.Operations = append(page.Operations, producers.OperationView{
			ID: "op-1", Kind: "provision", State: "failed", Offering: "ada-files", InstanceID: "inst-ada-1",
			Description: `quota exceeded <img src=x onerror="window.agoraPwned=4">`, UpdatedAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		})
	}
	return page, nil
}

type fakeCalls map[string][2]int64

func (f fakeCalls) Recent(_, offering string) (int64, int64) { c := f[offering]; return c[0], c[1] }
func (fakeCalls) Window() time.Duration                      { return 15 * time.Minute }

type fakeCanary map[string]CanaryResult

func (f fakeCanary) LastResults(context.Context) (map[string]CanaryResult, error) { return f, nil }

var testNow = time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)

func testCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	reg, err := adapters.NewRegistry(memadapter.Factory(nil))
	if err != nil {
		t.Fatal(err)
	}
	f, err := catalog.ParseFile("testdata/catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Build(context.Background(), catalog.BuildOptions{Registry: reg}, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cat.Close() })
	return cat
}

// testOptions is every source wired, as internal/app does.
func testOptions(t *testing.T, cat *catalog.Catalog) Options {
	return Options{
		Catalog:   func() *catalog.Catalog { return cat },
		Admins:    httpapi.NewBasicAuth([]httpapi.Credential{{Username: "admin", Password: "admin-pass"}}),
		Viewers:   httpapi.NewBasicAuth([]httpapi.Credential{{Username: "browse", Password: "browse-pass"}}),
		Producers: &fakeProducers{},
		Counts: func(context.Context) ([]PlanCount, error) {
			ada, _ := cat.Offering(catalog.DeriveOfferingID("ada", "ada-files"))
			bob, _ := cat.Offering(catalog.DeriveOfferingID("bob", "bob-queues"))
			return []PlanCount{
				{ServiceID: ada.ID, PlanID: ada.Plans[0].ID, Instances: 7, Bindings: 3},
				{ServiceID: bob.ID, PlanID: bob.Plans[0].ID, Instances: 41, Bindings: 0},
			}, nil
		},
		Calls:  fakeCalls{"ada-files": {40, 2}, "bob-queues": {0, 0}},
		Canary: fakeCanary{catalog.DeriveOfferingID("ada", "ada-files"): {At: testNow.Add(-4 * time.Minute), Passed: false, Summary: "unbind left <b>access</b>"}},
		Now:    func() time.Time { return testNow },
	}
}

// serve mounts the page's routes the way the edge does (route variables,
// a request Info, the route's auth) and answers one request.
func serve(t *testing.T, opts Options, r *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	root := mux.NewRouter()
	root.SkipClean(true) // as httpapi's root router
	root.UseEncodedPath()
	for _, rt := range p.Routes() {
		h := rt.Handler
		if rt.Auth != nil {
			h = rt.Auth(h)
		}
		withInfo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info := &requestinfo.Info{ID: "req-1", Surface: rt.Surface, Endpoint: rt.Endpoint}
			h.ServeHTTP(w, r.WithContext(requestinfo.With(r.Context(), info)))
		})
		root.Handle(rt.Path, withInfo).Methods(rt.Method)
	}
	w := httptest.NewRecorder()
	root.ServeHTTP(w, r)
	return w
}

func get(path string, auth func(*http.Request)) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if auth != nil {
		auth(r)
	}
	return r
}

func basic(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func bearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// page is a rendered page, parsed.
type page struct {
	body string
	doc  *html.Node
}

func parse(t *testing.T, w *httptest.ResponseRecorder) page {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	doc, err := html.Parse(strings.NewReader(w.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	return page{body: w.Body.String(), doc: doc}
}

// all returns the elements of the page for which match holds.
func (p page) all(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for n := range p.doc.Descendants() {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
	}
	return out
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func hasAttr(key, value string) func(*html.Node) bool {
	return func(n *html.Node) bool { v, ok := attr(n, key); return ok && v == value }
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// one returns the text of the one element match finds.
func (p page) one(t *testing.T, what string, match func(*html.Node) bool) string {
	t.Helper()
	found := p.all(match)
	if len(found) != 1 {
		t.Fatalf("%s: found %d elements, want 1", what, len(found))
	}
	return text(found[0])
}

func TestPageShowsEveryOfferingAndPlan(t *testing.T) {
	cat := testCatalog(t)
	p := parse(t, serve(t, testOptions(t, cat), get("/marketplace", basic("browse", "browse-pass"))))

	for _, want := range []struct{ what, id, text string }{
		{"ada's producer contact", "producer-ada", "Contact: ada@example.com <ada's on-call>"},
		{"ada's display name", "offering-ada-files", "Ada's <b>Files</b>"},
		{"provider", "offering-ada-files", "Ada & Co"},
		{"maintenance version", "plan-ada-files-small", "1.2.3 Kernel patches."},
		{"plan bullets", "plan-ada-files-small", "<u>daily</u> backups"},
		{"plan costs", "plan-ada-files-small", "9 EUR, 10 USD MONTHLY"},
		{"the deprecated plan", "plan-ada-files-large", "deprecated"},
		{"its version", "plan-ada-files-large", "2.0.0"},
		{"bob's plan without a schema", "plan-bob-queues-basic", "No parameter schema"},
		{"bob's paid plan", "plan-bob-queues-basic", "paid"},
		{"bob's offering is not bindable", "offering-bob-queues", "Bindableno"},
		{"bob's plan changes", "offering-bob-queues", "Plan changesallowed"},
		{"a closed schema without parameters", "plan-bob-queues-pro", "Creating a binding: takes no parameters."},
	} {
		if got := p.one(t, want.what, hasAttr("id", want.id)); !strings.Contains(got, want.text) {
			t.Errorf("%s: #%s does not show %q:\n%s", want.what, want.id, want.text, got)
		}
	}
	if got := p.one(t, "the summary", hasAttr("class", "summary")); got != "2 offerings with 4 plans from 2 producers" {
		t.Errorf("summary %q", got)
	}
	if got := p.one(t, "withdrawn badges", hasAttr("class", "badge deprecated")); got != "deprecated" {
		t.Errorf("only the large plan is deprecated, and no offering withdrawn; got %q", got)
	}
}

func TestParameterDocumentation(t *testing.T) {
	cat := testCatalog(t)
	p := parse(t, serve(t, testOptions(t, cat), get("/marketplace", basic("browse", "browse-pass"))))
	rows := map[string][]string{}
	for _, tr := range p.all(func(n *html.Node) bool { _, ok := attr(n, "data-param"); return ok && n.Data == "tr" }) {
		name, _ := attr(tr, "data-param")
		var cells []string
		for td := range tr.ChildNodes() {
			if td.Type == html.ElementNode {
				cells = append(cells, strings.Join(strings.Fields(text(td)), " "))
			}
		}
		rows[name] = append(rows[name], strings.TrimSpace(strings.Join(cells, " | ")))
	}
	want := map[string][]string{
		// Create (required first), then update, then bind.
		"size_gb": {
			`size_gb required | integer | 5 | at least 1; at most 100 | Size in GB. </td></tr></table><script>window.agoraPwned=3</script> Example: 20`,
			`size_gb | integer | – | – |`,
		},
		"limits":           {`limits | object | – | – |`},
		"limits.max_files": {`limits.max_files | integer | – | more than 0 | Most files`},
		"tier":             {`tier | string | "standard" | "standard" "<fast>" |`},
		"read_only":        {`read_only | boolean | false | – |`},
	}
	for name, w := range want {
		if strings.Join(rows[name], "\n") != strings.Join(w, "\n") {
			t.Errorf("parameter %s:\n got %q\nwant %q", name, rows[name], w)
		}
	}
	if len(rows) != len(want) {
		t.Errorf("parameters %v, want exactly %v", rows, want)
	}
	for _, note := range []string{"Creating an instance", "Updating an instance", "Creating a binding", "Files area", "How big, and who may read it.", "Parameters not listed here are refused."} {
		if !strings.Contains(text(p.doc), note) {
			t.Errorf("the page does not say %q", note)
		}
	}
}

// TestProducersWordsAreText: every producer-supplied string reaches the
// browser as text. The only script is the page's own, the only links are
// http(s), and nothing of the adapter config is there.
func TestProducersWordsAreText(t *testing.T) {
	cat := testCatalog(t)
	w := serve(t, testOptions(t, cat), get("/marketplace", basic("ada", adaToken)))
	p := parse(t, w)

	scripts := p.all(func(n *html.Node) bool { return n.Data == "script" })
	if len(scripts) != 1 {
		t.Fatalf("%d script elements, want only the page's own", len(scripts))
	}
	if src, _ := attr(scripts[0], "src"); !strings.HasPrefix(src, "marketplace/assets/marketplace.js?v=") {
		t.Errorf("the one script is %q", src)
	}
	for _, tag := range []string{"img", "b", "u", "i", "fast"} {
		if n := p.all(func(n *html.Node) bool { return n.Data == tag }); len(n) > 0 {
			t.Errorf("a producer's <%s> became an element", tag)
		}
	}
	for _, n := range p.all(func(*html.Node) bool { return true }) {
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") {
				t.Errorf("<%s> has an event handler %s=%q", n.Data, a.Key, a.Val)
			}
		}
	}
	desc := p.one(t, "ada's description", func(n *html.Node) bool {
		c, _ := attr(n, "class")
		return c == "description" && n.Parent != nil && hasAttr("id", "offering-ada-files")(n.Parent)
	})
	if want := "Files per instance. <script>document.title=\"pwned\";window.agoraPwned=1</script>\nSecond line."; desc != want {
		t.Errorf("the description shows %q, want it as text: %q", desc, want)
	}
	if !strings.Contains(p.body, "&lt;script&gt;document.title=&#34;pwned&#34;") {
		t.Error("the description's <script> is not escaped in the HTML")
	}

	var hrefs []string
	for _, a := range p.all(func(n *html.Node) bool { return n.Data == "a" }) {
		href, _ := attr(a, "href")
		hrefs = append(hrefs, href)
		if strings.Contains(strings.ToLower(href), "javascript") {
			t.Errorf("a link to %q", href)
		}
	}
	if got := p.one(t, "the support link", hasAttr("href", "https://support.example.com/ada?x=1&y=2")); got != "https://support.example.com/ada?x=1&y=2" {
		t.Errorf("support link text %q (links %q)", got, hrefs)
	}
	if got := p.one(t, "the javascript: URL", hasAttr("class", "unsafe-link")); got != "javascript:alert(1)" {
		t.Errorf("the javascript: URL shows as %q, want it as text", got)
	}
	if got := p.one(t, "the failure", hasAttr("class", "why")); got != `quota exceeded <img src=x onerror="window.agoraPwned=4">` {
		t.Errorf("the failure's description shows %q", got)
	}
	if got := p.one(t, "the canary", hasAttr("data-canary", "failed")); got != "canary failed 4 min ago: unbind left <b>access</b>" {
		t.Errorf("canary %q", got)
	}
	for _, secret := range []string{"cfg-do-not-show", adaToken, "prefix", "memory"} {
		if strings.Contains(p.body, secret) {
			t.Errorf("the page shows %q (adapter config or a token)", secret)
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	cat := testCatalog(t)
	w := serve(t, testOptions(t, cat), get("/marketplace", basic("browse", "browse-pass")))
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

// TestAccess: who gets in, and who sees which counts and failures.
func TestAccess(t *testing.T) {
	cat := testCatalog(t)
	tests := []struct {
		name       string
		opts       func(*Options)
		auth       func(*http.Request)
		status     int
		principal  string
		counts     []string // offerings whose counts are shown
		failures   bool
		failReads  []string
		wantInBody string
	}{
		{name: "no credentials", status: http.StatusUnauthorized},
		{name: "wrong read-only password", auth: basic("browse", "nope"), status: http.StatusUnauthorized},
		{name: "read-only credential not configured", auth: basic("browse", "browse-pass"), opts: func(o *Options) { o.Viewers = nil }, status: http.StatusUnauthorized},
		{name: "read-only credential: the catalog, nobody's counts", auth: basic("browse", "browse-pass"), status: http.StatusOK, principal: "viewer browse"},
		{name: "admin: every offering's counts", auth: basic("admin", "admin-pass"), status: http.StatusOK, principal: "platform engineer admin",
			counts: []string{"ada-files", "bob-queues"}},
		{name: "a producer in the browser: her counts and failures", auth: basic("ada", adaToken), status: http.StatusOK, principal: "producer ada",
			counts: []string{"ada-files"}, failures: true, failReads: []string{"ada"}},
		{name: "a producer's bearer token", auth: bearer(bobToken), status: http.StatusOK, principal: "producer bob",
			counts: []string{"bob-queues"}, failures: true, failReads: []string{"bob"}, wantInBody: "No failed operations"},
		{name: "a token under another producer's name", auth: basic("bob", adaToken), status: http.StatusUnauthorized},
		{name: "a revoked token", auth: basic("ada", "agp_ada_revoked"), status: http.StatusUnauthorized},
		{name: "a suspended producer", auth: bearer(zedToken), status: http.StatusForbidden},
		{name: "producer sign-in off", auth: bearer(adaToken), opts: func(o *Options) { o.Producers = nil }, status: http.StatusUnauthorized},
		{name: "Redis down while checking a token", auth: bearer(adaToken), status: http.StatusServiceUnavailable,
			opts: func(o *Options) { o.Producers = &fakeProducers{err: errors.New("connection refused")} }},
		{name: "Redis down while reading counts: the page, without them", auth: basic("admin", "admin-pass"), status: http.StatusOK,
			principal: "platform engineer admin", wantInBody: "Instance counts are not shown: Redis did not answer.",
			opts: func(o *Options) {
				o.Counts = func(context.Context) ([]PlanCount, error) { return nil, errors.New("connection refused") }
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t, cat)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			w := serve(t, opts, get("/marketplace", tt.auth))
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == http.StatusUnauthorized {
				if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="agora-marketplace"`) {
					t.Errorf("WWW-Authenticate %q: a browser would not prompt", got)
				}
			}
			if tt.status != http.StatusOK {
				if strings.Contains(w.Body.String(), "ada-files") {
					t.Error("a refused request shows the catalog")
				}
				return
			}
			p := parse(t, w)
			if got := strings.Join(strings.Fields(p.one(t, "the viewer line", hasAttr("class", "viewer"))), " "); !strings.HasPrefix(got, "Signed in as "+tt.principal+" ·") {
				t.Errorf("viewer line %q, want %q", got, tt.principal)
			}
			var shown []string
			for _, n := range p.all(func(n *html.Node) bool { return n.Data == "p" && hasAttr("class", "counts")(n) }) {
				off, _ := attr(n, "data-counts")
				shown = append(shown, off)
			}
			if strings.Join(shown, ",") != strings.Join(tt.counts, ",") {
				t.Errorf("counts shown for %q, want %q", shown, tt.counts)
			}
			for _, off := range shown {
				want := map[string]string{"ada-files": "In use 7 instances, 3 bindings", "bob-queues": "In use 41 instances, 0 bindings"}[off]
				if got := strings.Join(strings.Fields(p.one(t, off+" counts", func(n *html.Node) bool { return n.Data == "p" && hasAttr("data-counts", off)(n) })), " "); got != want {
					t.Errorf("%s counts %q, want %q", off, got, want)
				}
			}
			if got := len(p.all(hasAttr("class", "failures"))) > 0; got != tt.failures {
				t.Errorf("failures shown: %v, want %v", got, tt.failures)
			}
			if tt.principal == "producer bob" && strings.Contains(p.body, "inst-ada-1") {
				t.Error("bob sees ada's failure")
			}
			if reads := opts.Producers.(*fakeProducers).reads; strings.Join(reads, ",") != strings.Join(tt.failReads, ",") {
				t.Errorf("failures read for %q, want %q", reads, tt.failReads)
			}
			if !strings.Contains(p.body, tt.wantInBody) {
				t.Errorf("the page does not say %q", tt.wantInBody)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	cat := testCatalog(t)
	tests := []struct {
		name   string
		opts   func(*Options)
		health map[string]string // offering -> badge text
		canary map[string]string // offering -> canary badge text ("" none)
	}{
		{
			name: "error ratio and canary",
			health: map[string]string{
				"ada-files":  "bad:2 of 40 adapter calls failed (5.0%) in the last 15 min",
				"bob-queues": "idle:no adapter calls in the last 15 min",
			},
			canary: map[string]string{"ada-files": "failed:canary failed 4 min ago: unbind left <b>access</b>", "bob-queues": "none:no canary result yet"},
		},
		{
			name: "a few faults warn, none is ok",
			opts: func(o *Options) { o.Calls = fakeCalls{"ada-files": {100, 1}, "bob-queues": {3, 0}} },
			health: map[string]string{
				"ada-files":  "warn:1 of 100 adapter calls failed (1.0%) in the last 15 min",
				"bob-queues": "ok:0 of 3 adapter calls failed (0.0%) in the last 15 min",
			},
			canary: map[string]string{"ada-files": "failed:canary failed 4 min ago: unbind left <b>access</b>", "bob-queues": "none:no canary result yet"},
		},
		{
			name:   "no canary and no window wired: neither is mentioned",
			opts:   func(o *Options) { o.Canary, o.Calls = nil, nil },
			health: map[string]string{},
			canary: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOptions(t, cat)
			if tt.opts != nil {
				tt.opts(&opts)
			}
			p := parse(t, serve(t, opts, get("/marketplace", basic("browse", "browse-pass"))))
			got := func(key string) map[string]string {
				out := map[string]string{}
				for _, n := range p.all(func(n *html.Node) bool { _, ok := attr(n, key); return ok }) {
					v, _ := attr(n, key)
					off := n
					for off != nil && !(off.Data == "article") {
						off = off.Parent
					}
					id, _ := attr(off, "id")
					out[strings.TrimPrefix(id, "offering-")] = v + ":" + text(n)
				}
				return out
			}
			for key, want := range map[string]map[string]string{"data-health": tt.health, "data-canary": tt.canary} {
				if g := got(key); !equalMaps(g, want) {
					t.Errorf("%s:\n got %q\nwant %q", key, g, want)
				}
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestAssets(t *testing.T) {
	cat := testCatalog(t)
	for _, tt := range []struct {
		path, contentType string
		status            int
	}{
		{"/marketplace/assets/marketplace.css", "text/css; charset=utf-8", http.StatusOK},
		{"/marketplace/assets/marketplace.js", "text/javascript; charset=utf-8", http.StatusOK},
		{"/marketplace/assets/..%2fpage.go", "application/json", http.StatusNotFound},
		{"/marketplace/assets/nothing.css", "application/json", http.StatusNotFound},
	} {
		w := serve(t, testOptions(t, cat), get(tt.path, nil))
		if w.Code != tt.status || w.Header().Get("Content-Type") != tt.contentType {
			t.Errorf("%s: %d %s, want %d %s", tt.path, w.Code, w.Header().Get("Content-Type"), tt.status, tt.contentType)
		}
		if tt.status == http.StatusOK {
			body, _ := io.ReadAll(w.Body)
			if len(body) == 0 || w.Header().Get("ETag") == "" {
				t.Errorf("%s: empty, or no ETag", tt.path)
			}
		}
	}
}

func TestNewNamesWhatIsMissing(t *testing.T) {
	_, err := New(Options{})
	if err == nil || !strings.Contains(err.Error(), "option Catalog is required") || !strings.Contains(err.Error(), "option Admins is required") {
		t.Errorf("New(Options{}) = %v", err)
	}
}
