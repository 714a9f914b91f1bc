package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// Bulk upgrades. A producer publishes a new maintenance_info version of a
// plan; a platform upgrades one instance at a time (`cf update-service
// --upgrade`). A bulk upgrade does it for all the plan's instances, or a
// named subset, without a platform: each instance gets the same update a
// platform's upgrade PATCH would start, on the async engine (so it
// survives a replica's death, is fenced, and counts against its
// producer's fairness limit). The run itself is a record in the state
// store that any replica's workers advance (maintain, every UpgradeScan):
// at most Concurrency instances upgrading at once, each outcome recorded
// per instance. A replica that dies mid-step loses nothing: the next
// replica finds the run, and an instance whose upgrade had started
// answers with the operation already running (same fingerprint), so no
// instance is ever upgraded twice at once.

// UpgradeStore is a capability of a StateStore: bulk upgrade runs, and
// which of them still have work. A run is advanced by one replica at a
// time, the one holding its claim; every save is conditional on it.
type UpgradeStore interface {
	// CreateUpgrade stores a new run and marks it active.
	CreateUpgrade(ctx context.Context, u *Upgrade) error
	// GetUpgrade reads a run (ErrNotFound when there is none).
	GetUpgrade(ctx context.Context, id string) (*Upgrade, error)
	// ActiveUpgrades lists the runs that still have work.
	ActiveUpgrades(ctx context.Context) ([]string, error)
	// ClaimUpgrade takes the run for token for ttl; false when another
	// holder's claim has not run out.
	ClaimUpgrade(ctx context.Context, id, token string, ttl time.Duration) (bool, error)
	// SaveUpgrade writes the run while token holds its claim (else
	// ErrStale), marking it active or not, and releases the claim.
	SaveUpgrade(ctx context.Context, u *Upgrade, token string, active bool) error
	// ReleaseUpgrade gives up token's claim without writing.
	ReleaseUpgrade(ctx context.Context, id, token string) error
}

// InstanceLister is a capability of a StateStore: walk one offering's
// instances (InstanceIndex) and read many at once. A bulk upgrade of a
// whole plan needs it.
type InstanceLister interface {
	ScanOfferingInstances(ctx context.Context, serviceID, cursor string, count int) ([]IndexEntry, string, error)
	LoadMany(ctx context.Context, reqs []LoadRequest) ([]Snapshot, error)
}

// UpgradeState is where one instance of a bulk upgrade is.
type UpgradeState string

// The states of an instance in a bulk upgrade.
const (
	// UpgradePending: not started yet (or to be started again).
	UpgradePending UpgradeState = "pending"
	// UpgradeRunning: its update operation runs on the async engine.
	UpgradeRunning UpgradeState = "running"
	// UpgradeUpgraded: it runs the run's version now.
	UpgradeUpgraded UpgradeState = "upgraded"
	// UpgradeFailed: its upgrade failed; Detail says why. A retry of the
	// run starts it again.
	UpgradeFailed UpgradeState = "failed"
)

// The states of a run.
const (
	RunRunning  = "running"
	RunFinished = "finished"
	// RunDryRun is a run that was only listed, never stored.
	RunDryRun = "dry_run"
)

// Bounds of a run.
const (
	defaultUpgradeConcurrency = 5
	maxUpgradeConcurrency     = 100
	// maxUpgradeInstances bounds one run's record (it is read and written
	// whole at every step).
	maxUpgradeInstances = 10000
	// upgradeClaimTTL bounds how long a dead replica's claim delays a
	// run: a step takes well under it.
	upgradeClaimTTL = 10 * time.Second
	// maxUpgradeRestarts is how often an instance whose upgrade another
	// operation superseded is started again before it counts as failed.
	maxUpgradeRestarts = 3
)

// Upgrade is one bulk upgrade run, as stored and as the APIs show it.
type Upgrade struct {
	ID        string `json:"id"`
	ServiceID string `json:"service_id"`
	PlanID    string `json:"plan_id"`
	Offering  string `json:"offering"`
	Plan      string `json:"plan"`
	Producer  string `json:"producer"`
	// Version is the maintenance_info version every instance is brought
	// to: the plan's in the catalog when the run started.
	Version     string `json:"version"`
	Concurrency int    `json:"concurrency"`
	// StartedBy is "producer:<name>" or "admin:<user>".
	StartedBy  string        `json:"started_by"`
	RequestID  string        `json:"request_id,omitempty"`
	State      string        `json:"state"`
	Counts     UpgradeCounts `json:"counts"`
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
	FinishedAt time.Time     `json:"finished_at,omitzero"`
	// Instances is the per-instance outcome list, in the run's order.
	Instances []UpgradeItem `json:"instances"`
}

// UpgradeItem is one instance of a run.
type UpgradeItem struct {
	InstanceID string       `json:"instance_id"`
	State      UpgradeState `json:"state"`
	// From is the version the instance ran when the run listed it.
	From        string `json:"from,omitempty"`
	OperationID string `json:"operation_id,omitempty"`
	// Starts counts the upgrade operations started for it.
	Starts int `json:"starts,omitempty"`
	// Detail says why it failed, or that no work was needed.
	Detail    string    `json:"detail,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// UpgradeCounts sum a run up: Done are upgraded, Failed failed, and
// Remaining are pending or running.
type UpgradeCounts struct {
	Total     int `json:"total"`
	Done      int `json:"done"`
	Failed    int `json:"failed"`
	Running   int `json:"running"`
	Remaining int `json:"remaining"`
}

func (u *Upgrade) recount() {
	c := UpgradeCounts{Total: len(u.Instances)}
	for _, it := range u.Instances {
		switch it.State {
		case UpgradeUpgraded:
			c.Done++
		case UpgradeFailed:
			c.Failed++
		case UpgradeRunning:
			c.Running++
			c.Remaining++
		default:
			c.Remaining++
		}
	}
	u.Counts = c
}

// UpgradeRequest starts a bulk upgrade.
type UpgradeRequest struct {
	// Offering and Plan are catalog names.
	Offering string `json:"offering"`
	Plan     string `json:"plan"`
	// InstanceIDs names a subset; empty means every instance of the plan
	// below the plan's version.
	InstanceIDs []string `json:"instance_ids,omitempty"`
	// Concurrency bounds the instances upgrading at once (default 5, at
	// most 100). The async engine's per-producer limit applies as well.
	Concurrency int `json:"concurrency,omitempty"`
	// DryRun lists what would be upgraded and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// ErrUpgradeRefused marks a bulk upgrade request the catalog or the
// instances do not allow; the message says why.
var ErrUpgradeRefused = errors.New("upgrade refused")

func upgradeRefused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUpgradeRefused, fmt.Sprintf(format, args...))
}

// ErrUpgradeForbidden: the run or the offering is another producer's.
var ErrUpgradeForbidden = errors.New("not this producer's")

// StartUpgrade lists the instances to upgrade and, unless req.DryRun,
// records the run for the workers to advance. producer, when set, is the
// producer asking: the offering must be hers. startedBy is who asked, for
// the record.
func (b *Broker) StartUpgrade(ctx context.Context, req UpgradeRequest, producer, startedBy string) (*Upgrade, error) {
	store, ok := b.state.(UpgradeStore)
	if !ok {
		return nil, upgradeRefused("this Agora's state store cannot record bulk upgrades")
	}
	off, plan, err := b.planByName(req.Offering, req.Plan)
	if err != nil {
		return nil, err
	}
	if producer != "" && off.Producer != producer {
		return nil, fmt.Errorf("%w: offering %q is producer %s's", ErrUpgradeForbidden, off.Name, off.Producer)
	}
	switch {
	case plan.MaintenanceInfo == nil:
		return nil, upgradeRefused("plan %q of offering %q has no maintenance_info: publish a version in the catalog first", plan.Name, off.Name)
	case req.Concurrency < 0 || req.Concurrency > maxUpgradeConcurrency:
		return nil, upgradeRefused("concurrency %d: must be 1 to %d (0 means %d)", req.Concurrency, maxUpgradeConcurrency, defaultUpgradeConcurrency)
	}
	if _, ok := off.Adapter.(adapters.Updater); !ok {
		return nil, upgradeRefused("offering %q cannot update instances (its adapter has no update capability), so it cannot upgrade them", off.Name)
	}
	items, err := b.upgradeCandidates(ctx, off, plan, req.InstanceIDs)
	if err != nil {
		return nil, err
	}
	now := b.now()
	u := &Upgrade{
		ID: newID(), ServiceID: off.ID, PlanID: plan.ID, Offering: off.Name, Plan: plan.Name, Producer: off.Producer,
		Version: plan.MaintenanceInfo.Version, Concurrency: cmpOr(req.Concurrency, defaultUpgradeConcurrency),
		StartedBy: startedBy, RequestID: requestinfo.ID(ctx), State: RunRunning,
		CreatedAt: now, UpdatedAt: now, Instances: items,
	}
	u.recount()
	if req.DryRun {
		u.ID, u.State = "", RunDryRun
		return u, nil
	}
	if u.Counts.Remaining == 0 {
		u.State, u.FinishedAt = RunFinished, now
	}
	if err := store.CreateUpgrade(ctx, u); err != nil {
		return nil, stateErr(err)
	}
	b.log.Info("bulk upgrade started", "upgrade_id", u.ID, "offering", u.Offering, "plan", u.Plan,
		"version", u.Version, "instances", len(u.Instances), "concurrency", u.Concurrency, "started_by", startedBy)
	return u, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// planByName resolves catalog names (a 404-like refusal when unknown).
func (b *Broker) planByName(offering, plan string) (*catalog.Offering, *catalog.Plan, error) {
	for _, off := range b.catalog.Load().Offerings() {
		if off.Name != offering {
			continue
		}
		for _, p := range off.Plans {
			if p.Name == plan {
				return off, p, nil
			}
		}
		return nil, nil, fmt.Errorf("%w: offering %q has no plan %q", ErrNotFound, offering, plan)
	}
	return nil, nil, fmt.Errorf("%w: no offering %q in the catalog", ErrNotFound, offering)
}

// upgradeCandidates lists the run's instances: the named ones (each must
// be an instance of the plan; every problem is reported at once), or all
// of the plan's instances below its version. A named instance already on
// the version is listed as upgraded, with no work to do.
func (b *Broker) upgradeCandidates(ctx context.Context, off *catalog.Offering, plan *catalog.Plan, named []string) ([]UpgradeItem, error) {
	lister, ok := b.state.(InstanceLister)
	if !ok {
		return nil, upgradeRefused("this Agora's state store cannot list instances")
	}
	version := plan.MaintenanceInfo.Version
	var snaps []Snapshot
	if len(named) > 0 {
		if len(named) > maxUpgradeInstances {
			return nil, upgradeRefused("%d instances named; one run takes at most %d", len(named), maxUpgradeInstances)
		}
		ids := slices.Compact(slices.Sorted(slices.Values(named)))
		reqs := make([]LoadRequest, len(ids))
		for i, id := range ids {
			reqs[i] = LoadRequest{InstanceID: id}
		}
		var err error
		if snaps, err = lister.LoadMany(ctx, reqs); err != nil {
			return nil, stateErr(err)
		}
		var problems []string
		for i, s := range snaps {
			switch inst := s.Instance; {
			case inst == nil:
				problems = append(problems, fmt.Sprintf("%q does not exist", ids[i]))
			case inst.ServiceID != off.ID || inst.PlanID != plan.ID:
				problems = append(problems, fmt.Sprintf("%q is not an instance of plan %q of offering %q", ids[i], plan.Name, off.Name))
			}
		}
		if len(problems) > 0 {
			return nil, upgradeRefused("instance_ids: %s", strings.Join(problems, "; "))
		}
	} else {
		var err error
		if snaps, err = b.planInstances(ctx, lister, off.ID, plan.ID); err != nil {
			return nil, err
		}
	}
	items := []UpgradeItem{}
	for _, s := range snaps {
		inst := s.Instance
		if adapters.CompareVersions(inst.MaintenanceInfo, version) >= 0 {
			if len(named) > 0 {
				items = append(items, UpgradeItem{InstanceID: inst.ID, State: UpgradeUpgraded, From: inst.MaintenanceInfo,
					Detail: "already on " + inst.MaintenanceInfo})
			}
			continue
		}
		items = append(items, UpgradeItem{InstanceID: inst.ID, State: UpgradePending, From: inst.MaintenanceInfo})
	}
	return items, nil
}

// planInstances walks the offering's index and keeps the plan's
// instances, a page (one pipelined read) at a time.
func (b *Broker) planInstances(ctx context.Context, lister InstanceLister, serviceID, planID string) ([]Snapshot, error) {
	var out []Snapshot
	seen := map[string]bool{}
	cursor := ""
	for {
		entries, next, err := lister.ScanOfferingInstances(ctx, serviceID, cursor, 200)
		if err != nil {
			return nil, stateErr(err)
		}
		reqs := make([]LoadRequest, 0, len(entries))
		named := make([]IndexEntry, 0, len(entries))
		for _, e := range entries {
			// The legacy index's SSCAN may return an ID twice, and an ID
			// it names may have been provisioned again into the ordered
			// index (see redisstore's legacyIndexKey).
			if !seen[e.InstanceID] {
				seen[e.InstanceID] = true
				reqs = append(reqs, LoadRequest{InstanceID: e.InstanceID})
				named = append(named, e)
			}
		}
		snaps, err := lister.LoadMany(ctx, reqs)
		if err != nil {
			return nil, stateErr(err)
		}
		for i, s := range snaps {
			if named[i].Names(s.Instance) && s.Instance.PlanID == planID {
				out = append(out, s)
			}
		}
		if len(out) > maxUpgradeInstances {
			return nil, upgradeRefused("the plan has more than %d instances; upgrade them in named subsets", maxUpgradeInstances)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	slices.SortFunc(out, func(a, b Snapshot) int { return a.Instance.CreatedAt.Compare(b.Instance.CreatedAt) })
	return out, nil
}

// GetUpgrade reads a run; producer, when set, must own it.
func (b *Broker) GetUpgrade(ctx context.Context, id, producer string) (*Upgrade, error) {
	store, ok := b.state.(UpgradeStore)
	if !ok {
		return nil, fmt.Errorf("%w: bulk upgrade %q", ErrNotFound, id)
	}
	u, err := store.GetUpgrade(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: bulk upgrade %q", ErrNotFound, id)
	case err != nil:
		return nil, stateErr(err)
	case producer != "" && u.Producer != producer:
		// Another producer's run does not exist for her.
		return nil, fmt.Errorf("%w: bulk upgrade %q", ErrNotFound, id)
	}
	u.recount()
	return u, nil
}

// RetryUpgrade puts a run's failed instances back to pending and makes
// the run active again. Instances already upgraded are left alone.
func (b *Broker) RetryUpgrade(ctx context.Context, id, producer string) (*Upgrade, error) {
	if _, err := b.GetUpgrade(ctx, id, producer); err != nil {
		return nil, err
	}
	store := b.state.(UpgradeStore)
	token := newID()
	// A replica may be stepping the run right now; its step is short.
	for i := 0; ; i++ {
		ok, err := store.ClaimUpgrade(ctx, id, token, upgradeClaimTTL)
		if err != nil {
			return nil, stateErr(err)
		}
		if ok {
			break
		}
		if i == 20 || !sleep(ctx, 100*time.Millisecond) {
			return nil, upgradeRefused("bulk upgrade %q is being advanced by another replica; retry in a moment", id)
		}
	}
	u, err := store.GetUpgrade(ctx, id)
	if err != nil {
		_ = store.ReleaseUpgrade(ctx, id, token)
		return nil, stateErr(err)
	}
	now := b.now()
	retried := 0
	for i := range u.Instances {
		if it := &u.Instances[i]; it.State == UpgradeFailed {
			it.State, it.Detail, it.OperationID, it.Starts, it.UpdatedAt = UpgradePending, "", "", 0, now
			retried++
		}
	}
	if retried > 0 {
		u.State, u.FinishedAt = RunRunning, time.Time{}
	}
	u.UpdatedAt = now
	u.recount()
	if err := store.SaveUpgrade(ctx, u, token, u.State == RunRunning); err != nil {
		return nil, stateErr(err)
	}
	b.log.Info("bulk upgrade retried", "upgrade_id", u.ID, "instances", retried)
	return u, nil
}

// advanceUpgrades steps every active run this replica can claim. Any
// replica may run it at any time.
func (b *Broker) advanceUpgrades(ctx context.Context) error {
	store, ok := b.state.(UpgradeStore)
	if !ok {
		return nil
	}
	ids, err := store.ActiveUpgrades(ctx)
	if err != nil {
		return fmt.Errorf("list active bulk upgrades: %w", err)
	}
	for _, id := range ids {
		if err := b.advanceUpgrade(ctx, store, id); err != nil && ctx.Err() == nil {
			b.log.Warn("advance a bulk upgrade; the next round tries again", "upgrade_id", id, "error", err)
		}
	}
	return nil
}

func (b *Broker) advanceUpgrade(ctx context.Context, store UpgradeStore, id string) error {
	token := newID()
	ok, err := store.ClaimUpgrade(ctx, id, token, upgradeClaimTTL)
	if err != nil || !ok {
		return err
	}
	u, err := store.GetUpgrade(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		// An active entry whose record expired: take it off the list.
		return store.SaveUpgrade(ctx, &Upgrade{ID: id, State: RunFinished}, token, false)
	case err != nil:
		_ = store.ReleaseUpgrade(ctx, id, token)
		return err
	}
	b.stepUpgrade(ctx, u)
	active := u.State == RunRunning
	err = store.SaveUpgrade(ctx, u, token, active)
	if err == nil && !active {
		b.log.Info("bulk upgrade finished", "upgrade_id", u.ID, "offering", u.Offering, "plan", u.Plan, "version", u.Version,
			"upgraded", u.Counts.Done, "failed", u.Counts.Failed)
	}
	return err
}

// stepUpgrade records how the running instances' upgrades went, then
// starts pending ones while fewer than Concurrency run. An instance that
// cannot start now (a platform's request holds it) stays pending and the
// next one is tried: one busy or failing instance never blocks the rest.
func (b *Broker) stepUpgrade(ctx context.Context, u *Upgrade) {
	now := b.now()
	running := 0
	for i := range u.Instances {
		it := &u.Instances[i]
		if it.State != UpgradeRunning {
			continue
		}
		snap, err := b.state.Load(ctx, LoadRequest{InstanceID: it.InstanceID})
		if err != nil {
			running++ // unknown for now: still counts against the limit
			continue
		}
		b.checkUpgradeItem(u, it, snap.Instance, now)
		if it.State == UpgradeRunning {
			running++
		}
	}
	for i := range u.Instances {
		if running >= u.Concurrency || ctx.Err() != nil {
			break
		}
		it := &u.Instances[i]
		if it.State != UpgradePending {
			continue
		}
		b.startUpgradeItem(ctx, u, it, now)
		if it.State == UpgradeRunning {
			running++
		}
	}
	u.UpdatedAt = now
	u.recount()
	if u.Counts.Remaining == 0 {
		u.State, u.FinishedAt = RunFinished, now
	}
}

// checkUpgradeItem reads a running instance's upgrade from its record.
func (b *Broker) checkUpgradeItem(u *Upgrade, it *UpgradeItem, inst *Instance, now time.Time) {
	set := func(s UpgradeState, detail string) { it.State, it.Detail, it.UpdatedAt = s, detail, now }
	switch {
	case inst == nil:
		set(UpgradeFailed, "the instance was deleted during the upgrade")
	case inst.LastOp != nil && inst.LastOp.ID == it.OperationID:
		switch inst.LastOp.State {
		case OpSucceeded:
			set(UpgradeUpgraded, "")
		case OpFailed:
			set(UpgradeFailed, inst.LastOp.Description)
		}
		// In progress: still running (past its deadline, the worker
		// records the failure).
	case adapters.CompareVersions(inst.MaintenanceInfo, u.Version) >= 0 && !inst.LastOp.Active(now):
		// Another operation (a platform's own upgrade PATCH) got there.
		set(UpgradeUpgraded, "upgraded by another operation")
	case inst.LastOp.Active(now):
		// Another operation superseded ours and still runs: wait for it.
	case it.Starts >= maxUpgradeRestarts:
		set(UpgradeFailed, fmt.Sprintf("its upgrade was superseded by other operations %d times", it.Starts))
	default:
		set(UpgradePending, "")
	}
}

// startUpgradeItem starts one instance's upgrade: the update a platform's
// upgrade PATCH would start, forced onto the async engine.
func (b *Broker) startUpgradeItem(ctx context.Context, u *Upgrade, it *UpgradeItem, now time.Time) {
	// Adapters and logs see the run as the request behind the work.
	rctx := requestinfo.With(context.WithoutCancel(ctx), &requestinfo.Info{ID: "upgrade-" + u.ID})
	spec, err := b.update(rctx, it.InstanceID, domain.UpdateDetails{
		ServiceID: u.ServiceID, PlanID: u.PlanID,
		MaintenanceInfo: &domain.MaintenanceInfo{Version: u.Version},
	}, true, true)
	it.UpdatedAt = now
	switch {
	case err == nil && spec.IsAsync:
		it.State, it.OperationID, it.Detail = UpgradeRunning, spec.OperationData, ""
		it.Starts++
	case err == nil:
		// Nothing to do: the instance runs the version already.
		it.State, it.Detail = UpgradeUpgraded, "already on "+u.Version
	default:
		f := classify(err)
		if f.code == "ConcurrencyError" || f.status >= http.StatusInternalServerError {
			// Busy (a platform's request) or a store failing: next round.
			b.log.Debug("bulk upgrade: instance not started this round", "upgrade_id", u.ID, "instance_id", it.InstanceID, "error", err)
			return
		}
		it.State, it.Detail = UpgradeFailed, f.public
	}
}
