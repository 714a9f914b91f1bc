package marketplace

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/httpapi"
	"github.com/agora-osb/agora/broker/requestinfo"
	"github.com/agora-osb/agora/producers"
)

// Paths of the page and its static files. The page links its files
// relatively, so it also works behind a proxy that mounts Agora under a
// path of its own.
const (
	PagePath   = "/marketplace"
	assetsPath = "/marketplace/assets/"
)

// How much of a producer's failures her view reads: the latest
// operations of one page of her instances, never a walk of them all.
const (
	failurePageInstances = 200
	failuresShown        = 20
)

// Options configures the page. Catalog and Admins are required; every
// other source may be nil, and the page then leaves out what it would
// have shown.
type Options struct {
	// Catalog returns the catalog in force (the broker's: it is swapped
	// when a producer's slice goes live).
	Catalog func() *catalog.Catalog
	// Admins checks the platform engineer's basic auth: Agora's broker
	// credentials. They open the page with every offering's counts.
	Admins *httpapi.BasicAuth
	// Viewers checks the read-only credential (marketplace.username and
	// password); nil when none is configured.
	Viewers *httpapi.BasicAuth
	// Producers checks producer tokens and reads a producer's failed
	// operations; nil turns producer sign-in off.
	Producers Producers
	// Counts reads every plan's instance and binding counts, in one
	// round trip (redisstore.Store.Counts).
	Counts func(ctx context.Context) ([]PlanCount, error)
	// Calls reads offerings' recent adapter calls, for the error ratio.
	Calls Calls
	// Canary reads the canary's last results; nil while no canary runs.
	Canary Canary
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Producers is what the page needs of producer self-service
// (*producers.Service).
type Producers interface {
	// Authenticate returns the producer a token belongs to; an error
	// wrapping producers.ErrUnauthenticated when it is nobody's.
	Authenticate(ctx context.Context, token string) (producers.Producer, error)
	// Operations reads the latest operations of one page of her
	// instances (failedOnly: the failed ones), newest first.
	Operations(ctx context.Context, name string, failedOnly bool, cursor string, limit int) (*producers.OperationPage, error)
}

// PlanCount is one plan's instance and binding counts.
type PlanCount struct {
	ServiceID, PlanID   string
	Instances, Bindings int64
}

// Calls reads what offerings' adapter calls came to lately, on this
// replica (internal/metrics keeps the window).
type Calls interface {
	// Recent is every call of the offering's adapter that ended within
	// Window, and how many of them were the adapter's faults.
	Recent(producer, offering string) (calls, faults int64)
	Window() time.Duration
}

// Canary reads the canary's latest verdicts: the conformance kit run
// against live offerings on a schedule. The gate's canary implements it.
type Canary interface {
	// LastResults returns the latest result per offering ID (the OSB
	// service ID); an offering the canary has not checked is absent. One
	// call per page, so it must cost a constant number of round trips.
	LastResults(ctx context.Context) (map[string]CanaryResult, error)
}

// CanaryResult is the canary's verdict on one offering.
type CanaryResult struct {
	At     time.Time
	Passed bool
	// Summary is one line for people ("12 passed, 1 failed: unbind still
	// lets the old credentials in"). It is the producer's adapter's
	// words in part, and shown escaped like them.
	Summary string
}

//go:embed templates/*.html.tmpl
var templateFiles embed.FS

//go:embed assets
var assetFiles embed.FS

// asset is one static file, served with a content hash in its URL so a
// browser may cache it and still gets a new version at once.
type asset struct {
	body        []byte
	contentType string
	version     string
}

// Page serves the marketplace.
type Page struct {
	opts   Options
	tmpl   *template.Template
	assets map[string]asset
}

// New returns the page, or an error naming every missing option.
func New(opts Options) (*Page, error) {
	var errs []error
	if opts.Catalog == nil {
		errs = append(errs, errors.New("option Catalog is required"))
	}
	if opts.Admins == nil {
		errs = append(errs, errors.New("option Admins is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("marketplace: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tmpl, err := template.New("page").Funcs(templateFuncs()).ParseFS(templateFiles, "templates/*.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("marketplace: templates: %w", err)
	}
	assets, err := loadAssets()
	if err != nil {
		return nil, err
	}
	return &Page{opts: opts, tmpl: tmpl, assets: assets}, nil
}

func loadAssets() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(assetFiles, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assetFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out[path.Base(p)] = asset{body: body, contentType: ct, version: hex.EncodeToString(sum[:6])}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("marketplace: assets: %w", err)
	}
	return out, nil
}

// Routes are the page and its static files, for httpapi.Options.Routes:
//
//	GET /marketplace                 the page (the read-only credential, the admin's, or a producer's token)
//	GET /marketplace/assets/{file}   its stylesheet and script: no data, so no auth
func (p *Page) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Surface: requestinfo.SurfaceMarketplace, Endpoint: "marketplace", Method: http.MethodGet, Path: PagePath,
			Auth: p.auth, Handler: http.HandlerFunc(p.servePage)},
		{Surface: requestinfo.SurfaceMarketplace, Endpoint: "marketplace_asset", Method: http.MethodGet, Path: assetsPath + "{file}",
			Handler: http.HandlerFunc(p.serveAsset)},
	}
}

// auth takes, in this order: basic auth with the read-only credential,
// with the admin credentials, or with a producer's name and token (a
// browser's sign-in prompt has only these two fields); or a producer's
// token as a bearer token, as the producer API takes it. It records who
// it was on the request's Info; anything else is a 401 that asks the
// browser to prompt.
func (p *Page) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := requestinfo.From(r.Context())
		token, username := "", ""
		if user, pass, ok := r.BasicAuth(); ok {
			switch {
			case p.opts.Viewers != nil && p.opts.Viewers.Match(user, pass):
				info.Principal = requestinfo.Principal{Kind: requestinfo.PrincipalViewer, Name: user}
				next.ServeHTTP(w, r)
				return
			case p.opts.Admins.Request(r, requestinfo.PrincipalAdmin):
				next.ServeHTTP(w, r)
				return
			}
			token, username = pass, user
		} else if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			token = strings.TrimSpace(bearer)
		}
		if token != "" && p.opts.Producers != nil {
			prod, err := p.opts.Producers.Authenticate(r.Context(), token)
			switch {
			case err == nil && username != "" && username != prod.Name:
				// A token pasted under someone else's name: refused, so
				// the log's principal is never a name the caller made up.
			case err == nil && prod.State == producers.StateSuspended:
				httpapi.WriteError(w, r, http.StatusForbidden, "forbidden", fmt.Sprintf("producer %q is suspended: ask the platform team", prod.Name))
				return
			case err == nil:
				info.Principal = requestinfo.Principal{Kind: requestinfo.PrincipalProducer, Name: prod.Name}
				next.ServeHTTP(w, r)
				return
			case !errors.Is(err, producers.ErrUnauthenticated):
				info.SetOutcome(requestinfo.Outcome{Error: err.Error(), Owner: "redis"})
				httpapi.WriteError(w, r, http.StatusServiceUnavailable, "unavailable", "cannot check the producer token right now (Redis); retry shortly")
				return
			}
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="agora-marketplace", charset="UTF-8"`)
		httpapi.WriteError(w, r, http.StatusUnauthorized, "unauthenticated",
			"missing or wrong credentials for the marketplace (HTTP basic auth: the marketplace's read-only credential, the admin credentials, or your producer name and token)")
	})
}

// setSecurityHeaders keeps the page's own code the only code that runs,
// even if a producer's words ever slipped past the template's escaping,
// and the page's address out of the Referer of links to producers' sites.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "+
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

func (p *Page) servePage(w http.ResponseWriter, r *http.Request) {
	v := p.view(r.Context(), requestinfo.From(r.Context()))
	var body bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&body, "page.html.tmpl", v); err != nil {
		requestinfo.From(r.Context()).SetOutcome(requestinfo.Outcome{Error: "render the marketplace page: " + err.Error(), Owner: "agora"})
		httpapi.WriteError(w, r, http.StatusInternalServerError, "internal", "the marketplace page could not be rendered; the platform team finds the cause in Agora's log")
		return
	}
	h := w.Header()
	setSecurityHeaders(h)
	// The page differs per credential, and a producer's holds her data.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body.Bytes())
}

func (p *Page) serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := p.assets[mux.Vars(r)["file"]]
	if !ok {
		httpapi.WriteError(w, r, http.StatusNotFound, "", "no marketplace file "+requestinfo.Quote(mux.Vars(r)["file"]))
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "public, max-age=86400")
	h.Set("ETag", `"`+a.version+`"`)
	if r.Header.Get("If-None-Match") == `"`+a.version+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(a.body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(a.body)
}

// assetURL is the relative URL of a static file, versioned by content.
func (p *Page) assetURL(name string) string {
	return "marketplace/assets/" + name + "?v=" + p.assets[name].version
}
