package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/agora-osb/agora/internal/syncbuf"
)

// installChromium is what .ci/run does when Chromium is missing; the
// specs that need a browser fail with it rather than skip.
const installChromium = "apt-get install -y chromium chromium-driver"

// chromiumFlags keep the browser off the network and free of first-run
// work: the page under test is all it loads.
var chromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
	"--no-first-run", "--disable-quic", "--disable-sync", "--window-size=1280,1000",
}

// webElementKey names an element reference in W3C WebDriver answers.
const webElementKey = "element-6066-11e4-a52e-4f735466cecf"

// browser is headless Chromium driven by chromedriver over the W3C
// WebDriver HTTP API: a few calls with net/http, no client library.
type browser struct {
	base    string // chromedriver's URL
	session string
	client  *http.Client
}

// startBrowser starts chromedriver on a free port and one Chromium
// session with a fresh profile; both end with the current node.
func startBrowser(ctx context.Context) *browser {
	GinkgoHelper()
	chromium, err := exec.LookPath("chromium")
	Expect(err).NotTo(HaveOccurred(), "Chromium is not installed; the marketplace spec needs it (it never skips): %s", installChromium)
	driver, err := exec.LookPath("chromedriver")
	Expect(err).NotTo(HaveOccurred(), "chromedriver is not installed; the marketplace spec needs it (it never skips): %s", installChromium)

	port := freePort()
	log := &syncbuf.Buffer{}
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = childProcAttr()
	Expect(cmd.Start()).To(Succeed())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b := &browser{base: fmt.Sprintf("http://127.0.0.1:%d", port), client: &http.Client{Timeout: 90 * time.Second}}
	DeferCleanup(func() {
		if b.session != "" {
			// Chromium quits with its session; killing chromedriver first
			// would leave it running.
			_, _ = b.call(http.MethodDelete, "/session/"+b.session, nil)
		}
		_ = cmd.Process.Kill()
		<-exited
		if CurrentSpecReport().Failed() {
			fmt.Fprintf(GinkgoWriter, "---- chromedriver log ----\n%s\n", log.String())
		}
	})

	Eventually(func() (bool, error) {
		raw, err := b.call(http.MethodGet, "/status", nil)
		if err != nil {
			return false, err
		}
		var st struct{ Ready bool }
		return st.Ready, json.Unmarshal(raw, &st)
	}).WithContext(ctx).WithTimeout(20*time.Second).WithPolling(100*time.Millisecond).Should(BeTrue(), "chromedriver did not get ready:\n%s", log)

	profile := GinkgoT().TempDir()
	raw, err := b.call(http.MethodPost, "/session", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args":   append(append([]string{}, chromiumFlags...), "--user-data-dir="+filepath.Join(profile, "chromium")),
		},
	}}})
	Expect(err).NotTo(HaveOccurred(), "Chromium did not start under chromedriver:\n%s", log)
	var created struct{ SessionID string }
	Expect(json.Unmarshal(raw, &created)).To(Succeed())
	Expect(created.SessionID).NotTo(BeEmpty(), "no session in %s", raw)
	b.session = created.SessionID
	// Every request of the session may carry an Authorization header.
	b.cdp("Network.enable", map[string]any{})
	return b
}

// call sends one WebDriver command and returns its "value".
func (b *browser) call(method, path string, body any) (json.RawMessage, error) {
	var in io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		in = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.base+path, in)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out struct{ Value json.RawMessage }
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, out.Value)
	}
	return out.Value, nil
}

// must is call for a session command that has to work.
func (b *browser) must(method, path string, body any) json.RawMessage {
	GinkgoHelper()
	raw, err := b.call(method, "/session/"+b.session+path, body)
	Expect(err).NotTo(HaveOccurred())
	return raw
}

// cdp runs a Chrome DevTools Protocol command through chromedriver.
func (b *browser) cdp(cmd string, params map[string]any) json.RawMessage {
	GinkgoHelper()
	return b.must(http.MethodPost, "/goog/cdp/execute", map[string]any{"cmd": cmd, "params": params})
}

// authorize sends header as Authorization on every later request
// ("" sends none): how a browser that signed in behaves, without a
// prompt to type into.
func (b *browser) authorize(header string) {
	GinkgoHelper()
	headers := map[string]any{}
	if header != "" {
		headers["Authorization"] = header
	}
	b.cdp("Network.setExtraHTTPHeaders", map[string]any{"headers": headers})
}

// open loads url and waits for it to finish loading.
func (b *browser) open(url string) {
	GinkgoHelper()
	b.must(http.MethodPost, "/url", map[string]any{"url": url})
}

// run runs script (a function body) in the page and decodes what it
// returns into out.
func (b *browser) run(out any, script string, args ...any) {
	GinkgoHelper()
	if args == nil {
		args = []any{}
	}
	raw := b.must(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": args})
	Expect(json.Unmarshal(raw, out)).To(Succeed(), "script answered %s", raw)
}

// str runs script and returns the string it returns.
func (b *browser) str(script string, args ...any) string {
	GinkgoHelper()
	var s string
	b.run(&s, script, args...)
	return s
}

// typeInto types text into the element css selects, as a user would.
func (b *browser) typeInto(css, text string) {
	GinkgoHelper()
	var found map[string]string
	raw := b.must(http.MethodPost, "/element", map[string]any{"using": "css selector", "value": css})
	Expect(json.Unmarshal(raw, &found)).To(Succeed())
	b.must(http.MethodPost, "/element/"+found[webElementKey]+"/value", map[string]any{"text": text})
}

// screenshot writes a PNG of the whole page, beyond the window, to path.
func (b *browser) screenshot(path string) {
	GinkgoHelper()
	raw := b.cdp("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true})
	var shot struct{ Data string }
	Expect(json.Unmarshal(raw, &shot)).To(Succeed())
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	Expect(err).NotTo(HaveOccurred())
	Expect(png).To(HavePrefix("\x89PNG"), "not a PNG")
	Expect(os.MkdirAll(filepath.Dir(path), 0o755)).To(Succeed())
	Expect(os.WriteFile(path, png, 0o644)).To(Succeed())
}
