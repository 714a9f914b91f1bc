package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/internal/syncbuf"
	"github.com/agora-osb/agora/producers/producerapi"
)

// Helpers of producers_test.go and upstream_test.go: the agora CLI as a
// subprocess, a Python remote adapter made by `agora adapter init`, OSB
// calls for any offering, and catalog visibility measured across
// replicas.

// ---- the agora CLI, run as its users run it ----

// cliResult is what one `agora ...` invocation did.
type cliResult struct {
	Args   []string
	Stdout string
	Stderr string
	Code   int
	Took   time.Duration
}

func (r cliResult) String() string {
	return fmt.Sprintf("agora %s: exit %d\n--- stdout ---\n%s--- stderr ---\n%s", strings.Join(r.Args, " "), r.Code, r.Stdout, r.Stderr)
}

// cliUser is one person at a shell: her own HOME (so the producer login
// in ~/.config/agora/producer.json is hers alone) and environment.
type cliUser struct {
	Home string
	Env  []string
}

// newCLIUser returns a user with an empty HOME of her own and nothing
// from the developer's shell but PATH.
func newCLIUser(extraEnv ...string) *cliUser {
	GinkgoHelper()
	home, err := os.MkdirTemp(workDir, "home-")
	Expect(err).NotTo(HaveOccurred())
	return &cliUser{Home: home, Env: extraEnv}
}

// Run runs the agora binary with args, stdin as its standard input.
func (u *cliUser) Run(ctx context.Context, stdin string, args ...string) cliResult {
	GinkgoHelper()
	cmd := exec.CommandContext(ctx, agoraBin, args...)
	cmd.Dir = u.Home
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + u.Home}, u.Env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = childProcAttr()
	start := time.Now()
	err := cmd.Run()
	res := cliResult{Args: args, Stdout: stdout.String(), Stderr: stderr.String(), Took: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		Fail(fmt.Sprintf("agora %s did not run: %v", strings.Join(args, " "), err))
	}
	fmt.Fprintf(GinkgoWriter, "$ agora %s   (exit %d, %s)\n%s%s", strings.Join(args, " "), res.Code, res.Took.Round(time.Millisecond), res.Stdout, res.Stderr)
	return res
}

// Must runs like Run and fails the spec unless the exit status is 0.
func (u *cliUser) Must(ctx context.Context, stdin string, args ...string) cliResult {
	GinkgoHelper()
	res := u.Run(ctx, stdin, args...)
	Expect(res.Code).To(BeZero(), res.String())
	return res
}

// adminFlags are the platform engineer's flags for `agora admin` on b.
func adminFlags(b *Broker) []string {
	return []string{"--url", b.URL, "--username", b.OSB.user, "--password", b.OSB.pass}
}

// adminClient is the producer API's Go client with b's admin credentials.
func adminClient(b *Broker) *producerapi.Client {
	return &producerapi.Client{BaseURL: b.URL, Username: b.OSB.user, Password: b.OSB.pass}
}

// apiStatus returns the HTTP status of a producer API error (0 for none).
func apiStatus(err error) int {
	var ae *producerapi.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// ---- a Python remote adapter, made by `agora adapter init` ----

// pyAdapter is a project written by `agora adapter init --lang python`,
// running as its README says: DIR/run with the secret from its slice.yml.
type pyAdapter struct {
	Dir    string // the project
	URL    string
	Secret string // config.secret of the generated slice.yml
	Root   string // where its instances live: DIR/data
	cmd    *exec.Cmd
	log    *syncbuf.Buffer
}

// initPyAdapter has u make a Python adapter project for offering with
// the CLI, and starts its ./run on a free port (port 0: it prints the
// one it got); it is stopped when the current node ends. Each edit runs
// on the project before it starts (a deliberately broken copy).
func initPyAdapter(ctx context.Context, u *cliUser, offering string, edits ...func(dir string)) *pyAdapter {
	GinkgoHelper()
	_, err := exec.LookPath("python3")
	Expect(err).NotTo(HaveOccurred(), "the producer journey runs a Python adapter: python3 must be on PATH")
	a := &pyAdapter{Dir: filepath.Join(u.Home, offering+"-adapter"), log: &syncbuf.Buffer{}}
	res := u.Must(ctx, "", "adapter", "init", "--lang", "python", "--offering", offering, a.Dir)
	Expect(res.Stdout).To(ContainSubstring("./run --listen"), "init does not say how to run the project")
	a.Root = filepath.Join(a.Dir, "data")
	a.Secret = a.sliceField("secret")
	Expect(a.Secret).To(MatchRegexp(`^[0-9a-f]{64}$`), "init wrote no fresh secret into slice.yml")
	Expect(a.sliceField("name")).To(Equal(offering))
	for _, edit := range edits {
		edit(a.Dir)
	}

	a.cmd = exec.Command(filepath.Join(a.Dir, "run"), "--listen", "127.0.0.1:0", "--secret", a.Secret)
	a.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PYTHONUNBUFFERED=1"}
	a.cmd.Stderr = a.log
	a.cmd.SysProcAttr = childProcAttr()
	stdout, err := a.cmd.StdoutPipe()
	Expect(err).NotTo(HaveOccurred())
	Expect(a.cmd.Start()).To(Succeed())
	exited := make(chan struct{})
	DeferCleanup(func() {
		_ = a.cmd.Process.Kill()
		<-exited
		if CurrentSpecReport().Failed() {
			fmt.Fprintf(GinkgoWriter, "---- log of the Python adapter %s ----\n%s\n", a.URL, a.log.String())
		}
	})
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			_, _ = a.log.Write([]byte(line + "\n"))
			if u, ok := strings.CutPrefix(line, "listening on "); ok {
				select {
				case listening <- strings.TrimSpace(u):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = a.cmd.Wait()
		close(exited)
	}()
	select {
	case a.URL = <-listening:
	case <-exited:
		Fail("the Python adapter exited before listening:\n" + a.log.String())
	case <-time.After(15 * time.Second):
		Fail("the Python adapter did not say where it listens within 15s:\n" + a.log.String())
	case <-ctx.Done():
		Fail("interrupted while starting the Python adapter")
	}
	return a
}

// sliceField is a field of the generated slice.yml's offering, read as
// the README's awk line reads the secret.
func (a *pyAdapter) sliceField(key string) string {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(a.Dir, "slice.yml"))
	Expect(err).NotTo(HaveOccurred())
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "- "))
		if len(f) > 1 && f[0] == key+":" {
			return f[1]
		}
	}
	Fail(fmt.Sprintf("the generated slice.yml has no %s:\n%s", key, data))
	return ""
}

// EditSlice does what the producer does to the generated slice.yml
// before she applies it: point config.url at where her adapter really
// listens, and offer her own plans. The rest (name, secret, adapter,
// description) is init's.
func (a *pyAdapter) EditSlice(plans ...string) string {
	GinkgoHelper()
	path := filepath.Join(a.Dir, "slice.yml")
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	var slice struct {
		Offerings []map[string]any `yaml:"offerings"`
	}
	Expect(yaml.Unmarshal(data, &slice)).To(Succeed())
	Expect(slice.Offerings).To(HaveLen(1), "the generated slice.yml:\n%s", data)
	off := slice.Offerings[0]
	config, _ := off["config"].(map[string]any)
	Expect(config).To(HaveKey("url"))
	config["url"] = a.URL
	var ps []map[string]string
	for _, p := range plans {
		ps = append(ps, map[string]string{"name": p, "description": "The " + p + " plan."})
	}
	off["plans"] = ps
	out, err := yaml.Marshal(slice)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(path, out, 0o600)).To(Succeed())
	return path
}

// InstanceDir is where the adapter keeps instance iid.
func (a *pyAdapter) InstanceDir(iid string) string { return filepath.Join(a.Root, iid) }

// TokenFile is where the adapter keeps binding bid's token.
func (a *pyAdapter) TokenFile(iid, bid string) string {
	return filepath.Join(a.Root, iid, ".tokens", bid)
}

// ---- OSB for any offering ----

// osbOffering is one offering as a platform knows it: by IDs from the catalog.
type osbOffering struct {
	Name  string
	ID    string
	Plans map[string]string // name → ID
}

// catalogOfferings returns GET /v2/catalog of b by offering name.
func catalogOfferings(b *Broker) (map[string]osbOffering, error) {
	resp, err := getCatalog(b)
	if err != nil {
		return nil, err
	}
	out := map[string]osbOffering{}
	for _, s := range resp {
		svc, _ := s.(map[string]any)
		name, _ := svc["name"].(string)
		id, _ := svc["id"].(string)
		o := osbOffering{Name: name, ID: id, Plans: map[string]string{}}
		plans, _ := svc["plans"].([]any)
		for _, p := range plans {
			plan, _ := p.(map[string]any)
			pn, _ := plan["name"].(string)
			pid, _ := plan["id"].(string)
			o.Plans[pn] = pid
		}
		out[name] = o
	}
	return out, nil
}

// getCatalog fetches the services of b's catalog without failing the
// spec (it runs in tight polling loops and goroutines).
func getCatalog(b *Broker) ([]any, error) {
	req, err := http.NewRequest(http.MethodGet, b.URL+"/v2/catalog", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(b.OSB.user, b.OSB.pass)
	req.Header.Set("X-Broker-API-Version", apiVersion)
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v2/catalog of %s: %s", b.Name, resp.Status)
	}
	var body struct {
		Services []any `json:"services"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Services, nil
}

// mustOffering returns the named offering of b's catalog, failing when absent.
func mustOffering(b *Broker, name string) osbOffering {
	GinkgoHelper()
	offs, err := catalogOfferings(b)
	Expect(err).NotTo(HaveOccurred())
	o, ok := offs[name]
	Expect(ok).To(BeTrue(), "replica %s does not serve offering %q", b.Name, name)
	return o
}

func (o osbOffering) plan(name string) string {
	GinkgoHelper()
	id, ok := o.Plans[name]
	Expect(ok).To(BeTrue(), "offering %s has no plan %q in the catalog (plans: %v)", o.Name, name, o.Plans)
	return id
}

func (o osbOffering) provisionBody(planID string) map[string]any {
	return map[string]any{
		"service_id": o.ID, "plan_id": planID,
		"organization_guid": "org-guid", "space_guid": "space-guid",
		"context": map[string]any{"platform": "cloudfoundry", "organization_guid": "org-guid", "space_guid": "space-guid"},
	}
}

func (o osbOffering) Provision(c *OSBClient, iid, planID string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.ProvisionWith(iid, o.provisionBody(planID), acceptsIncomplete)
}

func (o osbOffering) Bind(c *OSBClient, iid, bid, planID string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.Do(http.MethodPut, bindingPath(iid, bid)+query(acceptsIncomplete), map[string]any{
		"service_id": o.ID, "plan_id": planID, "app_guid": "app-guid",
		"bind_resource": map[string]any{"app_guid": "app-guid"},
	})
}

func (o osbOffering) Unbind(c *OSBClient, iid, bid, planID string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.Do(http.MethodDelete, bindingPath(iid, bid)+query(acceptsIncomplete, "service_id", o.ID, "plan_id", planID), nil)
}

func (o osbOffering) Deprovision(c *OSBClient, iid, planID string, acceptsIncomplete bool) Response {
	GinkgoHelper()
	return c.Do(http.MethodDelete, instancePath(iid)+query(acceptsIncomplete, "service_id", o.ID, "plan_id", planID), nil)
}

// ---- catalog visibility across replicas, measured ----

// visibility is when a change became visible on each replica.
type visibility struct {
	PerReplica map[string]time.Duration
	Both       time.Duration // the slowest replica: visible everywhere
}

// awaitVisible polls every replica's GET /v2/catalog every 50ms until
// cond holds on each, and returns how long after start each one took.
// cond gets the catalog's offerings by name.
func awaitVisible(start time.Time, timeout time.Duration, cond func(map[string]osbOffering) bool, replicas ...*Broker) visibility {
	GinkgoHelper()
	v := visibility{PerReplica: map[string]time.Duration{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := map[string]error{}
	for _, r := range replicas {
		wg.Go(func() {
			deadline := start.Add(timeout)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			var last error
			for {
				offs, err := catalogOfferings(r)
				if err == nil && cond(offs) {
					d := time.Since(start)
					mu.Lock()
					v.PerReplica[r.Name] = d
					mu.Unlock()
					return
				}
				if err != nil {
					last = err
				}
				if time.Now().After(deadline) {
					mu.Lock()
					errs[r.Name] = fmt.Errorf("not visible after %s (last error: %v)", timeout, last)
					mu.Unlock()
					return
				}
				<-tick.C
			}
		})
	}
	wg.Wait()
	Expect(errs).To(BeEmpty(), "the change did not reach every replica's catalog")
	for _, d := range v.PerReplica {
		v.Both = max(v.Both, d)
	}
	return v
}

// hasPlan says the catalog serves offering with plan.
func hasPlan(offering, plan string) func(map[string]osbOffering) bool {
	return func(offs map[string]osbOffering) bool {
		o, ok := offs[offering]
		if !ok {
			return false
		}
		_, ok = o.Plans[plan]
		return ok
	}
}

// lacksPlan says the catalog does not serve offering's plan (or the offering).
func lacksPlan(offering, plan string) func(map[string]osbOffering) bool {
	has := hasPlan(offering, plan)
	return func(offs map[string]osbOffering) bool { return !has(offs) }
}

// lacksOffering says the catalog does not serve offering at all.
func lacksOffering(offering string) func(map[string]osbOffering) bool {
	return func(offs map[string]osbOffering) bool {
		_, ok := offs[offering]
		return !ok
	}
}

// dephase sleeps a random part of the replicas' 1s catalog poll, so that
// a measurement that starts right after the previous one (which ended on
// a poll tick) is not phase-locked to the pollers.
func dephase() { time.Sleep(rand.N(time.Second)) }

// measurements collects timings for the lead: printed to GinkgoWriter and
// appended, one line each, to $AGORA_MEASUREMENTS when it is set.
type measurements struct {
	name    string
	samples map[string][]time.Duration
	order   []string
}

func newMeasurements(name string) *measurements {
	return &measurements{name: name, samples: map[string][]time.Duration{}}
}

func (m *measurements) add(what string, d time.Duration) {
	if _, ok := m.samples[what]; !ok {
		m.order = append(m.order, what)
	}
	m.samples[what] = append(m.samples[what], d)
	fmt.Fprintf(GinkgoWriter, "MEASURED %s: %s\n", what, d.Round(time.Millisecond))
}

func medianOf(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// report prints every measurement and appends one line to $AGORA_MEASUREMENTS.
func (m *measurements) report() {
	GinkgoHelper()
	var parts []string
	for _, what := range m.order {
		ds := m.samples[what]
		ms := make([]string, len(ds))
		for i, d := range ds {
			ms[i] = fmt.Sprintf("%d", d.Milliseconds())
		}
		parts = append(parts, fmt.Sprintf("%s median %dms (n=%d: %sms)", what, medianOf(ds).Milliseconds(), len(ds), strings.Join(ms, ",")))
	}
	line := fmt.Sprintf("%s %s: %s", time.Now().UTC().Format(time.RFC3339), m.name, strings.Join(parts, "; "))
	fmt.Fprintln(GinkgoWriter, "MEASUREMENTS "+line)
	if path := os.Getenv("AGORA_MEASUREMENTS"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		Expect(err).NotTo(HaveOccurred(), "open $AGORA_MEASUREMENTS")
		_, err = fmt.Fprintln(f, line)
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Close()).To(Succeed())
	}
}
