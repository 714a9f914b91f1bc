package broker

import (
	"context"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// runSync runs an operation inline under the instance lock: it records the
// marker (so a crash mid-call leaves a record that a repeat or a DELETE
// can finish), calls the adapter, and commits the outcome together with
// the lock release. The adapter call outlives a platform that hangs up:
// finishing and recording the work beats abandoning it halfway.
func (b *Broker) runSync(ctx context.Context, lock Lock, t *task, marker Mutation,
	do func(context.Context, *task) (Mutation, error), fail func(*task, error) Mutation,
) (Mutation, error) {
	ctx = context.WithoutCancel(ctx)
	if err := b.state.Commit(ctx, marker, nil); err != nil {
		return Mutation{}, stateErr(err)
	}
	b.forgetSuperseded(ctx, t)
	callCtx, cancel := context.WithTimeout(ctx, b.syncTTL)
	defer cancel()
	t.until = b.now().Add(b.syncTTL)
	m, err := do(callCtx, t)
	if err != nil {
		m = fail(t, err)
		b.keepParameters(ctx, t, m, err)
	}
	if cerr := b.state.Commit(ctx, m, &lock); cerr != nil {
		if err == nil {
			return Mutation{}, stateErr(cerr)
		}
		b.log.Error("record failed operation", "instance_id", t.inst.ID, "operation_id", t.op.ID, "error", cerr)
	} else {
		b.committed(ctx, t, m)
	}
	return m, err
}

// startAsync records an accepted async operation and queues its job.
//
// The job is queued before the records are committed: if the commit then
// fails, the worker finds no operation once our lock is gone and drops the
// job; the reverse order could leave an operation in progress that no job
// will ever run. Parameters may hold secrets, so they go to the credential
// store and the operation keeps only the reference.
func (b *Broker) startAsync(ctx context.Context, lock Lock, t *task, m Mutation) error {
	ctx = context.WithoutCancel(ctx)
	// A retry (Broker.Retry) brings the parameters its failed operation
	// kept; only what is stored here is undone here.
	stored := *t.op
	stored.ParametersRef = ""
	if len(t.params) > 0 {
		ref, err := b.creds.PutParameters(ctx, t.inst.ID, t.op.ID, t.params)
		if err != nil {
			return credErr(err)
		}
		t.op.ParametersRef, stored.ParametersRef = ref, ref
	}
	if err := b.jobs.Enqueue(ctx, Job{InstanceID: t.inst.ID, OperationID: t.op.ID, ServiceID: t.inst.ServiceID}); err != nil {
		b.dropParameters(ctx, &stored)
		return stateErr(err)
	}
	m.PutOperation = t.op
	if err := b.state.Commit(ctx, m, &lock); err != nil {
		b.dropParameters(ctx, &stored)
		return stateErr(err)
	}
	b.forgetSuperseded(ctx, t)
	return nil
}

// keepParameters stores the parameters of a sync operation that failed
// and stays on record, so that the platform engineer can retry it with
// them (agora admin retry); an async operation's are in Vault already.
// Without Vault, the retry is only refused later: the failure stands.
func (b *Broker) keepParameters(ctx context.Context, t *task, m Mutation, err error) {
	if len(t.params) == 0 || m.PutOperation == nil || t.op.Async || requestFault(err) {
		return
	}
	ref, perr := b.creds.PutParameters(ctx, t.inst.ID, t.op.ID, t.params)
	if perr != nil {
		b.log.Warn("keep a failed operation's parameters for a retry (Vault)", "operation_id", t.op.ID, "error", perr)
		return
	}
	m.PutOperation.ParametersRef = ref
}

// forgetSuperseded drops the parameters that the failed operation the
// task supersedes kept for a retry: nothing will retry it any more.
func (b *Broker) forgetSuperseded(ctx context.Context, t *task) {
	if s := t.superseded; s != nil && s.State == OpFailed {
		if err := b.creds.Delete(ctx, b.creds.ParametersRef(t.inst.ID, s.ID)); err != nil {
			b.log.Warn("drop a superseded failed operation's parameters (Vault)", "operation_id", s.ID, "error", err)
		}
	}
}

func (b *Broker) dropParameters(ctx context.Context, op *Operation) {
	if op.ParametersRef == "" {
		return
	}
	if err := b.creds.Delete(ctx, op.ParametersRef); err != nil {
		b.log.Warn("delete async operation parameters from Vault", "operation_id", op.ID, "error", err)
	}
}

// newOperation starts an operation record. Async ones get the plan's
// deadline; sync ones the inline timeout.
func (b *Broker) newOperation(ctx context.Context, kind adapters.OperationKind, t *task, async bool, fp string) *Operation {
	now := b.now()
	timeout := b.syncTTL
	if async {
		timeout = t.plan.OperationTimeout
		if timeout <= 0 {
			timeout = time.Hour
		}
	}
	info := requestinfo.From(ctx)
	return &Operation{
		ID: newID(), Kind: kind, InstanceID: t.inst.ID, BindingID: bindingID(t), Async: async,
		State: OpInProgress, Fingerprint: fp, PlanID: t.plan.ID,
		RequestID: requestinfo.ID(ctx), Platform: info.Platform(),
		Deadline: now.Add(timeout), CreatedAt: now, UpdatedAt: now,
	}
}
