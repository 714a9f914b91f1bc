package adapters

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"
)

// Adapter is what every producer implements. Each method must be idempotent:
// Agora repeats a call after a crash, a timeout or a platform retry, and a
// repeat must finish the job rather than fail because half of it is done.
type Adapter interface {
	// Provision creates the backend resources of one service instance.
	// A repeat for an instance that already exists returns success.
	Provision(ctx context.Context, req ProvisionRequest) (ProvisionResult, error)
	// Deprovision removes everything Provision created. When nothing is
	// left to remove it returns nil or an error wrapping ErrNotFound.
	Deprovision(ctx context.Context, req DeprovisionRequest) (DeprovisionResult, error)
	// Bind issues credentials that are unique to the binding.
	Bind(ctx context.Context, req BindRequest) (BindResult, error)
	// Unbind revokes the binding's credentials. When they are already gone
	// it returns nil or an error wrapping ErrNotFound.
	Unbind(ctx context.Context, req UnbindRequest) (UnbindResult, error)
}

// Updater is implemented by adapters whose instances can change plan or
// parameters in place. Without it, Agora rejects updates of the offering.
type Updater interface {
	Update(ctx context.Context, req UpdateRequest) (UpdateResult, error)
}

// Poller is implemented by adapters whose backend work outlasts one call.
// Such an adapter returns a result with Pending set and an OperationToken;
// Agora's async engine then polls until the state is no longer InProgress.
type Poller interface {
	Poll(ctx context.Context, req PollRequest) (PollResult, error)
}

// Pinger is implemented by adapters that can tell whether their backend
// answers. Agora reports the result in /readyz and in startup logs.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Closer is implemented by adapters that hold connections to release on
// shutdown.
type Closer interface {
	Close() error
}

// Plan identifies the catalog plan a request is for. Adapters look up their
// own per-plan settings (decoded once, in the factory) by ID or Name.
type Plan struct {
	ID   string
	Name string
}

// Metadata is the OSB instance metadata (labels and attributes) that a
// platform shows next to an instance. It is stored in Redis: no secrets.
type Metadata struct {
	Labels     map[string]any `json:"labels,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Receipt holds non-secret facts an adapter needs later, such as the name
// of a role it generated or a token accessor. Agora stores it in Redis and
// hands it back on every later call for the same instance or binding.
// It must never hold a secret.
type Receipt map[string]string

// Endpoint is a network endpoint the bound application will reach.
type Endpoint struct {
	Host     string   `json:"host"`
	Ports    []string `json:"ports"`
	Protocol string   `json:"protocol,omitempty"`
}

// Origin describes who asked, as far as the platform told Agora. It is for
// logs, labels and audit; adapters must not make security decisions on it.
type Origin struct {
	RequestID string
	// Platform is "cloudfoundry", "kubernetes" or another platform name.
	Platform string
	// Context is the raw OSB context object the platform sent.
	Context json.RawMessage
}

// MaintenanceInfo is a plan's OSB maintenance_info: the version of the
// service that instances of the plan run, as the producer publishes it in
// the catalog. Version is a semantic version ("1.1.0"); Description says
// what the version brings, in the producer's words.
type MaintenanceInfo struct {
	Version     string
	Description string
}

// Maintenance tells an adapter which version an instance runs and which
// it must run once the call succeeds. Requested differing from Current is
// an upgrade (Agora refuses downgrades before any adapter is called): do
// the version's backend work, idempotently, since a repeat may follow a
// crash. Both are zero for plans without maintenance_info.
type Maintenance struct {
	// Current is the instance's version before the call: zero on
	// provision, and for instances created before their plan had one.
	// Its Description is the catalog's when the catalog still names that
	// version, else empty.
	Current MaintenanceInfo
	// Requested is the version the instance runs after the call: the
	// plan's current maintenance_info on provision and on an upgrade.
	Requested MaintenanceInfo
}

// Upgrade reports whether the call moves the instance to another version.
func (m Maintenance) Upgrade() bool {
	return m.Requested.Version != "" && m.Requested.Version != m.Current.Version
}

// ProvisionRequest asks for a new service instance.
type ProvisionRequest struct {
	InstanceID string
	Offering   string
	Plan       Plan
	// Parameters are the platform's parameters, already validated against
	// the plan's JSON schema.
	Parameters map[string]any
	Origin     Origin
	// Maintenance.Requested is the version the new instance must run (the
	// plan's, when it has maintenance_info); Current is zero.
	Maintenance Maintenance
}

// ProvisionResult reports a provisioned (or pending) instance.
type ProvisionResult struct {
	DashboardURL string
	Metadata     Metadata
	Receipt      Receipt
	// Pending means the backend is still working; Agora polls through the
	// Poller capability with OperationToken.
	Pending        bool
	OperationToken string
}

// UpdateRequest asks to change an instance's plan or parameters.
type UpdateRequest struct {
	InstanceID   string
	Offering     string
	Plan         Plan
	PreviousPlan Plan
	Parameters   map[string]any
	Receipt      Receipt
	Origin       Origin
	// Maintenance is the instance's version and the one it must run
	// after the update; they differ on an upgrade (`cf update-service
	// --upgrade`, or a bulk upgrade), which may come with no other change.
	Maintenance Maintenance
}

// UpdateResult reports an updated (or pending) instance.
type UpdateResult struct {
	DashboardURL   string
	Metadata       Metadata
	Receipt        Receipt
	Pending        bool
	OperationToken string
}

// DeprovisionRequest asks to remove an instance.
type DeprovisionRequest struct {
	InstanceID string
	Offering   string
	Plan       Plan
	Receipt    Receipt
	Origin     Origin
}

// DeprovisionResult reports a removed (or pending) instance.
type DeprovisionResult struct {
	Pending        bool
	OperationToken string
}

// BindRequest asks for credentials for one binding.
type BindRequest struct {
	InstanceID string
	BindingID  string
	Offering   string
	Plan       Plan
	// AppGUID is the bound application, when the platform named one.
	AppGUID    string
	Parameters map[string]any
	// InstanceReceipt is what Provision (or the last Update) returned.
	InstanceReceipt Receipt
	Origin          Origin
	// Predecessor is set when the platform rotates a binding (OSB 2.17,
	// predecessor_binding_id): issue new credentials with the same access
	// as the predecessor's. The predecessor stays valid until it is
	// unbound or expires; do not revoke it here. Parameters are the
	// predecessor's.
	Predecessor *Predecessor
}

// Predecessor is the binding a rotation replaces.
type Predecessor struct {
	BindingID string
	// Receipt is what Bind returned for the predecessor.
	Receipt Receipt
}

// BindResult carries the binding's credentials. Credentials go to Vault
// only; everything else is stored in Redis.
type BindResult struct {
	Credentials     map[string]any
	Endpoints       []Endpoint
	SyslogDrainURL  string
	RouteServiceURL string
	Receipt         Receipt
	Pending         bool
	OperationToken  string
	// ExpiresAt, when set, is when the credentials stop working: Agora
	// revokes the binding then (the adapter's Unbind), whether or not the
	// platform unbinds it. RenewBefore, when set, is when the platform
	// should rotate it, at or before ExpiresAt. Both are OSB binding
	// metadata; Agora checks them and serves them in whole seconds, UTC.
	ExpiresAt   time.Time
	RenewBefore time.Time
}

// UnbindRequest asks to revoke one binding's credentials.
type UnbindRequest struct {
	InstanceID      string
	BindingID       string
	Offering        string
	Plan            Plan
	InstanceReceipt Receipt
	// Receipt is what Bind returned for this binding.
	Receipt Receipt
	Origin  Origin
}

// UnbindResult reports revoked (or pending) credentials.
type UnbindResult struct {
	Pending        bool
	OperationToken string
}

// OperationKind names the kind of work a PollRequest asks about.
type OperationKind string

// The operation kinds, as stored and as passed to Poller.
const (
	OpProvision   OperationKind = "provision"
	OpUpdate      OperationKind = "update"
	OpDeprovision OperationKind = "deprovision"
	OpBind        OperationKind = "bind"
	OpUnbind      OperationKind = "unbind"
)

// PollRequest asks how pending backend work is going.
type PollRequest struct {
	Kind       OperationKind
	InstanceID string
	BindingID  string
	Offering   string
	Plan       Plan
	// Token is the OperationToken the adapter returned with Pending.
	Token  string
	Origin Origin
}

// PollState is the state of pending backend work.
type PollState string

// The states a Poller reports.
const (
	InProgress PollState = "in progress"
	Succeeded  PollState = "succeeded"
	Failed     PollState = "failed"
)

// PollResult reports the state of pending work. When a pending bind
// succeeds, Bind carries its credentials. When provision or update succeed,
// Instance may carry the final dashboard URL, metadata and receipt.
type PollResult struct {
	State       PollState
	Description string
	Instance    *ProvisionResult
	Bind        *BindResult
}

// Decoder decodes one section of configuration into v. Agora's decoders
// are strict: an unknown field is an error, so a typo never passes silently.
type Decoder interface {
	Decode(v any) error
}

// Config is what a Factory receives for one catalog offering.
type Config struct {
	// Offering is the offering's name in the catalog.
	Offering string
	// Producer is the name of the team that owns the offering.
	Producer string
	// Settings is the offering's `config:` section.
	Settings Decoder
	// Plans lists the offering's plans, each with its own `config:` section.
	Plans []PlanConfig
	// Logger is already scoped to the adapter, producer and offering. It is
	// never nil: a host with nowhere to log passes
	// slog.New(slog.DiscardHandler), so an adapter logs without checking.
	Logger *slog.Logger
}

// PlanConfig is one plan's identity and adapter settings.
type PlanConfig struct {
	Plan
	Settings Decoder
}

// Factory builds one adapter instance per catalog offering that names it.
type Factory struct {
	// Name is what catalog.yml uses in `adapter:`.
	Name string
	// Description is one line for `agora adapters` and the docs.
	Description string
	// New decodes and validates cfg, reporting every problem at once, and
	// returns a ready adapter. It should not require the backend to answer:
	// a backend that is down at startup is reported by Ping, not by New.
	New func(ctx context.Context, cfg Config) (Adapter, error)
	// Check decodes and validates cfg like New, but without any I/O (no
	// dial, no file, no Vault), and says which optional capabilities an
	// adapter built from cfg would have. `agora catalog check` and a
	// producer's apply run it: checking a catalog must not build one.
	// Nil means the config is only judged when New runs.
	Check func(cfg Config) (Capabilities, error)
}
