package memadapter

import (
	"context"
	"errors"
	"sync"

	"github.com/agora-osb/agora/adapters"
)

// FlakyDeprovision is an Adapter whose first Failures Deprovision calls
// of every instance fail, as a briefly overloaded backend's do: tests of
// cleanup that must retry use it.
type FlakyDeprovision struct {
	*Adapter
	Failures int

	mu    sync.Mutex
	calls map[string]int
}

// NewFlakyDeprovision wraps a so that each instance's first failures
// deprovisions fail.
func NewFlakyDeprovision(a *Adapter, failures int) *FlakyDeprovision {
	return &FlakyDeprovision{Adapter: a, Failures: failures, calls: map[string]int{}}
}

// Deprovision fails until the instance has been asked Failures times.
func (f *FlakyDeprovision) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	f.mu.Lock()
	f.calls[req.InstanceID]++
	n := f.calls[req.InstanceID]
	f.mu.Unlock()
	if n <= f.Failures {
		return adapters.DeprovisionResult{}, errors.New("backend busy, try again")
	}
	return f.Adapter.Deprovision(ctx, req)
}
