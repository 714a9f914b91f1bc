package producers

import (
	"context"
	"encoding/base64"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// loadedInstance is one instance record with its bindings.
type loadedInstance struct {
	inst     *broker.Instance
	bindings []*broker.Binding
}

// Page sizes of the listings: what one request reads, whatever the number
// of instances.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// scanBatch bounds what one read of the index asks for: a page of 1000
// is read in batches so that no single Redis command holds the server for
// long (issue 10: none above 10 ms) and the records of one batch are read
// while the next is, at the price of a few more round trips per page.
const scanBatch = 250

// loadPage reads a batch of an offering's instances (at most about
// scanBatch; eachInstance calls it until the walk ends): scanIndex, then
// loadEntries.
func (s *Service) loadPage(ctx context.Context, serviceID, cursor string, count int) ([]loadedInstance, string, error) {
	entries, next, err := s.scanIndex(ctx, serviceID, cursor, count)
	if err != nil {
		return nil, "", err
	}
	insts, err := s.loadEntries(ctx, serviceID, entries)
	return insts, next, err
}

// scanIndex is one read of an offering's index: about min(count,
// scanBatch) entries, and the cursor to go on from.
func (s *Service) scanIndex(ctx context.Context, serviceID, cursor string, count int) ([]broker.IndexEntry, string, error) {
	entries, next, err := s.instances.ScanOfferingInstances(ctx, serviceID, cursor, min(count, scanBatch))
	switch {
	case errors.Is(err, broker.ErrBadCursor):
		return nil, "", Fail(ErrInvalid, "the cursor is not one this API handed out: start again without one")
	case err != nil:
		return nil, "", Unavailable(err, "Redis is unavailable")
	}
	return entries, next, nil
}

// loadEntries is one pipelined read of the records the index named (two
// commands per instance: the record and its bindings). Entries that name
// no record (the index is a superset, see broker.InstanceIndex) are
// skipped.
func (s *Service) loadEntries(ctx context.Context, serviceID string, entries []broker.IndexEntry) ([]loadedInstance, error) {
	reqs := make([]broker.LoadRequest, len(entries))
	for i, e := range entries {
		reqs[i] = broker.LoadRequest{InstanceID: e.InstanceID, AllBindings: true, RecordsOnly: true}
	}
	snaps, err := s.instances.LoadMany(ctx, reqs)
	if err != nil {
		return nil, Unavailable(err, "Redis is unavailable")
	}
	out := make([]loadedInstance, 0, len(snaps))
	for i, snap := range snaps {
		if !entries[i].Names(snap.Instance) || snap.Instance.ServiceID != serviceID {
			continue
		}
		out = append(out, loadedInstance{inst: snap.Instance, bindings: snap.Bindings})
	}
	return out, nil
}

// eachInstance walks every instance of one offering, a page at a time,
// until visit returns false: for the rules that must see them (an
// offering or plan may leave the catalog only without instances), which
// are rare admin actions. Memory stays one page, and a rule that has seen
// enough stops early.
func (s *Service) eachInstance(ctx context.Context, serviceID string, visit func(loadedInstance) bool) error {
	cursor := ""
	for {
		page, next, err := s.loadPage(ctx, serviceID, cursor, MaxPageSize)
		if err != nil {
			return err
		}
		for _, li := range page {
			if !visit(li) {
				return nil
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
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
	var health map[string]CanaryResult
	if s.health != nil {
		// Health is a note on the listing: without Redis the counts below
		// fail anyway, and a canary store error must not hide the rest.
		if h, err := s.health(ctx); err != nil {
			s.log.Warn("the canary's results could not be read", "error", err)
		} else {
			health = h
		}
	}
	out := make([]OfferingView, 0, len(p.Offerings))
	for i := range p.Offerings {
		o := &p.Offerings[i]
		id := offeringID(name, o)
		plans := make([]string, len(o.Plans))
		for j := range o.Plans {
			plans[j] = planID(name, o, &o.Plans[j])
		}
		count, err := s.instances.CountInstances(ctx, id, plans)
		if err != nil {
			return nil, Unavailable(err, "Redis is unavailable")
		}
		v := OfferingView{Name: o.Name, ID: id, Hidden: len(o.Plans) > 0, Plans: make([]PlanView, 0, len(o.Plans)), Instances: int(count)}
		if cat != nil {
			_, v.InCatalog = cat.Offering(id)
		}
		if h, ok := health[id]; ok {
			v.Health = &h
		}
		for j := range o.Plans {
			v.Plans = append(v.Plans, PlanView{Name: o.Plans[j].Name, ID: planID(name, o, &o.Plans[j]), Deprecated: o.Plans[j].Deprecated})
			v.Hidden = v.Hidden && o.Plans[j].Deprecated
		}
		out = append(out, v)
	}
	return out, nil
}

// InstancePage is one page of a listing; NextCursor asks for the next
// ("" on the last page).
type InstancePage struct {
	Instances  []InstanceView `json:"instances"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// Instances lists her live offerings' instances, with bindings (never
// credentials or receipts), one page at a time: about limit of them from
// cursor ("" to start), each offering's oldest first, each read once per
// walk (see redisstore.Store.ScanOfferingInstances for the index of
// earlier Agora versions). A page costs a constant number of
// Redis round trips, however many instances there are.
func (s *Service) Instances(ctx context.Context, name, cursor string, limit int) (*InstancePage, error) {
	p, err := s.liveOfferings(ctx, name)
	if err != nil {
		return nil, err
	}
	targets := make([]walkTarget, len(p.Offerings))
	for i := range p.Offerings {
		o := &p.Offerings[i]
		plans := map[string]string{}
		for j := range o.Plans {
			plans[planID(name, o, &o.Plans[j])] = o.Plans[j].Name
		}
		targets[i] = walkTarget{serviceID: offeringID(name, o), offering: o.Name, plans: plans}
	}
	return s.walk(ctx, targets, cursor, limit, nil)
}

// InstanceFilter narrows the platform engineer's listing. Empty fields
// match everything.
type InstanceFilter struct {
	Producer string
	Offering string
	// State keeps the instances whose latest operation, or one of whose
	// bindings' latest operation, is "failed", "in_progress", or "stuck"
	// (in progress and not updated for StuckFor).
	State    string
	StuckFor time.Duration
}

// States the filter knows.
const (
	FilterFailed     = "failed"
	FilterInProgress = "in_progress"
	FilterStuck      = "stuck"
)

// AllInstances is the platform engineer's listing: every offering of the
// catalog in force (catalog.yml's teams included), filtered, a page at a
// time. A page costs a constant number of Redis round trips; with a state
// filter it may hold fewer instances than limit, or none, while
// NextCursor goes on.
func (s *Service) AllInstances(ctx context.Context, f InstanceFilter, cursor string, limit int) (*InstancePage, error) {
	switch f.State {
	case "", FilterFailed, FilterInProgress:
	case FilterStuck:
		if f.StuckFor <= 0 {
			f.StuckFor = 30 * time.Minute
		}
	default:
		return nil, Fail(ErrInvalid, "state %s is not failed, in_progress or stuck", requestinfo.Quote(f.State))
	}
	var targets []walkTarget
	for _, off := range s.catalog().Offerings() {
		if (f.Producer != "" && off.Producer != f.Producer) || (f.Offering != "" && off.Name != f.Offering) {
			continue
		}
		plans := make(map[string]string, len(off.Plans))
		for _, p := range off.Plans {
			plans[p.ID] = p.Name
		}
		targets = append(targets, walkTarget{serviceID: off.ID, offering: off.Name, producer: off.Producer, plans: plans})
	}
	now := s.now()
	return s.walk(ctx, targets, cursor, limit, func(v InstanceView) bool { return f.keeps(v, now) })
}

func (f InstanceFilter) keeps(v InstanceView, now time.Time) bool {
	if f.State == "" {
		return true
	}
	match := func(op *OperationView) bool {
		switch {
		case op == nil:
			return false
		case f.State == FilterFailed:
			return op.State == string(broker.OpFailed)
		case f.State == FilterInProgress:
			return op.State == string(broker.OpInProgress)
		}
		return op.State == string(broker.OpInProgress) && now.Sub(op.UpdatedAt) >= f.StuckFor
	}
	if match(v.LastOp) {
		return true
	}
	for _, b := range v.Bindings {
		if match(b.LastOp) {
			return true
		}
	}
	return false
}

// walkTarget is one offering a listing walks, with the names it shows.
type walkTarget struct {
	serviceID, offering, producer string
	plans                         map[string]string // plan ID -> name
}

// walk reads one page of the targets' instances: the index cursor of one
// offering after another, each page a constant number of round trips.
// keep, when set, filters what the page shows.
func (s *Service) walk(ctx context.Context, targets []walkTarget, cursor string, limit int, keep func(InstanceView) bool) (*InstancePage, error) {
	at, err := parseCursor(cursor, len(targets))
	if err != nil {
		return nil, err
	}
	limit = pageSize(limit)
	// The index reads follow one another (each names the next cursor),
	// but a batch's records are read (and decoded) while the next batch
	// is read: at a million instances Redis's keys are far from any
	// cache, and reading in the background keeps that growth off the
	// page's critical path.
	var loads sync.WaitGroup
	defer loads.Wait() // no read outlives the request, even on an error...
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ...which cancels the reads still going first
	var batches []*walkBatch
	inFlight := make(chan struct{}, walkReadsInFlight)
	read := 0
	// An offering's walk ends part-way through a page; the page goes on
	// with the next offering, as long as it has room.
	for at.offering < len(targets) && read < limit {
		tg := targets[at.offering]
		entries, next, err := s.scanIndex(ctx, tg.serviceID, at.scan, limit-read)
		if err != nil {
			return nil, err
		}
		read += max(len(entries), 1)
		b := &walkBatch{tg: tg}
		batches = append(batches, b)
		inFlight <- struct{}{}
		loads.Go(func() {
			defer func() { <-inFlight }()
			b.insts, b.err = s.loadEntries(ctx, tg.serviceID, entries)
		})
		if next == "" {
			at = pageCursor{offering: at.offering + 1}
		} else {
			at.scan = next
		}
	}
	loads.Wait()
	page := &InstancePage{Instances: []InstanceView{}}
	for _, b := range batches {
		if b.err != nil {
			return nil, b.err
		}
		for _, li := range b.insts {
			if v := instanceView(b.tg, li); keep == nil || keep(v) {
				page.Instances = append(page.Instances, v)
			}
		}
	}
	if at.offering < len(targets) {
		page.NextCursor = at.String()
	}
	return page, nil
}

// walkReadsInFlight bounds the record reads one page has going at once
// (a page of 1000 is four batches), so a listing holds at most that many
// Redis connections.
const walkReadsInFlight = 4

// walkBatch is one batch of a page: the records of the entries one index
// read named, read in the background (set once loads.Wait returns).
type walkBatch struct {
	tg    walkTarget
	insts []loadedInstance
	err   error
}

func instanceView(tg walkTarget, li loadedInstance) InstanceView {
	in := li.inst
	v := InstanceView{
		ID: in.ID, Offering: tg.offering, Producer: tg.producer, ServiceID: in.ServiceID, Plan: tg.plans[in.PlanID], PlanID: in.PlanID,
		State: string(in.State), LastOp: opView(in.LastOp, in.ID, "", tg.offering, in.UpdatedAt),
		Bindings: []BindingView{}, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
	}
	sort.Slice(li.bindings, func(a, b int) bool { return li.bindings[a].CreatedAt.Before(li.bindings[b].CreatedAt) })
	for _, b := range li.bindings {
		v.Bindings = append(v.Bindings, BindingView{
			ID: b.ID, AppGUID: b.AppGUID, State: string(b.State),
			LastOp:    opView(b.LastOp, in.ID, b.ID, tg.offering, b.UpdatedAt),
			CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt,
		})
	}
	return v
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

// OperationPage is one page of latest operations; NextCursor asks for
// the next ("" on the last page).
type OperationPage struct {
	Operations []OperationView `json:"operations"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// Operations lists the latest operation of each of her instances and
// bindings, a page of instances at a time (see Instances), newest first
// within the page; failedOnly keeps the failures, whose description says
// why.
func (s *Service) Operations(ctx context.Context, name string, failedOnly bool, cursor string, limit int) (*OperationPage, error) {
	insts, err := s.Instances(ctx, name, cursor, limit)
	if err != nil {
		return nil, err
	}
	page := &OperationPage{Operations: []OperationView{}, NextCursor: insts.NextCursor}
	add := func(op *OperationView) {
		if op == nil || (failedOnly && op.State != string(broker.OpFailed)) {
			return
		}
		page.Operations = append(page.Operations, *op)
	}
	for _, in := range insts.Instances {
		add(in.LastOp)
		for _, b := range in.Bindings {
			add(b.LastOp)
		}
	}
	sort.SliceStable(page.Operations, func(i, j int) bool { return page.Operations[i].UpdatedAt.After(page.Operations[j].UpdatedAt) })
	return page, nil
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
	// The overview reads one page: its cost must not grow with her
	// instances. More failures than a page holds say so.
	failed, err := s.Operations(ctx, name, true, "", MaxPageSize)
	if err != nil {
		return nil, err
	}
	st := &Status{Producer: p, Offerings: offs, Pending: []int{}, Failures: len(failed.Operations), FailuresPartial: failed.NextCursor != ""}
	for i, v := range versions {
		if v.Status == SlicePendingApproval {
			st.Pending = append(st.Pending, v.Version)
		}
		if st.Latest == nil || v.Version > st.Latest.Version {
			st.Latest = &versions[i]
		}
	}
	return st, nil
}

// pageCursor is where a walk over a producer's offerings stands: the
// offering, and the index cursor within it (the store's own, which the
// store checks). On the wire it is opaque.
type pageCursor struct {
	offering int
	scan     string
}

func (c pageCursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(c.offering) + ":" + c.scan))
}

func parseCursor(s string, offerings int) (pageCursor, error) {
	if s == "" {
		return pageCursor{}, nil
	}
	bad := Fail(ErrInvalid, "cursor %q is not one this API handed out: start again without one", s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return pageCursor{}, bad
	}
	idx, scan, ok := strings.Cut(string(raw), ":")
	n, err := strconv.Atoi(idx)
	if !ok || err != nil || n < 0 || n > offerings {
		return pageCursor{}, bad
	}
	return pageCursor{offering: n, scan: scan}, nil
}

func pageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// InstanceDetail is one instance as the platform engineer sees it: its
// record, bindings and latest operation in full (attempts, the last
// error, the failure's detail), and the adapter's receipt. Never
// credentials.
type InstanceDetail struct {
	InstanceView
	Receipt   adapters.Receipt  `json:"receipt,omitempty"`
	Operation *broker.Operation `json:"operation,omitempty"`
}

// InstanceDetail reads one instance of any producer, in two round trips.
func (s *Service) InstanceDetail(ctx context.Context, instanceID string) (*InstanceDetail, error) {
	snaps, err := s.instances.LoadMany(ctx, []broker.LoadRequest{{InstanceID: instanceID, AllBindings: true}})
	if err != nil {
		return nil, Unavailable(err, "Redis is unavailable")
	}
	in := snaps[0].Instance
	if in == nil {
		return nil, Fail(ErrNotFound, "service instance %s does not exist", requestinfo.Quote(instanceID))
	}
	tg := walkTarget{serviceID: in.ServiceID, offering: in.ServiceID, plans: map[string]string{}}
	if off, ok := s.catalog().Offering(in.ServiceID); ok {
		tg.offering, tg.producer = off.Name, off.Producer
		for _, p := range off.Plans {
			tg.plans[p.ID] = p.Name
		}
	}
	d := &InstanceDetail{InstanceView: instanceView(tg, loadedInstance{inst: in, bindings: snaps[0].Bindings}), Receipt: in.Receipt}
	if in.LastOp != nil {
		ops, err := s.instances.LoadMany(ctx, []broker.LoadRequest{{InstanceID: instanceID, OperationID: in.LastOp.ID}})
		if err != nil {
			return nil, Unavailable(err, "Redis is unavailable")
		}
		d.Operation = ops[0].Operation
	}
	return d, nil
}
