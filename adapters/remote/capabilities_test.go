package remote_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/internal/syncbuf"
)

// updatable adds Update to scripted, so the Handler declares "update".
type updatable struct{ *scripted }

func (u updatable) Update(context.Context, adapters.UpdateRequest) (adapters.UpdateResult, error) {
	u.calls.Add(1)
	return adapters.UpdateResult{}, u.err
}

// The Go type the factory builds implements exactly the optional
// interfaces config.capabilities lists: that is what the catalog checks.
func TestFactoryTypeFollowsConfiguredCapabilities(t *testing.T) {
	for _, tc := range []struct {
		capabilities    []string
		updater, poller bool
	}{
		{nil, false, false},
		{[]string{}, false, false},
		{[]string{"update"}, true, false},
		{[]string{"status"}, false, true},
		{[]string{"status", "update"}, true, true},
	} {
		t.Run(strings.Join(tc.capabilities, "+"), func(t *testing.T) {
			settings := map[string]any{"url": "http://adapter.test", "secret": "s"}
			if tc.capabilities != nil {
				settings["capabilities"] = tc.capabilities
			}
			a, err := remote.Factory().New(t.Context(), adapters.Config{Offering: "o", Settings: adapters.MapSettings(settings)})
			if err != nil {
				t.Fatal(err)
			}
			_, updater := a.(adapters.Updater)
			_, poller := a.(adapters.Poller)
			_, pinger := a.(adapters.Pinger)
			_, closer := a.(adapters.Closer)
			if updater != tc.updater || poller != tc.poller || !pinger || !closer {
				t.Errorf("%T: Updater %v (want %v), Poller %v (want %v), Pinger %v, Closer %v (want both)",
					a, updater, tc.updater, poller, tc.poller, pinger, closer)
			}
		})
	}
}

// A capability the config lists but the adapter does not declare fails
// the call that needs it, terminally and naming the producer, before the
// adapter is called; Ping (the readiness check) reports it; calls that
// do not need it go on.
func TestConfiguredButUndeclaredCapability(t *testing.T) {
	a := &scripted{}
	c := newClient(t, serve(t, a).URL, remote.Options{}, func(s *remote.Settings) {
		s.Capabilities = []string{remote.CapabilityUpdate, remote.CapabilityStatus}
	})
	adapter := c.Adapter()
	checkMismatch := func(what string, err error, missing ...string) {
		t.Helper()
		if !errors.Is(err, remote.ErrCapabilityMismatch) || !adapters.IsTerminal(err) {
			t.Fatalf("%s: want a terminal ErrCapabilityMismatch, got %v", what, err)
		}
		for _, want := range append([]string{"test-team", "config.capabilities"}, missing...) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not name %s", what, err, want)
			}
		}
	}

	_, err := adapter.(adapters.Updater).Update(t.Context(), adapters.UpdateRequest{InstanceID: "i-1", Plan: testPlan})
	checkMismatch("Update", err, `"update"`)
	_, err = adapter.(adapters.Poller).Poll(t.Context(), adapters.PollRequest{Kind: adapters.OpProvision, InstanceID: "i-1", Token: "op/1"})
	checkMismatch("Poll", err, `"status"`)
	if a.calls.Load() != 0 {
		t.Errorf("the adapter was called %d times for calls it does not declare", a.calls.Load())
	}
	checkMismatch("Ping", adapter.(adapters.Pinger).Ping(t.Context()), `"update", "status"`)

	if _, err := adapter.Provision(t.Context(), provisionReq()); err != nil {
		t.Errorf("Provision needs no optional capability, but failed: %v", err)
	}
}

// A capability the adapter declares but the config does not list is not
// used: no method for it, and one INFO line, not one per refresh.
func TestDeclaredButUnconfiguredCapabilityIsLoggedOnce(t *testing.T) {
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, serve(t, updatable{&scripted{}}).URL, remote.Options{Logger: logger})
	if _, ok := c.Adapter().(adapters.Updater); ok {
		t.Fatal("the adapter implements Updater without update in config.capabilities")
	}
	for range 3 {
		if err := c.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Count(logs.String(), "declares capabilities its config does not list")
	if lines != 1 || !strings.Contains(logs.String(), "level=INFO") || !strings.Contains(logs.String(), "unused=[update]") {
		t.Errorf("want one INFO line naming update, got %d:\n%s", lines, logs.String())
	}
}

// An adapter that answers pending needs "status" declared and configured:
// without it in the config Agora has no Poll to follow the operation.
func TestPendingNeedsStatusInTheConfig(t *testing.T) {
	c := newClient(t, serve(t, &polling{scripted: &scripted{pending: true}}).URL, remote.Options{})
	_, err := c.Provision(t.Context(), provisionReq())
	if !adapters.IsTerminal(err) || !strings.Contains(err.Error(), `config.capabilities does not list "status"`) {
		t.Fatalf("want a terminal error asking for status in config.capabilities, got %v", err)
	}
}

// The gate's view: a configured capability the adapter does not declare
// fails the configured-capabilities check, and the report carries what
// the adapter declared, for the gate to fill in.
func TestConformanceChecksConfiguredCapabilities(t *testing.T) {
	srv, _ := serveMemadapter(t, remote.HandlerOptions{Name: "memory", Version: "test"})
	for _, tc := range []struct {
		name       string
		configured []string
		check      string // pass, fail or "" for not reported
	}{
		{"not configured", nil, ""},
		{"declared", []string{"update"}, "pass"},
		{"not declared", []string{"update", "status"}, "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			report, err := remote.Conformance(t.Context(), remote.ConformanceOptions{
				URL: srv.URL, Secret: testSecret, Plan: testPlan, Capabilities: tc.configured,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(report.Capabilities, []string{"update", "inspect"}) {
				t.Errorf("Report.Capabilities = %q, want what memadapter declares: [update inspect]", report.Capabilities)
			}
			c := result(report, remote.CheckConfiguredCaps)
			switch tc.check {
			case "":
				if c.Detail != "not in the report" {
					t.Errorf("reported without a configured list: %+v", c)
				}
			case "pass":
				if !c.Passed {
					t.Errorf("want pass, got %+v", c)
				}
			case "fail":
				if !c.Failed() || !strings.Contains(c.Detail, `lists "status"`) || !strings.Contains(c.Hint, "config.capabilities") {
					t.Errorf("want a failure naming status, got %+v", c)
				}
				if !report.Failed() {
					t.Error("the report passes with a failed check")
				}
			}
			if u := result(report, "update"); !u.Passed {
				t.Errorf("the kit must run with what the adapter declares (update): %+v", u)
			}
		})
	}
}
