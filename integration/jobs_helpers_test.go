package integration

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/internal/syncbuf"
)

// ---- a Redis of the spec's own, to stop and resume ----

// privateRedis is a redis-server only one spec uses, so the spec can
// freeze it (SIGSTOP) without disturbing anyone else's tests. It keeps
// nothing on disk.
type privateRedis struct {
	Addr   string
	Client *redis.Client
	cmd    *exec.Cmd
	log    *syncbuf.Buffer
	exited chan struct{}
}

// startPrivateRedis starts redis-server on a free loopback port; it is
// stopped when the current node ends.
func startPrivateRedis(ctx context.Context) *privateRedis {
	GinkgoHelper()
	bin, err := exec.LookPath("redis-server")
	Expect(err).NotTo(HaveOccurred(), "this spec starts a Redis of its own: redis-server must be on PATH")
	for attempt := 0; attempt < 3; attempt++ {
		r := &privateRedis{Addr: fmt.Sprintf("127.0.0.1:%d", freePort()), log: &syncbuf.Buffer{}, exited: make(chan struct{})}
		_, port, _ := strings.Cut(r.Addr, ":")
		r.cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
		r.cmd.SysProcAttr = childProcAttr()
		Expect(r.cmd.Start()).To(Succeed())
		go func() {
			_ = r.cmd.Wait()
			close(r.exited)
		}()
		DeferCleanup(func() {
			_ = r.cmd.Process.Signal(syscall.SIGCONT)
			_ = r.cmd.Process.Kill()
			<-r.exited
			if CurrentSpecReport().Failed() {
				fmt.Fprintf(GinkgoWriter, "---- log of the private redis-server %s ----\n%s\n", r.Addr, r.log.String())
			}
		})
		r.Client = redis.NewClient(&redis.Options{Addr: r.Addr, DialTimeout: time.Second})
		DeferCleanup(r.Client.Close)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-r.exited:
			case <-ctx.Done():
				Fail("interrupted while starting redis-server")
			default:
				if r.Client.Ping(ctx).Err() == nil {
					return r
				}
				time.Sleep(50 * time.Millisecond)
				continue
			}
			break
		}
		if !strings.Contains(r.log.String(), "Address already in use") {
			Fail("redis-server did not answer on " + r.Addr + ":\n" + r.log.String())
		}
	}
	Fail("redis-server found no free port in three tries")
	return nil
}

// Pause freezes the server (SIGSTOP): connections stay open and nothing
// is answered, as when Redis hangs or the network partitions.
func (r *privateRedis) Pause() {
	GinkgoHelper()
	Expect(r.cmd.Process.Signal(syscall.SIGSTOP)).To(Succeed())
}

// Resume lets a paused server go on (SIGCONT), its data intact.
func (r *privateRedis) Resume() {
	GinkgoHelper()
	Expect(r.cmd.Process.Signal(syscall.SIGCONT)).To(Succeed())
}

// ---- a remote adapter served from the test process ----

// adapterCall is one Provision call a scriptedAdapter served.
type adapterCall struct {
	Instance   string
	Start, End time.Time
	Err        string
}

func (c adapterCall) String() string {
	return fmt.Sprintf("%s..%s %q", c.Start.Format("15:04:05.000"), c.End.Format("15:04:05.000"), c.Err)
}

// scriptedAdapter is an adapters.Adapter whose Provision does what the
// spec says and records every call with its start and end.
type scriptedAdapter struct {
	provision func(ctx context.Context, instanceID string) error

	mu    sync.Mutex
	calls []adapterCall
}

func (a *scriptedAdapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	err := a.record(req.InstanceID, func() error { return a.provision(ctx, req.InstanceID) })
	return adapters.ProvisionResult{}, err
}

// record runs work as one call for instanceID, recorded with its start,
// end and error.
func (a *scriptedAdapter) record(instanceID string, work func() error) error {
	a.mu.Lock()
	i := len(a.calls)
	a.calls = append(a.calls, adapterCall{Instance: instanceID, Start: time.Now()})
	a.mu.Unlock()
	err := work()
	a.mu.Lock()
	a.calls[i].End = time.Now()
	if err != nil {
		a.calls[i].Err = err.Error()
	}
	a.mu.Unlock()
	return err
}

func (a *scriptedAdapter) Deprovision(context.Context, adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	return adapters.DeprovisionResult{}, nil
}

func (a *scriptedAdapter) Bind(_ context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	return adapters.BindResult{Credentials: map[string]any{"binding": req.BindingID}}, nil
}

func (a *scriptedAdapter) Unbind(context.Context, adapters.UnbindRequest) (adapters.UnbindResult, error) {
	return adapters.UnbindResult{}, nil
}

// callsOf returns the calls for one instance, in the order they started.
func (a *scriptedAdapter) callsOf(instanceID string) []adapterCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []adapterCall
	for _, c := range a.calls {
		if c.Instance == instanceID {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(x, y adapterCall) int { return x.Start.Compare(y.Start) })
	return out
}

// running is how many calls are in progress.
func (a *scriptedAdapter) running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.calls {
		if c.End.IsZero() {
			n++
		}
	}
	return n
}

var _ adapters.Adapter = (*scriptedAdapter)(nil)

// servedAdapter is a scriptedAdapter behind remote.Handler on a loopback
// port, as a producer would run it.
type servedAdapter struct {
	*scriptedAdapter
	URL, Secret string
	// downUntil (Unix ns) makes every provision answer 503 before the
	// adapter sees it, until then (a backend down for maintenance).
	downUntil atomic.Int64
	refusals  atomic.Int64
}

// serveAdapter serves a on a free port until the current node ends.
func serveAdapter(a *scriptedAdapter) *servedAdapter {
	GinkgoHelper()
	s := &servedAdapter{scriptedAdapter: a, Secret: randomHex(16)}
	inner := remote.Handler(a, remote.HandlerOptions{Name: "scripted", Version: "1.0.0", Secret: s.Secret})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Now().UnixNano() < s.downUntil.Load() && r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/v1/instances/") {
			s.refusals.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"internal","message":"the backend is down for maintenance"}`))
			return
		}
		inner.ServeHTTP(w, r)
	})
	s.URL = serveLocal(h)
	return s
}

// remoteOffering is one producer's offering on a served adapter, with one
// async plan.
type remoteOffering struct {
	Producer, Name string
	Adapter        *servedAdapter
}

// osb is the offering as a platform knows it, by its derived IDs.
func (o remoteOffering) osb() osbOffering {
	return osbOffering{Name: o.Name, ID: catalog.DeriveOfferingID(o.Producer, o.Name),
		Plans: map[string]string{"async": catalog.DerivePlanID(o.Producer, o.Name, "async")}}
}

// remoteCatalog is a catalog.yml of the given offerings.
func remoteCatalog(offerings ...remoteOffering) string {
	var b strings.Builder
	b.WriteString("producers:\n")
	for _, o := range offerings {
		fmt.Fprintf(&b, `  - name: %s
    contact: %s@example.com
    offerings:
      - name: %s
        description: An offering served by an adapter in the test process.
        adapter: remote
        config:
          url: %s
          secret: %s
          timeout: 60s
        plans:
          - name: async
            description: Every operation in the async engine.
            async: true
            operation_timeout: 5m
`, o.Producer, o.Producer, o.Name, o.Adapter.URL, o.Adapter.Secret)
	}
	return b.String()
}

// provisionAsync provisions iid of o asynchronously through c and returns
// the operation.
func provisionAsync(c *OSBClient, o remoteOffering, iid string) string {
	GinkgoHelper()
	off := o.osb()
	resp := off.Provision(c, iid, off.plan("async"), true)
	Expect(resp.Status).To(Equal(http.StatusAccepted), resp.String())
	return resp.Str("operation")
}

// awaitSucceeded polls last_operation every 100ms until it reports
// succeeded (failing on failed) and returns when it first did.
func awaitSucceeded(c *OSBClient, iid, op string, timeout time.Duration) time.Time {
	GinkgoHelper()
	var last Response
	Eventually(func() string {
		last = c.LastOperation(iid, op)
		return last.Str("state")
	}).WithTimeout(timeout).WithPolling(100*time.Millisecond).Should(Equal("succeeded"), func() string { return last.String() })
	return time.Now()
}

// queueIsEmpty reports whether the job queue under prefix in rdb has
// nothing queued, delivered or waiting.
func queueIsEmpty(ctx context.Context, c *redis.Client, prefix string) bool {
	GinkgoHelper()
	n, err := c.XLen(ctx, jobStream(prefix)).Result()
	Expect(err).NotTo(HaveOccurred())
	p, err := c.XPending(ctx, jobStream(prefix), "agora-workers").Result()
	Expect(err).NotTo(HaveOccurred())
	waiting, err := c.Exists(ctx, prefix+":{jobs}:delayed", prefix+":{jobs}:queued").Result()
	Expect(err).NotTo(HaveOccurred())
	return n == 0 && p.Count == 0 && waiting == 0
}
