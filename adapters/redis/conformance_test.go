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
	// The key namespace has no object in Redis, so Bind cannot tell a
	// never-provisioned instance from a provisioned one; Agora's broker
	// refuses a bind on an instance it has no record of before it calls
	// the adapter.
	report := adaptertest.RunTExcept(t, conformance.Options{
		Factory:  Factory(),
		Settings: adapters.MapSettings(testSettings(redisAddr())),
		Plans:    testPlans(),
		Plan:     "small",
		Offering: "redis",
		// The offering takes no parameters, so any parameter is invalid.
		InvalidProvisionParameters: map[string]any{"maxmemory": "1gb"},
	}, map[string]string{"bind-missing-instance": "the namespace exists only in Agora's records; the broker refuses binds on unknown instances"})
	// The kit uses the credentials itself, by their type.
	adaptertest.RequireVerified(t, report)
}
