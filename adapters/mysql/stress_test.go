package mysql

import (
	"errors"
	"sync"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

// TestConcurrentRepeats fires the same Provision and the same Bind from
// several goroutines at once, as a platform retrying against several
// broker replicas might: every call must succeed.
func TestConcurrentRepeats(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	id := provisioned(t, a, smallPlan)
	bid, _ := bind(t, a, id)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan})
			errs <- err
		})
		wg.Go(func() {
			_, err := a.Bind(ctx, adapters.BindRequest{InstanceID: id, BindingID: bid, Plan: smallPlan})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}

	// Then the same Unbind, and the same Deprovision racing with them:
	// each must succeed or find its work already done.
	gone := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			_, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid})
			gone <- err
		})
	}
	for range n {
		wg.Go(func() {
			_, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id})
			gone <- err
		})
	}
	wg.Wait()
	close(gone)
	for err := range gone {
		if err != nil && !errors.Is(err, adapters.ErrNotFound) {
			t.Error(err)
		}
	}
	if left := leftovers(t, ctx, id); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
