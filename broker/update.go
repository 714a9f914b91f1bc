package broker

import (
	"bytes"
	"context"

	"github.com/pivotal-cf/brokerapi/v11/domain"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// Update implements domain.ServiceBroker (PATCH /v2/service_instances/:id).
func (b *Broker) Update(ctx context.Context, instanceID string, details domain.UpdateDetails, asyncAllowed bool) (domain.UpdateServiceSpec, error) {
	spec, err := b.update(ctx, instanceID, details, asyncAllowed, false)
	return spec, b.fail(ctx, "update", err)
}

// update is Update; forceAsync runs the work on the async engine even on
// a plan that runs inline, which is how a bulk upgrade (upgrade.go) starts
// each instance's upgrade without waiting for it.
func (b *Broker) update(ctx context.Context, instanceID string, details domain.UpdateDetails, asyncAllowed, forceAsync bool) (_ domain.UpdateServiceSpec, err error) {
	body, err := requestBody(ctx, details.RawParameters, details.RawContext)
	if err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	params, rawContext := body.Parameters, body.Context

	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: instanceID})
	if err != nil {
		return domain.UpdateServiceSpec{}, stateErr(err)
	}
	defer b.releaseOnError(ctx, lock, &err)
	inst := snap.Instance
	if inst == nil {
		return domain.UpdateServiceSpec{}, notFound("service instance %q does not exist", instanceID)
	}
	if details.ServiceID != inst.ServiceID {
		return domain.UpdateServiceSpec{}, badRequest("service_id %s does not match the instance's service %q", requestinfo.Quote(details.ServiceID), inst.ServiceID)
	}
	off, prevPlan, err := b.plan(inst.ServiceID, inst.PlanID)
	if err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	plan := prevPlan
	if details.PlanID != "" && details.PlanID != inst.PlanID {
		if !prevPlan.PlanUpdateable {
			return domain.UpdateServiceSpec{}, unprocessableCode("PlanChangeNotSupported", "plan %q of service %q cannot be changed to another plan", prevPlan.Name, off.Name)
		}
		if _, plan, err = b.plan(inst.ServiceID, details.PlanID); err != nil {
			return domain.UpdateServiceSpec{}, err
		}
		if plan.Deprecated {
			// Moving onto a deprecated plan would be a new use of it.
			return domain.UpdateServiceSpec{}, badRequest("plan %q of service %q is deprecated: instances cannot move onto it", plan.Name, off.Name)
		}
	}
	if err := checkDowngrade(inst, plan, details.MaintenanceInfo); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	if err := checkMaintenanceInfo(plan, details.MaintenanceInfo); err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	if err := plan.ValidateUpdateParameters(params); err != nil {
		return domain.UpdateServiceSpec{}, badRequest("%v", err)
	}
	var miVersion string
	if details.MaintenanceInfo != nil {
		miVersion = details.MaintenanceInfo.Version
	}
	fp := fingerprint("update", plan.ID, params, miVersion)

	now := b.now()
	switch {
	case inst.LastOp.Active(now) && inst.State == InstanceUpdating && inst.LastOp.Fingerprint == fp:
		err = b.state.Unlock(ctx, lock)
		return domain.UpdateServiceSpec{IsAsync: true, OperationData: inst.LastOp.ID, DashboardURL: inst.DashboardURL}, stateErr(err)
	case inst.LastOp.Active(now):
		return domain.UpdateServiceSpec{}, concurrency("service instance %q has an operation in progress (%s)", instanceID, inst.LastOp.Kind)
	case inst.State == InstanceProvisioning || inst.State == InstanceFailed:
		return domain.UpdateServiceSpec{}, unprocessable("service instance %q is not ready (state %s); only a ready instance can be updated", instanceID, inst.State)
	}

	planChange := plan.ID != inst.PlanID
	// The version the instance runs afterwards: the one asked for; on a
	// plan change without one, the new plan's; else it stays.
	target := miVersion
	if target == "" && planChange && plan.MaintenanceInfo != nil {
		target = plan.MaintenanceInfo.Version
	}
	miChange := target != "" && target != inst.MaintenanceInfo
	if !planChange && !miChange && len(params) == 0 {
		// Only the context changed (or nothing): record it, no backend work.
		next := *inst
		if len(rawContext) > 0 && !bytes.Equal(rawContext, inst.Context) {
			next.Context = rawContext
		}
		next.UpdatedAt = now
		err = b.state.Commit(ctx, Mutation{InstanceID: instanceID, PutInstance: &next}, &lock)
		return domain.UpdateServiceSpec{DashboardURL: inst.DashboardURL}, stateErr(err)
	}
	if _, ok := off.Adapter.(adapters.Updater); !ok {
		return domain.UpdateServiceSpec{}, unprocessable("service %q does not support updates", off.Name)
	}
	async := plan.Async || forceAsync
	if async && !asyncAllowed {
		return domain.UpdateServiceSpec{}, errAsyncRequired
	}

	next := *inst
	if len(rawContext) > 0 {
		next.Context = rawContext
	}
	next.State = InstanceUpdating
	next.UpdatedAt = now
	t := &task{off: off, plan: plan, prevPlan: prevPlan, inst: &next, params: params}
	t.op = b.newOperation(ctx, adapters.OpUpdate, t, async, fp)
	t.op.PreviousPlanID = prevPlan.ID
	if miChange {
		t.op.MaintenanceVersion = target
	}
	t.op.Context = next.Context
	next.LastOp = t.op.Summary()
	marker := Mutation{InstanceID: instanceID, PutInstance: &next, PutOperation: t.op}
	if inst.LastOp != nil {
		marker.DeleteOperations = []string{inst.LastOp.ID}
		t.superseded = inst.LastOp
	}
	if async {
		if err = b.startAsync(ctx, lock, t, marker); err != nil {
			return domain.UpdateServiceSpec{}, err
		}
		return domain.UpdateServiceSpec{IsAsync: true, OperationData: t.op.ID, DashboardURL: inst.DashboardURL}, nil
	}
	m, err := b.runSync(ctx, lock, t, marker, b.doUpdate, b.failUpdate)
	if err != nil {
		return domain.UpdateServiceSpec{}, err
	}
	return domain.UpdateServiceSpec{DashboardURL: m.PutInstance.DashboardURL, Metadata: domain.InstanceMetadata(m.PutInstance.Metadata)}, nil
}
