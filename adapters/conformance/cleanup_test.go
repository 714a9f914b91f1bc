package conformance_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/conformance"
)

// flakyDeprovision fails the first two Deprovision calls of every
// instance, as a backend does that is briefly overloaded.
type flakyDeprovision struct {
	*memadapter.Adapter
	mu    sync.Mutex
	calls map[string]int
}

func (f *flakyDeprovision) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	f.mu.Lock()
	f.calls[req.InstanceID]++
	n := f.calls[req.InstanceID]
	f.mu.Unlock()
	if n <= 2 {
		return adapters.DeprovisionResult{}, errors.New("backend busy, try again")
	}
	return f.Adapter.Deprovision(ctx, req)
}

func TestCleanupAttemptsRetryWhatIsLeft(t *testing.T) {
	for _, tt := range []struct {
		attempts  int
		wantClean bool
	}{{1, false}, {3, true}} {
		backend := memadapter.NewBackend()
		opts := options(backend, wrapped(backend, func(a *memadapter.Adapter) adapters.Adapter {
			return &flakyDeprovision{Adapter: a, calls: map[string]int{}}
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
