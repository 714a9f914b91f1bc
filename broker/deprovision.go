package broker

import (
	"context"
	"sort"

	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// Deprovision implements domain.ServiceBroker (DELETE /v2/service_instances/:id).
//
// Bindings that still exist are removed first (cascade): the adapter
// revokes their credentials and Agora deletes them from Vault, so that
// deleting an instance never orphans a secret. Cloud Foundry unbinds
// before it deletes anyway; this covers clients that do not, and the
// repeated DELETEs of orphan mitigation.
func (b *Broker) Deprovision(ctx context.Context, instanceID string, details domain.DeprovisionDetails, asyncAllowed bool) (domain.DeprovisionServiceSpec, error) {
	spec, err := b.deprovision(ctx, instanceID, details, asyncAllowed)
	return spec, b.fail(ctx, "deprovision", err)
}

func (b *Broker) deprovision(ctx context.Context, instanceID string, details domain.DeprovisionDetails, asyncAllowed bool) (_ domain.DeprovisionServiceSpec, err error) {
	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: instanceID, AllBindings: true})
	if err != nil {
		return domain.DeprovisionServiceSpec{}, stateErr(err)
	}
	defer b.releaseOnError(ctx, lock, &err)
	inst := snap.Instance
	if inst == nil {
		err = apiresponses.ErrInstanceDoesNotExist
		return domain.DeprovisionServiceSpec{}, err
	}
	if details.ServiceID != "" && details.ServiceID != inst.ServiceID {
		return domain.DeprovisionServiceSpec{}, badRequest("service_id %s does not match the instance's service %q", requestinfo.Quote(details.ServiceID), inst.ServiceID)
	}
	// The instance's own plan decides, not the request's: the platform may
	// send a plan it believes in after a failed update.
	off, plan, err := b.plan(inst.ServiceID, inst.PlanID)
	if err != nil {
		return domain.DeprovisionServiceSpec{}, err
	}
	now := b.now()
	if inst.LastOp.Active(now) {
		if inst.State == InstanceDeprovisioning {
			err = b.state.Unlock(ctx, lock)
			return domain.DeprovisionServiceSpec{IsAsync: true, OperationData: inst.LastOp.ID}, stateErr(err)
		}
		return domain.DeprovisionServiceSpec{}, concurrency("service instance %q has an operation in progress (%s); delete it once that finishes", instanceID, inst.LastOp.Kind)
	}
	for _, bnd := range snap.Bindings {
		// A running bind would store credentials after the cascade
		// removed its binding, leaving a secret nothing points to.
		if bnd.LastOp.Active(now) {
			return domain.DeprovisionServiceSpec{}, concurrency("service binding %q of instance %q has an operation in progress (%s); delete the instance once that finishes", bnd.ID, instanceID, bnd.LastOp.Kind)
		}
	}
	async := plan.Async
	if async && !asyncAllowed {
		return domain.DeprovisionServiceSpec{}, errAsyncRequired
	}

	bindings := snap.Bindings
	sort.Slice(bindings, func(i, j int) bool { return bindings[i].ID < bindings[j].ID })
	next := *inst
	next.State = InstanceDeprovisioning
	next.UpdatedAt = now
	t := &task{off: off, plan: plan, inst: &next, bindings: bindings}
	t.op = b.newOperation(ctx, adapters.OpDeprovision, t, async, fingerprint("deprovision"))
	t.op.Context = inst.Context
	t.op.PreviousState = inst.State
	next.LastOp = t.op.Summary()
	marker := Mutation{InstanceID: instanceID, PutInstance: &next, PutOperation: t.op}
	if inst.LastOp != nil {
		// Dropping the superseded operation also stops a worker that is
		// still finishing it past its deadline: its conditional commit
		// finds the operation gone and changes nothing.
		marker.DeleteOperations = []string{inst.LastOp.ID}
		t.superseded = inst.LastOp
	}
	if async {
		if err = b.startAsync(ctx, lock, t, marker); err != nil {
			return domain.DeprovisionServiceSpec{}, err
		}
		return domain.DeprovisionServiceSpec{IsAsync: true, OperationData: t.op.ID}, nil
	}
	_, err = b.runSync(ctx, lock, t, marker, b.doDeprovision, b.failDeprovision)
	return domain.DeprovisionServiceSpec{}, err
}
