package producers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/broker/catalog"
)

// Apply checks a slice the producer sent (validation, then the gate),
// stores it as her next version, and makes it live at once when she is
// trusted (auto_approve_slices). It is PUT /producers/{name}/slice.
func (s *Service) Apply(ctx context.Context, name, author string, body []byte) (*ApplyResult, error) {
	rec, err := s.activeProducer(ctx, name)
	if err != nil {
		return nil, err
	}
	sl, decodeErr := parseSlice(sliceSource, body)
	if sl == nil {
		return nil, decodeErr
	}
	// A slice with unknown fields is checked all the same, so that she
	// sees every problem at once; the check repeats the decode's.
	warnings, err := s.check(ctx, rec.Producer, sl, plainSecrets)
	if err != nil {
		return nil, err
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	gate, err := s.runGate(ctx, rec.Producer, sl, func(n *yaml.Node) (string, error) { return n.Value, nil })
	if err != nil {
		return nil, err
	}
	if err := s.recheck(ctx, rec.Producer, sl); err != nil {
		return nil, err
	}
	v, err := s.store.NextVersion(ctx, name)
	if err != nil {
		return nil, storeErr(err)
	}
	// Only now, with the gate passed, does the secret go to Vault; the
	// stored slice keeps the reference. Keys are per version, so an older
	// version, restored later, still finds its own secret.
	for i, o := range sl.producer().Offerings {
		sn := mapValue(mapValue(sl.offeringNode(i), "config"), "secret")
		if sn == nil {
			continue
		}
		ref, err := s.secrets.PutProducerSecret(ctx, name, "v"+strconv.Itoa(v)+"."+o.Name, sn.Value)
		if err != nil {
			return nil, Unavailable(err, "Vault is unavailable: the protocol secret of offering %q could not be stored; nothing was changed, apply again shortly", o.Name)
		}
		*sn = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: ref}
	}
	return s.newVersion(ctx, rec, sl, v, author, "apply", gate, warnings, rec.AutoApproveSlices, 0)
}

// Restore makes an earlier version current again: re-validated against
// today's catalog and re-gated, as a new version. A version that was live
// before goes live again at once (a rollback of something approved); any
// other waits for approval like a new slice, unless she is trusted.
func (s *Service) Restore(ctx context.Context, name, author string, from int) (*ApplyResult, error) {
	rec, err := s.activeProducer(ctx, name)
	if err != nil {
		return nil, err
	}
	old, err := s.store.Version(ctx, name, from)
	if err != nil {
		return nil, storeErr(err)
	}
	sl, err := parseSlice(sliceSource, []byte(old.Slice))
	if err != nil {
		return nil, err
	}
	warnings, err := s.check(ctx, rec.Producer, sl, storedSecrets)
	if err != nil {
		return nil, err
	}
	gate, err := s.runGate(ctx, rec.Producer, sl, func(n *yaml.Node) (string, error) { return s.resolveRef(ctx, n.Value) })
	if err != nil {
		return nil, err
	}
	if err := s.recheck(ctx, rec.Producer, sl); err != nil {
		return nil, err
	}
	v, err := s.store.NextVersion(ctx, name)
	if err != nil {
		return nil, storeErr(err)
	}
	wasApproved := old.DecidedAt != nil && (old.Status == SliceLive || old.Status == SliceSuperseded)
	return s.newVersion(ctx, rec, sl, v, author, fmt.Sprintf("restore of v%d", from), gate, warnings, rec.AutoApproveSlices || wasApproved, 0)
}

// Deprecate hides a plan from the catalog for new instances; existing
// instances keep it. It changes no adapter, so it runs no gate and goes
// live at once, as a new version.
func (s *Service) Deprecate(ctx context.Context, name, author, offering, plan string) (*ApplyResult, error) {
	rec, sl, live, err := s.liveSlice(ctx, name)
	if err != nil {
		return nil, err
	}
	oi := sl.offeringIndex(offering)
	if oi < 0 {
		return nil, Fail(ErrNotFound, "offering %q is not in your live slice (v%d)", offering, live.Version)
	}
	pi := -1
	for j, p := range sl.producer().Offerings[oi].Plans {
		if p.Name == plan {
			pi = j
		}
	}
	if pi < 0 {
		return nil, Fail(ErrNotFound, "offering %q has no plan %q in your live slice (v%d)", offering, plan, live.Version)
	}
	if sl.producer().Offerings[oi].Plans[pi].Deprecated {
		return &ApplyResult{Producer: name, Version: live.Version, Status: live.Status, Warnings: []string{"the plan was already deprecated"}}, nil
	}
	sl.deprecatePlan(oi, pi)
	if err := sl.reparse(sliceSource); err != nil {
		return nil, err
	}
	if _, err := s.check(ctx, rec.Producer, sl, storedSecrets); err != nil {
		return nil, err
	}
	v, err := s.store.NextVersion(ctx, name)
	if err != nil {
		return nil, storeErr(err)
	}
	gate := &GateResult{Summary: "not run", Checks: []GateCheck{}, Note: "a deprecation changes no adapter"}
	return s.newVersion(ctx, rec, sl, v, author, fmt.Sprintf("deprecate plan %s/%s", offering, plan), gate, nil, true, live.Version)
}

// RemoveOffering takes an offering out of the catalog, which is allowed
// only while the instance index shows none of its instances.
func (s *Service) RemoveOffering(ctx context.Context, name, author, offering string) (*ApplyResult, error) {
	rec, sl, live, err := s.liveSlice(ctx, name)
	if err != nil {
		return nil, err
	}
	oi := sl.offeringIndex(offering)
	if oi < 0 {
		return nil, Fail(ErrNotFound, "offering %q is not in your live slice (v%d)", offering, live.Version)
	}
	id := offeringID(name, &sl.producer().Offerings[oi])
	// Ten are enough to refuse and to name: the walk stops there, so an
	// offering with a million instances is refused after one page.
	var ids []string
	if err := s.eachInstance(ctx, id, func(li loadedInstance) bool {
		ids = append(ids, li.inst.ID)
		return len(ids) < 10
	}); err != nil {
		return nil, err
	}
	if n := len(ids); n > 0 {
		atLeast := ""
		if n == 10 {
			atLeast = "at least "
		}
		return nil, Fail(ErrConflict, "offering %q still has %s%d instance(s) (%s): they must be deleted first; deprecate its plans to stop new ones", offering, atLeast, n, strings.Join(ids, ", "))
	}
	sl.removeOffering(oi)
	if err := sl.reparse(sliceSource); err != nil {
		return nil, err
	}
	v, err := s.store.NextVersion(ctx, name)
	if err != nil {
		return nil, storeErr(err)
	}
	gate := &GateResult{Summary: "not run", Checks: []GateCheck{}, Note: "removing an offering changes no adapter"}
	return s.newVersion(ctx, rec, sl, v, author, "remove offering "+offering, gate, nil, true, live.Version)
}

// ApproveSlice makes a pending version live (an admin's call). Approving
// the version that is already live tells the replicas again, so a retry
// after a Redis hiccup is safe.
func (s *Service) ApproveSlice(ctx context.Context, name string, v int, by string) (*ApplyResult, error) {
	if err := s.makeLive(ctx, name, v, by); err != nil {
		return nil, err
	}
	sv, err := s.store.Version(ctx, name, v)
	if err != nil {
		return nil, storeErr(err)
	}
	return &ApplyResult{Producer: name, Version: v, Status: sv.Status, Gate: sv.Gate}, nil
}

// RejectSlice closes a pending version without making it live.
func (s *Service) RejectSlice(ctx context.Context, name string, v int, by, reason string) (*ApplyResult, error) {
	err := s.store.Update(ctx, name, func(_ *Record, versions map[int]*SliceVersion) ([]*SliceVersion, error) {
		sv, ok := versions[v]
		if !ok {
			return nil, Fail(ErrNotFound, "producer %q has no slice version %d", name, v)
		}
		if sv.Status != SlicePendingApproval {
			return nil, Fail(ErrConflict, "version %d is %s; only a pending version can be rejected", v, sv.Status)
		}
		now := s.now().UTC()
		sv.Status, sv.DecidedAt, sv.DecidedBy, sv.Reason = SliceRejected, &now, by, reason
		return []*SliceVersion{sv}, nil
	})
	if err != nil {
		return nil, storeErr(err)
	}
	s.log.Info("slice version rejected", "producer", name, "version", v, "by", by)
	return &ApplyResult{Producer: name, Version: v, Status: SliceRejected}, nil
}

// newVersion stores a checked slice as version v and, when live is set,
// makes it live. A failed go-live leaves the version pending, with the
// reason as a warning: an admin can approve it once the cause is fixed.
func (s *Service) newVersion(ctx context.Context, rec Record, sl *slice, v int, author, action string, gate *GateResult, warnings []string, live bool, basedOn int) (*ApplyResult, error) {
	text, err := sl.encode()
	if err != nil {
		return nil, err
	}
	offerings := make([]string, 0, len(sl.producer().Offerings))
	for _, o := range sl.producer().Offerings {
		offerings = append(offerings, o.Name)
	}
	sv := &SliceVersion{
		Version: v, Status: SlicePendingApproval, Author: author, Action: action,
		CreatedAt: s.now().UTC(), Offerings: offerings, Gate: gate, Slice: text, BasedOn: basedOn,
	}
	if err := s.store.PutVersion(ctx, rec.Name, sv); err != nil {
		return nil, storeErr(err)
	}
	s.log.Info("slice version stored", "producer", rec.Name, "version", v, "action", action, "author", author, "gate", gate.Summary)
	res := &ApplyResult{Producer: rec.Name, Version: v, Status: SlicePendingApproval, Gate: gate, Warnings: warnings}
	if live && !gate.AutoApprovable() {
		// Trust in a producer never outweighs her adapter's report.
		for _, why := range gate.NotAutoApprovable {
			res.Warnings = append(res.Warnings, "not approved automatically: "+why)
		}
		s.log.Info("slice version not approved automatically", "producer", rec.Name, "version", v, "reasons", gate.NotAutoApprovable)
		return res, nil
	}
	if !live {
		return res, nil
	}
	if err := s.makeLive(ctx, rec.Name, v, "auto:"+author); err != nil {
		s.log.Error("slice version could not go live; it stays pending", "producer", rec.Name, "version", v, "error", err)
		res.Warnings = append(res.Warnings, "version stays pending_approval: going live failed: "+problemText(err))
		return res, nil
	}
	res.Status = SliceLive
	return res, nil
}

// makeLive proves that the catalog builds with version v in place of the
// producer's live slice, exactly as every replica will build it (Vault
// references resolved, every adapter's factory run), then records v as
// live and bumps the generation. The catalog lock serialises this across
// producers and replicas, so two slices that each passed validation alone
// cannot go live together and collide.
func (s *Service) makeLive(ctx context.Context, name string, v int, by string) error {
	unlock, err := s.store.LockCatalog(ctx, 2*time.Minute, 30*time.Second)
	if err != nil {
		return storeErr(err)
	}
	defer unlock()
	sv, err := s.store.Version(ctx, name, v)
	if err != nil {
		return storeErr(err)
	}
	switch sv.Status {
	case SliceLive:
		_, err := s.store.BumpGeneration(ctx)
		return storeErr(err)
	case SlicePendingApproval:
	default:
		return Fail(ErrConflict, "version %d is %s; only a pending version can go live (restore it to use it again)", v, sv.Status)
	}
	f, err := fileFromText(liveSource(name, v), sv.Slice)
	if err != nil {
		return fmt.Errorf("stored slice v%d of %q does not parse: %w", v, name, err)
	}
	files, err := s.liveFiles(ctx, name, f)
	if err != nil {
		return err
	}
	// Built as every replica will build it, but only what changed: the
	// catalog this replica serves lends every unchanged adapter.
	opts := s.build
	opts.Previous = s.catalog()
	if s.imports != nil {
		gen, err := s.store.Generation(ctx)
		if err != nil {
			return storeErr(err)
		}
		opts.Import = s.imports.For(gen + 1) // the generation this change makes
	}
	cat, err := catalog.Build(ctx, opts, files...)
	if err != nil {
		var ve *catalog.ValidationError
		if errors.As(err, &ve) {
			problems := make([]FieldProblem, len(ve.Errors))
			for i, fe := range ve.Errors {
				problems[i] = FieldProblem{Message: fe.String()}
			}
			return &Error{Kind: ErrConflict, Message: fmt.Sprintf("version %d cannot go live: the catalog would not build with it", v), Problems: problems}
		}
		return Unavailable(err, "the catalog could not be built")
	}
	if err := cat.Close(); err != nil {
		s.log.Warn("closing adapters after the go-live check", "error", err)
	}
	err = s.store.Update(ctx, name, func(rec *Record, versions map[int]*SliceVersion) ([]*SliceVersion, error) {
		target, ok := versions[v]
		if !ok || target.Status != SlicePendingApproval {
			return nil, Fail(ErrConflict, "version %d changed while going live; retry", v)
		}
		if target.BasedOn != 0 && target.BasedOn != rec.LiveVersion {
			return nil, Fail(ErrConflict, "version %d edits v%d, but v%d is live now; redo the change", v, target.BasedOn, rec.LiveVersion)
		}
		if rec.State != StateActive {
			return nil, Fail(ErrConflict, "producer %q is %s: approve the producer first", name, rec.State)
		}
		now := s.now().UTC()
		changed := []*SliceVersion{target}
		if prev, ok := versions[rec.LiveVersion]; ok && prev.Version != v {
			prev.Status = SliceSuperseded
			changed = append(changed, prev)
		}
		target.Status, target.DecidedAt, target.DecidedBy = SliceLive, &now, by
		rec.LiveVersion = v
		rec.UpdatedAt = now
		return changed, nil
	})
	if err != nil {
		return storeErr(err)
	}
	gen, err := s.store.BumpGeneration(ctx)
	if err != nil {
		return Unavailable(err, "version %d is live, but the replicas were not told (Redis); approve it again to retry", v)
	}
	s.log.Info("slice version live", "producer", name, "version", v, "by", by, "generation", gen)
	return nil
}

// LiveFiles returns every source of the live catalog: the base sources,
// then each producer's live slice. livecatalog.Loader builds from it.
func (s *Service) LiveFiles(ctx context.Context) ([]*catalog.File, error) {
	return s.liveFiles(ctx, "", nil)
}

// liveFiles is LiveFiles with producer name's live slice replaced by
// replace (left out when replace is nil and name is set).
func (s *Service) liveFiles(ctx context.Context, name string, replace *catalog.File) ([]*catalog.File, error) {
	lives, err := s.store.LiveSlices(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	files := append([]*catalog.File{}, s.base...)
	for _, l := range lives {
		if name != "" && l.Producer == name {
			continue
		}
		f, err := fileFromText(liveSource(l.Producer, l.Version), l.Slice)
		if err != nil {
			return nil, fmt.Errorf("live slice v%d of %q does not parse: %w", l.Version, l.Producer, err)
		}
		files = append(files, f)
	}
	if replace != nil {
		files = append(files, replace)
	}
	return files, nil
}

func liveSource(name string, v int) string {
	return fmt.Sprintf("producer %s v%d", name, v)
}

// secretMode says what a slice's config.secret must hold.
type secretMode int

const (
	// plainSecrets: a slice as the producer sent it, with the plain value.
	plainSecrets secretMode = iota
	// storedSecrets: a stored slice, with Agora's reference into her path.
	storedSecrets
)

// check runs every check a slice must pass before the gate, and reports
// every problem at once: the slice's own rules, the catalog's rules
// merged with every other source (so names and IDs cannot collide with
// catalog.yml or another producer), and that nothing with instances
// leaves the catalog. It returns warnings that do not stop the slice.
func (s *Service) check(ctx context.Context, p Producer, sl *slice, mode secretMode) ([]string, error) {
	problems := s.sliceRules(p, sl, mode)
	// Capabilities she left out are what the gate learns from her adapter
	// (runGate fills them in); until then, assume every one, and check
	// again with what it learnt (recheck).
	for i := range sl.producer().Offerings {
		legacyCapabilities(&sl.producer().Offerings[i])
	}
	cp, err := s.catalogProblems(ctx, p, sl)
	if err != nil {
		return nil, err
	}
	problems = append(problems, cp...)

	var warnings []string
	rec, err := s.store.Get(ctx, p.Name)
	if err != nil {
		return nil, storeErr(err)
	}
	if rec.LiveVersion > 0 {
		live, err := s.store.Version(ctx, p.Name, rec.LiveVersion)
		if err != nil {
			return nil, storeErr(err)
		}
		lf, err := fileFromText(liveSource(p.Name, live.Version), live.Slice)
		if err != nil {
			return nil, fmt.Errorf("live slice v%d of %q does not parse: %w", live.Version, p.Name, err)
		}
		rp, err := s.removalProblems(ctx, p.Name, &lf.Producers[0], sl.producer())
		if err != nil {
			return nil, err
		}
		problems = append(problems, rp...)
		warnings = undeprecations(p.Name, &lf.Producers[0], sl.producer())
	}
	if len(problems) > 0 {
		return nil, invalid(sortedProblems(problems))
	}
	return warnings, nil
}

// catalogProblems checks the slice with every other live source, by the
// catalog's rules (catalog.Check: pure, so nothing is built, dialled or
// imported), and returns the problems that are hers to fix.
func (s *Service) catalogProblems(ctx context.Context, p Producer, sl *slice) ([]FieldProblem, error) {
	files, err := s.liveFiles(ctx, p.Name, sl.file)
	if err != nil {
		return nil, err
	}
	err = catalog.Check(s.build, files...)
	if err == nil {
		return nil, nil
	}
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) {
		return nil, Unavailable(err, "the slice could not be validated")
	}
	var problems []FieldProblem
	for _, fe := range ve.Errors {
		if fe.Source == sliceSource {
			problems = append(problems, relocate(fe))
		} else {
			// Another source's problem is not hers to fix; the go-live
			// build will refuse while it lasts.
			s.log.Warn("catalog source has a problem", "source", fe.Source, "problem", fe.String())
		}
	}
	return problems, nil
}

// recheck checks the slice again after the gate filled in what it learnt
// of her adapter (its capabilities): a plan that promises updates of an
// adapter that declares none fails here, before anything is stored.
func (s *Service) recheck(ctx context.Context, p Producer, sl *slice) error {
	if err := sl.reparse(sliceSource); err != nil {
		return err
	}
	problems, err := s.catalogProblems(ctx, p, sl)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		for i := range problems {
			problems[i].Line = 0 // lines of the re-encoded slice, not of hers
		}
		return invalid(sortedProblems(problems))
	}
	return nil
}

// sliceRules are what only slices must obey, on top of the catalog's
// rules. It fills in name and contact from her record when left out.
func (s *Service) sliceRules(p Producer, sl *slice, mode secretMode) []FieldProblem {
	var problems []FieldProblem
	at := func(path string, n *yaml.Node, format string, args ...any) {
		fp := FieldProblem{Path: path, Message: fmt.Sprintf(format, args...)}
		if n != nil {
			fp.Line = n.Line
		}
		problems = append(problems, fp)
	}
	pr := sl.producer()
	if n := mapValue(sl.root, "upstream"); n != nil {
		at("upstream", n, "a slice cannot import an upstream broker: serve your offerings through the remote adapter")
		// Not even for validation: the importer would call her URL.
		pr.Upstream = nil
	}
	switch pr.Name {
	case "":
		sl.setDefault("name", p.Name)
		pr.Name = p.Name
	case p.Name:
	default:
		at("name", mapValue(sl.root, "name"), "is %q, but this slice belongs to producer %q", pr.Name, p.Name)
	}
	if pr.Contact == "" {
		sl.setDefault("contact", p.Contact)
		pr.Contact = p.Contact
	}
	noRefs := func(path string, n *yaml.Node) {
		if strings.HasPrefix(n.Value, "vault:") {
			at(path, n, "vault references are not allowed in a slice: only config.secret is kept secret, and Agora stores it in Vault for you")
		}
	}
	for i := range pr.Offerings {
		o := &pr.Offerings[i]
		on := sl.offeringNode(i)
		base := fmt.Sprintf("offerings[%d]", i)
		if o.Name != "" && !strings.HasPrefix(o.Name, p.Namespace) {
			at(base+".name", mapValue(on, "name"), "%q is outside your namespace: your offering names must start with %q", o.Name, p.Namespace)
		}
		if o.Adapter != "" && o.Adapter != remoteAdapter {
			at(base+".adapter", mapValue(on, "adapter"), "is %q; a slice's offerings use the %q adapter (your service, behind Agora's remote protocol)", o.Adapter, remoteAdapter)
		}
		if n := mapValue(mapValue(on, "config"), "tls"); n != nil {
			// The remote adapter reads these as files on Agora's host: a
			// producer must not point Agora at its own files.
			at(base+".config.tls", n, "names files on Agora's host and cannot be set in a slice: serve https with a publicly trusted certificate, or ask the platform team")
		}
		secretPath := base + ".config.secret"
		walkStrings(mapValue(on, "config"), base+".config", func(path string, n *yaml.Node) {
			if path != secretPath {
				noRefs(path, n)
				return
			}
			switch {
			case mode == plainSecrets && strings.HasPrefix(n.Value, "vault:"):
				at(path, n, "give your adapter's protocol secret as a plain value: Agora stores it in Vault and keeps only a reference")
			case mode == storedSecrets && !s.secrets.OwnsRef(p.Name, n.Value):
				at(path, n, "is not a secret reference Agora stored for producer %q", p.Name)
			}
		})
		if plans := mapValue(on, "plans"); plans != nil && plans.Kind == yaml.SequenceNode {
			for j, pn := range plans.Content {
				walkStrings(mapValue(pn, "config"), fmt.Sprintf("%s.plans[%d].config", base, j), noRefs)
			}
		}
	}
	return problems
}

// removalProblems refuses a slice that drops an offering or plan that
// still has instances: the broker resolves every operation on an instance
// through the catalog, so they would be stranded. Only offerings that lose
// something are walked, and each walk stops once every plan it could
// refuse has shown an instance: a slice that only adds costs no walk.
func (s *Service) removalProblems(ctx context.Context, name string, live, next *catalog.Producer) ([]FieldProblem, error) {
	nextIndex := map[string]int{}
	for i := range next.Offerings {
		nextIndex[offeringID(name, &next.Offerings[i])] = i
	}
	var problems []FieldProblem
	for i := range live.Offerings {
		lo := &live.Offerings[i]
		id := offeringID(name, lo)
		ni, kept := nextIndex[id]
		// The plans whose instances would be stranded.
		dropped := map[string]int{}
		if kept {
			nextPlans := map[string]bool{}
			no := &next.Offerings[ni]
			for j := range no.Plans {
				nextPlans[planID(name, no, &no.Plans[j])] = true
			}
			for j := range lo.Plans {
				if pid := planID(name, lo, &lo.Plans[j]); !nextPlans[pid] {
					dropped[pid] = 0
				}
			}
			if len(dropped) == 0 {
				continue
			}
		}
		found, seen := 0, 0
		if err := s.eachInstance(ctx, id, func(li loadedInstance) bool {
			found++
			if n, ok := dropped[li.inst.PlanID]; ok {
				if n == 0 {
					seen++
				}
				dropped[li.inst.PlanID] = n + 1
			}
			// A dropped offering is refused by its first instance; a
			// kept one once every dropped plan has one.
			return kept && seen < len(dropped)
		}); err != nil {
			return nil, err
		}
		if !kept {
			if found > 0 {
				problems = append(problems, FieldProblem{Path: "offerings", Message: fmt.Sprintf(
					"offering %q (id %s) has instances and cannot leave the catalog: keep it until they are deleted (deprecate its plans to stop new ones)", lo.Name, id)})
			}
			continue
		}
		for j := range lo.Plans {
			pid := planID(name, lo, &lo.Plans[j])
			if dropped[pid] > 0 {
				problems = append(problems, FieldProblem{Path: fmt.Sprintf("offerings[%d].plans", ni), Message: fmt.Sprintf(
					"plan %q (id %s) has at least %d instance(s) and cannot leave the catalog: keep it, with deprecated: true to stop new instances", lo.Plans[j].Name, pid, dropped[pid])})
			}
		}
	}
	return problems, nil
}

// undeprecations warns about plans deprecated in the live slice that the
// new slice offers again.
func undeprecations(name string, live, next *catalog.Producer) []string {
	deprecated := map[string]string{}
	for i := range live.Offerings {
		lo := &live.Offerings[i]
		for j := range lo.Plans {
			if lo.Plans[j].Deprecated {
				deprecated[planID(name, lo, &lo.Plans[j])] = lo.Name + "/" + lo.Plans[j].Name
			}
		}
	}
	var out []string
	for i := range next.Offerings {
		no := &next.Offerings[i]
		for j := range no.Plans {
			if was, ok := deprecated[planID(name, no, &no.Plans[j])]; ok && !no.Plans[j].Deprecated {
				out = append(out, fmt.Sprintf("plan %s is deprecated in your live slice but not in this one: once live, it is offered to new instances again (keep deprecated: true to avoid that)", was))
			}
		}
	}
	return out
}

// runGate runs the conformance kit against every plan of every offering
// of the slice, one run per plan.
// It is never skipped: without a gate no slice is accepted.
func (s *Service) runGate(ctx context.Context, p Producer, sl *slice, secretOf func(*yaml.Node) (string, error)) (*GateResult, error) {
	if s.gate == nil {
		return nil, Unavailable(nil, "this Agora has no conformance gate configured, and slices never skip it: ask the platform team")
	}
	ctx, cancel := context.WithTimeout(ctx, s.gateTimeout)
	defer cancel()
	var runs []gateRun
	for i := range sl.producer().Offerings {
		o := &sl.producer().Offerings[i]
		cfg := mapValue(sl.offeringNode(i), "config")
		req, err := s.gateRequest(ctx, p, sl, i, secretOf)
		if err != nil {
			return nil, err
		}
		url, secret := req.URL, req.Secret
		if s.egress != nil {
			// Before any request: the platform engineer decides where the
			// gate may connect, and an address it may not is her input's
			// problem, not her adapter's.
			if err := s.egress(ctx, url); err != nil {
				fp := FieldProblem{Path: fmt.Sprintf("offerings[%d].config.url", i), Message: err.Error()}
				if un := mapValue(cfg, "url"); un != nil {
					fp.Line = un.Line
				}
				s.observeGate(p.Name, "refused")
				return nil, invalid([]FieldProblem{fp})
			}
		}
		// Every plan is judged, each with its own schema: a plan the
		// adapter does not know, or a schema it does not enforce, would
		// otherwise go live unjudged behind a good first plan.
		var declared []string
		for j := range req.Plans {
			plan := o.Plans[j].Name
			report, err := s.gate(ctx, req.ForPlan(j))
			if err != nil {
				s.observeGate(p.Name, "error")
				return nil, &Error{Kind: ErrGateFailed, Message: scrub(fmt.Sprintf("the conformance gate could not run against offering %q plan %q (%s): %v", o.Name, plan, url, err), secret)}
			}
			runs = append(runs, gateRun{Offering: o.Name, Plan: plan, Report: scrubReport(report, secret)})
			if declared == nil {
				declared = report.Capabilities
			}
		}
		// A producer need not write the capabilities her adapter declares:
		// the stored slice gets what the gate saw, like the secret gets
		// its reference. A list she wrote herself the gate has checked.
		if cfg != nil && mapValue(cfg, "capabilities") == nil && declared != nil {
			setMapValue(cfg, "capabilities", capabilitiesNode(declared))
			s.log.Info("capabilities filled in from the adapter", "producer", p.Name, "offering", o.Name, "capabilities", declared)
		}
	}
	g := gateResult(runs, s.allowUnverified)
	if len(runs) == 0 {
		g.Note = "the slice has no offering to check"
	}
	// A failing slice is stored all the same, pending: the platform
	// engineer decides with the report in front of her, and automatic
	// approval never applies to it (newVersion).
	switch {
	case g.Failed:
		s.observeGate(p.Name, "fail")
	case !g.AutoApprovable():
		s.observeGate(p.Name, "unverified")
	default:
		s.observeGate(p.Name, "pass")
	}
	return g, nil
}

// allowUnverified reports whether the platform engineer lets slices with
// credentials of type t go live automatically although the kit cannot
// verify them (gate.allow_unverified_types).
func (s *Service) allowUnverified(t string) bool {
	return slices.Contains(s.allowedUnverified, t)
}

// observeGate counts one gate run of a producer's slice by its result.
func (s *Service) observeGate(producer, result string) {
	if s.onGate != nil {
		s.onGate(producer, result)
	}
}

// capabilitiesNode is config.capabilities as the gate fills it in.
func capabilitiesNode(capabilities []string) *yaml.Node {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, c := range capabilities {
		seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: c})
	}
	return seq
}

func isAbsentNode(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

// scrub hides a secret that a gate or adapter echoed back.
func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "<redacted>")
}

func scrubReport(r conformance.Report, secret string) conformance.Report {
	out := conformance.Report{Results: make([]conformance.CheckResult, len(r.Results)), Capabilities: r.Capabilities, Unverified: r.Unverified}
	for i, c := range r.Results {
		c.Detail, c.Hint = scrub(c.Detail, secret), scrub(c.Hint, secret)
		out.Results[i] = c
	}
	return out
}

// resolveRef reads a stored vault: reference through the catalog's own
// resolver, for the gate of a restored slice.
func (s *Service) resolveRef(ctx context.Context, ref string) (string, error) {
	path, key, ok := strings.Cut(strings.TrimPrefix(ref, "vault:"), "#")
	if !ok || s.build.Resolve == nil {
		return "", fmt.Errorf("cannot resolve %q", ref)
	}
	return s.build.Resolve(ctx, path, key)
}

// activeProducer loads a producer who may change her slice.
func (s *Service) activeProducer(ctx context.Context, name string) (Record, error) {
	rec, err := s.store.Get(ctx, name)
	if err != nil {
		return Record{}, storeErr(err)
	}
	switch rec.State {
	case StateActive:
		return rec, nil
	case StatePending:
		return Record{}, Fail(ErrForbidden, "producer %q is waiting for the platform team's approval; slices are accepted once approved", name)
	default:
		return Record{}, Fail(ErrForbidden, "producer %q is %s", name, rec.State)
	}
}

// liveSlice loads an active producer and her live slice, parsed.
func (s *Service) liveSlice(ctx context.Context, name string) (Record, *slice, *SliceVersion, error) {
	rec, err := s.activeProducer(ctx, name)
	if err != nil {
		return Record{}, nil, nil, err
	}
	if rec.LiveVersion == 0 {
		return Record{}, nil, nil, Fail(ErrNotFound, "producer %q has no live slice", name)
	}
	live, err := s.store.Version(ctx, name, rec.LiveVersion)
	if err != nil {
		return Record{}, nil, nil, storeErr(err)
	}
	sl, err := parseSlice(sliceSource, []byte(live.Slice))
	if err != nil {
		return Record{}, nil, nil, err
	}
	return rec, sl, live, nil
}

// problemText renders an error with its problems, for a warning line.
func problemText(err error) string {
	var pe *Error
	if !errors.As(err, &pe) {
		return err.Error()
	}
	parts := []string{pe.Message}
	for _, p := range pe.Problems {
		parts = append(parts, p.Message)
	}
	return strings.Join(parts, "; ")
}
