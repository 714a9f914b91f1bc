package broker

import (
	"context"

	"github.com/pivotal-cf/brokerapi/v11/domain"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// Provision implements domain.ServiceBroker (PUT /v2/service_instances/:id).
func (b *Broker) Provision(ctx context.Context, instanceID string, details domain.ProvisionDetails, asyncAllowed bool) (domain.ProvisionedServiceSpec, error) {
	spec, err := b.provision(ctx, instanceID, details, asyncAllowed)
	return spec, b.fail(ctx, "provision", err)
}

func (b *Broker) provision(ctx context.Context, instanceID string, details domain.ProvisionDetails, asyncAllowed bool) (_ domain.ProvisionedServiceSpec, err error) {
	if err := b.checkInstanceID(instanceID); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	off, plan, err := b.plan(details.ServiceID, details.PlanID)
	if err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	if plan.Deprecated {
		// The catalog keeps deprecated plans resolvable for the instances
		// that exist; a new instance must not be created on one.
		return domain.ProvisionedServiceSpec{}, badRequest("plan %q of service %q is deprecated: existing instances keep working, new ones cannot be created", plan.Name, off.Name)
	}
	if plan.Async && !asyncAllowed {
		return domain.ProvisionedServiceSpec{}, errAsyncRequired
	}
	if err := checkMaintenanceInfo(plan, details.MaintenanceInfo); err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	body, err := requestBody(ctx, details.RawParameters, details.RawContext)
	if err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	params, rawContext := body.Parameters, body.Context
	if err := plan.ValidateProvisionParameters(params); err != nil {
		return domain.ProvisionedServiceSpec{}, badRequest("%v", err)
	}
	var miVersion string
	if details.MaintenanceInfo != nil {
		miVersion = details.MaintenanceInfo.Version
	}
	fp := fingerprint("provision", details.ServiceID, details.PlanID, details.OrganizationGUID, details.SpaceGUID, params, miVersion)

	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: instanceID})
	if err != nil {
		return domain.ProvisionedServiceSpec{}, stateErr(err)
	}
	defer b.releaseOnError(ctx, lock, &err)

	now := b.now()
	if inst := snap.Instance; inst != nil {
		if inst.Fingerprint != fp {
			return domain.ProvisionedServiceSpec{}, conflict("service instance %s already exists with different attributes", requestinfo.Quote(instanceID))
		}
		switch {
		case inst.State == InstanceReady || inst.State == InstanceUpdating:
			err = b.state.Unlock(ctx, lock)
			return domain.ProvisionedServiceSpec{AlreadyExists: true, DashboardURL: inst.DashboardURL, Metadata: domain.InstanceMetadata(inst.Metadata)}, stateErr(err)
		case inst.State == InstanceProvisioning && inst.LastOp.Active(now):
			// An identical repeat while the work runs: same operation.
			err = b.state.Unlock(ctx, lock)
			return domain.ProvisionedServiceSpec{IsAsync: true, OperationData: inst.LastOp.ID, DashboardURL: inst.DashboardURL}, stateErr(err)
		case inst.State == InstanceDeprovisioning:
			return domain.ProvisionedServiceSpec{}, concurrency("service instance %s is being deleted", requestinfo.Quote(instanceID))
		}
		// A failed provision, or a sync one whose broker died mid-call:
		// the adapter is idempotent, so run it again.
	}

	async := plan.Async
	inst := &Instance{
		ID: instanceID, ServiceID: off.ID, PlanID: plan.ID,
		OrganizationGUID: details.OrganizationGUID, SpaceGUID: details.SpaceGUID,
		Context: rawContext, Fingerprint: fp,
		State: InstanceProvisioning, CreatedAt: now, UpdatedAt: now,
	}
	if snap.Instance != nil {
		inst.CreatedAt = snap.Instance.CreatedAt
	}
	if plan.MaintenanceInfo != nil {
		// A new instance runs the plan's current version, whether or not
		// the platform named it (checkMaintenanceInfo made sure a named
		// one is the same).
		inst.MaintenanceInfo = plan.MaintenanceInfo.Version
	}
	t := &task{off: off, plan: plan, inst: inst, params: params}
	t.op = b.newOperation(ctx, adapters.OpProvision, t, async, fp)
	t.op.Context = rawContext
	inst.LastOp = t.op.Summary()
	marker := Mutation{InstanceID: instanceID, PutInstance: inst, PutOperation: t.op}
	if snap.Instance != nil && snap.Instance.LastOp != nil {
		marker.DeleteOperations = []string{snap.Instance.LastOp.ID}
		t.superseded = snap.Instance.LastOp
	}

	// Index first, commit second: the per-offering index may then name an
	// instance that was never recorded, but never miss one (see index.go).
	if err = b.indexInstance(ctx, inst); err != nil {
		return domain.ProvisionedServiceSpec{}, stateErr(err)
	}
	if async {
		if err = b.startAsync(ctx, lock, t, marker); err != nil {
			return domain.ProvisionedServiceSpec{}, err
		}
		return domain.ProvisionedServiceSpec{IsAsync: true, OperationData: t.op.ID}, nil
	}
	m, err := b.runSync(ctx, lock, t, marker, b.doProvision, b.failProvision)
	if err != nil {
		return domain.ProvisionedServiceSpec{}, err
	}
	return domain.ProvisionedServiceSpec{DashboardURL: m.PutInstance.DashboardURL, Metadata: domain.InstanceMetadata(m.PutInstance.Metadata)}, nil
}
