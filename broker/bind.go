package broker

import (
	"context"
	"errors"

	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// Bind implements domain.ServiceBroker
// (PUT /v2/service_instances/:id/service_bindings/:binding_id).
//
// Bindings run async only when the plan is async and the platform accepts
// it; otherwise inline, since older platforms cannot poll bindings.
func (b *Broker) Bind(ctx context.Context, instanceID, bindingID string, details domain.BindDetails, asyncAllowed bool) (domain.Binding, error) {
	spec, err := b.bind(ctx, instanceID, bindingID, details, asyncAllowed)
	return spec, b.fail(ctx, "bind", err)
}

func (b *Broker) bind(ctx context.Context, instanceID, bindingID string, details domain.BindDetails, asyncAllowed bool) (_ domain.Binding, err error) {
	off, plan, err := b.plan(details.ServiceID, details.PlanID)
	if err != nil {
		return domain.Binding{}, err
	}
	if !plan.Bindable {
		return domain.Binding{}, badRequest("plan %q of service %q is not bindable", plan.Name, off.Name)
	}
	body, err := requestBody(ctx, details.RawParameters, details.RawContext)
	if err != nil {
		return domain.Binding{}, err
	}
	params, rawContext := body.Parameters, body.Context
	if err := plan.ValidateBindParameters(params); err != nil {
		return domain.Binding{}, badRequest("%v", err)
	}
	appGUID := details.AppGUID
	if appGUID == "" && details.BindResource != nil {
		appGUID = details.BindResource.AppGuid
	}
	fp := fingerprint("bind", details.ServiceID, details.PlanID, appGUID, details.BindResource, params)

	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: instanceID, BindingID: bindingID})
	if err != nil {
		return domain.Binding{}, stateErr(err)
	}
	defer b.releaseOnError(ctx, lock, &err)
	inst := snap.Instance
	now := b.now()
	switch {
	case inst == nil:
		// The spec asks for 404 here: the binding cannot exist either.
		return domain.Binding{}, notFound("service instance %s does not exist", requestinfo.Quote(instanceID))
	case inst.ServiceID != details.ServiceID || inst.PlanID != details.PlanID:
		return domain.Binding{}, badRequest("service_id %s and plan_id %s must match the instance's (%s, %s)", requestinfo.Quote(details.ServiceID), requestinfo.Quote(details.PlanID), inst.ServiceID, inst.PlanID)
	case inst.LastOp.Active(now):
		return domain.Binding{}, concurrency("service instance %q has an operation in progress (%s); bind once it finishes", instanceID, inst.LastOp.Kind)
	case inst.State != InstanceReady:
		return domain.Binding{}, unprocessable("service instance %q is not ready (state %s)", instanceID, inst.State)
	}

	if bnd := snap.Binding; bnd != nil {
		if bnd.Fingerprint != fp {
			return domain.Binding{}, conflict("service binding %q already exists with different attributes", bindingID)
		}
		switch {
		case bnd.State == BindingBound:
			creds, err := b.creds.GetBinding(ctx, bnd.CredentialRef)
			if err != nil {
				return domain.Binding{}, credErr(err)
			}
			if err = b.state.Unlock(ctx, lock); err != nil {
				return domain.Binding{}, stateErr(err)
			}
			spec := bindingSpec(bnd, creds)
			spec.AlreadyExists = true
			return spec, nil
		case bnd.LastOp.Active(now) && bnd.State == BindingCreating:
			err = b.state.Unlock(ctx, lock)
			return domain.Binding{IsAsync: true, OperationData: bnd.LastOp.ID}, stateErr(err)
		case bnd.LastOp.Active(now):
			return domain.Binding{}, concurrency("service binding %q is being deleted", bindingID)
		}
		// Failed, or a sync bind whose broker died mid-call: try again.
	}

	async := plan.Async && asyncAllowed
	bnd := &Binding{
		ID: bindingID, InstanceID: instanceID, ServiceID: details.ServiceID, PlanID: details.PlanID,
		AppGUID: appGUID, Context: rawContext, Fingerprint: fp, State: BindingCreating, CreatedAt: now, UpdatedAt: now,
	}
	t := &task{off: off, plan: plan, inst: inst, binding: bnd, params: params}
	t.op = b.newOperation(ctx, adapters.OpBind, t, async, fp)
	t.op.Context = rawContext
	bnd.LastOp = t.op.Summary()
	marker := Mutation{InstanceID: instanceID, PutBinding: bnd, PutOperation: t.op}
	if old := snap.Binding; old != nil && old.LastOp != nil {
		marker.DeleteOperations = []string{old.LastOp.ID}
		t.superseded = old.LastOp
	}
	if async {
		if err = b.startAsync(ctx, lock, t, marker); err != nil {
			return domain.Binding{}, err
		}
		return domain.Binding{IsAsync: true, OperationData: t.op.ID}, nil
	}
	m, err := b.runSync(ctx, lock, t, marker, b.doBind, b.failBind)
	if err != nil {
		return domain.Binding{}, err
	}
	return bindingSpec(m.PutBinding, t.credentials), nil
}

func bindingSpec(bnd *Binding, creds map[string]any) domain.Binding {
	spec := domain.Binding{Credentials: creds, SyslogDrainURL: bnd.SyslogDrainURL, RouteServiceURL: bnd.RouteServiceURL}
	for _, e := range bnd.Endpoints {
		spec.Endpoints = append(spec.Endpoints, domain.Endpoint{Host: e.Host, Ports: e.Ports, Protocol: e.Protocol})
	}
	return spec
}

// Unbind implements domain.ServiceBroker
// (DELETE /v2/service_instances/:id/service_bindings/:binding_id).
func (b *Broker) Unbind(ctx context.Context, instanceID, bindingID string, details domain.UnbindDetails, asyncAllowed bool) (domain.UnbindSpec, error) {
	spec, err := b.unbind(ctx, instanceID, bindingID, details, asyncAllowed)
	return spec, b.fail(ctx, "unbind", err)
}

func (b *Broker) unbind(ctx context.Context, instanceID, bindingID string, _ domain.UnbindDetails, asyncAllowed bool) (_ domain.UnbindSpec, err error) {
	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: instanceID, BindingID: bindingID})
	if err != nil {
		return domain.UnbindSpec{}, stateErr(err)
	}
	defer b.releaseOnError(ctx, lock, &err)
	inst, bnd := snap.Instance, snap.Binding
	if inst == nil || bnd == nil {
		err = apiresponses.ErrBindingDoesNotExist
		return domain.UnbindSpec{}, err
	}
	off, plan, err := b.plan(inst.ServiceID, inst.PlanID)
	if err != nil {
		return domain.UnbindSpec{}, err
	}
	now := b.now()
	if bnd.LastOp.Active(now) {
		if bnd.State == BindingDeleting {
			err = b.state.Unlock(ctx, lock)
			return domain.UnbindSpec{IsAsync: true, OperationData: bnd.LastOp.ID}, stateErr(err)
		}
		return domain.UnbindSpec{}, concurrency("service binding %q is still being created", bindingID)
	}
	async := plan.Async && asyncAllowed
	next := *bnd
	next.State = BindingDeleting
	next.UpdatedAt = now
	t := &task{off: off, plan: plan, inst: inst, binding: &next}
	t.op = b.newOperation(ctx, adapters.OpUnbind, t, async, fingerprint("unbind"))
	t.op.Context = bnd.Context
	next.LastOp = t.op.Summary()
	if async {
		marker := Mutation{InstanceID: instanceID, PutBinding: &next, PutOperation: t.op}
		if bnd.LastOp != nil {
			// The bind's record: once the binding is gone nothing asks for it.
			marker.DeleteOperations = []string{bnd.LastOp.ID}
			t.superseded = bnd.LastOp
		}
		if err = b.startAsync(ctx, lock, t, marker); err != nil {
			return domain.UnbindSpec{}, err
		}
		return domain.UnbindSpec{IsAsync: true, OperationData: t.op.ID}, nil
	}
	// Inline unbind needs no marker: until it commits, the binding stays
	// recorded as it was, and a repeat DELETE redoes the idempotent work.
	t.binding = bnd
	ctx = context.WithoutCancel(ctx)
	callCtx, cancel := context.WithTimeout(ctx, b.syncTTL)
	defer cancel()
	t.until = now.Add(b.syncTTL)
	m, err := b.removeBinding(callCtx, t)
	if err != nil {
		var ce *credentialError
		if errors.As(err, &ce) {
			b.log.Error("credentials revoked at the adapter but not deleted from Vault; the binding stays recorded so a repeated DELETE finishes", "instance_id", instanceID, "binding_id", bindingID)
		}
		return domain.UnbindSpec{}, err
	}
	if err = stateErr(b.state.Commit(ctx, m, &lock)); err != nil {
		return domain.UnbindSpec{}, err
	}
	b.committed(ctx, t, m)
	return domain.UnbindSpec{}, nil
}
