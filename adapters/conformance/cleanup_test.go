package conformance_test

import (
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/conformance"
)

func TestCleanupAttemptsRetryWhatIsLeft(t *testing.T) {
	for _, tt := range []struct {
		attempts  int
		wantClean bool
	}{{1, false}, {3, true}} {
		backend := memadapter.NewBackend()
		opts := options(backend, wrapped(backend, func(a *memadapter.Adapter) adapters.Adapter {
			return memadapter.NewFlakyDeprovision(a, 2)
		}))
		opts.CleanupAttempts = tt.attempts
		report := conformance.Run(t.Context(), opts)
		c := result(report, "cleanup")
		left := backend.Databases()
		if tt.wantClean && (!c.Passed || len(left) > 0) {
			t.Errorf("%d attempts: cleanup %+v, left %q; want every leftover removed by a retry", tt.attempts, c, left)
		}
		if !tt.wantClean && (c.Passed || len(left) == 0) {
			t.Errorf("%d attempt: cleanup %+v, left %q; want the leftovers reported", tt.attempts, c, left)
		}
	}
}
