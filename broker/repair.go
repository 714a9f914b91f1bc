package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// The platform engineer's repairs. Each takes the instance's lock, so it
// never runs beside an operation that holds it (a repair of a locked
// instance is a conflict to retry later), and each is audited like any
// mutation, by the edge.

// ErrRepairRefused marks a repair that the instance's state does not
// allow; the message says why.
var ErrRepairRefused = errors.New("repair refused")

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRepairRefused, fmt.Sprintf(format, args...))
}

// forcedError is the failure a platform engineer declared.
type forcedError struct{ reason string }

func (e *forcedError) Error() string { return "stopped by the platform team: " + e.reason }

// Retry starts the failed latest operation of an instance (bindingID
// empty) or of one of its bindings again, on the async engine, with the
// parameters it kept. The platform sees it in last_operation, under a new
// operation ID.
func (b *Broker) Retry(ctx context.Context, instanceID, bindingID string) (*Operation, error) {
	lock, snap, failed, err := b.lockForRepair(ctx, instanceID, bindingID)
	if err != nil {
		return nil, err
	}
	retry := func() (*Operation, error) {
		if failed.State != OpFailed {
			return nil, refused("the latest operation (%s) is %s; only a failed one can be retried", failed.Kind, failed.State)
		}
		off, plan, err := b.plan(snap.Instance.ServiceID, failed.PlanID)
		if err != nil {
			return nil, refused("its plan is no longer in the catalog: %v", err)
		}
		now := b.now()
		inst := *snap.Instance
		t := &task{off: off, plan: plan, inst: &inst}
		op := *failed
		op.ID, op.State, op.Async = newID(), OpInProgress, true
		op.Description, op.Detail, op.LastError, op.LastDescription = "", "", "", ""
		op.Attempts, op.Attempt, op.NextAttemptAt = 0, "", time.Time{}
		op.RequestID = requestinfo.ID(ctx)
		op.Deadline, op.CreatedAt, op.UpdatedAt = now.Add(plan.OperationTimeout), now, now
		t.op = &op
		marker := Mutation{InstanceID: instanceID, DeleteOperations: []string{failed.ID}}
		switch op.Kind {
		case adapters.OpProvision:
			inst.State = InstanceProvisioning
		case adapters.OpUpdate:
			inst.State = InstanceUpdating
		case adapters.OpDeprovision:
			inst.State = InstanceDeprovisioning
		case adapters.OpBind, adapters.OpUnbind:
			bnd := *snap.Binding
			bnd.State = BindingCreating
			if op.Kind == adapters.OpUnbind {
				bnd.State = BindingDeleting
			}
			bnd.LastOp, bnd.UpdatedAt = op.Summary(), now
			t.binding, marker.PutBinding = &bnd, &bnd
		default:
			return nil, refused("operations of kind %q cannot be retried", op.Kind)
		}
		if marker.PutBinding == nil {
			inst.LastOp, inst.UpdatedAt = op.Summary(), now
			marker.PutInstance = &inst
		}
		if err := b.startAsync(ctx, lock, t, marker); err != nil {
			return nil, err
		}
		b.log.Info("operation retried by the platform team", "instance_id", instanceID, "binding_id", bindingID,
			"kind", op.Kind, "failed_operation_id", failed.ID, "operation_id", op.ID)
		return &op, nil
	}
	op, err := retry()
	if err != nil {
		b.release(ctx, lock)
	}
	return op, err
}

// ForceFail ends the async operation in progress on an instance (or one
// of its bindings) as failed, with reason shown to the platform: for an
// operation stuck on a backend that will never answer. A worker still on
// it finds the operation finished and records nothing; the platform may
// then delete the instance or retry.
func (b *Broker) ForceFail(ctx context.Context, instanceID, bindingID, reason string) (*Operation, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return nil, refused("say why (a reason the platform shows the app developer)")
	}
	lock, snap, op, err := b.lockForRepair(ctx, instanceID, bindingID)
	if err != nil {
		return nil, err
	}
	forceFail := func() (*Operation, error) {
		if op.State != OpInProgress {
			return nil, refused("the latest operation (%s) is %s; only one in progress can be force-failed", op.Kind, op.State)
		}
		t, _, fail, err := b.loadTask(ctx, op)
		if err != nil && t == nil {
			return nil, err
		}
		t.inst, t.binding = snap.Instance, snap.Binding
		m := fail(t, adapters.Terminal(&forcedError{reason: reason}))
		m.IfOperationInProgress = op.ID
		if err := b.state.Commit(ctx, m, &lock); err != nil {
			if errors.Is(err, ErrStale) {
				return nil, refused("the operation finished meanwhile")
			}
			return nil, stateErr(err)
		}
		b.committed(ctx, t, m)
		b.log.Info("operation force-failed by the platform team", "instance_id", instanceID, "binding_id", bindingID,
			"operation_id", op.ID, "reason", reason)
		return m.PutOperation, nil
	}
	done, err := forceFail()
	if err != nil {
		b.release(ctx, lock)
	}
	return done, err
}

// lockForRepair takes the instance's lock and reads the latest operation
// of the instance or binding. A lock held by a running operation is a
// conflict: a repair never runs beside one.
func (b *Broker) lockForRepair(ctx context.Context, instanceID, bindingID string) (Lock, Snapshot, *Operation, error) {
	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: instanceID, BindingID: bindingID})
	if errors.Is(err, ErrLocked) {
		return Lock{}, Snapshot{}, nil, refused("service instance %s is locked by a running request; repair it once that finishes", requestinfo.Quote(instanceID))
	}
	if err != nil {
		return Lock{}, Snapshot{}, nil, stateErr(err)
	}
	last := (*OperationSummary)(nil)
	switch {
	case snap.Instance == nil:
		err = fmt.Errorf("service instance %s does not exist: %w", requestinfo.Quote(instanceID), ErrNotFound)
	case bindingID != "" && snap.Binding == nil:
		err = fmt.Errorf("service binding %s of instance %s does not exist: %w", requestinfo.Quote(bindingID), requestinfo.Quote(instanceID), ErrNotFound)
	case bindingID != "":
		last = snap.Binding.LastOp
	default:
		last = snap.Instance.LastOp
	}
	if err == nil && last == nil {
		err = refused("it has no operation on record")
	}
	if err != nil {
		b.release(ctx, lock)
		return Lock{}, Snapshot{}, nil, err
	}
	full, lerr := b.state.Load(ctx, LoadRequest{InstanceID: instanceID, BindingID: bindingID, OperationID: last.ID})
	if lerr != nil {
		b.release(ctx, lock)
		return Lock{}, Snapshot{}, nil, stateErr(lerr)
	}
	op := full.Operation
	if op == nil {
		op = last.Operation(instanceID)
		op.BindingID = bindingID
	}
	return lock, snap, op, nil
}

func (b *Broker) release(ctx context.Context, l Lock) {
	if err := b.state.Unlock(context.WithoutCancel(ctx), l); err != nil {
		b.log.Warn("release instance lock", "instance_id", l.InstanceID, "error", err)
	}
}
