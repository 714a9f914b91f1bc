package conformance_test

import (
	"context"
	"fmt"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/conformance"
)

// Run is what a CLI or a non-test program calls; a Go test calls RunT.
func ExampleRun() {
	report := conformance.Run(context.Background(), conformance.Options{
		Factory:                    memadapter.Factory(nil),
		Settings:                   adapters.MapSettings(map[string]any{"prefix": "ex-"}),
		Plans:                      []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}}},
		InvalidProvisionParameters: map[string]any{"max_keys": "many"},
	})
	fmt.Println(report.Summary())
	// Output: 25 passed, 0 failed, 4 skipped, unverified: type (none)
}
