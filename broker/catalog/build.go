package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain"
	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/adapters"
)

// BuildOptions are what Build needs besides the sources.
type BuildOptions struct {
	// Registry holds the adapter factories this binary offers.
	Registry *adapters.Registry
	// Resolve resolves vault references in adapter config. Nil is fine for
	// a catalog without any; a reference then is a validation error.
	Resolve SecretResolver
	// Logger is handed to each adapter, scoped to it; nil discards.
	Logger *slog.Logger
	// Import turns a producer's `upstream:` broker into offerings (the osb
	// adapter's osb.Importer). Nil is fine for a catalog without upstreams;
	// an upstream then is a validation error. Check never calls it.
	Import Importer
	// Previous is the catalog this build replaces, if any: an offering
	// whose adapter would be built from exactly the same config keeps
	// Previous's adapter instead, so a rebuild builds only what changed.
	// Previous itself is not changed; its Close releases its share.
	Previous *Catalog
}

// checkPlaceholder stands in for a vault reference's secret when a
// catalog is checked: checking needs no Vault, and a secret's value does
// not make a catalog valid or not.
const checkPlaceholder = "checked-without-vault"

// defaultOperationTimeout bounds async work when a plan does not say.
const defaultOperationTimeout = time.Hour

// maxStringLen is the OSB spec's recommended limit for catalog strings;
// longer ones are known to break platforms, so Agora enforces it.
const maxStringLen = 255

var (
	// producerNameRE and offeringNameRE are the CF-friendly form: lowercase
	// letters, digits and inner hyphens. Offering names are what app
	// developers type in `cf create-service`.
	producerNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	offeringNameRE = producerNameRE
	// planNameRE is the spec's "CLI-friendly" form: alphanumerics, periods
	// and hyphens, without the "-"-only strings it warns against.
	planNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$`)
	// idRE is RFC 3986's unreserved characters: IDs travel in URLs
	// (/v2/service_instances/:id?service_id=...) unencoded.
	idRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
	// semverRE is the official Semantic Versioning 2.0.0 pattern.
	semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	// osbRequires are the only permissions the spec defines.
	osbRequires = map[string]bool{"syslog_drain": true, "route_forwarding": true, "volume_mount": true}
)

// Build validates every source together, reporting every problem at once
// as a *ValidationError; derives missing IDs; compiles the schemas; calls
// each offering's adapter factory with its resolved config; and
// precomputes the catalog body. Offerings keep the order of files, then of
// producers and offerings within each. On any error no adapter is left
// open.
func Build(ctx context.Context, opts BuildOptions, files ...*File) (*Catalog, error) {
	b := newBuilder(ctx, opts, false)
	b.run(files)
	if err := ctx.Err(); err != nil {
		b.discard()
		return nil, fmt.Errorf("build catalog: %w", err)
	}
	if err := b.validationError(); err != nil {
		b.discard()
		return nil, err
	}
	return b.catalog()
}

// Check runs every rule Build enforces that needs no I/O, and reports
// every problem at once as a *ValidationError: names, IDs, plans, schemas,
// the shape of vault references and upstream sections, and each adapter's
// config through its Factory.Check. It builds nothing: no factory's New
// runs, no Vault reference is read, no upstream broker is called (an
// upstream's offerings are only known, and checked, when Build imports
// them). `agora catalog check` and a producer's apply run it.
func Check(opts BuildOptions, files ...*File) error {
	b := newBuilder(context.Background(), opts, true)
	b.run(files)
	return b.validationError()
}

// CheckWithSecrets is Check that also resolves every vault reference
// through opts.Resolve, which must be set: what `agora catalog check` does
// when it can reach Vault. A reference that does not resolve is a
// problem at its field path, like any other. Still no adapter is built
// and no upstream imported; only the resolver does I/O.
func CheckWithSecrets(ctx context.Context, opts BuildOptions, files ...*File) error {
	if opts.Resolve == nil {
		return errors.New("catalog: CheckWithSecrets needs a resolver")
	}
	b := newBuilder(ctx, opts, true)
	b.secrets = newSecretScope(ctx, opts.Resolve)
	b.run(files)
	return b.validationError()
}

func newBuilder(ctx context.Context, opts BuildOptions, pure bool) *builder {
	resolve := opts.Resolve
	if pure {
		resolve = func(context.Context, string, string) (string, error) { return checkPlaceholder, nil }
	}
	b := &builder{
		ctx:      ctx,
		opts:     opts,
		pure:     pure,
		logger:   opts.Logger,
		secrets:  newSecretScope(ctx, resolve),
		names:    map[string]seen{},
		ids:      map[string]seen{},
		sources:  map[string]int{},
		services: []domain.Service{},
		wire:     []wireService{},
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	return b
}

// run applies every rule to files, in order, recording the problems.
func (b *builder) run(files []*File) {
	// Every file's decode problems come first, ahead of the rules'.
	for _, f := range files {
		if f != nil {
			b.errs = append(b.errs, f.decodeProblems...)
		}
	}
	b.decoded = len(b.errs)
	for i, f := range files {
		if f == nil {
			continue
		}
		if _, ok := b.sources[f.Source]; !ok {
			b.sources[f.Source] = i
		}
	}
	// Upstream catalogs are fetched before anything is validated, all at
	// once: with several upstreams down, startup waits for one timeout,
	// not one per upstream.
	b.importUpstreams(files)
	for _, f := range files {
		if f != nil {
			b.file(f)
		}
	}
}

func (b *builder) validationError() error {
	if len(b.errs) == 0 {
		return nil
	}
	ve := &ValidationError{Errors: withoutConsequences(b.errs, b.decoded)}
	ve.sort(b.sources)
	return ve
}

// withoutConsequences drops the rule problems a mistyped value causes:
// "at least one plan" under a plans: that could not be decoded says
// nothing the type error did not. An unknown field causes none.
func withoutConsequences(errs []FieldError, decoded int) []FieldError {
	type key struct{ source, path string }
	mistyped := map[key]bool{}
	for _, e := range errs[:decoded] {
		if e.Path != "" && !strings.HasPrefix(e.Message, "unknown field") {
			mistyped[key{e.Source, e.Path}] = true
		}
	}
	kept := errs[:decoded:decoded]
	for _, e := range errs[decoded:] {
		consequence := false
		for p := e.Path; p != "" && !consequence; p = parentPath(p) {
			consequence = mistyped[key{e.Source, p}]
		}
		if !consequence {
			kept = append(kept, e)
		}
	}
	return kept
}

// seen remembers where a name or ID first appeared, for "duplicate of".
type seen struct {
	source, path, value string
}

type builder struct {
	ctx  context.Context
	opts BuildOptions
	// pure is Check: apply the rules, build nothing, call nothing.
	pure    bool
	logger  *slog.Logger
	secrets *secretScope

	errs []FieldError
	// decoded counts the decode problems at the start of errs.
	decoded int
	sources map[string]int
	// names holds producer names ("producer:x") and offering names
	// ("offering:x"); ids holds offering and plan IDs together, because the
	// spec wants an ID to name one thing only.
	names map[string]seen
	ids   map[string]seen

	offerings []*Offering
	services  []domain.Service
	wire      []wireService

	// imports holds each upstream producer's fetched catalog.
	imports map[producerKey]*importJob
}

func (b *builder) fail(f *File, path, format string, args ...any) {
	b.errs = append(b.errs, FieldError{
		Source:  f.Source,
		Path:    path,
		Line:    f.line(path),
		Message: fmt.Sprintf(format, args...),
	})
}

func (b *builder) failAll(f *File, errs []pathError) {
	for _, e := range errs {
		b.fail(f, e.path, "%s", e.msg)
	}
}

// unique records value under key, or reports the current path as a
// duplicate of the first one.
func (b *builder) unique(table map[string]seen, key string, f *File, path, value string) bool {
	if first, dup := table[key]; dup {
		where := first.path
		if first.source != f.Source && first.source != "" {
			where = first.source + ": " + first.path
		}
		b.fail(f, path, "duplicate of %s (%q)", where, first.value)
		return false
	}
	table[key] = seen{source: f.Source, path: path, value: value}
	return true
}

// checkString reports an empty required string, a too long one, or one
// that does not match re (when re is not nil).
func (b *builder) checkString(f *File, path, value string, required bool, re *regexp.Regexp, rule string) bool {
	switch {
	case value == "":
		if required {
			b.fail(f, path, "is required")
			return false
		}
		return true
	case len(value) > maxStringLen:
		b.fail(f, path, "is %d characters long; the limit is %d", len(value), maxStringLen)
		return false
	case re != nil && !re.MatchString(value):
		b.fail(f, path, "%q must be %s", value, rule)
		return false
	}
	return true
}

func (b *builder) file(f *File) {
	for pi := range f.Producers {
		b.producer(f, pi)
	}
}

func (b *builder) producer(f *File, pi int) {
	p := &f.Producers[pi]
	path := fmt.Sprintf("producers[%d]", pi)
	nameOK := b.checkString(f, path+".name", p.Name, true, producerNameRE, "lowercase letters, digits and inner hyphens")
	if nameOK {
		b.unique(b.names, "producer:"+p.Name, f, path+".name", p.Name)
	}
	b.checkString(f, path+".contact", p.Contact, true, nil, "")
	if p.Upstream != nil {
		b.imported(f, p, pi, path)
	}
	for oi := range p.Offerings {
		b.offering(f, p, fmt.Sprintf("%s.offerings[%d]", path, oi), &p.Offerings[oi])
	}
}

// planDraft is a plan being built, with what the factory and the Updater
// check still need.
type planDraft struct {
	plan         *Plan
	path         string
	spec         *PlanSpec
	settingsJSON []byte
	settingsOK   bool
}

func (b *builder) offering(f *File, p *Producer, path string, s *OfferingSpec) {
	errsBefore := len(b.errs)
	o := &Offering{
		Name:                 s.Name,
		Description:          s.Description,
		Producer:             p.Name,
		Contact:              p.Contact,
		AdapterName:          s.Adapter,
		Bindable:             boolOr(s.Bindable, true),
		InstancesRetrievable: boolOr(s.InstancesRetrievable, true),
		BindingsRetrievable:  boolOr(s.BindingsRetrievable, true),
		PlanUpdateable:       s.PlanUpdateable,
		AllowContextUpdates:  s.AllowContextUpdates,
		OmitBindingEndpoints: s.OmitBindingEndpoints,
	}
	if b.checkString(f, path+".name", s.Name, true, offeringNameRE, "lowercase letters, digits and inner hyphens") {
		b.unique(b.names, "offering:"+s.Name, f, path+".name", s.Name)
	}
	o.ID = b.id(f, path, s.ID, func() string {
		if p.Name == "" || s.Name == "" {
			return ""
		}
		return DeriveOfferingID(p.Name, s.Name)
	})
	b.checkString(f, path+".description", s.Description, true, nil, "")

	var factory adapters.Factory
	haveFactory := false
	if b.checkString(f, path+".adapter", s.Adapter, true, nil, "") {
		if b.opts.Registry != nil {
			factory, haveFactory = b.opts.Registry.Lookup(s.Adapter)
		}
		if !haveFactory {
			var registered []string
			if b.opts.Registry != nil {
				registered = b.opts.Registry.Names()
			}
			b.fail(f, path+".adapter", "adapter %q is not registered (registered: %s)", s.Adapter, listOrNone(registered))
		}
	}
	for i, tag := range s.Tags {
		b.checkString(f, fmt.Sprintf("%s.tags[%d]", path, i), tag, true, nil, "")
	}
	for i, r := range s.Requires {
		if !osbRequires[r] {
			b.fail(f, fmt.Sprintf("%s.requires[%d]", path, i), "%q is not an OSB permission (syslog_drain, route_forwarding, volume_mount)", r)
		}
	}
	metadata, domainMetadata := b.offeringMetadata(f, path+".metadata", s)

	if len(s.Plans) == 0 {
		b.fail(f, path+".plans", "an offering needs at least one plan")
	}
	planNames := map[string]seen{}
	drafts := make([]*planDraft, 0, len(s.Plans))
	wirePlans := make([]wirePlan, 0, len(s.Plans))
	domainPlans := make([]domain.ServicePlan, 0, len(s.Plans))
	for i := range s.Plans {
		d, wp, dp := b.plan(f, p, s, o, fmt.Sprintf("%s.plans[%d]", path, i), &s.Plans[i], planNames)
		drafts = append(drafts, d)
		o.Plans = append(o.Plans, d.plan)
		// Services keeps deprecated plans: brokerapi checks plan IDs
		// against it before the broker sees a request, and the broker's
		// own answer ("plan is deprecated") is clearer than brokerapi's
		// "plan-id not in the catalog". The served JSON leaves them out.
		domainPlans = append(domainPlans, dp)
		if d.plan.Deprecated {
			continue // resolvable through Plan, but offered to no one
		}
		wirePlans = append(wirePlans, wp)
	}

	settings, settingsOK := b.settings(f, path+".config", &s.Config)
	allSettingsOK := settingsOK
	for _, d := range drafts {
		allSettingsOK = allSettingsOK && d.settingsOK
	}
	// The factory runs even when other fields of this offering are wrong,
	// so its own complaints arrive in the same report; only config it
	// could not read at all would make its errors noise.
	if haveFactory && allSettingsOK {
		cfg := b.adapterConfig(factory, p, s, settings, drafts)
		if b.pure {
			if caps, ok := b.checkAdapter(f, path, factory, cfg); ok {
				b.checkUpdater(f, path, s, o, caps, drafts)
			}
		} else if o.handle = b.adapterFor(f, path, factory, o, cfg, settings, drafts); o.handle != nil {
			o.Adapter = o.handle.adapter
			b.checkUpdater(f, path, s, o, adapters.CapabilitiesOf(o.Adapter), drafts)
		}
	}

	if len(b.errs) > errsBefore {
		if o.handle != nil {
			_ = o.handle.release()
		}
		return
	}
	b.offerings = append(b.offerings, o)
	// Every plan deprecated: OSB wants at least one plan per service, so
	// the offering leaves the served catalog; its existing instances still
	// resolve through Offering and Plan.
	if len(wirePlans) > 0 || len(s.Plans) == 0 {
		b.wire = append(b.wire, wireService{
			Name:                 o.Name,
			ID:                   o.ID,
			Description:          o.Description,
			Tags:                 slices.Clone(s.Tags),
			Requires:             slices.Clone(s.Requires),
			Bindable:             o.Bindable,
			InstancesRetrievable: o.InstancesRetrievable,
			BindingsRetrievable:  o.BindingsRetrievable,
			AllowContextUpdates:  o.AllowContextUpdates,
			Metadata:             metadata,
			PlanUpdateable:       o.PlanUpdateable,
			Plans:                wirePlans,
		})
	}
	requires := make([]domain.RequiredPermission, len(s.Requires))
	for i, r := range s.Requires {
		requires[i] = domain.RequiredPermission(r)
	}
	b.services = append(b.services, domain.Service{
		ID:                   o.ID,
		Name:                 o.Name,
		Description:          o.Description,
		Bindable:             o.Bindable,
		InstancesRetrievable: o.InstancesRetrievable,
		BindingsRetrievable:  o.BindingsRetrievable,
		Tags:                 slices.Clone(s.Tags),
		PlanUpdatable:        o.PlanUpdateable,
		Plans:                domainPlans,
		Requires:             requires,
		Metadata:             domainMetadata,
		AllowContextUpdates:  o.AllowContextUpdates,
	})
}

// id checks an explicit ID or derives one, and claims it across the whole
// catalog.
func (b *builder) id(f *File, path, explicit string, derive func() string) string {
	idPath := path + ".id"
	id := explicit
	if id == "" {
		id = derive()
		if id == "" {
			return "" // the names it derives from are already reported
		}
	} else if !b.checkString(f, idPath, id, true, idRE, "only letters, digits and . _ ~ - (URL-safe)") {
		return id
	}
	b.unique(b.ids, id, f, idPath, id)
	return id
}

func (b *builder) plan(f *File, p *Producer, s *OfferingSpec, o *Offering, path string, ps *PlanSpec, names map[string]seen) (*planDraft, wirePlan, domain.ServicePlan) {
	plan := &Plan{
		Name:           ps.Name,
		Description:    ps.Description,
		Deprecated:     ps.Deprecated,
		Free:           boolOr(ps.Free, true),
		Async:          ps.Async,
		Bindable:       boolOr(ps.Bindable, o.Bindable),
		PlanUpdateable: boolOr(ps.PlanUpdateable, o.PlanUpdateable),
	}
	plan.SensitiveParameters = ps.SensitiveParameters
	if ps.BindingRotatable {
		// The spec ties rotation to bindings; on a plan without them the
		// flag would promise platforms something no request can use.
		if plan.Bindable {
			plan.BindingRotatable = true
		} else {
			b.fail(f, path+".binding_rotatable", "must be false: the plan is not bindable")
		}
	}
	if b.checkString(f, path+".name", ps.Name, true, planNameRE, "letters, digits, periods and inner hyphens") {
		b.unique(names, ps.Name, f, path+".name", ps.Name)
	}
	plan.ID = b.id(f, path, ps.ID, func() string {
		if p.Name == "" || s.Name == "" || ps.Name == "" {
			return ""
		}
		return DerivePlanID(p.Name, s.Name, ps.Name)
	})
	b.checkString(f, path+".description", ps.Description, true, nil, "")

	plan.OperationTimeout = defaultOperationTimeout
	if ps.OperationTimeout != "" {
		d, err := time.ParseDuration(ps.OperationTimeout)
		switch {
		case err != nil:
			b.fail(f, path+".operation_timeout", "%q is not a duration such as 30m or 2h", ps.OperationTimeout)
		case d <= 0:
			b.fail(f, path+".operation_timeout", "must be greater than zero")
		default:
			plan.OperationTimeout = d
		}
	}
	if mpd := ps.MaximumPollingDuration; mpd != nil {
		plan.MaximumPollingDuration = time.Duration(*mpd) * time.Second
		switch {
		case *mpd <= 0:
			b.fail(f, path+".maximum_polling_duration", "must be a positive number of seconds")
		case ps.Async && plan.OperationTimeout > plan.MaximumPollingDuration:
			// The platform would give up polling while Agora still works,
			// leaving the instance "in progress" on one side only.
			b.fail(f, path+".maximum_polling_duration", "%ds is shorter than operation_timeout (%s): the platform would stop polling before Agora reports the outcome", *mpd, plan.OperationTimeout)
		}
	}
	if mi := ps.MaintenanceInfo; mi != nil {
		switch {
		case mi.Version == "":
			b.fail(f, path+".maintenance_info.version", "is required")
		case !semverRE.MatchString(mi.Version):
			b.fail(f, path+".maintenance_info.version", "%q is not a semantic version (such as 1.2.3)", mi.Version)
		}
		plan.MaintenanceInfo = &domain.MaintenanceInfo{Version: mi.Version, Description: mi.Description}
	}
	metadata, domainMetadata := b.planMetadata(f, path+".metadata", ps)

	if ps.Schemas != nil {
		var errs []pathError
		compile := func(ps *ParametersSpec, at string) *paramSchema {
			if ps == nil {
				return nil
			}
			s, e := compileSchema(&ps.Parameters, at)
			errs = append(errs, e...)
			return s
		}
		sp := path + ".schemas"
		if si := ps.Schemas.ServiceInstance; si != nil {
			plan.provisionSchema = compile(si.Create, sp+".service_instance.create.parameters")
			plan.updateSchema = compile(si.Update, sp+".service_instance.update.parameters")
		}
		if sb := ps.Schemas.ServiceBinding; sb != nil {
			plan.bindSchema = compile(sb.Create, sp+".service_binding.create.parameters")
		}
		b.failAll(f, errs)
	}

	d := &planDraft{plan: plan, path: path, spec: ps}
	d.settingsJSON, d.settingsOK = b.settings(f, path+".config", &ps.Config)

	wp := wirePlan{
		ID:                     plan.ID,
		Name:                   plan.Name,
		Description:            plan.Description,
		Metadata:               metadata,
		Free:                   plan.Free,
		Bindable:               plan.Bindable,
		PlanUpdateable:         plan.PlanUpdateable,
		BindingRotatable:       plan.BindingRotatable,
		Schemas:                wireSchemasOf(plan.provisionSchema, plan.updateSchema, plan.bindSchema),
		MaximumPollingDuration: clonePtr(ps.MaximumPollingDuration),
	}
	if plan.MaintenanceInfo != nil {
		wp.MaintenanceInfo = &wireMaintenanceInfo{Version: plan.MaintenanceInfo.Version, Description: plan.MaintenanceInfo.Description}
	}
	dp := domain.ServicePlan{
		ID:                     plan.ID,
		Name:                   plan.Name,
		Description:            plan.Description,
		Free:                   domain.FreeValue(plan.Free),
		Bindable:               clonePtr(ps.Bindable),
		Metadata:               domainMetadata,
		Schemas:                domainSchemas(plan),
		PlanUpdatable:          clonePtr(ps.PlanUpdateable),
		MaximumPollingDuration: clonePtr(ps.MaximumPollingDuration),
		MaintenanceInfo:        plan.MaintenanceInfo,
	}
	return d, wp, dp
}

// settings turns a `config:` section into the JSON the adapter decodes,
// resolving vault references on the way.
func (b *builder) settings(f *File, path string, n *yaml.Node) ([]byte, bool) {
	if isAbsent(n) {
		return nil, true
	}
	raw, err := nodeValue(n)
	if err != nil {
		b.fail(f, path, "%v", err)
		return nil, false
	}
	if _, isMap := raw.(map[string]any); !isMap {
		if _, isAnyMap := raw.(map[any]any); !isAnyMap {
			b.fail(f, path, "must be a mapping of the adapter's settings")
			return nil, false
		}
	}
	var errs []pathError
	v := jsonValue(raw, path, b.secrets.onString(&errs), &errs)
	if len(errs) > 0 {
		b.failAll(f, errs)
		return nil, false
	}
	out, err := json.Marshal(v)
	if err != nil {
		b.fail(f, path, "cannot be turned into JSON: %v", err)
		return nil, false
	}
	return out, true
}

// adapterConfig is what the factory gets for one offering.
func (b *builder) adapterConfig(factory adapters.Factory, p *Producer, s *OfferingSpec, settings []byte, drafts []*planDraft) adapters.Config {
	cfg := adapters.Config{
		Offering: s.Name,
		Producer: p.Name,
		Settings: adapters.JSONSettings(settings),
		Plans:    make([]adapters.PlanConfig, len(drafts)),
		Logger:   b.logger.With(slog.String("adapter", factory.Name), slog.String("producer", p.Name), slog.String("offering", s.Name)),
	}
	for i, d := range drafts {
		cfg.Plans[i] = adapters.PlanConfig{Plan: d.plan.Ref(), Settings: adapters.JSONSettings(d.settingsJSON)}
	}
	return cfg
}

// checkAdapter runs the factory's pure Check; false when the config is
// wrong (reported) or the factory has no Check (nothing to say).
func (b *builder) checkAdapter(f *File, path string, factory adapters.Factory, cfg adapters.Config) (caps adapters.Capabilities, ok bool) {
	if factory.Check == nil {
		return adapters.Capabilities{}, false
	}
	configPath := path + ".config"
	defer func() {
		if r := recover(); r != nil {
			b.fail(f, configPath, "adapter %q: config check panicked: %s", factory.Name, b.secrets.scrub(fmt.Sprint(r)))
			ok = false
		}
	}()
	caps, err := factory.Check(cfg)
	if err != nil {
		b.factoryProblems(f, configPath, factory, err)
		return caps, false
	}
	return caps, true
}

// factoryProblems reports a factory's error (often errors.Join of many)
// as one line each at the offering's config, since that is what the
// factory validates.
func (b *builder) factoryProblems(f *File, configPath string, factory adapters.Factory, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			b.fail(f, configPath, "adapter %q: %s", factory.Name, b.secrets.scrub(line))
		}
	}
}

// adapterFor returns the offering's adapter: the previous catalog's when
// it was built from the same config, else a new one from the factory.
func (b *builder) adapterFor(f *File, path string, factory adapters.Factory, o *Offering, cfg adapters.Config, settings []byte, drafts []*planDraft) *adapterHandle {
	plans := make([][]byte, len(drafts))
	for i, d := range drafts {
		plans[i] = d.settingsJSON
	}
	key := buildKey(factory.Name, cfg, settings, plans)
	if h := b.opts.Previous.reusable(o.ID, key); h != nil {
		return h
	}
	if a := b.newAdapter(f, path, factory, cfg); a != nil {
		return newHandle(a, key)
	}
	return nil
}

// newAdapter calls the producer's factory.
func (b *builder) newAdapter(f *File, path string, factory adapters.Factory, cfg adapters.Config) (a adapters.Adapter) {
	configPath := path + ".config"
	defer func() {
		// A producer's bug must not take the whole broker down at startup.
		if r := recover(); r != nil {
			b.fail(f, configPath, "adapter %q: factory panicked: %s", factory.Name, b.secrets.scrub(fmt.Sprint(r)))
			a = nil
		}
	}()
	a, err := factory.New(b.ctx, cfg)
	if err != nil {
		b.factoryProblems(f, configPath, factory, err)
		if closer, ok := a.(adapters.Closer); ok {
			_ = closer.Close()
		}
		return nil
	}
	if a == nil {
		b.fail(f, configPath, "adapter %q: factory returned no adapter and no error", factory.Name)
	}
	return a
}

// checkUpdater rejects promises of updates the adapter cannot keep: without
// adapters.Updater the broker refuses every update of the offering.
func (b *builder) checkUpdater(f *File, path string, s *OfferingSpec, o *Offering, caps adapters.Capabilities, drafts []*planDraft) {
	if caps.Updater {
		return
	}
	msg := fmt.Sprintf("adapter %q cannot update instances", o.AdapterName)
	// An adapter whose capabilities come from its config (adapter
	// "remote") says how the catalog author gains the one missing.
	if caps.Missing != nil {
		msg = fmt.Sprintf("adapter %q cannot update instances as configured: %s", o.AdapterName, caps.Missing("update"))
	}
	if s.PlanUpdateable {
		b.fail(f, path+".plan_updateable", "must be false: %s", msg)
	}
	if s.AllowContextUpdates {
		b.fail(f, path+".allow_context_updates", "must be false: %s", msg)
	}
	for _, d := range drafts {
		if d.spec.PlanUpdateable != nil && *d.spec.PlanUpdateable {
			b.fail(f, d.path+".plan_updateable", "must be false: %s", msg)
		}
		if d.plan.updateSchema != nil {
			b.fail(f, d.path+".schemas.service_instance.update", "must be left out: %s", msg)
		}
	}
}

// offeringMetadata checks the offering's metadata against brokerapi's
// conventions (displayName, imageUrl, shareable ...), since brokerapi's
// types must carry it too.
func (b *builder) offeringMetadata(f *File, path string, s *OfferingSpec) (map[string]any, *domain.ServiceMetadata) {
	m, raw, ok := b.metadata(f, path, &s.Metadata)
	if !ok || m == nil {
		return nil, nil
	}
	var dm domain.ServiceMetadata
	if err := json.Unmarshal(raw, &dm); err != nil {
		b.fail(f, path, "does not follow the OSB metadata conventions: %v", jsonErrText(err))
		return nil, nil
	}
	return m, &dm
}

// planMetadata is offeringMetadata for plans (bullets, costs, displayName).
func (b *builder) planMetadata(f *File, path string, ps *PlanSpec) (map[string]any, *domain.ServicePlanMetadata) {
	m, raw, ok := b.metadata(f, path, &ps.Metadata)
	if !ok || m == nil {
		return nil, nil
	}
	var dm domain.ServicePlanMetadata
	if err := json.Unmarshal(raw, &dm); err != nil {
		b.fail(f, path, "does not follow the OSB metadata conventions: %v", jsonErrText(err))
		return nil, nil
	}
	return m, &dm
}

func (b *builder) metadata(f *File, path string, n *yaml.Node) (map[string]any, []byte, bool) {
	if isAbsent(n) {
		return nil, nil, true
	}
	raw, err := nodeValue(n)
	if err != nil {
		b.fail(f, path, "%v", err)
		return nil, nil, false
	}
	var errs []pathError
	v := jsonValue(raw, path, nil, &errs)
	if len(errs) > 0 {
		b.failAll(f, errs)
		return nil, nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		b.fail(f, path, "must be a mapping")
		return nil, nil, false
	}
	out, err := json.Marshal(m)
	if err != nil {
		b.fail(f, path, "cannot be turned into JSON: %v", err)
		return nil, nil, false
	}
	return m, out, true
}

// jsonErrText drops Go type names from encoding/json's messages.
func jsonErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s must be %s, not %s", te.Field, jsonKind(te.Type), te.Value)
	}
	return err.Error()
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	default:
		return "a number"
	}
}

func domainSchemas(p *Plan) *domain.ServiceSchemas {
	if p.provisionSchema == nil && p.updateSchema == nil && p.bindSchema == nil {
		return nil
	}
	doc := func(s *paramSchema) domain.Schema {
		if s == nil {
			return domain.Schema{}
		}
		return domain.Schema{Parameters: s.doc}
	}
	return &domain.ServiceSchemas{
		Instance: domain.ServiceInstanceSchema{Create: doc(p.provisionSchema), Update: doc(p.updateSchema)},
		Binding:  domain.ServiceBindingSchema{Create: doc(p.bindSchema)},
	}
}

// catalog assembles the Catalog once every check has passed.
func (b *builder) catalog() (*Catalog, error) {
	body, err := json.Marshal(wireCatalog{Services: b.wire})
	if err != nil {
		b.discard()
		return nil, fmt.Errorf("encode catalog body: %w", err)
	}
	sum := sha256.Sum256(body)
	c := &Catalog{
		offerings: b.offerings,
		byID:      make(map[string]*Offering, len(b.offerings)),
		plansByID: map[string]*Plan{},
		planOwner: map[string]*Offering{},
		services:  b.services,
		body:      body,
		etag:      `"` + hex.EncodeToString(sum[:16]) + `"`,
	}
	for _, o := range b.offerings {
		c.byID[o.ID] = o
		for _, p := range o.Plans {
			c.plansByID[p.ID] = p
			c.planOwner[p.ID] = o
		}
	}
	return c, nil
}

// discard closes every adapter built so far, for a Build that fails.
func (b *builder) discard() {
	if err := closeAdapters(b.offerings); err != nil {
		b.logger.Warn("closing adapters of a rejected catalog", slog.Any("error", err))
	}
	b.offerings = nil
}

// clonePtr copies a pointed-to value, so the built catalog shares nothing
// with the File it came from (which its owner may change later).
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
