package producers

import (
	"context"
	"sort"
	"time"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
)

// loadedInstance is one instance record with its bindings.
type loadedInstance struct {
	inst     *broker.Instance
	bindings []*broker.Binding
}

// loadInstances reads every instance of one offering through the index.
// The index is a superset (see broker.InstanceIndex): IDs without a record
// are skipped.
func (s *Service) loadInstances(ctx context.Context, serviceID string) ([]loadedInstance, error) {
	ids, err := s.instances.OfferingInstances(ctx, serviceID)
	if err != nil {
		return nil, Unavailable(err, "Redis is unavailable")
	}
	out := make([]loadedInstance, 0, len(ids))
	for _, id := range ids {
		snap, err := s.instances.Load(ctx, broker.LoadRequest{InstanceID: id, AllBindings: true})
		if err != nil {
			return nil, Unavailable(err, "Redis is unavailable")
		}
		if snap.Instance == nil || snap.Instance.ServiceID != serviceID {
			continue
		}
		out = append(out, loadedInstance{inst: snap.Instance, bindings: snap.Bindings})
	}
	return out, nil
}

// liveOfferings returns the offerings of a producer's live slice (none
// when she has no live slice).
func (s *Service) liveOfferings(ctx context.Context, name string) (*catalog.Producer, error) {
	rec, err := s.store.Get(ctx, name)
	if err != nil {
		return nil, storeErr(err)
	}
	if rec.LiveVersion == 0 {
		return &catalog.Producer{Name: name}, nil
	}
	live, err := s.store.Version(ctx, name, rec.LiveVersion)
	if err != nil {
		return nil, storeErr(err)
	}
	f, err := fileFromText(liveSource(name, live.Version), live.Slice)
	if err != nil {
		return nil, err
	}
	return &f.Producers[0], nil
}

// Offerings lists the offerings of her live slice, with their plans and
// how many instances each has.
func (s *Service) Offerings(ctx context.Context, name string) ([]OfferingView, error) {
	p, err := s.liveOfferings(ctx, name)
	if err != nil {
		return nil, err
	}
	cat := s.catalog()
	out := make([]OfferingView, 0, len(p.Offerings))
	for i := range p.Offerings {
		o := &p.Offerings[i]
		id := offeringID(name, o)
		insts, err := s.loadInstances(ctx, id)
		if err != nil {
			return nil, err
		}
		v := OfferingView{Name: o.Name, ID: id, Hidden: len(o.Plans) > 0, Plans: make([]PlanView, 0, len(o.Plans)), Instances: len(insts)}
		if cat != nil {
			_, v.InCatalog = cat.Offering(id)
		}
		for j := range o.Plans {
			v.Plans = append(v.Plans, PlanView{Name: o.Plans[j].Name, ID: planID(name, o, &o.Plans[j]), Deprecated: o.Plans[j].Deprecated})
			v.Hidden = v.Hidden && o.Plans[j].Deprecated
		}
		out = append(out, v)
	}
	return out, nil
}

// Instances lists every instance of her live offerings, with bindings
// (never credentials or receipts), ordered by offering then creation.
func (s *Service) Instances(ctx context.Context, name string) ([]InstanceView, error) {
	p, err := s.liveOfferings(ctx, name)
	if err != nil {
		return nil, err
	}
	out := []InstanceView{}
	for i := range p.Offerings {
		o := &p.Offerings[i]
		id := offeringID(name, o)
		planNames := map[string]string{}
		for j := range o.Plans {
			planNames[planID(name, o, &o.Plans[j])] = o.Plans[j].Name
		}
		insts, err := s.loadInstances(ctx, id)
		if err != nil {
			return nil, err
		}
		sort.Slice(insts, func(a, b int) bool { return insts[a].inst.CreatedAt.Before(insts[b].inst.CreatedAt) })
		for _, li := range insts {
			in := li.inst
			v := InstanceView{
				ID: in.ID, Offering: o.Name, ServiceID: in.ServiceID, Plan: planNames[in.PlanID], PlanID: in.PlanID,
				State: string(in.State), LastOp: opView(in.LastOp, in.ID, "", o.Name, in.UpdatedAt),
				Bindings: []BindingView{}, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
			}
			sort.Slice(li.bindings, func(a, b int) bool { return li.bindings[a].CreatedAt.Before(li.bindings[b].CreatedAt) })
			for _, b := range li.bindings {
				v.Bindings = append(v.Bindings, BindingView{
					ID: b.ID, AppGUID: b.AppGUID, State: string(b.State),
					LastOp:    opView(b.LastOp, in.ID, b.ID, o.Name, b.UpdatedAt),
					CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt,
				})
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// opView shows an operation summary; the record's update time is when
// the operation last changed it.
func opView(op *broker.OperationSummary, instanceID, bindingID, offering string, at time.Time) *OperationView {
	if op == nil {
		return nil
	}
	return &OperationView{
		ID: op.ID, Kind: string(op.Kind), State: string(op.State), Async: op.Async, Description: op.Description,
		InstanceID: instanceID, BindingID: bindingID, Offering: offering, UpdatedAt: at,
	}
}

// maxOperations bounds the operations view.
const maxOperations = 200

// Operations lists the latest operation of each of her instances and
// bindings, newest first; failedOnly keeps the failures, whose
// description says why.
func (s *Service) Operations(ctx context.Context, name string, failedOnly bool) ([]OperationView, error) {
	insts, err := s.Instances(ctx, name)
	if err != nil {
		return nil, err
	}
	out := []OperationView{}
	add := func(op *OperationView) {
		if op == nil || (failedOnly && op.State != string(broker.OpFailed)) {
			return
		}
		out = append(out, *op)
	}
	for _, in := range insts {
		add(in.LastOp)
		for _, b := range in.Bindings {
			add(b.LastOp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].UpdatedAt.After(out[j].UpdatedAt) })
	if len(out) > maxOperations {
		out = out[:maxOperations]
	}
	return out, nil
}

// Status is her overview: record, live offerings, pending versions and
// how many of her instances' or bindings' latest operations failed.
func (s *Service) Status(ctx context.Context, name string) (*Status, error) {
	p, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	offs, err := s.Offerings(ctx, name)
	if err != nil {
		return nil, err
	}
	versions, err := s.Versions(ctx, name)
	if err != nil {
		return nil, err
	}
	failed, err := s.Operations(ctx, name, true)
	if err != nil {
		return nil, err
	}
	st := &Status{Producer: p, Offerings: offs, Pending: []int{}, Failures: len(failed)}
	for _, v := range versions {
		if v.Status == SlicePendingApproval {
			st.Pending = append(st.Pending, v.Version)
		}
	}
	return st, nil
}
