package rabbitmq

import (
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/conformance"
)

// TestConformance runs Agora's conformance kit against the real RabbitMQ,
// with the same checks the lifecycle tests use playing the bound
// application (dial the vhost, declare, publish, consume).
func TestConformance(t *testing.T) {
	needRabbitMQ(t)
	report := adaptertest.RunT(t, conformance.Options{
		Factory:  Factory(),
		Settings: adapters.MapSettings(testSettings(managementURL())),
		Plans:    testPlans(),
		Plan:     "standard",
		Offering: "rabbitmq",
		// The offering takes no parameters, so any parameter is invalid.
		InvalidProvisionParameters: map[string]any{"max_queues": 5},
	})
	// The kit uses the credentials itself, by their type.
	adaptertest.RequireVerified(t, report)
}
