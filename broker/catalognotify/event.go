package catalognotify

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/agora-osb/agora/broker/catalog"
)

// Event is the body of a delivery: what changed between the catalog last
// announced and the one in force. A receiver that only needs a nudge can
// ignore everything but Event; one that syncs plans reads the lists.
type Event struct {
	Event              string           `json:"event"`
	Generation         int64            `json:"generation"`
	PreviousGeneration int64            `json:"previous_generation"`
	At                 time.Time        `json:"at"`
	Added              []Offering       `json:"added"`
	Removed            []Offering       `json:"removed"`
	Changed            []OfferingChange `json:"changed"`
}

// Offering names an offering and its plans.
type Offering struct {
	ServiceID string `json:"service_id"`
	Name      string `json:"name"`
	Producer  string `json:"producer"`
	Plans     []Plan `json:"plans,omitempty"`
}

// Plan names a plan and its maintenance version, if any.
type Plan struct {
	ID                 string `json:"id"`
	Name               string `json:"name"`
	MaintenanceVersion string `json:"maintenance_version,omitempty"`
}

// OfferingChange is an offering in both catalogs that differs: plans that
// came, went or changed, and whether the offering's own fields did.
type OfferingChange struct {
	Offering
	OfferingFieldsChanged bool   `json:"offering_fields_changed"`
	PlansAdded            []Plan `json:"plans_added,omitempty"`
	PlansRemoved          []Plan `json:"plans_removed,omitempty"`
	PlansChanged          []Plan `json:"plans_changed,omitempty"`
}

// summary is what the Store keeps of an announced catalog: names and a
// fingerprint of each offering and plan as served, nothing more.
type summary struct {
	Generation  int64                      `json:"generation"`
	Fingerprint string                     `json:"fingerprint"`
	Offerings   map[string]offeringSummary `json:"offerings"`
}

type offeringSummary struct {
	Name        string                 `json:"name"`
	Producer    string                 `json:"producer"`
	Fingerprint string                 `json:"fingerprint"` // the offering without its plans
	Plans       map[string]planSummary `json:"plans"`
}

type planSummary struct {
	Plan
	Fingerprint string `json:"fingerprint"`
}

// summarize fingerprints the catalog as the platforms see it (the served
// JSON), so that any change a platform could notice is announced.
func summarize(gen int64, cat *catalog.Catalog) summary {
	s := summary{Generation: gen, Offerings: map[string]offeringSummary{}}
	producers := map[string]string{}
	for _, off := range cat.Offerings() {
		producers[off.ID] = off.Producer
	}
	for _, svc := range cat.Services() {
		plans := svc.Plans
		svc.Plans = nil
		os := offeringSummary{Name: svc.Name, Producer: producers[svc.ID], Fingerprint: fingerprint(svc), Plans: map[string]planSummary{}}
		for _, p := range plans {
			ps := planSummary{Plan: Plan{ID: p.ID, Name: p.Name}, Fingerprint: fingerprint(p)}
			if p.MaintenanceInfo != nil {
				ps.MaintenanceVersion = p.MaintenanceInfo.Version
			}
			os.Plans[p.ID] = ps
		}
		s.Offerings[svc.ID] = os
	}
	// In ID order: moving an offering within a file changes nothing a
	// platform keys on.
	whole := sha256.New()
	for _, id := range slices.Sorted(maps.Keys(s.Offerings)) {
		os := s.Offerings[id]
		whole.Write([]byte(id + os.Fingerprint))
		for _, pid := range slices.Sorted(maps.Keys(os.Plans)) {
			whole.Write([]byte(pid + os.Plans[pid].Fingerprint))
		}
	}
	s.Fingerprint = hex.EncodeToString(whole.Sum(nil))
	return s
}

// empty reports whether the event announces nothing.
func (ev Event) empty() bool {
	return len(ev.Added) == 0 && len(ev.Removed) == 0 && len(ev.Changed) == 0
}

func fingerprint(v any) string {
	raw, _ := json.Marshal(v) // catalog types always marshal
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// diff is the event that takes a receiver from prev to cur. Lists are
// sorted by ID, so equal changes give equal bodies.
func diff(prev, cur summary, at time.Time) Event {
	ev := Event{Event: EventCatalogChanged, Generation: cur.Generation, PreviousGeneration: prev.Generation, At: at.UTC(),
		Added: []Offering{}, Removed: []Offering{}, Changed: []OfferingChange{}}
	for _, id := range slices.Sorted(maps.Keys(cur.Offerings)) {
		c := cur.Offerings[id]
		p, existed := prev.Offerings[id]
		if !existed {
			ev.Added = append(ev.Added, c.offering(id))
			continue
		}
		ch := OfferingChange{Offering: Offering{ServiceID: id, Name: c.Name, Producer: c.Producer}, OfferingFieldsChanged: p.Fingerprint != c.Fingerprint}
		for _, pid := range slices.Sorted(maps.Keys(c.Plans)) {
			cp := c.Plans[pid]
			switch pp, ok := p.Plans[pid]; {
			case !ok:
				ch.PlansAdded = append(ch.PlansAdded, cp.Plan)
			case pp.Fingerprint != cp.Fingerprint:
				ch.PlansChanged = append(ch.PlansChanged, cp.Plan)
			}
		}
		for _, pid := range slices.Sorted(maps.Keys(p.Plans)) {
			if _, ok := c.Plans[pid]; !ok {
				ch.PlansRemoved = append(ch.PlansRemoved, p.Plans[pid].Plan)
			}
		}
		if ch.OfferingFieldsChanged || ch.PlansAdded != nil || ch.PlansRemoved != nil || ch.PlansChanged != nil {
			ev.Changed = append(ev.Changed, ch)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(prev.Offerings)) {
		if _, ok := cur.Offerings[id]; !ok {
			ev.Removed = append(ev.Removed, prev.Offerings[id].offering(id))
		}
	}
	return ev
}

func (o offeringSummary) offering(id string) Offering {
	off := Offering{ServiceID: id, Name: o.Name, Producer: o.Producer}
	for _, pid := range slices.Sorted(maps.Keys(o.Plans)) {
		off.Plans = append(off.Plans, o.Plans[pid].Plan)
	}
	return off
}
