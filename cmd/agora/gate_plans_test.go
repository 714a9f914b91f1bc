package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/internal/egress"
	"github.com/agora-osb/agora/internal/zoo"
	"github.com/agora-osb/agora/producers"
)

// TestRemoteGateJudgesEachPlan: the gate sends one plan per run
// (GateRequest.ForPlan), and remoteGate judges the plan it is sent, not
// the offering's first. A correct zoo adapter that does not know its
// offering's second plan passes the run of the first plan and fails the
// run of the second; the report printed for the producer names the plan
// of every check and of the reason it is not approved automatically.
func TestRemoteGateJudgesEachPlan(t *testing.T) {
	admin := zooAdmin(t)
	loopback := mustEgress(t, egress.Config{Allow: []string{"127.0.0.0/8"}})
	root := zooRoot(t)
	t.Cleanup(func() { _ = zoo.Remove(context.WithoutCancel(t.Context()), admin, root) })
	secret := "zoo-secret-" + root
	h := zoo.Handler(zoo.New(admin, zooRedis, root, zoo.None), secret)
	// The adapter refuses to provision plan "large": it does not know it.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPut && !strings.Contains(r.URL.Path, "/bindings/") && bytes.Contains(body, []byte("plan-large-"+root)) {
			http.Error(w, `{"error":"unknown plan"}`, http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	req := producers.GateRequest{
		Producer: "team-z", Offering: "team-z-keys", URL: srv.URL, Secret: secret, Timeout: "10s",
		Settings: map[string]any{"url": srv.URL, "secret": secret, "timeout": "10s"},
		Plans: []adapters.PlanConfig{
			{Plan: adapters.Plan{ID: "plan-small-" + root, Name: "small"}},
			{Plan: adapters.Plan{ID: "plan-large-" + root, Name: "large"}},
		},
		Dial: loopback.DialContext,
	}
	g := &producers.GateResult{}
	for j, plan := range []string{"small", "large"} {
		report, err := remoteGate(t.Context(), req.ForPlan(j))
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, c := range report.Results {
			if c.Failed() {
				failed = append(failed, c.Name)
			}
			g.Checks = append(g.Checks, producers.GateCheck{Offering: req.Offering, Plan: plan, Name: c.Name, Result: c.Outcome(), Detail: c.Detail})
		}
		switch {
		case plan == "small" && len(failed) > 0:
			t.Errorf("plan small failed %v: the adapter knows it", failed)
		case plan == "large" && !strings.Contains(strings.Join(failed, ","), "provision"):
			t.Errorf("plan large failed %v, want its provision to fail: the adapter does not know it", failed)
		case plan == "large":
			g.Failed = true
			g.NotAutoApprovable = append(g.NotAutoApprovable, "offering team-z-keys plan large: "+strings.Join(failed, ", "))
		}
	}
	var out bytes.Buffer
	printGate(&out, g)
	for _, want := range []string{"conformance of team-z-keys plan small:", "conformance of team-z-keys plan large:\n  PASS", "FAIL provision", "not approved automatically: offering team-z-keys plan large"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the printed report lacks %q:\n%s", want, out.String())
		}
	}
}
