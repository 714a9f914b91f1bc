package broker

import (
	"context"
	"errors"
	"time"

	"github.com/agora-osb/agora/broker/requestinfo"
)

// InstanceIndex is an optional capability of a StateStore: the instances
// of each offering in the order they were created, so that the producer
// API can list one offering's instances (and refuse to remove an offering
// that still has some) without SCAN or KEYS. The broker finds it by type
// assertion, so a store without it (a test fake) simply has no index.
//
// The index lives in another Redis hash slot than the instance's own
// records, so it cannot be written in the same atomic commit. It is kept
// a superset instead: an entry is added before the first commit that
// creates the instance record and removed only after the commit that
// deletes it. A crash in between leaves an entry whose record is gone, or
// (once the ID is provisioned again) whose record was created at another
// time; readers load each record and skip such entries (IndexEntry.Names).
// It never leaves an instance out, and can always be rebuilt from the
// instance records.
type InstanceIndex interface {
	AddInstance(ctx context.Context, serviceID string, e IndexEntry) error
	RemoveInstance(ctx context.Context, serviceID string, e IndexEntry) error
}

// IndexEntry is one instance in its offering's index: its ID and when
// its record was created.
type IndexEntry struct {
	InstanceID string
	// CreatedAt is the record's CreatedAt; zero for an entry of the
	// unordered index of Agora versions before this one, which named
	// only the ID.
	CreatedAt time.Time
}

// EntryOf is the index entry of an instance record.
func EntryOf(inst *Instance) IndexEntry {
	return IndexEntry{InstanceID: inst.ID, CreatedAt: inst.CreatedAt}
}

// Names reports whether inst is the record e was made for: an entry left
// by a provision that never committed names an ID whose record is absent,
// or was created later by another provision.
func (e IndexEntry) Names(inst *Instance) bool {
	return inst != nil && inst.ID == e.InstanceID && (e.CreatedAt.IsZero() || inst.CreatedAt.Equal(e.CreatedAt))
}

// InstanceIDRule is an optional capability of a StateStore that cannot
// keep every instance ID: CheckInstanceID returns why id is refused (it
// completes "instance ID "x" ..."), or nil. Provision asks before it
// writes anything, so such an ID is a 400 rather than a store error.
type InstanceIDRule interface {
	CheckInstanceID(id string) error
}

// checkInstanceID applies the store's InstanceIDRule, if it has one.
func (b *Broker) checkInstanceID(id string) error {
	rule, ok := b.state.(InstanceIDRule)
	if !ok {
		return nil
	}
	if err := rule.CheckInstanceID(id); err != nil {
		return badRequest("instance ID %s %v", requestinfo.Quote(id), err)
	}
	return nil
}

// EarlierIndex is an optional capability of a store that may still hold
// the unordered instance index of Agora versions before the ordered one:
// AdoptEarlierIndex moves a batch of one offering's entries into the
// ordered index, from cursor ("" to start), and returns how many it moved
// and the cursor to go on from ("" once done). Moving is idempotent, so
// replicas may do it at once.
type EarlierIndex interface {
	AdoptEarlierIndex(ctx context.Context, serviceID, cursor string) (moved int, next string, err error)
}

// adoptProgressEvery is how many moved entries make a progress line.
const adoptProgressEvery = 100_000

// adoptEarlierIndex moves what an earlier version indexed into the ordered
// index, offering by offering, when a replica's workers start. Listings
// read the earlier index until then, so this only makes them ordered and
// cheaper; a failure is logged and left to the next start.
func (b *Broker) adoptEarlierIndex(ctx context.Context) {
	ix, ok := b.state.(EarlierIndex)
	if !ok {
		return
	}
	for _, off := range b.catalog.Load().Offerings() {
		total, cursor := 0, ""
		for {
			n, next, err := ix.AdoptEarlierIndex(ctx, off.ID, cursor)
			if err != nil {
				if ctx.Err() == nil {
					b.log.Warn("move the earlier instance index into the ordered one (Redis); listings read it as it is until the next start",
						"service_id", off.ID, "offering", off.Name, "moved", total, "error", err)
				}
				return
			}
			if (total+n)/adoptProgressEvery > total/adoptProgressEvery {
				b.log.Info("moving the earlier instance index into the ordered one", "offering", off.Name, "moved", total+n)
			}
			total += n
			if cursor = next; cursor == "" {
				break
			}
		}
		if total > 0 {
			b.log.Info("moved the earlier instance index into the ordered one", "offering", off.Name, "service_id", off.ID, "instances", total)
		}
	}
}

// ErrBadCursor is an index cursor the store never handed out: the client
// sent it, so it is bad input, not a store fault.
var ErrBadCursor = errors.New("not a cursor of the instance index")

// indexInstance adds inst to its offering's index. It runs before the
// provision marker is committed: failing here changes nothing.
func (b *Broker) indexInstance(ctx context.Context, inst *Instance) error {
	ix, ok := b.state.(InstanceIndex)
	if !ok {
		return nil
	}
	return ix.AddInstance(ctx, inst.ServiceID, EntryOf(inst))
}

// unindexDeleted drops the instance from its offering's index once m, a
// mutation that deleted it, is committed. A failure only leaves a stale
// entry behind (see InstanceIndex), so it is logged, not returned.
func (b *Broker) unindexDeleted(ctx context.Context, inst *Instance, m Mutation) {
	ix, ok := b.state.(InstanceIndex)
	if !ok || !m.DeleteInstance || inst == nil {
		return
	}
	if err := ix.RemoveInstance(context.WithoutCancel(ctx), inst.ServiceID, EntryOf(inst)); err != nil {
		b.log.Warn("remove deleted instance from its offering's index; the stale entry is harmless", "instance_id", m.InstanceID, "service_id", inst.ServiceID, "error", err)
	}
}
