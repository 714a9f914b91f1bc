package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// OpReconcile is the kind of the operation a reconcile records when it
// corrects an instance: last_operation then tells the platform what
// changed and why. No adapter is ever asked to run it.
const OpReconcile adapters.OperationKind = "reconcile"

// What a reconcile found on the backend.
const (
	BackendExists = "exists"
	BackendGone   = "gone"
)

// ErrAdapterUnanswered marks a reconcile whose adapter call failed:
// nothing was changed, and the error names the adapter and its producer.
var ErrAdapterUnanswered = errors.New("the adapter could not say whether the instance exists")

// Reconciliation is what a reconcile found and what it did.
type Reconciliation struct {
	InstanceID string `json:"instance_id"`
	// Backend is BackendExists or BackendGone, as the adapter said.
	Backend string `json:"backend"`
	// Detail is the adapter's own account of what it found.
	Detail string        `json:"detail,omitempty"`
	Before InstanceState `json:"before"`
	After  InstanceState `json:"after"`
	// Operation is the reconcile operation recorded when Agora's record
	// changed; nil when the record already agreed with the backend.
	Operation *Operation `json:"operation,omitempty"`
}

// Reconcile asks the instance's adapter whether the instance really
// exists (adapters.Inspector) and corrects Agora's record when it
// disagrees:
//
//   - a failed provision whose instance exists after all becomes ready
//     (the platform may bind it; a later delete removes it as usual);
//   - an instance recorded ready (or failed after an update or delete)
//     that the backend no longer has becomes failed, with a description
//     the platform shows, so that its delete cleans up and no bind is
//     handed out for nothing.
//
// Anything else already agrees and is left alone. An instance with an
// operation in progress is refused: the async engine owns it (force-fail
// a stuck one first). Like every repair it holds the instance's lock.
func (b *Broker) Reconcile(ctx context.Context, instanceID string) (*Reconciliation, error) {
	lock, snap, last, err := b.lockForRepair(ctx, instanceID, "")
	if err != nil {
		return nil, err
	}
	rec, committed, err := b.reconcile(ctx, lock, snap.Instance, last)
	if !committed {
		b.release(ctx, lock)
	}
	return rec, err
}

func (b *Broker) reconcile(ctx context.Context, lock Lock, inst *Instance, last *Operation) (*Reconciliation, bool, error) {
	if last.State == OpInProgress {
		return nil, false, refused("its %s is in progress and the async engine owns it; wait for it, or force-fail it if it is stuck, then reconcile", last.Kind)
	}
	off, ok := b.catalog.Load().Offering(inst.ServiceID)
	if !ok {
		return nil, false, refused("its service %s is no longer in the catalog, so no adapter can be asked", requestinfo.Quote(inst.ServiceID))
	}
	inspector, ok := off.Adapter.(adapters.Inspector)
	if !ok {
		return nil, false, refused("%s cannot say whether an instance exists (its adapter does not implement adapters.Inspector; README, \"Adding an adapter\")", owner(off))
	}
	_, plan, ok := b.catalog.Load().Plan(inst.ServiceID, inst.PlanID)
	if !ok {
		return nil, false, refused("its plan %s is no longer in the catalog", requestinfo.Quote(inst.PlanID))
	}
	t := &task{off: off, plan: plan, inst: inst, op: &Operation{Kind: OpReconcile, RequestID: requestinfo.ID(ctx)}}
	found, err := timed(b, t, "inspect", func() (adapters.InspectResult, error) {
		return inspector.Inspect(ctx, adapters.InspectRequest{
			InstanceID: inst.ID, Offering: off.Name, Plan: plan.Ref(), Receipt: inst.Receipt, Origin: t.origin(),
		})
	})
	if err != nil && errors.Is(err, adapters.ErrNotSupported) {
		return nil, false, refused("%s cannot say whether an instance exists: %v", owner(off), err)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrAdapterUnanswered, b.adapterFail(t, OpReconcile, err))
	}
	rec := &Reconciliation{InstanceID: inst.ID, Backend: BackendGone, Detail: found.Detail, Before: inst.State, After: inst.State}
	if found.Exists {
		rec.Backend = BackendExists
	}
	now := b.now()
	fixed := *inst
	var description string
	var counts []CountChange
	switch {
	case found.Exists && inst.State == InstanceFailed && last.Kind == adapters.OpProvision:
		fixed.State = InstanceReady
		if found.Receipt != nil {
			fixed.Receipt = found.Receipt
		}
		if found.DashboardURL != "" {
			fixed.DashboardURL = found.DashboardURL
		}
		if found.Metadata.Labels != nil || found.Metadata.Attributes != nil {
			fixed.Metadata = found.Metadata
		}
		description = "the platform team reconciled this instance with its backend, which has it: it is ready"
		counts = []CountChange{{ServiceID: inst.ServiceID, PlanID: inst.PlanID, Instances: 1}}
	case !found.Exists && inst.State == InstanceReady:
		fixed.State = InstanceFailed
		description = "the platform team reconciled this instance with its backend, which no longer has it: delete it (and create a new one if you still need it)"
		counts = []CountChange{{ServiceID: inst.ServiceID, PlanID: inst.PlanID, Instances: -1}}
	default:
		return rec, false, nil // the record already agrees
	}
	op := &Operation{
		ID: newID(), Kind: OpReconcile, InstanceID: inst.ID, PlanID: inst.PlanID, State: OpSucceeded,
		Description: description, Detail: found.Detail, RequestID: requestinfo.ID(ctx), CreatedAt: now, UpdatedAt: now,
	}
	if fixed.State == InstanceFailed {
		op.State = OpFailed
	}
	if fixed.State == InstanceReady {
		var err error
		if fixed.ParametersRef, err = b.adoptKeptParameters(ctx, inst.ID, op.ID, last); err != nil {
			return nil, false, err
		}
	}
	fixed.LastOp, fixed.UpdatedAt = op.Summary(), now
	if err := b.state.Commit(ctx, Mutation{InstanceID: inst.ID, PutInstance: &fixed, PutOperation: op}, &lock); err != nil {
		return nil, false, stateErr(err)
	}
	b.count(ctx, counts)
	if inst.LastOp != nil && inst.LastOp.State == OpFailed {
		// Nothing will retry the failed operation any more.
		b.forgetSuperseded(ctx, &task{inst: inst, superseded: inst.LastOp})
	}
	rec.After, rec.Operation = fixed.State, op
	b.log.Info("instance reconciled by the platform team", "instance_id", inst.ID, "backend", rec.Backend,
		"before", rec.Before, "after", rec.After, "operation_id", op.ID)
	return rec, true, nil
}
