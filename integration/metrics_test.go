package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/internal/syncbuf"
)

// devCatalog is the repository's secrets offering, pointed at the dev
// Vault of this test.
const devCatalog = `
producers:
  - name: platform-team
    contact: platform@example.com
    offerings:
      - name: secrets
        description: A private folder in Vault's KV store.
        adapter: secrets
        config:
          vault_addr: %s
          token: vault:secret/agora-config/secrets-adapter#token
        plans:
          - name: standard
            description: A secrets folder.
`

var _ = Describe("metrics", func() {
	It("a lifecycle through agora dev moves the counters and histograms of its producer, offering and plan", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		vaultAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
		catalogPath := filepath.Join(dir, "catalog.yml")
		Expect(os.WriteFile(catalogPath, fmt.Appendf(nil, devCatalog, "http://"+vaultAddr), 0o600)).To(Succeed())
		url, password := startDev(ctx, "-listen", fmt.Sprintf("127.0.0.1:%d", freePort()), "-vault-listen", vaultAddr, "-catalog", catalogPath)
		osb := newOSBClient(url, "admin", password)

		serviceID := catalog.DeriveOfferingID("platform-team", "secrets")
		planID := catalog.DerivePlanID("platform-team", "secrets", "standard")
		labels := map[string]string{"producer": "platform-team", "offering": "secrets", "plan": "standard"}
		iid, bid := newGUID(), newGUID()

		Expect(osb.ProvisionWith(iid, map[string]any{"service_id": serviceID, "plan_id": planID}, false).Status).To(Equal(http.StatusCreated))
		Expect(osb.Do(http.MethodPut, bindingPath(iid, bid), map[string]any{"service_id": serviceID, "plan_id": planID}).Status).To(Equal(http.StatusCreated))
		mid := scrape(url)
		Expect(gauge(mid, "agora_instances", labels)).To(Equal(1.0))
		Expect(gauge(mid, "agora_bindings", labels)).To(Equal(1.0))

		Expect(osb.Do(http.MethodDelete, bindingPath(iid, bid)+query(false, "service_id", serviceID, "plan_id", planID), nil).Status).To(Equal(http.StatusOK))
		Expect(osb.Do(http.MethodDelete, instancePath(iid)+query(false, "service_id", serviceID, "plan_id", planID), nil).Status).To(Equal(http.StatusOK))
		end := scrape(url)

		for _, endpoint := range []string{"provision", "bind", "unbind", "deprovision"} {
			request := with(labels, map[string]string{"surface": "osb", "endpoint": endpoint})
			Expect(counter(end, "agora_requests_total", with(request, map[string]string{"code": "2xx"}))).To(Equal(1.0), endpoint)
			Expect(histogramCount(end, "agora_request_duration_seconds", request)).To(Equal(uint64(1)), endpoint)
			call := with(labels, map[string]string{"call": endpoint})
			Expect(counter(end, "agora_adapter_calls_total", with(call, map[string]string{"outcome": "ok"}))).To(Equal(1.0), endpoint)
			Expect(histogramCount(end, "agora_adapter_call_duration_seconds", call)).To(Equal(uint64(1)), endpoint)
		}
		Expect(gauge(end, "agora_instances", labels)).To(Equal(0.0))
		Expect(gauge(end, "agora_bindings", labels)).To(Equal(0.0))
		Expect(sumOf(end, "agora_store_calls_total", map[string]string{"store": "redis"})).To(BeNumerically(">", 0))
		Expect(sumOf(end, "agora_store_calls_total", map[string]string{"store": "vault"})).To(BeNumerically(">", 0))
		Expect(gauge(end, "agora_dependency_up", map[string]string{"dependency": "vault"})).To(Equal(1.0))
		Expect(gauge(end, "agora_async_queue_jobs", map[string]string{"state": "queued"})).To(Equal(0.0))
	}, SpecTimeout(3*time.Minute))
})

// startDev runs `agora dev` from the repository root and returns its URL
// and password once it says it is running.
func startDev(ctx context.Context, args ...string) (url, password string) {
	GinkgoHelper()
	cmd := exec.Command(agoraBin, append([]string{"dev"}, args...)...)
	cmd.Dir = repoRoot()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	stdout, err := cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	log := &syncbuf.Buffer{}
	cmd.Stderr = log
	cmd.SysProcAttr = childProcAttr()
	Expect(cmd.Start()).To(Succeed())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	DeferCleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		if CurrentSpecReport().Failed() {
			fmt.Fprintf(GinkgoWriter, "---- agora dev log ----\n%s\n", log.String())
		}
	})
	found := make(chan [2]string, 1)
	go func() {
		urlRE, passRE := regexp.MustCompile(`broker URL\s+(\S+)`), regexp.MustCompile(`password\s+(\S+)`)
		var u string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
				u = m[1]
			}
			if m := passRE.FindStringSubmatch(sc.Text()); m != nil && u != "" {
				found <- [2]string{u, m[1]}
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case f := <-found:
		return f[0], f[1]
	case <-exited:
		Fail("agora dev exited before it was running:\n" + log.String())
	case <-time.After(2 * time.Minute):
		Fail("agora dev did not say it was running:\n" + log.String())
	case <-ctx.Done():
	}
	return "", ""
}

func repoRoot() string {
	GinkgoHelper()
	dir, err := filepath.Abs("..")
	Expect(err).NotTo(HaveOccurred())
	return dir
}

func scrape(url string) map[string]*dto.MetricFamily {
	GinkgoHelper()
	resp, err := http.Get(url + "/metrics")
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return families
}

func with(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// find returns the series of name whose labels include want.
func find(families map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	f, ok := families[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && have[k] == v
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

func one(families map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	GinkgoHelper()
	ms := find(families, name, want)
	Expect(ms).To(HaveLen(1), "%s%v", name, want)
	return ms[0]
}

func counter(f map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	GinkgoHelper()
	return one(f, name, want).GetCounter().GetValue()
}

func gauge(f map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	GinkgoHelper()
	return one(f, name, want).GetGauge().GetValue()
}

func histogramCount(f map[string]*dto.MetricFamily, name string, want map[string]string) uint64 {
	GinkgoHelper()
	return one(f, name, want).GetHistogram().GetSampleCount()
}

func sumOf(f map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	total := 0.0
	for _, m := range find(f, name, want) {
		total += m.GetCounter().GetValue()
	}
	return total
}
