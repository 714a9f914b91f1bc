package adaptertest_test

import (
	"context"
	"fmt"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
)

// Run is what a CLI or a non-test program calls; a Go test calls RunT.
func ExampleRun() {
	report := adaptertest.Run(context.Background(), adaptertest.Options{
		Factory:                    memadapter.Factory(nil),
		Settings:                   adapters.MapSettings(map[string]any{"prefix": "ex-"}),
		Plans:                      []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}}},
		InvalidProvisionParameters: map[string]any{"max_keys": "many"},
	})
	fmt.Println(report.Summary())
	// Output: 21 passed, 0 failed, 3 skipped
}
