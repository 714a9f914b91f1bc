package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// Expiring bindings. An adapter may say when a binding's credentials stop
// working (BindResult.ExpiresAt). Platforms that rotate bindings, such as
// Crossplane's provider-osb, never unbind the binding they replaced, so
// Agora revokes an expired binding itself: the workers drain an index of
// expiries (BindingExpiries) and start, for each binding that is due, the
// same async unbind a platform's DELETE would, on the fair job engine.

// BindingExpiries is a capability of a StateStore: the bindings that
// expire, ordered by when, so the workers find the due ones without
// reading every binding (redisstore keeps a sorted set). Like
// InstanceIndex it lives apart from the records and cannot be written in
// their commit, so it is kept a superset: an entry is added before the
// commit that records an expiring binding, and removed after the commit
// that deletes it; the drain drops the entries whose binding is gone.
type BindingExpiries interface {
	// ScheduleExpiry records that the binding is due at at (an entry
	// already there moves).
	ScheduleExpiry(ctx context.Context, e ExpiringBinding, at time.Time) error
	// RescheduleExpiry moves an entry that is still there to at; it never
	// adds one back.
	RescheduleExpiry(ctx context.Context, e ExpiringBinding, at time.Time) error
	// ForgetExpiry removes the entry (none is fine).
	ForgetExpiry(ctx context.Context, e ExpiringBinding) error
	// DueExpiries returns up to limit entries due at or before now,
	// earliest first.
	DueExpiries(ctx context.Context, now time.Time, limit int) ([]ExpiringBinding, error)
}

// ExpiringBinding names one entry of BindingExpiries.
type ExpiringBinding struct {
	InstanceID, BindingID string
}

const (
	// expiryBatch bounds the bindings one drain starts revoking.
	expiryBatch = 100
	// expiryRetry is how long a due binding waits when it cannot be
	// revoked now (its plan left the catalog, say).
	expiryRetry = 5 * time.Minute
)

// errNoExpiryIndex: the state store cannot schedule revocations, so an
// adapter's expiring credentials could never be revoked by Agora.
var errNoExpiryIndex = errors.New("the state store cannot schedule the revocation of expiring bindings")

// bindingTimes checks the binding metadata an adapter returned, as the
// spec words it: renew_before at or before expires_at, and (Agora's own
// rule) expires_at still ahead, since credentials that are already dead
// are a broken bind. Both are kept in whole seconds, UTC, which is what
// platforms are shown and when Agora revokes.
func bindingTimes(res adapters.BindResult, now time.Time) (expires, renew time.Time, err error) {
	expires = res.ExpiresAt.UTC().Truncate(time.Second)
	renew = res.RenewBefore.UTC().Truncate(time.Second)
	switch {
	case !res.ExpiresAt.IsZero() && !expires.After(now):
		return time.Time{}, time.Time{}, fmt.Errorf("the adapter returned expires_at %s, which is not in the future", expires.Format(time.RFC3339))
	case !res.ExpiresAt.IsZero() && !res.RenewBefore.IsZero() && renew.After(expires):
		return time.Time{}, time.Time{}, fmt.Errorf("the adapter returned renew_before %s after expires_at %s", renew.Format(time.RFC3339), expires.Format(time.RFC3339))
	}
	if res.ExpiresAt.IsZero() {
		expires = time.Time{}
	}
	if res.RenewBefore.IsZero() {
		renew = time.Time{}
	}
	return expires, renew, nil
}

// scheduleExpiry enters an expiring binding in the index, before the
// commit that records it.
func (b *Broker) scheduleExpiry(ctx context.Context, instanceID, bindingID string, at time.Time) error {
	ix, ok := b.state.(BindingExpiries)
	if !ok {
		return errNoExpiryIndex
	}
	return stateErr(ix.ScheduleExpiry(ctx, ExpiringBinding{InstanceID: instanceID, BindingID: bindingID}, at))
}

// forgetExpiry drops a deleted binding from the index, after its commit.
// A failure leaves an entry the drain drops later.
func (b *Broker) forgetExpiry(ctx context.Context, bnd *Binding) {
	ix, ok := b.state.(BindingExpiries)
	if !ok || bnd == nil || bnd.ExpiresAt.IsZero() {
		return
	}
	if err := ix.ForgetExpiry(context.WithoutCancel(ctx), ExpiringBinding{InstanceID: bnd.InstanceID, BindingID: bnd.ID}); err != nil {
		b.log.Warn("drop a deleted binding from the expiry index (Redis); the workers drop it later", "instance_id", bnd.InstanceID, "binding_id", bnd.ID, "error", err)
	}
}

// revokeExpired starts revoking the bindings whose expires_at has passed,
// up to a batch. Any replica may run it at any time: each binding is
// judged under its instance's lock, and an entry stays in the index until
// its binding is gone, so a revocation that fails is started again.
// It returns only the failure to read the index (Redis); a binding it
// cannot act on now is logged and waits for the next round.
func (b *Broker) revokeExpired(ctx context.Context) error {
	ix, ok := b.state.(BindingExpiries)
	if !ok {
		return nil
	}
	due, err := ix.DueExpiries(ctx, b.now(), expiryBatch)
	if err != nil {
		return fmt.Errorf("read the expiry index: %w", err)
	}
	for _, e := range due {
		if err := b.expire(ctx, ix, e); err != nil && ctx.Err() == nil {
			b.log.Warn("revoke an expired binding; the next round tries again", "instance_id", e.InstanceID, "binding_id", e.BindingID, "error", err)
		}
	}
	return nil
}

// expire starts the async unbind of one due binding, or puts its entry
// right: dropped when the binding is gone, moved when it is not due or an
// operation runs on it.
func (b *Broker) expire(ctx context.Context, ix BindingExpiries, e ExpiringBinding) (err error) {
	lock, snap, err := b.state.LockAndLoad(ctx, b.lockTTL, LoadRequest{InstanceID: e.InstanceID, BindingID: e.BindingID})
	if errors.Is(err, ErrLocked) {
		return nil // a request is at work on the instance: next round
	}
	if err != nil {
		return stateErr(err)
	}
	defer b.releaseOnError(ctx, lock, &err)
	inst, bnd, now := snap.Instance, snap.Binding, b.now()
	later := func(at time.Time) error {
		if err := b.state.Unlock(ctx, lock); err != nil {
			return stateErr(err)
		}
		if at.IsZero() {
			return ix.ForgetExpiry(ctx, e)
		}
		return ix.RescheduleExpiry(ctx, e, at)
	}
	switch {
	case inst == nil || bnd == nil || bnd.ExpiresAt.IsZero():
		return later(time.Time{}) // nothing (left) to revoke
	case now.Before(bnd.ExpiresAt):
		return later(bnd.ExpiresAt)
	case bnd.LastOp.Active(now):
		// Being deleted already (by its platform, or an earlier round),
		// or still being created: look again once that is over.
		return later(bnd.LastOp.Deadline)
	}
	off, plan, err := b.plan(inst.ServiceID, inst.PlanID)
	if err != nil {
		b.log.Warn("an expired binding cannot be revoked while its instance's plan is not in the catalog", "instance_id", inst.ID, "binding_id", bnd.ID, "plan_id", inst.PlanID)
		return later(now.Add(expiryRetry))
	}
	t, marker := b.unbindTask(ctx, off, plan, inst, bnd, true)
	// The adapter and the log see who asked: Agora, at the binding's
	// expires_at, not a platform request.
	t.op.RequestID, t.op.Platform = "expiry-"+t.op.ID, "agora"
	if err = b.startAsync(ctx, lock, t, marker); err != nil {
		return err
	}
	b.log.Info("binding expired: Agora revokes it", "instance_id", inst.ID, "binding_id", bnd.ID,
		"expires_at", bnd.ExpiresAt, "operation_id", t.op.ID)
	// Looked at again if the unbind has not removed the binding (and so
	// the entry) by its deadline.
	return stateErr(ix.RescheduleExpiry(ctx, e, t.op.Deadline))
}
