package broker

import "context"

// InstanceIndex is an optional capability of a StateStore: a set of
// instance IDs per offering, so that the producer API can list one
// offering's instances (and refuse to remove an offering that still has
// some) without SCAN or KEYS. The broker finds it by type assertion, so a
// store without it (a test fake) simply has no index.
//
// The index lives in another Redis hash slot than the instance's own
// records, so it cannot be written in the same atomic commit. It is kept
// a superset instead: an ID is added before the first commit that creates
// the instance record and removed only after the commit that deletes it.
// A crash in between leaves an ID whose record is gone, which readers skip
// (they load each record); it never leaves an instance out. The index can
// always be rebuilt from the instance records.
type InstanceIndex interface {
	AddInstance(ctx context.Context, serviceID, instanceID string) error
	RemoveInstance(ctx context.Context, serviceID, instanceID string) error
}

// indexInstance adds inst to its offering's index. It runs before the
// provision marker is committed: failing here changes nothing.
func (b *Broker) indexInstance(ctx context.Context, inst *Instance) error {
	ix, ok := b.state.(InstanceIndex)
	if !ok {
		return nil
	}
	return ix.AddInstance(ctx, inst.ServiceID, inst.ID)
}

// unindexDeleted drops the instance from its offering's index once m, a
// mutation that deleted it, is committed. A failure only leaves a stale ID
// behind (see InstanceIndex), so it is logged, not returned.
func (b *Broker) unindexDeleted(ctx context.Context, inst *Instance, m Mutation) {
	ix, ok := b.state.(InstanceIndex)
	if !ok || !m.DeleteInstance || inst == nil {
		return
	}
	if err := ix.RemoveInstance(context.WithoutCancel(ctx), inst.ServiceID, m.InstanceID); err != nil {
		b.log.Warn("remove deleted instance from its offering's index; the stale entry is harmless", "instance_id", m.InstanceID, "service_id", inst.ServiceID, "error", err)
	}
}
