package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
)

// This file holds the adapter work of each operation kind, shared by the
// inline (sync) path and the async Worker. Each do* function is idempotent
// (adapters promise that), returns the Mutation that records success, and
// leaves recording failure to its caller: the sync path answers the
// platform at once, the worker may retry a transient failure first.

// task is everything an operation needs, loaded once.
type task struct {
	off      *catalog.Offering
	plan     *catalog.Plan
	prevPlan *catalog.Plan // update only
	inst     *Instance
	binding  *Binding   // bind, unbind
	bindings []*Binding // deprovision
	op       *Operation
	params   map[string]any
	// credentials are what a successful bind returned, kept in memory
	// only, for the response.
	credentials map[string]any
	// superseded is the finished operation the task's replaces (its record
	// goes with the marker); a failed one's kept parameters go too.
	superseded *OperationSummary
	// until is when pending adapter work must be done: the sync timeout
	// inline, the operation deadline in the worker.
	until time.Time
	// fence is the worker's attempt (nil inline, where the instance lock
	// keeps others out): every commit of the attempt is fenced on it.
	fence *Fence
}

// guard makes a commit made in the middle of an async attempt conditional
// on the attempt still being the operation's.
func (t *task) guard(m Mutation) Mutation {
	if t.fence != nil {
		m.IfOperationInProgress, m.Fence = t.op.ID, t.fence
	}
	return m
}

// origin is who asked, as the operation recorded it when the request
// came in (newOperation), so the async engine tells adapters the same.
func (t *task) origin() adapters.Origin {
	return adapters.Origin{RequestID: t.op.RequestID, Platform: t.op.Platform, Context: t.op.Context}
}

func (b *Broker) adapterFail(t *task, kind adapters.OperationKind, err error) error {
	return &adapterError{offering: t.off, op: kind, err: err}
}

// finishOp returns a copy of op in its final state.
func (b *Broker) finishOp(op *Operation, err error) *Operation {
	done := *op
	done.UpdatedAt = b.now()
	if err == nil {
		done.State = OpSucceeded
		done.Description = string(op.Kind) + " succeeded"
	} else {
		done.State = OpFailed
		done.Description = b.describe(op, err)
		done.Detail = err.Error()
	}
	return &done
}

// instanceOutcome records inst with the task's operation finished by err
// (nil: succeeded), the summary on the record matching the operation.
func (b *Broker) instanceOutcome(t *task, inst Instance, err error) Mutation {
	inst.UpdatedAt = b.now()
	op := b.finishOp(t.op, err)
	inst.LastOp = op.Summary()
	return Mutation{InstanceID: inst.ID, PutInstance: &inst, PutOperation: op}
}

// bindingOutcome is instanceOutcome for a binding.
func (b *Broker) bindingOutcome(t *task, bnd Binding, err error) Mutation {
	bnd.UpdatedAt = b.now()
	op := b.finishOp(t.op, err)
	bnd.LastOp = op.Summary()
	return Mutation{InstanceID: bnd.InstanceID, PutBinding: &bnd, PutOperation: op}
}

// describe is the failure text last_operation shows: the same words the
// platform would have got from a synchronous request, citing the request
// that started the operation. The full chain goes to the operation's
// Detail, for the operator and the producer.
func (b *Broker) describe(op *Operation, err error) string {
	f := classify(err)
	msg := b.publicText(f, err)
	if op.RequestID != "" {
		msg += " (request id " + op.RequestID + ")"
	}
	return msg
}

func (b *Broker) doProvision(ctx context.Context, t *task) (Mutation, error) {
	res, err := timed(b, t, "provision", func() (adapters.ProvisionResult, error) {
		return t.off.Adapter.Provision(ctx, adapters.ProvisionRequest{
			InstanceID: t.inst.ID, Offering: t.off.Name, Plan: t.plan.Ref(),
			Parameters: t.params, Origin: t.origin(),
			Maintenance: maintenance(nil, "", t.plan, t.inst.MaintenanceInfo),
		})
	})
	if err != nil {
		return Mutation{}, b.adapterFail(t, adapters.OpProvision, err)
	}
	if res.Pending {
		final, err := b.settle(ctx, t, adapters.OpProvision, res.OperationToken)
		if err != nil {
			return Mutation{}, err
		}
		if final.Instance != nil {
			res = *final.Instance
		}
	}
	paramsRef, err := b.putCurrentParameters(ctx, t, t.params)
	if err != nil {
		return Mutation{}, err
	}
	inst := *t.inst
	inst.State = InstanceReady
	inst.DashboardURL, inst.Metadata, inst.Receipt = res.DashboardURL, res.Metadata, res.Receipt
	inst.ParametersRef = paramsRef
	return b.instanceOutcome(t, inst, nil), nil
}

func (b *Broker) failProvision(t *task, err error) Mutation {
	inst := *t.inst
	if requestFault(err) && !t.op.Async {
		// The adapter created nothing; forget the request entirely. (An
		// async one stays recorded as failed: the platform is polling and
		// must read why.)
		return Mutation{InstanceID: inst.ID, DeleteInstance: true}
	}
	inst.State = InstanceFailed
	return b.instanceOutcome(t, inst, err)
}

func (b *Broker) doUpdate(ctx context.Context, t *task) (Mutation, error) {
	up, ok := t.off.Adapter.(adapters.Updater)
	if !ok {
		return Mutation{}, b.adapterFail(t, adapters.OpUpdate, fmt.Errorf("%w: the adapter does not implement updates", adapters.ErrNotSupported))
	}
	res, err := timed(b, t, "update", func() (adapters.UpdateResult, error) {
		return up.Update(ctx, adapters.UpdateRequest{
			InstanceID: t.inst.ID, Offering: t.off.Name, Plan: t.plan.Ref(), PreviousPlan: t.prevPlan.Ref(),
			Parameters: t.params, Receipt: t.inst.Receipt, Origin: t.origin(),
			Maintenance: maintenance(t.prevPlan, t.inst.MaintenanceInfo, t.plan, t.targetVersion()),
		})
	})
	if err != nil {
		return Mutation{}, b.adapterFail(t, adapters.OpUpdate, err)
	}
	if res.Pending {
		final, err := b.settle(ctx, t, adapters.OpUpdate, res.OperationToken)
		if err != nil {
			return Mutation{}, err
		}
		if final.Instance != nil {
			res = adapters.UpdateResult{DashboardURL: final.Instance.DashboardURL, Metadata: final.Instance.Metadata, Receipt: final.Instance.Receipt}
		}
	}
	paramsRef, err := b.parametersAfterUpdate(ctx, t)
	if err != nil {
		return Mutation{}, err
	}
	inst := *t.inst
	inst.State = InstanceReady
	inst.PlanID = t.plan.ID
	inst.ParametersRef = paramsRef
	inst.MaintenanceInfo = t.targetVersion()
	if res.DashboardURL != "" {
		inst.DashboardURL = res.DashboardURL
	}
	if res.Metadata.Labels != nil || res.Metadata.Attributes != nil {
		inst.Metadata = res.Metadata
	}
	if res.Receipt != nil {
		inst.Receipt = res.Receipt
	}
	return b.instanceOutcome(t, inst, nil), nil
}

// failUpdate leaves the instance as it was (on its old plan), with the
// failed operation for last_operation to report.
func (b *Broker) failUpdate(t *task, err error) Mutation {
	inst := *t.inst
	inst.State = InstanceReady
	return b.instanceOutcome(t, inst, err)
}

// doDeprovision removes the instance's bindings first (cascade: their
// credentials are revoked by the adapter and deleted from Vault, each
// removal committed on its own so a crash loses no progress), then the
// instance itself.
func (b *Broker) doDeprovision(ctx context.Context, t *task) (Mutation, error) {
	for _, bnd := range t.bindings {
		bt := *t
		bt.binding = bnd
		m, err := b.removeBinding(ctx, &bt)
		if err != nil {
			return Mutation{}, err
		}
		// The instance's records go with it at the end; only the binding
		// record needs removing now.
		m.PutOperation, m.BindingTombstone, m.DeleteOperations = nil, false, nil
		if err := b.state.Commit(ctx, t.guard(m), nil); err != nil {
			return Mutation{}, stateErr(err)
		}
		if bnd.CredentialRef != "" { // it was bound, so counted
			b.count(ctx, []CountChange{{ServiceID: t.inst.ServiceID, PlanID: bnd.PlanID, Bindings: -1}})
		}
		b.forgetExpiry(ctx, bnd)
		if bnd.ParametersRef != "" {
			b.dropSecret(ctx, bnd.ParametersRef, "a deleted binding's parameters")
		}
	}
	res, err := timed(b, t, "deprovision", func() (adapters.DeprovisionResult, error) {
		return t.off.Adapter.Deprovision(ctx, adapters.DeprovisionRequest{
			InstanceID: t.inst.ID, Offering: t.off.Name, Plan: t.plan.Ref(), Receipt: t.inst.Receipt, Origin: t.origin(),
		})
	})
	if err != nil && !errors.Is(err, adapters.ErrNotFound) {
		return Mutation{}, b.adapterFail(t, adapters.OpDeprovision, err)
	}
	if err == nil && res.Pending {
		if _, err := b.settle(ctx, t, adapters.OpDeprovision, res.OperationToken); err != nil {
			return Mutation{}, err
		}
	}
	op := b.finishOp(t.op, nil)
	return Mutation{InstanceID: t.inst.ID, DeleteInstance: true, Tombstone: t.op.Async, PutOperation: op}, nil
}

// failDeprovision puts the instance back as it was before the delete
// (bindings already removed stay removed), with the failed operation on
// record; the platform may retry the DELETE.
func (b *Broker) failDeprovision(t *task, err error) Mutation {
	inst := *t.inst
	inst.State = InstanceReady
	if t.op.PreviousState == InstanceFailed || t.op.PreviousState == InstanceProvisioning {
		// It was never ready; a failed delete does not make it so.
		inst.State = InstanceFailed
	}
	return b.instanceOutcome(t, inst, err)
}

// doBind asks the adapter for credentials and records them: credentials
// and parameters in Vault, the expiry in the expiry index. If recording
// fails, what the adapter issued is revoked again (compensation), so that
// nothing stays valid that no record points to. A rotation's adapter
// call is told the predecessor, which nothing here touches: whatever
// fails, the predecessor stays as it was.
func (b *Broker) doBind(ctx context.Context, t *task) (Mutation, error) {
	req := adapters.BindRequest{
		InstanceID: t.inst.ID, BindingID: t.binding.ID, Offering: t.off.Name, Plan: t.plan.Ref(),
		AppGUID: t.binding.AppGUID, Parameters: t.params, InstanceReceipt: t.inst.Receipt, Origin: t.origin(),
	}
	if p := t.binding.Predecessor; p != nil {
		req.Predecessor = &adapters.Predecessor{BindingID: p.BindingID, Receipt: p.Receipt}
	}
	res, err := timed(b, t, "bind", func() (adapters.BindResult, error) {
		return t.off.Adapter.Bind(ctx, req)
	})
	if err != nil {
		return Mutation{}, b.adapterFail(t, adapters.OpBind, err)
	}
	if res.Pending {
		final, err := b.settle(ctx, t, adapters.OpBind, res.OperationToken)
		if err != nil {
			return Mutation{}, err
		}
		if final.Bind == nil {
			return Mutation{}, b.adapterFail(t, adapters.OpBind, errors.New("pending bind succeeded without credentials"))
		}
		res = *final.Bind
	}
	bnd, err := b.recordBind(ctx, t, res)
	if err != nil {
		return Mutation{}, b.compensateBind(ctx, t, res, err)
	}
	t.credentials = res.Credentials
	return b.bindingOutcome(t, bnd, nil), nil
}

// recordBind checks what the adapter returned and writes what a bound
// binding keeps outside its record; the record it returns points to it.
// On failure it deletes what it wrote.
func (b *Broker) recordBind(ctx context.Context, t *task, res adapters.BindResult) (_ Binding, err error) {
	expires, renew, err := bindingTimes(res, b.now())
	if err != nil {
		return Binding{}, b.adapterFail(t, adapters.OpBind, adapters.Terminal(err))
	}
	var written []string
	defer func() {
		if err != nil {
			for _, ref := range written {
				b.dropSecret(ctx, ref, "a failed bind's secret")
			}
		}
	}()
	ref, err := b.creds.PutBinding(ctx, t.inst.ID, t.binding.ID, res.Credentials)
	if err != nil {
		return Binding{}, credErr(err)
	}
	written = append(written, ref)
	paramsRef, err := b.putCurrentParameters(ctx, t, t.params)
	if err != nil {
		return Binding{}, err
	}
	if paramsRef != "" {
		written = append(written, paramsRef)
	}
	if !expires.IsZero() {
		// Entered before the commit that records the binding, so no
		// expiring binding is ever missing from the index.
		if err := b.scheduleExpiry(ctx, t.inst.ID, t.binding.ID, expires); err != nil {
			return Binding{}, err
		}
	}
	bnd := *t.binding
	bnd.State = BindingBound
	bnd.CredentialRef, bnd.ParametersRef = ref, paramsRef
	bnd.ExpiresAt, bnd.RenewBefore = expires, renew
	bnd.Endpoints, bnd.SyslogDrainURL, bnd.RouteServiceURL, bnd.Receipt = res.Endpoints, res.SyslogDrainURL, res.RouteServiceURL, res.Receipt
	return bnd, nil
}

// compensateBind revokes what the adapter issued for a bind Agora could
// not record, and returns cause; when the revocation fails too, the
// binding must stay on record (failed) for a later DELETE to finish.
func (b *Broker) compensateBind(ctx context.Context, t *task, res adapters.BindResult, cause error) error {
	if _, uerr := timed(b, t, "unbind", func() (adapters.UnbindResult, error) {
		return t.off.Adapter.Unbind(context.WithoutCancel(ctx), adapters.UnbindRequest{
			InstanceID: t.inst.ID, BindingID: t.binding.ID, Offering: t.off.Name, Plan: t.plan.Ref(),
			InstanceReceipt: t.inst.Receipt, Receipt: res.Receipt, Origin: t.origin(),
		})
	}); uerr != nil && !errors.Is(uerr, adapters.ErrNotFound) {
		b.log.Error("compensating unbind after a failed bind failed; the binding stays recorded as failed so a DELETE can finish the cleanup",
			"instance_id", t.inst.ID, "binding_id", t.binding.ID, "error", uerr, "cause", cause)
		return &compensationError{err: cause}
	}
	return cause
}

// compensationError is a bind Agora could not record whose compensating
// unbind failed too: the binding must stay on record for a later DELETE.
type compensationError struct{ err error }

func (e *compensationError) Error() string { return e.err.Error() }
func (e *compensationError) Unwrap() error { return e.err }

func (b *Broker) failBind(t *task, err error) Mutation {
	var ce *compensationError
	var cre *credentialError
	if !t.op.Async && (requestFault(err) || (errors.As(err, &cre) && !errors.As(err, &ce))) {
		// Nothing exists at the backend: no binding is recorded. (An async
		// one stays recorded as failed, so the polling platform reads why.)
		return Mutation{InstanceID: t.inst.ID, DeleteBinding: t.binding.ID, DeleteOperations: []string{t.op.ID}}
	}
	bnd := *t.binding
	bnd.State = BindingFailed
	return b.bindingOutcome(t, bnd, err)
}

// removeBinding revokes a binding at the adapter and deletes its
// credentials from Vault; the returned Mutation deletes the record.
func (b *Broker) removeBinding(ctx context.Context, t *task) (Mutation, error) {
	bnd := t.binding
	res, err := timed(b, t, "unbind", func() (adapters.UnbindResult, error) {
		return t.off.Adapter.Unbind(ctx, adapters.UnbindRequest{
			InstanceID: t.inst.ID, BindingID: bnd.ID, Offering: t.off.Name, Plan: t.plan.Ref(),
			InstanceReceipt: t.inst.Receipt, Receipt: bnd.Receipt, Origin: t.origin(),
		})
	})
	if err != nil && !errors.Is(err, adapters.ErrNotFound) {
		return Mutation{}, b.adapterFail(t, adapters.OpUnbind, err)
	}
	if err == nil && res.Pending {
		if _, err := b.settle(ctx, t, adapters.OpUnbind, res.OperationToken); err != nil {
			return Mutation{}, err
		}
	}
	ref := bnd.CredentialRef
	if ref == "" {
		// A binding that failed before its credentials were stored may
		// still have a secret at the standard path from an earlier try.
		ref = b.creds.BindingRef(bnd.InstanceID, bnd.ID)
	}
	if err := b.creds.Delete(ctx, ref); err != nil {
		return Mutation{}, credErr(err)
	}
	var stale []string
	if bnd.LastOp != nil && bnd.LastOp.ID != t.op.ID {
		stale = append(stale, bnd.LastOp.ID)
	}
	// The unbind's own record goes too: the binding tombstone (async) or
	// nothing (sync) answers for it from now on.
	stale = append(stale, t.op.ID)
	op := b.finishOp(t.op, nil)
	return Mutation{InstanceID: bnd.InstanceID, DeleteBinding: bnd.ID, BindingTombstone: t.op.Async, PutOperation: op, DeleteOperations: stale}, nil
}

func (b *Broker) failUnbind(t *task, err error) Mutation {
	bnd := *t.binding
	if bnd.State == BindingDeleting {
		bnd.State = BindingBound
	}
	return b.bindingOutcome(t, bnd, err)
}

// settle polls an adapter's pending work until it ends or t.until passes.
func (b *Broker) settle(ctx context.Context, t *task, kind adapters.OperationKind, token string) (adapters.PollResult, error) {
	poller, ok := t.off.Adapter.(adapters.Poller)
	if !ok {
		return adapters.PollResult{}, b.adapterFail(t, kind, adapters.Terminal(errors.New("the adapter returned a pending result but does not implement adapters.Poller")))
	}
	interval := 500 * time.Millisecond
	for {
		res, err := timed(b, t, "poll", func() (adapters.PollResult, error) {
			return poller.Poll(ctx, adapters.PollRequest{
				Kind: kind, InstanceID: t.inst.ID, BindingID: bindingID(t), Offering: t.off.Name,
				Plan: t.plan.Ref(), Token: token, Origin: t.origin(),
			})
		})
		if err != nil {
			return adapters.PollResult{}, b.adapterFail(t, kind, err)
		}
		switch res.State {
		case adapters.Succeeded:
			return res, nil
		case adapters.Failed:
			// The protocol shows a failed operation's description to the
			// app developer.
			return adapters.PollResult{}, b.adapterFail(t, kind, adapters.Terminal(adapters.Said(res.Description)))
		}
		if !b.now().Add(interval).Before(t.until) {
			return adapters.PollResult{}, b.adapterFail(t, kind, fmt.Errorf("still in progress at the deadline: %w", context.DeadlineExceeded))
		}
		select {
		case <-ctx.Done():
			return adapters.PollResult{}, b.adapterFail(t, kind, ctx.Err())
		case <-time.After(interval):
		}
		if interval < 5*time.Second {
			interval *= 2
		}
	}
}

// targetVersion is the maintenance_info version the instance runs once
// the task's update succeeds: the one the operation asked for, else the
// one it runs now.
func (t *task) targetVersion() string {
	if t.op.MaintenanceVersion != "" {
		return t.op.MaintenanceVersion
	}
	return t.inst.MaintenanceInfo
}

// maintenance tells an adapter the instance's version (on curPlan) and
// the one it must run after the call (on reqPlan), with a plan's
// description where the catalog still describes that version.
func maintenance(curPlan *catalog.Plan, current string, reqPlan *catalog.Plan, requested string) adapters.Maintenance {
	info := func(p *catalog.Plan, v string) adapters.MaintenanceInfo {
		mi := adapters.MaintenanceInfo{Version: v}
		if v != "" && p != nil && p.MaintenanceInfo != nil && p.MaintenanceInfo.Version == v {
			mi.Description = p.MaintenanceInfo.Description
		}
		return mi
	}
	return adapters.Maintenance{Current: info(curPlan, current), Requested: info(reqPlan, requested)}
}

func bindingID(t *task) string {
	if t.binding != nil {
		return t.binding.ID
	}
	return ""
}
