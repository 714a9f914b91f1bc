package broker

import (
	"context"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
)

// AdapterObserver hears what the broker does with adapters, for metrics.
// Its methods are called on request and worker paths: they must be quick
// and must not block.
type AdapterObserver interface {
	// AdapterCalled: one call ("provision", "update", "deprovision",
	// "bind", "unbind", "poll") of off's adapter for plan ended with err
	// (nil: success) after took.
	AdapterCalled(off *catalog.Offering, plan *catalog.Plan, call string, err error, took time.Duration)
}

type noAdapterObserver struct{}

func (noAdapterObserver) AdapterCalled(*catalog.Offering, *catalog.Plan, string, error, time.Duration) {
}

// timed runs one adapter call and tells the observer how it went.
func timed[R any](b *Broker, t *task, call string, fn func() (R, error)) (R, error) {
	start := time.Now()
	res, err := fn()
	b.observer.AdapterCalled(t.off, t.plan, call, err, time.Since(start))
	return res, err
}

// Counts is an optional capability of a StateStore: how many instances
// and bindings each offering's plans have, kept as counters changed when
// an instance or binding comes or goes, so that nobody counts by reading
// every record. A binding counts under the plan it was bound on.
type Counts interface {
	AddCounts(ctx context.Context, changes []CountChange) error
}

// CountChange moves the counts of one plan.
type CountChange struct {
	ServiceID, PlanID   string
	Instances, Bindings int64
}

// countChanges are the counts a committed outcome moves: an instance that
// became ready or was deleted after being ready, a binding that became
// bound or was removed, an instance that moved plans.
func countChanges(t *task, m Mutation) []CountChange {
	if t == nil || t.op == nil || t.inst == nil {
		return nil
	}
	sid := t.inst.ServiceID
	switch t.op.Kind {
	case adapters.OpProvision:
		if m.PutInstance != nil && m.PutInstance.State == InstanceReady {
			return []CountChange{{ServiceID: sid, PlanID: m.PutInstance.PlanID, Instances: 1}}
		}
	case adapters.OpUpdate:
		moved := t.prevPlan != nil && t.plan != nil && t.prevPlan.ID != t.plan.ID
		if moved && m.PutOperation != nil && m.PutOperation.State == OpSucceeded {
			return []CountChange{{ServiceID: sid, PlanID: t.prevPlan.ID, Instances: -1}, {ServiceID: sid, PlanID: t.plan.ID, Instances: 1}}
		}
	case adapters.OpDeprovision:
		if m.DeleteInstance && (t.op.PreviousState == InstanceReady || t.op.PreviousState == InstanceUpdating) {
			return []CountChange{{ServiceID: sid, PlanID: t.inst.PlanID, Instances: -1}}
		}
	case adapters.OpBind:
		if m.PutBinding != nil && m.PutBinding.State == BindingBound {
			return []CountChange{{ServiceID: sid, PlanID: m.PutBinding.PlanID, Bindings: 1}}
		}
	case adapters.OpUnbind:
		// Only a binding that was bound (it has credentials) was counted.
		if m.DeleteBinding != "" && t.binding != nil && t.binding.CredentialRef != "" {
			return []CountChange{{ServiceID: sid, PlanID: t.binding.PlanID, Bindings: -1}}
		}
	}
	return nil
}

// committed is what follows every commit of an operation's outcome: the
// offering index loses a deleted instance, the counts move.
func (b *Broker) committed(ctx context.Context, t *task, m Mutation) {
	b.unindexDeleted(ctx, t.inst, m)
	b.count(ctx, countChanges(t, m))
	// A removed binding's failed bind drops the parameters it kept.
	if m.DeleteBinding != "" && t.binding != nil && t.binding.LastOp != nil && t.binding.LastOp.ID != t.op.ID {
		b.forgetSuperseded(ctx, &task{inst: t.inst, superseded: t.binding.LastOp})
	}
	b.dropReplacedParameters(ctx, t, m)
	if m.DeleteBinding != "" && t.binding != nil && t.binding.ID == m.DeleteBinding {
		b.forgetExpiry(ctx, t.binding)
	}
}

// count applies what a committed outcome changed to the counts. A
// failure leaves them off by one, which is logged, never a failed
// request: the records are the truth, the counts a view of them.
func (b *Broker) count(ctx context.Context, changes []CountChange) {
	c, ok := b.state.(Counts)
	if !ok || len(changes) == 0 {
		return
	}
	if err := c.AddCounts(context.WithoutCancel(ctx), changes); err != nil {
		b.log.Warn("update the instance and binding counts (Redis); they are off until corrected", "error", err)
	}
}
