package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/internal/egress"
	"github.com/agora-osb/agora/internal/zoo"
	"github.com/agora-osb/agora/producers"
)

// TestRemoteGateVerifiesCredentialsThroughTheEgressPolicy: the gate (and
// so the canary, which runs it) verifies a zoo adapter's redis
// credentials by using them, connecting through the same egress policy as
// to the adapter; it derives invalid parameters from the plan's schema;
// and when the credentials point at what the policy refuses (here: the
// zoo's Redis playing Agora's own), the credential checks fail with the
// rule's words instead of connecting.
func TestRemoteGateVerifiesCredentialsThroughTheEgressPolicy(t *testing.T) {
	admin := zooAdmin(t)
	loopback := mustEgress(t, egress.Config{Allow: []string{"127.0.0.0/8"}})
	ownRedis := mustEgress(t, egress.Config{Allow: []string{"127.0.0.0/8"}, Own: []egress.Endpoint{{Name: "Agora's Redis", HostPort: zooRedis}}})
	schema := map[string]any{"type": "object", "properties": map[string]any{"size": map[string]any{"type": "integer", "maximum": 10.0}}}

	for _, tc := range []struct {
		name   string
		defect zoo.Defect
		policy *egress.Policy
		// failed maps each check that must fail to words its detail holds.
		failed map[string]string
	}{
		{name: "correct", policy: loopback},
		{name: "unbind revokes nothing", defect: zoo.UnbindRevokesNothing, policy: loopback,
			failed: map[string]string{"credentials-revoked": "still authenticates"}},
		{name: "credentials at Agora's own Redis", policy: ownRedis,
			failed: map[string]string{"credentials-work": "Agora's own Redis and Vault are never called"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := zooRoot(t)
			t.Cleanup(func() { _ = zoo.Remove(context.WithoutCancel(t.Context()), admin, root) })
			secret := "zoo-secret-" + root
			srv := httptest.NewServer(zoo.Handler(zoo.New(admin, zooRedis, root, tc.defect), secret))
			t.Cleanup(srv.Close)
			report, err := remoteGate(t.Context(), producers.GateRequest{
				Producer: "team-z", Offering: "team-z-keys", URL: srv.URL, Secret: secret, Timeout: "10s",
				Settings:         map[string]any{"url": srv.URL, "secret": secret, "timeout": "10s"},
				Plans:            []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}}},
				ProvisionSchemas: map[string]map[string]any{"p1": schema},
				Dial:             tc.policy.DialContext,
			})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			report.Print(&out)
			defer func() {
				if t.Failed() {
					t.Logf("the gate's report:\n%s", out.String())
				}
			}()
			if len(report.Unverified) > 0 {
				t.Errorf("unverified %q: the gate must verify redis credentials", report.Unverified)
			}
			seen := map[string]conformance.CheckResult{}
			for _, c := range report.Results {
				seen[c.Name] = c
				if !c.Failed() {
					continue
				}
				want, ok := tc.failed[c.Name]
				if !ok && tc.policy == ownRedis && strings.Contains(c.Detail, "never called") {
					continue // every check that uses the credentials says the same
				}
				if !ok {
					t.Errorf("%s failed: %s", c.Name, c.Detail)
				} else if !strings.Contains(c.Detail, want) {
					t.Errorf("%s detail %q, want it to say %q", c.Name, c.Detail, want)
				}
			}
			for name := range tc.failed {
				if !seen[name].Failed() {
					t.Errorf("%s did not fail", name)
				}
			}
			// The plan's schema gave the kit invalid parameters: the check
			// ran (the zoo refuses every parameter) instead of skipping.
			if c := seen["invalid-parameters"]; !c.Passed {
				t.Errorf("invalid-parameters: passed %v, skipped %v (%s): the schema was not used", c.Passed, c.Skipped, c.Detail)
			}
		})
	}
}

func mustEgress(t *testing.T, cfg egress.Config) *egress.Policy {
	t.Helper()
	p, err := egress.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
