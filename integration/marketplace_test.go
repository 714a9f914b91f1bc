package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/producers"
	"github.com/agora-osb/agora/producers/producerapi"
)

// screenshotDir is where the marketplace spec leaves its screenshots:
// inside the checkout (git ignores it), so a CI run leaves them behind
// for whoever reads its result.
const screenshotDir = "screenshots"

// doomedAdapter is the reference adapter (memadapter) served over the
// remote protocol, as a producer runs it, except that it refuses, with a
// terminal error in HTML, to provision the instances named in doomed.
type doomedAdapter struct {
	URL, Secret string
	mu          sync.Mutex
	doomed      map[string]bool
}

func serveDoomedAdapter() *doomedAdapter {
	GinkgoHelper()
	a := &doomedAdapter{Secret: randomHex(16), doomed: map[string]bool{}}
	mem, err := memadapter.Factory(nil).New(context.Background(), adapters.Config{})
	Expect(err).NotTo(HaveOccurred())
	inner := remote.Handler(mem, remote.HandlerOptions{Name: "notes", Version: "1.0.0", Secret: a.Secret})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, isProvision := strings.CutPrefix(r.URL.Path, "/v1/instances/")
		a.mu.Lock()
		doomed := isProvision && r.Method == http.MethodPut && a.doomed[id]
		a.mu.Unlock()
		if doomed {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"error":"terminal","message":"quota exceeded <img src=x onerror=\"window.agoraPwned=7\">"}`)
			return
		}
		inner.ServeHTTP(w, r)
	})
	a.URL = serveLocal(h)
	return a
}

func (a *doomedAdapter) doom(instanceID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.doomed[instanceID] = true
}

// notesSlice is a careless (or hostile) producer's slice: script and HTML
// in her words, a javascript: documentation URL, a documented schema, a
// sync plan, an async one and a deprecated one.
func notesSlice(offering string, a *doomedAdapter) string {
	return fmt.Sprintf(`offerings:
  - name: %s
    description: |-
      Notes per instance. <script>document.title="pwned";window.agoraPwned=1</script>
    adapter: remote
    config:
      url: %s
      secret: %s
      timeout: 10s
    tags: [notes, "<b>bold</b>"]
    metadata:
      displayName: Notes <i>deluxe</i>
      documentationUrl: javascript:window.agoraPwned=5
      supportUrl: https://support.example.com/notes
    plans:
      - name: small
        description: Up to a thousand keys.
        maintenance_info:
          version: 1.4.0
          description: Faster lookups.
        schemas:
          service_instance:
            create:
              parameters:
                $schema: http://json-schema.org/draft-04/schema#
                type: object
                additionalProperties: false
                properties:
                  max_keys:
                    type: integer
                    minimum: 1
                    maximum: 1000
                    default: 100
                    example: 500
                    description: Most keys the instance holds. <img src=x onerror="window.agoraPwned=6">
      - name: async
        description: The same, created in the background.
        async: true
        operation_timeout: 2m
      - name: legacy
        description: The old notes, going away.
        deprecated: true
`, offering, a.URL, a.Secret)
}

var _ = Describe("the marketplace page in headless Chromium", Label("marketplace"), func() {
	It("shows every offering, plan and parameter, producers' words as text, and a producer her own counts and failures", func(ctx SpecContext) {
		prefix := specPrefix()
		suffix := randomHex(3)
		name := "mkt-" + suffix
		offering := name + "-notes"
		viewerPass := randomHex(12)

		By("agora serve with a read-only marketplace credential")
		b := StartBroker(ctx, BrokerOptions{Prefix: prefix, ExtraConfig: fmt.Sprintf("marketplace:\n  username: browse\n  password: %s\n", viewerPass)})

		By("producer " + name + " puts a slice on a live adapter; the platform engineer approves what the gate kept for her")
		adapter := serveDoomedAdapter()
		created, err := adminClient(b).CreateProducer(ctx, producers.CreateRequest{Name: name, Contact: name + "@example.com", AutoApproveSlices: true})
		Expect(err).NotTo(HaveOccurred())
		token := created.Token
		her := &producerapi.Client{BaseURL: b.URL, Token: token}
		res, err := her.Apply(ctx, name, []byte(notesSlice(offering, adapter)))
		Expect(err).NotTo(HaveOccurred())
		// The in-memory fixture hands out untyped credentials and does not
		// check parameters against the plan's schema (the gate derives
		// max_keys: 1001 from it), so the gate rightly keeps the slice
		// from automatic approval; this spec is about the page.
		Expect(res.Status).To(Equal(producers.SlicePendingApproval), "gate: %+v", res.Gate)
		Expect(res.Gate.NotAutoApprovable).NotTo(BeEmpty())
		_, err = adminClient(b).ApproveSlice(ctx, name, res.Version)
		Expect(err).NotTo(HaveOccurred())
		awaitVisible(time.Now(), 30*time.Second, hasPlan(offering, "async"), b)
		off := mustOffering(b, offering)

		By("a platform provisions and binds one instance, and a second one fails in the adapter")
		good, doomed, bid := newGUID(), newGUID(), newGUID()
		Expect(off.Provision(b.OSB, good, off.plan("small"), false).Status).To(Equal(http.StatusCreated))
		Expect(off.Bind(b.OSB, good, bid, off.plan("small"), false).Status).To(Equal(http.StatusCreated))
		adapter.doom(doomed)
		resp := off.Provision(b.OSB, doomed, off.plan("async"), true)
		Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
		Expect(b.OSB.AwaitOperation(doomed, resp.Str("operation"), time.Minute).Str("state")).To(Equal("failed"))

		By("without credentials, or with her token under another name, the page is refused")
		for _, auth := range []string{"", basicAuth("browse", "wrong"), basicAuth("someone-else", token)} {
			status, header, body := getPage(b.URL+"/marketplace", auth)
			Expect(status).To(Equal(http.StatusUnauthorized), body)
			Expect(header.Get("WWW-Authenticate")).To(HavePrefix(`Basic realm="agora-marketplace"`))
			Expect(body).NotTo(ContainSubstring(offering))
		}

		browser := startBrowser(ctx)
		dir, err := filepath.Abs(screenshotDir)
		Expect(err).NotTo(HaveOccurred())

		By("an app developer with the read-only credential sees every offering, plan and parameter")
		browser.authorize(basicAuth("browse", viewerPass))
		browser.open(b.URL + "/marketplace")
		expectNothingInjected(browser)
		Expect(browser.str(`return document.querySelector(".viewer").textContent`)).To(HavePrefix("Signed in as viewer browse"))
		Expect(browser.str(`return Array.from(document.querySelectorAll("article.offering")).map(a => a.id).join(",")`)).To(
			Equal("offering-" + offering + ",offering-secrets"))
		art := "#offering-" + offering
		Expect(browser.str(`return document.querySelector(arguments[0] + " h3").textContent`, art)).To(Equal("Notes <i>deluxe</i>"))
		Expect(browser.str(`return document.querySelector(arguments[0] + " .description").textContent`, art)).To(
			Equal(`Notes per instance. <script>document.title="pwned";window.agoraPwned=1</script>`))
		Expect(browser.str(`return document.querySelector(arguments[0] + " .producer-head .contact").textContent`, "#producer-"+name)).To(
			Equal("Contact: " + name + "@example.com"))
		Expect(browser.str(`return document.querySelector(arguments[0] + " .unsafe-link").textContent`, art)).To(Equal("javascript:window.agoraPwned=5"))
		Expect(browser.str(`return Array.from(document.querySelectorAll("a")).map(a => a.href).filter(h => !h.startsWith("http")).join(" ")`)).To(BeEmpty(),
			"a link that is not http(s)")
		Expect(browser.str(`return Array.from(document.querySelectorAll(arguments[0] + " [data-plan]")).map(p => p.dataset.plan + ":" + (p.querySelector(".badge.deprecated") ? "deprecated" : "offered")).join(",")`, art)).To(
			Equal("small:offered,async:offered,legacy:deprecated"))
		Expect(squash(browser.str(`return document.querySelector(arguments[0] + " [data-plan=small]").innerText`, art))).To(
			ContainSubstring("Maintenance version 1.4.0 Faster lookups."))
		Expect(squash(browser.str(`return document.querySelector(arguments[0] + " tr[data-param=max_keys]").innerText`, art))).To(
			Equal(`max_keys integer 100 at least 1; at most 1000 Most keys the instance holds. <img src=x onerror="window.agoraPwned=6"> Example: 500`))
		Expect(browser.str(`return document.querySelector(arguments[0] + " [data-health]").textContent`, art)).To(
			MatchRegexp(`^1 of \d+ adapter calls failed \(\d+\.\d%\) in the last 15 min$`))
		Expect(browser.str(`return String(document.querySelectorAll("[data-counts], .failures").length)`)).To(Equal("0"),
			"the read-only credential sees counts or failures")

		By("the filter box (the page's only script) narrows the list")
		browser.typeInto("#filter-input", "notes")
		Expect(browser.str(`return document.getElementById("filter-count").textContent`)).To(Equal("1 of 2 offerings"))
		Expect(browser.str(`return String(document.getElementById("offering-secrets").hidden)`)).To(Equal("true"))
		viewerShot := filepath.Join(dir, "marketplace-viewer.png")
		browser.open(b.URL + "/marketplace") // unfiltered, for the picture
		browser.screenshot(viewerShot)

		By("the producer signs in with her name and token: her counts and failures, nobody else's")
		browser.authorize(basicAuth(name, token))
		browser.open(b.URL + "/marketplace")
		expectNothingInjected(browser)
		Expect(browser.str(`return document.querySelector(".viewer").textContent`)).To(HavePrefix("Signed in as producer " + name))
		Expect(browser.str(`return document.querySelector("section.producer").id`)).To(Equal("producer-"+name), "her section is not first")
		Expect(squash(browser.str(`return document.querySelector("p[data-counts]").textContent`))).To(Equal("In use 1 instance, 1 binding"))
		Expect(browser.str(`return Array.from(document.querySelectorAll("p[data-counts]")).map(p => p.dataset.counts).join(",")`)).To(Equal(offering))
		failures := browser.str(`return Array.from(document.querySelectorAll(".failures tbody tr")).map(r => r.textContent).join("\n")`)
		Expect(failures).To(ContainSubstring(doomed))
		Expect(failures).To(ContainSubstring("provision"))
		Expect(failures).NotTo(ContainSubstring(good))
		producerShot := filepath.Join(dir, "marketplace-producer.png")
		browser.screenshot(producerShot)

		By("no token, secret or adapter address is anywhere in the page")
		source := browser.str(`return document.documentElement.outerHTML`)
		for _, secret := range []string{token, adapter.Secret, adapter.URL, "vault:"} {
			Expect(source).NotTo(ContainSubstring(secret))
		}
		fmt.Fprintf(GinkgoWriter, "marketplace screenshots:\n  %s\n  %s\n", viewerShot, producerShot)
		AddReportEntry("marketplace screenshots", viewerShot+" "+producerShot)
	})
})

// expectNothingInjected checks that no producer's script or handler ran:
// each would have changed the title or set window.agoraPwned, and the
// only script element is the page's own.
func expectNothingInjected(b *browser) {
	GinkgoHelper()
	Expect(b.str(`return document.title`)).To(Equal("Agora marketplace"))
	Expect(b.str(`return typeof window.agoraPwned`)).To(Equal("undefined"))
	Expect(b.str(`return Array.from(document.scripts).map(s => s.getAttribute("src")).join(" ")`)).To(MatchRegexp(`^marketplace/assets/marketplace\.js\?v=[0-9a-f]+$`))
	Expect(b.str(`return String(document.querySelectorAll("img, b, i, u, iframe, object, embed").length)`)).To(Equal("0"))
	Expect(b.str(`return String(!document.getElementById("filter").hidden)`)).To(Equal("true"), "the page's own script did not run")
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// getPage GETs url with an Authorization header ("" for none).
func getPage(url, authorization string) (int, http.Header, string) {
	GinkgoHelper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, resp.Header, string(body)
}

var spaces = regexp.MustCompile(`\s+`)

// squash folds runs of white space, as a reader sees text.
func squash(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }
