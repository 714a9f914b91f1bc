package broker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain"
	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
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
	req := bindSpec{params: body.Parameters, context: body.Context, appGUID: details.AppGUID, predecessorID: body.PredecessorBindingID}
	if req.appGUID == "" && details.BindResource != nil {
		req.appGUID = details.BindResource.AppGuid
	}
	var fp string
	if req.predecessorID != "" {
		if err := checkRotationRequest(ctx, bindingID, body); err != nil {
			return domain.Binding{}, err
		}
		// A rotation's parameters and app are the predecessor's, so the
		// request is identified by what it rotates.
		fp = fingerprint("rotate", details.ServiceID, details.PlanID, req.predecessorID)
	} else {
		if err := plan.ValidateBindParameters(req.params); err != nil {
			return domain.Binding{}, badRequest("%v", err)
		}
		fp = fingerprint("bind", details.ServiceID, details.PlanID, req.appGUID, details.BindResource, req.params)
	}

	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: instanceID, BindingID: bindingID, PredecessorID: req.predecessorID})
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
			spec := bindingSpec(off, bnd, creds)
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

	var predecessor *PredecessorRef
	if req.predecessorID != "" {
		if predecessor, err = b.checkPredecessor(ctx, off, plan, inst, snap.Predecessor, &req, now); err != nil {
			return domain.Binding{}, err
		}
	}
	async := plan.Async && asyncAllowed
	bnd := &Binding{
		ID: bindingID, InstanceID: instanceID, ServiceID: details.ServiceID, PlanID: details.PlanID,
		AppGUID: req.appGUID, Context: req.context, Fingerprint: fp, State: BindingCreating, CreatedAt: now, UpdatedAt: now,
		Predecessor: predecessor,
	}
	t := &task{off: off, plan: plan, inst: inst, binding: bnd, params: req.params}
	t.op = b.newOperation(ctx, adapters.OpBind, t, async, fp)
	t.op.Context = req.context
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
	return bindingSpec(off, m.PutBinding, t.credentials), nil
}

// bindSpec is what a bind asks for: from its body, or, for a rotation,
// from the binding it rotates.
type bindSpec struct {
	params        map[string]any
	context       json.RawMessage
	appGUID       string
	predecessorID string
}

// checkRotationRequest judges what a rotation request says by itself,
// before anything is read. The spec defines the field in 2.17, and makes
// the predecessor the source of everything else.
func checkRotationRequest(ctx context.Context, bindingID string, body *requestinfo.Body) error {
	info := requestinfo.From(ctx)
	switch {
	case info != nil && !info.APIVersion.IsZero() && !info.APIVersion.AtLeast(2, 17):
		return badRequest("predecessor_binding_id (binding rotation) needs X-Broker-API-Version 2.17 or later")
	case body.PredecessorBindingID == bindingID:
		return badRequest("predecessor_binding_id %s names the binding being created; name the binding it replaces", requestinfo.Quote(bindingID))
	case len(body.Parameters) > 0:
		return badRequest("a binding rotation takes the parameters of binding %s; send none", requestinfo.Quote(body.PredecessorBindingID))
	}
	return nil
}

// checkPredecessor applies the spec's rules for a rotation: the plan
// allows it, and the predecessor is a binding of this instance that is
// bound, not being deleted and not expired. It fills req with what the
// successor takes over: parameters, app and (unless the request sent its
// own) context.
func (b *Broker) checkPredecessor(ctx context.Context, off *catalog.Offering, plan *catalog.Plan, inst *Instance, pred *Binding, req *bindSpec, now time.Time) (*PredecessorRef, error) {
	id := requestinfo.Quote(req.predecessorID)
	switch {
	case !plan.BindingRotatable:
		return nil, badRequest("plan %q of service %q does not allow binding rotation (binding_rotatable is not set); bind without predecessor_binding_id", plan.Name, off.Name)
	case pred == nil:
		return nil, badRequest("predecessor_binding_id %s is not a binding of service instance %s", id, requestinfo.Quote(inst.ID))
	case pred.LastOp.Active(now) && pred.State == BindingDeleting:
		return nil, unprocessable("binding %s is being deleted; it can no longer be rotated", id)
	case pred.LastOp.Active(now):
		return nil, concurrency("binding %s is still being created; rotate it once it is bound", id)
	case pred.State != BindingBound:
		return nil, unprocessable("binding %s is not bound (state %s); bind anew instead of rotating it", id, pred.State)
	case !pred.ExpiresAt.IsZero() && !now.Before(pred.ExpiresAt):
		return nil, badRequest("binding %s expired at %s; only a binding that has not expired can be rotated", id, metadataTime(pred.ExpiresAt))
	}
	params, err := b.readParameters(ctx, pred.ParametersRef)
	if err != nil {
		return nil, err
	}
	req.params, req.appGUID = params, pred.AppGUID
	if len(req.context) == 0 {
		req.context = pred.Context
	}
	return &PredecessorRef{BindingID: pred.ID, Receipt: pred.Receipt}, nil
}

// InstancePlan names the offering and plan of an instance, for the edge
// to complete a rotation request's body: the spec's rotation body
// carries predecessor_binding_id only, and brokerapi refuses a bind
// without service_id and plan_id before the broker sees it. An unknown
// instance gets the 404 a bind would.
func (b *Broker) InstancePlan(ctx context.Context, instanceID string) (serviceID, planID string, err error) {
	snap, err := b.state.Load(ctx, LoadRequest{InstanceID: instanceID})
	switch {
	case err != nil:
		err = stateErr(err)
	case snap.Instance == nil:
		err = notFound("service instance %s does not exist", requestinfo.Quote(instanceID))
	default:
		return snap.Instance.ServiceID, snap.Instance.PlanID, nil
	}
	return "", "", b.fail(ctx, "bind", err)
}

func bindingSpec(off *catalog.Offering, bnd *Binding, creds map[string]any) domain.Binding {
	spec := domain.Binding{Credentials: creds, SyslogDrainURL: bnd.SyslogDrainURL, RouteServiceURL: bnd.RouteServiceURL,
		Metadata: bindingMetadata(bnd)}
	if !off.OmitBindingEndpoints {
		for _, e := range bnd.Endpoints {
			spec.Endpoints = append(spec.Endpoints, domain.Endpoint{Host: e.Host, Ports: e.Ports, Protocol: e.Protocol})
		}
	}
	return spec
}

// bindingMetadata is the OSB binding metadata of bnd.
func bindingMetadata(bnd *Binding) domain.BindingMetadata {
	return domain.BindingMetadata{ExpiresAt: metadataTime(bnd.ExpiresAt), RenewBefore: metadataTime(bnd.RenewBefore)}
}

// metadataTime writes a binding time in the spec's pattern
// (yyyy-mm-ddThh:mm:ss.sZ), which is RFC 3339 too, and parses with the
// layout provider-osb uses; "" for none.
func metadataTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.0Z")
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
	t, marker := b.unbindTask(ctx, off, plan, inst, bnd, async)
	if async {
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

// unbindTask prepares the unbind of bnd: the task, whose binding is bnd
// marked deleting, and the marker an async unbind commits first.
func (b *Broker) unbindTask(ctx context.Context, off *catalog.Offering, plan *catalog.Plan, inst *Instance, bnd *Binding, async bool) (*task, Mutation) {
	next := *bnd
	next.State = BindingDeleting
	next.UpdatedAt = b.now()
	t := &task{off: off, plan: plan, inst: inst, binding: &next}
	t.op = b.newOperation(ctx, adapters.OpUnbind, t, async, fingerprint("unbind"))
	t.op.Context = bnd.Context
	next.LastOp = t.op.Summary()
	marker := Mutation{InstanceID: inst.ID, PutBinding: &next, PutOperation: t.op}
	if bnd.LastOp != nil {
		// The bind's record: once the binding is gone nothing asks for it.
		marker.DeleteOperations = []string{bnd.LastOp.ID}
		t.superseded = bnd.LastOp
	}
	return t, marker
}
