package producers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/catalog"
)

// GateRequest is what the conformance gate needs to test one offering of a
// slice against the producer's running adapter.
type GateRequest struct {
	Producer string
	Offering string
	// URL, Secret and Timeout are the remote adapter's settings; Secret is
	// the plain protocol secret, in memory only.
	URL     string
	Secret  string
	Timeout string
	// Settings is the offering's whole `config:` (secret included), for a
	// gate that builds the adapter through its factory.
	Settings map[string]any
	Plans    []adapters.PlanConfig
	// ProvisionSchemas are the plans' provision parameter schemas
	// (schemas.service_instance.create.parameters), by plan ID; a plan
	// without one is absent. The kit derives invalid parameters from them.
	ProvisionSchemas map[string]map[string]any
	// Dial, when set, is how the gate must connect, to the adapter and to
	// the hosts its credentials name: it enforces the platform engineer's
	// egress rules on every host and on the addresses a host name
	// resolves to, at the moment of connecting.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// CleanupAttempts is how many times the kit tries to remove what it
	// created (default 1; the canary, unattended, retries).
	CleanupAttempts int
}

// ForPlan is the request narrowed to its plan j, with that plan's
// provision schema only: the gate judges every plan, one kit run each,
// and a Gate always judges the first plan of the request it gets.
func (r GateRequest) ForPlan(j int) GateRequest {
	pc := r.Plans[j]
	r.Plans = []adapters.PlanConfig{pc}
	if schema, ok := r.ProvisionSchemas[pc.Plan.ID]; ok {
		r.ProvisionSchemas = map[string]map[string]any{pc.Plan.ID: schema}
	} else {
		r.ProvisionSchemas = nil
	}
	return r
}

// EgressCheck refuses an adapter URL the gate and the canary must not
// call, with a message that names the rule; nil allows it. It runs before
// any request is sent.
type EgressCheck func(ctx context.Context, rawURL string) error

// Gate runs the conformance kit against one offering's adapter, with
// the first plan of the request (see GateRequest.ForPlan). An error
// means the kit could not run at all; a failing adapter is a Report with
// failed checks. Production wires remote.Conformance.
type Gate func(ctx context.Context, req GateRequest) (conformance.Report, error)

// Instances reads the broker's instance records through the per-offering
// index (redisstore.Store implements it).
type Instances interface {
	// ScanOfferingInstances walks one offering's index: about count
	// entries from cursor ("" to start), oldest first, and the cursor to
	// go on from ("" at the end); a cursor it never handed out is
	// broker.ErrBadCursor. The index is a superset: entries that do not
	// name a record (broker.IndexEntry.Names) are skipped.
	ScanOfferingInstances(ctx context.Context, serviceID, cursor string, count int) (entries []broker.IndexEntry, next string, err error)
	// CountInstances sums the broker's instance counters of the
	// offering's plans, in one round trip whatever the number of
	// instances. Counters are kept by the broker as it commits, so they
	// show, not decide: rules that must be right walk the index.
	CountInstances(ctx context.Context, serviceID string, planIDs []string) (int64, error)
	// LoadMany reads several instances in one round trip.
	LoadMany(ctx context.Context, reqs []broker.LoadRequest) ([]broker.Snapshot, error)
}

// Config wires a Service.
type Config struct {
	Store Store
	// Base are the static catalog sources (catalog.yml), as parsed.
	Base []*catalog.File
	// Build is how every replica builds the catalog: the adapter registry,
	// the Vault resolver, the upstream importer, the logger.
	Build     catalog.BuildOptions
	Secrets   SecretStore
	Gate      Gate
	Instances Instances
	// Catalog returns the catalog this replica serves.
	Catalog func() *catalog.Catalog
	Logger  *slog.Logger
	Now     func() time.Time
	// GateTimeout bounds the whole gate of one slice (default 75s, under
	// the HTTP server's 90s write timeout).
	GateTimeout time.Duration
	// Imports, when set, caches upstream catalogs per generation for the
	// go-live build (shared with the replica's livecatalog.Loader).
	Imports *catalog.ImportCache
	// Egress, when set, refuses adapter URLs before the gate calls them
	// (a 400 on apply naming the rule), and Dial connects the gate
	// through the same rules.
	Egress EgressCheck
	Dial   func(ctx context.Context, network, address string) (net.Conn, error)
	// AllowUnverifiedTypes are the credential types whose slices may go
	// live automatically although the kit could not verify them
	// (gate.allow_unverified_types).
	AllowUnverifiedTypes []string
	// OnGate, when set, is told each gate run's result per producer:
	// pass, fail, unverified, refused (egress) or error (could not run).
	OnGate func(producer, result string)
	// Health, when set, reads the canary's latest verdict per offering
	// ID, shown in the producer's status.
	Health func(ctx context.Context) (map[string]CanaryResult, error)
}

// Service is producer self-service: the logic behind /producers and
// /admin/producers. It is safe for concurrent use, and every replica may
// run one: all state is in Redis and Vault.
type Service struct {
	store       Store
	base        []*catalog.File
	build       catalog.BuildOptions
	secrets     SecretStore
	gate        Gate
	instances   Instances
	catalog     func() *catalog.Catalog
	log         *slog.Logger
	now         func() time.Time
	gateTimeout time.Duration
	imports     *catalog.ImportCache

	egress            EgressCheck
	dial              func(ctx context.Context, network, address string) (net.Conn, error)
	allowedUnverified []string
	onGate            func(producer, result string)
	health            func(ctx context.Context) (map[string]CanaryResult, error)
}

// New returns a Service. Store, Secrets, Instances and Catalog are
// required; a nil Gate makes every slice fail with 503, since the gate is
// never skipped.
func New(cfg Config) (*Service, error) {
	var missing []string
	if cfg.Store == nil {
		missing = append(missing, "Store")
	}
	if cfg.Secrets == nil {
		missing = append(missing, "Secrets")
	}
	if cfg.Instances == nil {
		missing = append(missing, "Instances")
	}
	if cfg.Catalog == nil {
		missing = append(missing, "Catalog")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("producers: missing %s", strings.Join(missing, ", "))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.GateTimeout <= 0 {
		cfg.GateTimeout = 75 * time.Second
	}
	return &Service{
		store: cfg.Store, base: cfg.Base, build: cfg.Build, secrets: cfg.Secrets, gate: cfg.Gate,
		instances: cfg.Instances, catalog: cfg.Catalog, log: cfg.Logger, now: cfg.Now, gateTimeout: cfg.GateTimeout,
		imports: cfg.Imports, egress: cfg.Egress, dial: cfg.Dial, allowedUnverified: cfg.AllowUnverifiedTypes,
		onGate: cfg.OnGate, health: cfg.Health,
	}, nil
}

var (
	// nameRE is the catalog's producer name rule: CF-friendly, no "_",
	// which tokens rely on.
	nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	// namespaceRE is a name followed by "-": offering names are then
	// "<namespace><rest>" and still valid offering names.
	namespaceRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?-$`)
)

const maxNameLen = 50

// ValidName reports whether name can be a producer's name.
func ValidName(name string) bool {
	return len(name) <= maxNameLen && nameRE.MatchString(name)
}

// CreateRequest creates a producer (admin) or registers one (anyone).
type CreateRequest struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
	// Namespace defaults to "<name>-".
	Namespace string `json:"namespace,omitempty"`
	// AutoApproveSlices is honoured for admins only.
	AutoApproveSlices bool `json:"auto_approve_slices,omitempty"`
}

// Create makes an active producer (an admin's call) and returns her token,
// the only time it is shown.
func (s *Service) Create(ctx context.Context, req CreateRequest) (*Created, error) {
	return s.create(ctx, req, StateActive, false)
}

// Register makes a pending producer (anyone's call): she can sign in and
// read, and put slices once an admin approves her.
func (s *Service) Register(ctx context.Context, req CreateRequest) (*Created, error) {
	req.AutoApproveSlices = false
	return s.create(ctx, req, StatePending, true)
}

func (s *Service) create(ctx context.Context, req CreateRequest, state State, self bool) (*Created, error) {
	if req.Namespace == "" && req.Name != "" {
		req.Namespace = req.Name + "-"
	}
	var problems []FieldProblem
	switch {
	case req.Name == "":
		problems = append(problems, FieldProblem{Path: "name", Message: "is required"})
	case len(req.Name) > maxNameLen || !nameRE.MatchString(req.Name):
		problems = append(problems, FieldProblem{Path: "name", Message: fmt.Sprintf("%q must be lowercase letters, digits and inner hyphens, at most %d characters", req.Name, maxNameLen)})
	}
	if strings.TrimSpace(req.Contact) == "" {
		problems = append(problems, FieldProblem{Path: "contact", Message: "is required: say who to call when her service breaks"})
	}
	if !namespaceRE.MatchString(req.Namespace) {
		problems = append(problems, FieldProblem{Path: "namespace", Message: fmt.Sprintf("%q must be lowercase letters, digits and hyphens ending in \"-\", such as team-x-", req.Namespace)})
	}
	if len(problems) > 0 {
		return nil, &Error{Kind: ErrInvalid, Message: "the producer is not valid", Problems: problems}
	}
	for _, f := range s.base {
		for _, p := range f.Producers {
			if p.Name == req.Name {
				return nil, Fail(ErrConflict, "producer name %q belongs to a section of %s", req.Name, f.Source)
			}
		}
	}
	token, hash, err := newToken(req.Name)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	rec := Record{
		Producer: Producer{
			Name: req.Name, Contact: req.Contact, Namespace: req.Namespace, State: state,
			AutoApproveSlices: req.AutoApproveSlices, SelfRegistered: self, CreatedAt: now, UpdatedAt: now,
		},
		TokenSHA256: hash,
	}
	// The store claims name and namespace atomically: checking here
	// first would race with a concurrent registration.
	if err := s.store.Create(ctx, rec); err != nil {
		return nil, storeErr(err)
	}
	s.log.Info("producer created", "producer", rec.Name, "state", rec.State, "self_registered", self, "namespace", rec.Namespace)
	return &Created{Producer: rec.Producer, Token: token}, nil
}

// Authenticate returns the producer a bearer token belongs to. Any token
// that is not exactly a current producer token is ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, token string) (Producer, error) {
	name, ok := tokenName(token)
	if !ok {
		return Producer{}, Fail(ErrUnauthenticated, "not an Agora producer token")
	}
	rec, err := s.store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) || (err == nil && !tokenMatches(token, rec.TokenSHA256)) {
		return Producer{}, Fail(ErrUnauthenticated, "the token is not valid (revoked, or mistyped)")
	}
	if err != nil {
		return Producer{}, Unavailable(err, "Redis is unavailable")
	}
	return rec.Producer, nil
}

// Get returns one producer.
func (s *Service) Get(ctx context.Context, name string) (Producer, error) {
	rec, err := s.store.Get(ctx, name)
	if err != nil {
		return Producer{}, storeErr(err)
	}
	return rec.Producer, nil
}

// List returns every producer, sorted by name.
func (s *Service) List(ctx context.Context) ([]Producer, error) {
	recs, err := s.store.List(ctx)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]Producer, len(recs))
	for i, r := range recs {
		out[i] = r.Producer
	}
	return out, nil
}

// Approve makes a pending (or suspended) producer active.
func (s *Service) Approve(ctx context.Context, name, by string) (Producer, error) {
	return s.setState(ctx, name, by, StateActive)
}

// Suspend stops a producer's token from changing or reading anything.
// Her live slice stays in the catalog, for her existing instances.
func (s *Service) Suspend(ctx context.Context, name, by string) (Producer, error) {
	return s.setState(ctx, name, by, StateSuspended)
}

func (s *Service) setState(ctx context.Context, name, by string, state State) (Producer, error) {
	var out Producer
	err := s.store.Update(ctx, name, func(rec *Record, _ map[int]*SliceVersion) ([]*SliceVersion, error) {
		rec.State = state
		rec.UpdatedAt = s.now().UTC()
		out = rec.Producer
		return nil, nil
	})
	if err != nil {
		return Producer{}, storeErr(err)
	}
	s.log.Info("producer state changed", "producer", name, "state", state, "by", by)
	return out, nil
}

// UpdateRequest changes a producer's settings; nil fields stay.
type UpdateRequest struct {
	Contact           *string `json:"contact,omitempty"`
	AutoApproveSlices *bool   `json:"auto_approve_slices,omitempty"`
}

// Update changes a producer's contact or auto-approval (admin).
func (s *Service) Update(ctx context.Context, name, by string, req UpdateRequest) (Producer, error) {
	if req.Contact != nil && strings.TrimSpace(*req.Contact) == "" {
		return Producer{}, &Error{Kind: ErrInvalid, Message: "the change is not valid", Problems: []FieldProblem{{Path: "contact", Message: "must not be empty"}}}
	}
	var out Producer
	err := s.store.Update(ctx, name, func(rec *Record, _ map[int]*SliceVersion) ([]*SliceVersion, error) {
		if req.Contact != nil {
			rec.Contact = *req.Contact
		}
		if req.AutoApproveSlices != nil {
			rec.AutoApproveSlices = *req.AutoApproveSlices
		}
		rec.UpdatedAt = s.now().UTC()
		out = rec.Producer
		return nil, nil
	})
	if err != nil {
		return Producer{}, storeErr(err)
	}
	s.log.Info("producer updated", "producer", name, "by", by, "auto_approve_slices", out.AutoApproveSlices)
	return out, nil
}

// RotateToken replaces a producer's token (the old one stops working at
// once) and returns the new one, the only time it is shown.
func (s *Service) RotateToken(ctx context.Context, name, by string) (*Created, error) {
	token, hash, err := newToken(name)
	if err != nil {
		return nil, err
	}
	var out Producer
	err = s.store.Update(ctx, name, func(rec *Record, _ map[int]*SliceVersion) ([]*SliceVersion, error) {
		rec.TokenSHA256 = hash
		rec.UpdatedAt = s.now().UTC()
		out = rec.Producer
		return nil, nil
	})
	if err != nil {
		return nil, storeErr(err)
	}
	s.log.Info("producer token rotated", "producer", name, "by", by)
	return &Created{Producer: out, Token: token}, nil
}

// Versions lists a producer's slice versions, newest first, without their
// slice text.
func (s *Service) Versions(ctx context.Context, name string) ([]SliceVersion, error) {
	if _, err := s.store.Get(ctx, name); err != nil {
		return nil, storeErr(err)
	}
	vs, err := s.store.Versions(ctx, name)
	if err != nil {
		return nil, storeErr(err)
	}
	out := make([]SliceVersion, len(vs))
	for i, v := range vs {
		out[i] = *v
		out[i].Slice = ""
	}
	return out, nil
}

// Version returns one slice version with its text and gate report.
func (s *Service) Version(ctx context.Context, name string, v int) (SliceVersion, error) {
	sv, err := s.store.Version(ctx, name, v)
	if err != nil {
		return SliceVersion{}, storeErr(err)
	}
	return *sv, nil
}

// Live returns the producer's live slice version (ErrNotFound if none).
func (s *Service) Live(ctx context.Context, name string) (SliceVersion, error) {
	rec, err := s.store.Get(ctx, name)
	if err != nil {
		return SliceVersion{}, storeErr(err)
	}
	if rec.LiveVersion == 0 {
		return SliceVersion{}, Fail(ErrNotFound, "producer %q has no live slice yet", name)
	}
	return s.Version(ctx, name, rec.LiveVersion)
}

// Generation is the catalog generation in Redis.
func (s *Service) Generation(ctx context.Context) (int64, error) {
	g, err := s.store.Generation(ctx)
	if err != nil {
		return 0, Unavailable(err, "Redis is unavailable")
	}
	return g, nil
}

// storeErr passes *Error through and reports anything else as Redis
// being unavailable.
func storeErr(err error) error {
	var pe *Error
	if err == nil || errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Unavailable(err, "the request was cancelled or timed out")
	}
	return Unavailable(err, "Redis is unavailable; retry shortly")
}

// sortedProblems orders problems by line; those without one come first,
// as they concern the slice as a whole.
func sortedProblems(ps []FieldProblem) []FieldProblem {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return ps
}
