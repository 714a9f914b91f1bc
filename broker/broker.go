package broker

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// Config wires a Broker.
type Config struct {
	Catalog     *catalog.Catalog
	State       StateStore
	Credentials CredentialStore
	Jobs        JobQueue
	Logger      *slog.Logger
	// SyncTimeout bounds an inline adapter call. Cloud Foundry gives up on
	// a broker after 60 s, so the default is 50 s.
	SyncTimeout time.Duration
	// Now is the clock (time.Now when nil); tests move it.
	Now func() time.Time
	// ExposeErrorDetails appends the full error chain (addresses, paths,
	// backend text) to the descriptions platforms show app developers.
	// For `agora dev` only: in production those are for the log.
	ExposeErrorDetails bool
	// AdapterObserver hears about adapter calls, for metrics (nil:
	// nobody).
	AdapterObserver AdapterObserver
}

// Broker implements brokerapi's domain.ServiceBroker.
type Broker struct {
	catalog atomic.Pointer[catalog.Catalog]
	state   StateStore
	creds   CredentialStore
	jobs    JobQueue
	log     *slog.Logger
	syncTTL time.Duration
	lockTTL time.Duration
	now     func() time.Time
	// exposeDetails: see Config.ExposeErrorDetails.
	exposeDetails bool
	observer      AdapterObserver
}

// New returns a Broker. Every dependency is required.
func New(cfg Config) (*Broker, error) {
	var missing []string
	if cfg.Catalog == nil {
		missing = append(missing, "Catalog")
	}
	if cfg.State == nil {
		missing = append(missing, "State")
	}
	if cfg.Credentials == nil {
		missing = append(missing, "Credentials")
	}
	if cfg.Jobs == nil {
		missing = append(missing, "Jobs")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("broker: missing %s", strings.Join(missing, ", "))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SyncTimeout <= 0 {
		cfg.SyncTimeout = 50 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Broker{
		state: cfg.State, creds: cfg.Credentials, jobs: cfg.Jobs, log: cfg.Logger,
		syncTTL: cfg.SyncTimeout,
		// The lock must outlive the longest inline call plus the writes
		// around it, or a second request could slip in mid-operation.
		lockTTL:       cfg.SyncTimeout + 30*time.Second,
		now:           cfg.Now,
		exposeDetails: cfg.ExposeErrorDetails,
		observer:      cmp.Or[AdapterObserver](cfg.AdapterObserver, noAdapterObserver{}),
	}
	b.catalog.Store(cfg.Catalog)
	return b, nil
}

// SetCatalog swaps the catalog (for producer slices applied at runtime).
// Requests already running keep the catalog they started with.
func (b *Broker) SetCatalog(c *catalog.Catalog) { b.catalog.Store(c) }

// Catalog returns the catalog in force.
func (b *Broker) Catalog() *catalog.Catalog { return b.catalog.Load() }

// Services implements domain.ServiceBroker. brokerapi calls it to check
// service and plan IDs; GET /v2/catalog is served from precomputed JSON.
func (b *Broker) Services(context.Context) ([]domain.Service, error) {
	return b.catalog.Load().Services(), nil
}

// plan resolves a service and plan ID, or fails with 400.
func (b *Broker) plan(serviceID, planID string) (*catalog.Offering, *catalog.Plan, error) {
	off, plan, ok := b.catalog.Load().Plan(serviceID, planID)
	if !ok {
		if _, known := b.catalog.Load().Offering(serviceID); !known {
			return nil, nil, badRequest("service_id %s is not in the catalog", requestinfo.Quote(serviceID))
		}
		return nil, nil, badRequest("plan_id %s is not a plan of service %s", requestinfo.Quote(planID), requestinfo.Quote(serviceID))
	}
	return off, plan, nil
}

// KnownPlan tells the HTTP edge whether the catalog has the plan, in the
// words a 400 needs (httpapi.Options.KnownPlan).
func (b *Broker) KnownPlan(serviceID, planID string) error {
	_, _, err := b.plan(serviceID, planID)
	return err
}

// requestBody is what the edge decoded of the request's body, once. A
// caller that bypasses the edge (Go code calling the broker directly)
// gets the raw fields brokerapi passed decoded here, by the same rules.
func requestBody(ctx context.Context, rawParameters, rawContext json.RawMessage) (*requestinfo.Body, error) {
	if info := requestinfo.From(ctx); info != nil && info.Body != nil {
		return info.Body, nil
	}
	fields := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(rawParameters)) > 0 {
		fields["parameters"] = rawParameters
	}
	if len(bytes.TrimSpace(rawContext)) > 0 {
		fields["context"] = rawContext
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return nil, badRequest("the request body is not valid JSON")
	}
	body, err := requestinfo.DecodeBody(raw)
	if err != nil {
		return nil, badRequest("request body: %v", err)
	}
	return body, nil
}

// fingerprint hashes the attributes that make two requests "identical"
// in the OSB sense. Parameters are hashed, never stored: they may hold
// secrets. json.Marshal sorts map keys, which makes the hash canonical.
func fingerprint(parts ...any) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, p := range parts {
		_ = enc.Encode(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkMaintenanceInfo enforces the OSB rule: a maintenance_info.version
// in the request must match the plan's.
func checkMaintenanceInfo(plan *catalog.Plan, mi *domain.MaintenanceInfo) error {
	if mi == nil || (mi.Version == "" && mi.Private == "" && len(mi.Public) == 0) {
		return nil
	}
	if plan.MaintenanceInfo == nil {
		return errMaintenanceInfoNil
	}
	if mi.Version != plan.MaintenanceInfo.Version {
		return errMaintenanceInfoConflict
	}
	return nil
}

// checkDowngrade refuses a request for a lower maintenance_info version
// than the instance runs on the same plan: an upgrade cannot be undone at
// the backend, and a platform sending one has an outdated catalog or a
// producer has published a lower version. (Versions of different plans
// are not comparable: a plan change is judged by the new plan's alone.)
func checkDowngrade(inst *Instance, plan *catalog.Plan, mi *domain.MaintenanceInfo) error {
	if mi == nil || mi.Version == "" || inst.MaintenanceInfo == "" || plan.ID != inst.PlanID {
		return nil
	}
	if adapters.CompareVersions(mi.Version, inst.MaintenanceInfo) < 0 {
		return unprocessableCode("MaintenanceInfoConflict",
			"maintenance_info.version %s is a downgrade: service instance %q runs %s, and instances are only ever upgraded",
			requestinfo.Quote(mi.Version), inst.ID, inst.MaintenanceInfo)
	}
	return nil
}

// owner names who owns the fix for an adapter failure.
func owner(off *catalog.Offering) string {
	s := fmt.Sprintf("the %q adapter of offering %q (producer %s", off.AdapterName, off.Name, off.Producer)
	if off.Contact != "" {
		s += ", " + off.Contact
	}
	return s + ")"
}

// releaseOnError releases l when *err is set, so that no early return
// leaves the lock to expire.
func (b *Broker) releaseOnError(ctx context.Context, l Lock, err *error) {
	if *err != nil {
		if uerr := b.state.Unlock(context.WithoutCancel(ctx), l); uerr != nil {
			b.log.Warn("release instance lock", "instance_id", l.InstanceID, "error", uerr)
		}
	}
}

var _ domain.ServiceBroker = (*Broker)(nil)
