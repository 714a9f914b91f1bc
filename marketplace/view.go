package marketplace

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/requestinfo"
	"github.com/agora-osb/agora/producers"
)

// pageView is everything the template shows. Strings are plain text: the
// template escapes each of them, and none of them is HTML.
type pageView struct {
	Viewer    viewerView
	Generated time.Time
	// Window is how far back the error ratio looks ("15m"), "" when
	// there is no error ratio.
	Window string
	// CanaryRuns is false while no canary is wired.
	CanaryRuns bool
	// Counts says instance counts are shown (to an admin, or to a
	// producer for her own offerings).
	Counts    bool
	Notices   []string
	Producers []*producerView
	Offerings int
	Plans     int
	CSS, JS   string
	Icon      string
}

type viewerView struct {
	Kind, Name string
}

type producerView struct {
	Name string
	// Contact is a link when it is a web address.
	Contact *linkView
	// Own marks the signed-in producer's section, which holds her
	// private data.
	Own       bool
	Offerings []*offeringView
	// Failures are her own recent failures (her view only).
	Failures *failuresView
}

type offeringView struct {
	Name, ID, DisplayName    string
	Description, LongDesc    string
	ProviderDisplayName      string
	Documentation, Support   *linkView
	Tags, Requires           []string
	Bindable, PlanUpdateable bool
	InstancesRetrievable     bool
	BindingsRetrievable      bool
	AllowContextUpdates      bool
	Shareable                bool
	// Withdrawn: every plan is deprecated, so the platform's catalog no
	// longer lists the offering; its instances keep working.
	Withdrawn bool
	Health    healthView
	Plans     []*planView
	// Instances and Bindings are totals over its plans, when counts are
	// shown.
	Instances, Bindings int64
	ShowCounts          bool
	// Search is what the filter box matches, lowercased.
	Search string
}

// linkView is a URL from a producer's metadata: a link only when it is
// http or https, otherwise text.
type linkView struct {
	Text string
	Href string // "" when the URL may not be a link
}

type planView struct {
	Name, ID, DisplayName string
	Description           string
	Free                  bool
	Costs                 []string
	Bullets               []string
	Bindable              bool
	PlanUpdateable        bool
	Async                 bool
	MaintenanceVersion    string
	MaintenanceNote       string
	Deprecated            bool
	Schemas               []schemaView
	ShowCounts            bool
	Instances, Bindings   int64
}

type schemaView struct {
	Label string // "Creating an instance"
	Doc   *SchemaDoc
}

type healthView struct {
	// Calls and Faults are the adapter's calls in the window; Ratio the
	// faults' share ("2.5%").
	Calls, Faults int64
	Ratio         string
	// Level is "ok", "warn", "bad" or "idle" (no calls), for the badge.
	Level  string
	Canary *canaryView
}

type canaryView struct {
	Passed  bool
	At      time.Time
	Ago     string
	Summary string
}

type failuresView struct {
	Operations []producers.OperationView
	// More says there were more failures than shown, or instances
	// beyond the page read.
	More bool
	// Error says they could not be read.
	Error string
}

// view gathers what one request shows. Sources that fail leave their
// part out with a notice; the catalog's part is always there.
func (p *Page) view(ctx context.Context, info *requestinfo.Info) *pageView {
	now := p.opts.Now()
	who := info.Principal
	v := &pageView{
		Viewer:     viewerView{Kind: string(who.Kind), Name: who.Name},
		Generated:  now.UTC(),
		CanaryRuns: p.opts.Canary != nil,
		CSS:        p.assetURL("marketplace.css"),
		JS:         p.assetURL("marketplace.js"),
		Icon:       p.assetURL("favicon.svg"),
	}
	if p.opts.Calls != nil {
		v.Window = minutes(p.opts.Calls.Window())
	}
	// Whose counts this request may see: everyone's for the admin, hers
	// for a producer, nobody's for the read-only credential.
	showCounts := func(*catalog.Offering) bool { return false }
	switch who.Kind {
	case requestinfo.PrincipalAdmin:
		showCounts = func(*catalog.Offering) bool { return true }
	case requestinfo.PrincipalProducer:
		showCounts = func(o *catalog.Offering) bool { return o.Producer == who.Name }
	}
	failure := func(what string, err error) {
		v.Notices = append(v.Notices, what)
		info.SetOutcome(requestinfo.Outcome{Error: err.Error(), Owner: "redis"})
	}

	counts := map[[2]string]PlanCount{}
	if who.Kind == requestinfo.PrincipalAdmin || who.Kind == requestinfo.PrincipalProducer {
		v.Counts = p.opts.Counts != nil
		if p.opts.Counts != nil {
			all, err := p.opts.Counts(ctx)
			if err != nil {
				v.Counts = false
				failure("Instance counts are not shown: Redis did not answer. Reload in a moment.", err)
			}
			for _, c := range all {
				counts[[2]string{c.ServiceID, c.PlanID}] = c
			}
		}
	}
	var canary map[string]CanaryResult
	if p.opts.Canary != nil {
		var err error
		if canary, err = p.opts.Canary.LastResults(ctx); err != nil {
			failure("The canary's results are not shown: they could not be read. Reload in a moment.", err)
		}
	}

	cat := p.opts.Catalog()
	services := map[string]domain.Service{}
	for _, s := range cat.Services() {
		services[s.ID] = s
	}
	byProducer := map[string]*producerView{}
	for _, off := range cat.Offerings() {
		pv := byProducer[off.Producer]
		if pv == nil {
			pv = &producerView{Name: off.Producer, Contact: link(off.Contact),
				Own: who.Kind == requestinfo.PrincipalProducer && who.Name == off.Producer}
			byProducer[off.Producer] = pv
		}
		ov := offeringOf(off, services[off.ID])
		ov.Health = p.health(off, canary[off.ID], now)
		if showCounts(off) && v.Counts {
			ov.ShowCounts = true
			for _, pl := range ov.Plans {
				c := counts[[2]string{off.ID, pl.ID}]
				pl.ShowCounts, pl.Instances, pl.Bindings = true, c.Instances, c.Bindings
				ov.Instances += c.Instances
				ov.Bindings += c.Bindings
			}
		}
		pv.Offerings = append(pv.Offerings, ov)
		v.Offerings++
		v.Plans += len(ov.Plans)
	}
	for _, pv := range byProducer {
		slices.SortFunc(pv.Offerings, func(a, b *offeringView) int { return strings.Compare(a.Name, b.Name) })
		v.Producers = append(v.Producers, pv)
	}
	// Her own section first; then by name.
	slices.SortFunc(v.Producers, func(a, b *producerView) int {
		if a.Own != b.Own {
			if a.Own {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	if who.Kind == requestinfo.PrincipalProducer && p.opts.Producers != nil {
		if own := byProducer[who.Name]; own != nil {
			own.Failures = p.failures(ctx, who.Name, info)
		}
	}
	return v
}

// failures reads the latest failed operations of one page of her
// instances: bounded, whatever the number of instances she has.
func (p *Page) failures(ctx context.Context, name string, info *requestinfo.Info) *failuresView {
	page, err := p.opts.Producers.Operations(ctx, name, true, "", failurePageInstances)
	if err != nil {
		info.SetOutcome(requestinfo.Outcome{Error: err.Error(), Owner: "redis"})
		return &failuresView{Error: "Your failed operations could not be read right now (Redis). Reload in a moment."}
	}
	fv := &failuresView{Operations: page.Operations, More: page.NextCursor != ""}
	if len(fv.Operations) > failuresShown {
		fv.Operations, fv.More = fv.Operations[:failuresShown], true
	}
	return fv
}

// health is an offering's error ratio over the window and the canary's
// last verdict.
func (p *Page) health(off *catalog.Offering, canary CanaryResult, now time.Time) healthView {
	h := healthView{Level: "idle"}
	if p.opts.Calls != nil {
		h.Calls, h.Faults = p.opts.Calls.Recent(off.Producer, off.Name)
		if h.Calls > 0 {
			ratio := float64(h.Faults) / float64(h.Calls)
			h.Ratio = fmt.Sprintf("%.1f%%", 100*ratio)
			switch {
			case h.Faults == 0:
				h.Level = "ok"
			case ratio < 0.05:
				h.Level = "warn"
			default:
				h.Level = "bad"
			}
		}
	}
	if !canary.At.IsZero() {
		h.Canary = &canaryView{Passed: canary.Passed, At: canary.At.UTC(), Ago: ago(now.Sub(canary.At)), Summary: canary.Summary}
	}
	return h
}

// offeringOf is the catalog's public view of one offering: never its
// adapter, config or settings.
func offeringOf(off *catalog.Offering, svc domain.Service) *offeringView {
	ov := &offeringView{
		Name: off.Name, ID: off.ID, Description: off.Description,
		Bindable: off.Bindable, PlanUpdateable: off.PlanUpdateable,
		InstancesRetrievable: off.InstancesRetrievable, BindingsRetrievable: off.BindingsRetrievable,
		AllowContextUpdates: off.AllowContextUpdates,
		Tags:                slices.Clone(svc.Tags),
		Withdrawn:           len(off.Plans) > 0,
	}
	for _, r := range svc.Requires {
		ov.Requires = append(ov.Requires, string(r))
	}
	if md := svc.Metadata; md != nil {
		ov.DisplayName, ov.LongDesc, ov.ProviderDisplayName = md.DisplayName, md.LongDescription, md.ProviderDisplayName
		ov.Documentation, ov.Support = link(md.DocumentationUrl), link(md.SupportUrl)
		ov.Shareable = md.Shareable != nil && *md.Shareable
	}
	plans := map[string]domain.ServicePlan{}
	for _, sp := range svc.Plans {
		plans[sp.ID] = sp
	}
	for _, pl := range off.Plans {
		ov.Plans = append(ov.Plans, planOf(pl, plans[pl.ID]))
		ov.Withdrawn = ov.Withdrawn && pl.Deprecated
	}
	ov.Search = strings.ToLower(strings.Join(append([]string{off.Name, off.Producer, ov.DisplayName, off.Description}, ov.Tags...), " "))
	return ov
}

func planOf(pl *catalog.Plan, sp domain.ServicePlan) *planView {
	v := &planView{
		Name: pl.Name, ID: pl.ID, Description: pl.Description, Free: pl.Free,
		Bindable: pl.Bindable, PlanUpdateable: pl.PlanUpdateable, Async: pl.Async, Deprecated: pl.Deprecated,
	}
	if mi := pl.MaintenanceInfo; mi != nil {
		v.MaintenanceVersion, v.MaintenanceNote = mi.Version, mi.Description
	}
	if md := sp.Metadata; md != nil {
		v.DisplayName, v.Bullets = md.DisplayName, slices.Clone(md.Bullets)
		for _, c := range md.Costs {
			v.Costs = append(v.Costs, costText(c))
		}
	}
	if s := sp.Schemas; s != nil {
		for _, part := range []struct {
			label  string
			schema domain.Schema
		}{
			{"Creating an instance", s.Instance.Create},
			{"Updating an instance", s.Instance.Update},
			{"Creating a binding", s.Binding.Create},
		} {
			if part.schema.Parameters != nil {
				v.Schemas = append(v.Schemas, schemaView{Label: part.label, Doc: documentSchema(part.schema.Parameters)})
			}
		}
	}
	return v
}

// costText words one OSB cost: "10 USD, 9 EUR per month".
func costText(c domain.ServicePlanCost) string {
	amounts := make([]string, 0, len(c.Amount))
	for _, cur := range slices.Sorted(maps.Keys(c.Amount)) {
		amounts = append(amounts, fmt.Sprintf("%g %s", c.Amount[cur], strings.ToUpper(cur)))
	}
	return strings.TrimSpace(strings.Join(amounts, ", ") + " " + c.Unit)
}

// link makes a producer's URL a link only when it is an absolute http or
// https URL; anything else (javascript:, data:, a relative path that
// would point into Agora) stays text.
func link(raw string) *linkView {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	l := &linkView{Text: raw}
	u, err := url.Parse(raw)
	if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil {
		l.Href = u.String()
	}
	return l
}

// minutes words a window: "15 min".
func minutes(d time.Duration) string {
	return fmt.Sprintf("%d min", max(1, int(d/time.Minute)))
}

// ago words a duration for people: "just now", "4 min ago", "3 h ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}

// cmpOr is cmp.Or for the template.
func cmpOr(a, b string) string { return cmp.Or(a, b) }
