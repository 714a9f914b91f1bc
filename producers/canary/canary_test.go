package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
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

// TestCanaryJudgesOnePlanPerRunInTurn: each interval is one kit run per
// offering, with one plan, the next after the last run's; a plan the
// adapter breaks on is found within as many intervals as the offering has
// plans, and the result names it.
func TestCanaryJudgesOnePlanPerRunInTurn(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	off := offering("a", "http://a")
	for _, name := range []string{"small", "large"} {
		off.Request.Plans = append(off.Request.Plans, adapters.PlanConfig{Plan: adapters.Plan{ID: "id-" + name, Name: name}})
	}
	src := &fakeSource{live: []producers.LiveOffering{off}, problems: map[string]error{}}
	var judged []string
	gate := func(_ context.Context, req producers.GateRequest) (conformance.Report, error) {
		if len(req.Plans) != 1 {
			return conformance.Report{}, errors.New("the canary must judge one plan per run")
		}
		judged = append(judged, req.Plans[0].Plan.Name)
		r := conformance.Report{Results: []conformance.CheckResult{{Name: "provision", Passed: true}}}
		if req.Plans[0].Plan.Name == "large" {
			r.Results = append(r.Results, conformance.CheckResult{Name: "invalid-parameters", Detail: "accepted size 11"})
		}
		return r, nil
	}
	c, err := New(Config{Store: store, Source: src, Gate: gate, Interval: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var verdicts []string
	for range 3 {
		if n, err := c.RunOnce(ctx); err != nil || n != 1 {
			t.Fatalf("RunOnce = %d, %v; want one run", n, err)
		}
		res, err := store.Results(ctx)
		if err != nil {
			t.Fatal(err)
		}
		verdicts = append(verdicts, fmt.Sprintf("%s=%v", res["a"].Plan, res["a"].Passed))
		if a := res["a"]; !a.Passed && !strings.Contains(a.Summary, "plan large: invalid-parameters") {
			t.Errorf("summary %q does not name the failing plan and check", a.Summary)
		}
		now = now.Add(time.Minute)
	}
	if got := strings.Join(judged, ","); got != "small,large,small" {
		t.Errorf("judged %s, want the plans in turn", got)
	}
	if got := strings.Join(verdicts, " "); got != "small=true large=false small=true" {
		t.Errorf("results %s, want each naming its plan, large failing", got)
	}
}
