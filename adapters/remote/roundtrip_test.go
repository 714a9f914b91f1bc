package remote_test

import (
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/remote"
)

// TestKitThroughHandlerAndClient is the round trip: the reference adapter
// served by remote.Handler and reached by the remote client (built by its
// Factory, as Agora builds it) must pass every check of the kit, none
// skipped. Anything the protocol loses on the way fails here.
func TestKitThroughHandlerAndClient(t *testing.T) {
	srv, backend := serveMemadapter(t, remote.HandlerOptions{Name: "memory", Version: "test"})
	check, revoked, isolation := memChecks(backend)
	report := adaptertest.RunT(t, conformance.Options{
		Factory: remote.Factory(),
		Settings: adapters.MapSettings(map[string]any{"url": srv.URL, "secret": testSecret, "timeout": "10s",
			"capabilities": []string{remote.CapabilityUpdate, remote.CapabilityInspect}}),
		Plans:                      []adapters.PlanConfig{{Plan: testPlan}},
		ProvisionParameters:        map[string]any{"max_keys": 5},
		InvalidProvisionParameters: map[string]any{"max_keys": 0},
		CheckCredentials:           check,
		CheckRevoked:               revoked,
		CheckIsolation:             isolation,
	})
	requireAllPassed(t, report)
	if left := backend.Databases(); len(left) > 0 {
		t.Errorf("the run left databases behind: %q", left)
	}
}

// TestConformanceOfHandler runs the protocol checks and the kit together,
// as `agora adapter test` does.
func TestConformanceOfHandler(t *testing.T) {
	srv, backend := serveMemadapter(t, remote.HandlerOptions{Name: "memory", Version: "test"})
	check, revoked, isolation := memChecks(backend)
	report, err := remote.Conformance(t.Context(), remote.ConformanceOptions{
		URL: srv.URL, Secret: testSecret, Plan: testPlan,
		ProvisionParameters:        map[string]any{"max_keys": 5},
		InvalidProvisionParameters: map[string]any{"max_keys": 0},
		CheckCredentials:           check, CheckRevoked: revoked, CheckIsolation: isolation,
		Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	requireAllPassed(t, report)
	for _, name := range []string{remote.CheckCapabilities, remote.CheckRejectsUnsigned, remote.CheckRejectsBadSignature,
		remote.CheckRejectsStale, remote.CheckRejectsReplay, "provision", "idempotent-bind", "error-shapes"} {
		if c := result(report, name); !c.Passed {
			t.Errorf("%s did not pass: %s", name, c.Detail)
		}
	}
}
