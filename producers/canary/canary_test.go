package canary

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/broker/redisstore"
	"github.com/agora-osb/agora/producers"
)

type fakeSource struct {
	live     []producers.LiveOffering
	problems map[string]error
	refused  map[string]bool
}

func (f *fakeSource) LiveRemoteOfferings(context.Context) ([]producers.LiveOffering, map[string]error, error) {
	return f.live, f.problems, nil
}

func (f *fakeSource) CheckEgress(_ context.Context, u string) error {
	if f.refused[u] {
		return errors.New("egress refused for " + u + " (rule: loopback)")
	}
	return nil
}

type fakeGate struct {
	mu      sync.Mutex
	calls   []string
	failing map[string]bool
}

func (g *fakeGate) run(_ context.Context, req producers.GateRequest) (conformance.Report, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, req.URL)
	if req.CleanupAttempts < 2 {
		return conformance.Report{}, errors.New("the canary must retry its cleanup")
	}
	r := conformance.Report{Results: []conformance.CheckResult{{Name: "provision", Passed: true}}}
	if g.failing[req.URL] {
		r.Results = append(r.Results, conformance.CheckResult{Name: "credentials-revoked", Detail: "the credentials still work after unbind (secret " + req.Secret + ")"})
	}
	return r, nil
}

func newStore(t *testing.T) *redisstore.CanaryResults {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return redisstore.NewCanaryResults(rdb, "t")
}

func offering(id, url string) producers.LiveOffering {
	return producers.LiveOffering{ID: id, Request: producers.GateRequest{Producer: "ada", Offering: "ada-" + id, URL: url, Secret: "s3cr3t"}}
}

func TestCanaryRecordsHealthAndRunsOncePerInterval(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	src := &fakeSource{live: []producers.LiveOffering{offering("a", "http://a"), offering("b", "http://b"), offering("c", "http://c")},
		problems: map[string]error{}, refused: map[string]bool{"http://c": true}}
	gate := &fakeGate{failing: map[string]bool{"http://b": true}}
	var observed []string
	c, err := New(Config{Store: store, Source: src, Gate: gate.run, Interval: time.Minute, Now: func() time.Time { return now },
		Observe: func(p, o, r string) { observed = append(observed, o+"="+r) }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.RunOnce(ctx)
	if err != nil || n != 3 {
		t.Fatalf("RunOnce = %d, %v; want 3 offerings checked", n, err)
	}
	if strings.Join(gate.calls, ",") != "http://a,http://b" {
		t.Errorf("the kit ran against %v; a refused URL must never be called", gate.calls)
	}
	res, err := store.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := res["a"]; !a.Passed || !a.LastSuccess.Equal(now) {
		t.Errorf("a: %+v, want passed now", a)
	}
	b := res["b"]
	if b.Passed || len(b.Failed) != 1 || !strings.Contains(b.Summary, "credentials-revoked") {
		t.Errorf("b: %+v, want failing, naming the check", b)
	}
	if strings.Contains(b.Failed[0], "s3cr3t") || strings.Contains(b.Summary, "s3cr3t") {
		t.Errorf("the protocol secret reached the result: %+v", b)
	}
	if cr := res["c"]; cr.Passed || !strings.Contains(cr.Error, "rule") {
		t.Errorf("c: %+v, want not run, naming the egress rule", cr)
	}
	if strings.Join(observed, " ") != "ada-a=pass ada-b=fail ada-c=error" {
		t.Errorf("observed %v", observed)
	}

	// Within the interval nothing is due; after it, everything is, and a
	// failure keeps the time of the last success.
	now = now.Add(30 * time.Second)
	if n, _ := c.RunOnce(ctx); n != 0 {
		t.Errorf("ran %d within the interval, want 0", n)
	}
	now = now.Add(time.Minute)
	gate.failing["http://a"] = true
	if n, _ := c.RunOnce(ctx); n != 3 {
		t.Errorf("ran %d after the interval, want 3", n)
	}
	res, _ = store.Results(ctx)
	if a := res["a"]; a.Passed || !a.LastSuccess.Equal(now.Add(-90*time.Second)) {
		t.Errorf("a after breaking: %+v, want failing with the earlier last success", a)
	}

	// An offering that leaves the catalog leaves the store.
	src.live = src.live[:1]
	now = now.Add(2 * time.Minute)
	if _, err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if res, _ := store.Results(ctx); len(res) != 1 {
		t.Errorf("results %v, want only the live offering's", res)
	}
}

func TestOneReplicaAtATime(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	src := &fakeSource{live: []producers.LiveOffering{offering("a", "http://a")}}
	gate := &fakeGate{}
	other, err := New(Config{Store: store, Source: src, Gate: gate.run, Interval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := store.Acquire(ctx, other.holder, time.Minute); err != nil || !ok {
		t.Fatalf("acquire: %v %v", ok, err)
	}
	c, _ := New(Config{Store: store, Source: src, Gate: gate.run, Interval: time.Minute})
	if n, err := c.RunOnce(ctx); n != 0 || err != nil {
		t.Fatalf("RunOnce while another replica holds the lease = %d, %v; want 0, nil", n, err)
	}
	if len(gate.calls) != 0 {
		t.Error("the kit ran on two replicas at once")
	}
	_ = store.Release(ctx, other.holder)
	if n, _ := c.RunOnce(ctx); n != 1 {
		t.Errorf("RunOnce after the release = %d, want 1", n)
	}
}
