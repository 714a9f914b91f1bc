package redis

import (
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/conformance"
)

// TestConformance runs Agora's conformance kit against the real Redis, with
// the same checks the lifecycle tests use playing the bound application.
func TestConformance(t *testing.T) {
	needRedis(t)
	report := adaptertest.RunT(t, conformance.Options{
		Factory:  Factory(),
		Settings: adapters.MapSettings(testSettings(redisAddr())),
		Plans:    testPlans(),
		Plan:     "small",
		Offering: "redis",
		// The offering takes no parameters, so any parameter is invalid.
		InvalidProvisionParameters: map[string]any{"maxmemory": "1gb"},
	})
	// The kit uses the credentials itself, by their type.
	adaptertest.RequireVerified(t, report)
}
