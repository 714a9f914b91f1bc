package broker

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// Store errors. Store implementations translate their client's own
// sentinels (redis.Nil, a missing Vault secret) into these at the boundary.
var (
	// ErrNotFound: the record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked: another request holds the instance's mutation lock.
	ErrLocked = errors.New("instance is locked by a concurrent request")
	// ErrStale: a conditional commit found the operation already finished
	// (by another worker, or by a deadline), or in the hands of another
	// attempt (see Fence); the commit was not applied.
	ErrStale = errors.New("operation is no longer in progress")
	// ErrJobLost: the job queue no longer counts the job as this
	// consumer's (another worker took it over, or it is gone).
	ErrJobLost = errors.New("job is no longer held by this worker")
)

// InstanceState is where an instance is in its life.
type InstanceState string

// Instance states. A failed instance still exists: its backend may hold
// half-created resources, so a DELETE (orphan mitigation) must reach the
// adapter.
const (
	InstanceProvisioning   InstanceState = "provisioning"
	InstanceReady          InstanceState = "ready"
	InstanceFailed         InstanceState = "failed"
	InstanceUpdating       InstanceState = "updating"
	InstanceDeprovisioning InstanceState = "deprovisioning"
)

// BindingState is where a binding is in its life.
type BindingState string

// Binding states. A binding is recorded as BindingCreating before the
// adapter is called, so that a crash between the adapter's work and the
// commit leaves a record a later DELETE can clean up.
const (
	BindingCreating BindingState = "creating"
	BindingBound    BindingState = "bound"
	BindingFailed   BindingState = "failed"
	BindingDeleting BindingState = "deleting"
)

// OperationState mirrors OSB's last_operation states.
type OperationState string

// Operation states.
const (
	OpInProgress OperationState = "in progress"
	OpSucceeded  OperationState = "succeeded"
	OpFailed     OperationState = "failed"
)

// Instance is the stored record of a service instance. It never holds a
// secret: parameters are represented by a fingerprint only.
type Instance struct {
	ID               string          `json:"id"`
	ServiceID        string          `json:"service_id"`
	PlanID           string          `json:"plan_id"`
	OrganizationGUID string          `json:"organization_guid,omitempty"`
	SpaceGUID        string          `json:"space_guid,omitempty"`
	Context          json.RawMessage `json:"context,omitempty"`
	Fingerprint      string          `json:"fingerprint"`
	// MaintenanceInfo is the maintenance_info version the instance runs:
	// its plan's when it was provisioned, the requested one after each
	// successful upgrade; "" for plans without versions.
	MaintenanceInfo string        `json:"maintenance_info_version,omitempty"`
	State           InstanceState `json:"state"`
	// LastOp summarises the latest operation, so that last_operation and
	// every concurrency decision need one read of this record only.
	LastOp       *OperationSummary `json:"last_op,omitempty"`
	DashboardURL string            `json:"dashboard_url,omitempty"`
	Metadata     adapters.Metadata `json:"metadata"`
	Receipt      adapters.Receipt  `json:"receipt,omitempty"`
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
	// ParametersRef points at the parameters in force (those of the
	// latest successful provision, merged with every successful update
	// since) in the credential store; "" means none ({}). They may hold
	// secrets, so Redis keeps the reference only.
	ParametersRef string `json:"parameters_ref,omitempty"`
}

// Binding is the stored record of a service binding. Credentials live in
// Vault; CredentialRef is where.
type Binding struct {
	ID              string              `json:"id"`
	InstanceID      string              `json:"instance_id"`
	ServiceID       string              `json:"service_id"`
	PlanID          string              `json:"plan_id"`
	AppGUID         string              `json:"app_guid,omitempty"`
	Context         json.RawMessage     `json:"context,omitempty"`
	Fingerprint     string              `json:"fingerprint"`
	State           BindingState        `json:"state"`
	LastOp          *OperationSummary   `json:"last_op,omitempty"`
	CredentialRef   string              `json:"credential_ref,omitempty"`
	Endpoints       []adapters.Endpoint `json:"endpoints,omitempty"`
	SyslogDrainURL  string              `json:"syslog_drain_url,omitempty"`
	RouteServiceURL string              `json:"route_service_url,omitempty"`
	Receipt         adapters.Receipt    `json:"receipt,omitempty"`
	CreatedAt       time.Time           `json:"created_at"`
	UpdatedAt       time.Time           `json:"updated_at"`
	// ParametersRef points at the binding's parameters in the credential
	// store, like Instance.ParametersRef.
	ParametersRef string `json:"parameters_ref,omitempty"`
	// ExpiresAt and RenewBefore are the binding metadata the adapter
	// returned (zero: none). At ExpiresAt Agora revokes the binding
	// itself (expiry.go).
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	RenewBefore time.Time `json:"renew_before,omitzero"`
	// Predecessor is the binding this one rotates, if any, as the
	// adapter is told about it (also by the async engine, which may run
	// the bind after the predecessor is gone).
	Predecessor *PredecessorRef `json:"predecessor,omitempty"`
}

// PredecessorRef names the binding a rotation replaces, with the receipt
// its bind returned (no secret).
type PredecessorRef struct {
	BindingID string           `json:"binding_id"`
	Receipt   adapters.Receipt `json:"receipt,omitempty"`
}

// Operation is one accepted mutation, sync or async. Async ones are also
// jobs in the queue; the record is what last_operation reads.
type Operation struct {
	ID         string                 `json:"id"`
	Kind       adapters.OperationKind `json:"kind"`
	InstanceID string                 `json:"instance_id"`
	BindingID  string                 `json:"binding_id,omitempty"`
	Async      bool                   `json:"async"`
	State      OperationState         `json:"state"`
	// Description is what last_operation tells the platform: public words.
	Description string `json:"description,omitempty"`
	// Detail is a failure's full error chain, for the platform engineer and
	// the producer; it may name internal addresses, never a secret.
	Detail string `json:"detail,omitempty"`
	// Fingerprint of the request that started the operation, so that an
	// identical repeat gets the same operation back.
	Fingerprint string `json:"fingerprint"`
	// PlanID is the target plan (for update, the new one).
	PlanID         string `json:"plan_id"`
	PreviousPlanID string `json:"previous_plan_id,omitempty"`
	// MaintenanceVersion is the maintenance_info version the instance
	// runs once the operation succeeds (provision, update); "" when the
	// plan has none or an update leaves the version as it is.
	MaintenanceVersion string `json:"maintenance_version,omitempty"`
	// PreviousState is the instance's state before a deprovision, which a
	// failed deprovision restores.
	PreviousState InstanceState `json:"previous_state,omitempty"`
	// ParametersRef points at the request parameters in the credential
	// store, for async work. Parameters may hold secrets, so they never
	// travel through Redis.
	ParametersRef string `json:"parameters_ref,omitempty"`
	// AdapterToken is the adapter's OperationToken while it works on its own.
	AdapterToken string          `json:"adapter_token,omitempty"`
	RequestID    string          `json:"request_id,omitempty"`
	Platform     string          `json:"platform,omitempty"`
	Context      json.RawMessage `json:"context,omitempty"`
	// Attempts counts the attempts of async work started so far, a crashed
	// one included: it is recorded when an attempt starts.
	Attempts int `json:"attempts"`
	// Attempt is the fencing token of the latest attempt, written when it
	// starts. Every later commit of that attempt is conditional on it
	// (Mutation.Fence), so a worker that lost its job records nothing.
	Attempt string `json:"attempt,omitempty"`
	// NextAttemptAt is when the next attempt may start, after a transient
	// failure; LastError is that failure's full error chain, for the
	// operator (it may name internal addresses, never a secret).
	NextAttemptAt time.Time `json:"next_attempt_at,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	// LastDescription is the same failure in the words the platform would
	// read: if the deadline comes before another attempt succeeds, the
	// operation fails with them.
	LastDescription string    `json:"last_description,omitempty"`
	Deadline        time.Time `json:"deadline"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// OperationSummary is the part of an operation that the instance or
// binding record carries with it.
type OperationSummary struct {
	ID          string                 `json:"id"`
	Kind        adapters.OperationKind `json:"kind"`
	Async       bool                   `json:"async"`
	State       OperationState         `json:"state"`
	Description string                 `json:"description,omitempty"`
	Fingerprint string                 `json:"fingerprint"`
	Deadline    time.Time              `json:"deadline"`
}

// Active reports whether an async operation is still running: in
// progress and within its deadline. A sync operation found in progress is
// never active: whoever ran it held the instance lock, and we hold it now,
// so it crashed and its record is stale.
func (s *OperationSummary) Active(now time.Time) bool {
	return s != nil && s.Async && s.State == OpInProgress && now.Before(s.Deadline)
}

// Summary returns the summary of o.
func (o *Operation) Summary() *OperationSummary {
	return &OperationSummary{ID: o.ID, Kind: o.Kind, Async: o.Async, State: o.State, Description: o.Description, Fingerprint: o.Fingerprint, Deadline: o.Deadline}
}

// Operation rebuilds the operation record a summary came from, as far as
// the summary knows it.
func (s *OperationSummary) Operation(instanceID string) *Operation {
	return &Operation{ID: s.ID, Kind: s.Kind, InstanceID: instanceID, Async: s.Async, State: s.State,
		Description: s.Description, Fingerprint: s.Fingerprint, Deadline: s.Deadline}
}

// Finished reports whether the operation reached a final state.
func (o *Operation) Finished() bool { return o.State != OpInProgress }

// LoadRequest names the records to read in one round trip.
type LoadRequest struct {
	InstanceID  string
	BindingID   string // optional
	OperationID string // optional
	// OperationUnlessLatest lets the store leave Snapshot.Operation nil
	// when OperationID is the latest operation of the instance (or of
	// BindingID), whose summary the record already carries.
	OperationUnlessLatest bool
	// AllBindings asks for every binding record of the instance.
	AllBindings bool
	// RecordsOnly skips what only last_operation and the OSB rules need
	// (the status key, so Tombstone stays empty): for listings, which show
	// records and read a thousand at a time.
	RecordsOnly bool
	// PredecessorID names a second binding to read (a rotation's
	// predecessor); optional.
	PredecessorID string
}

// Snapshot is what Load read. Absent records are nil.
type Snapshot struct {
	Instance  *Instance
	Binding   *Binding
	Operation *Operation
	Bindings  []*Binding
	// Tombstone is the ID of the async deprovision that deleted the
	// instance recently, so last_operation can answer 410 rather than 404.
	Tombstone string
	// BindingTombstone likewise for an async unbind of BindingID.
	BindingTombstone string
	// Predecessor is the binding LoadRequest.PredecessorID named.
	Predecessor *Binding
}

// Mutation is a set of writes that the store applies atomically: either
// all of them land or none does. Nothing half-written.
type Mutation struct {
	InstanceID  string
	PutInstance *Instance
	// DeleteInstance removes the instance and everything under it:
	// bindings and operations. With Tombstone set, PutOperation is kept
	// for a day as the instance's tombstone, so that last_operation after
	// an async delete answers 410 Gone.
	DeleteInstance bool
	Tombstone      bool
	PutBinding     *Binding
	// DeleteBinding removes one binding. With BindingTombstone set,
	// PutOperation is kept for a day as the binding's tombstone.
	DeleteBinding    string
	BindingTombstone bool
	PutOperation     *Operation
	// DeleteOperations drops finished operation records that nothing will
	// ask about again, so an instance's history does not grow forever.
	DeleteOperations []string
	// IfOperationInProgress makes the commit conditional: it applies only
	// while that operation is still in progress, else ErrStale.
	IfOperationInProgress string
	// Fence, with IfOperationInProgress, narrows the condition to one
	// attempt of that operation.
	Fence *Fence
}

// Fence makes a commit conditional on the operation's current attempt
// (Operation.Attempt): the commit applies only while the stored operation
// carries Attempt, else ErrStale. A worker starts an attempt by committing
// a new token fenced on the one it read (compare and swap), and fences
// every later commit of the attempt on its own token: a worker that lost
// its job to another can then never record an outcome.
type Fence struct {
	// Attempt is the token the stored operation must carry ("" for an
	// operation no attempt has started yet).
	Attempt string
}

// InstanceStatus is what last_operation needs of an instance: its latest
// operation, or that an async deprovision deleted it recently.
type InstanceStatus struct {
	Operation *OperationSummary `json:"op,omitempty"`
	Deleted   bool              `json:"deleted,omitempty"`
	// Answer is the ready-made answer to a poll for Operation, when the
	// store keeps one. A store that returns it may leave Operation nil:
	// the answer is what a poll needs, and decoding the rest is most of a
	// poll's cost.
	Answer *PollAnswer `json:"-"`
}

// PollAnswer is the OSB answer to GET last_operation for an instance's
// latest operation, encoded once when the operation's state is committed
// (NewPollAnswer), so that a poll returns it as stored.
type PollAnswer struct {
	OperationID string
	// Body is the 200 answer's body, byte for byte as brokerapi would
	// write it.
	Body []byte
	// Until is when the answer stops holding: an operation in progress is
	// reported failed once it is overdue. Zero: it holds for good.
	Until time.Time
}

// Holds reports whether the answer is still the right one at now.
func (a *PollAnswer) Holds(now time.Time) bool {
	return a.Until.IsZero() || !now.After(a.Until)
}

// Lock is a held instance lock. Its token makes release safe: a lock that
// expired and was taken by another request is not released by us.
type Lock struct {
	InstanceID string
	Token      string
}

// StateStore keeps broker state. Every method is a constant number of
// round trips, whatever the number of instances.
type StateStore interface {
	// LockAndLoad takes the instance's mutation lock (ErrLocked if held)
	// and reads the records in the same round trip.
	LockAndLoad(ctx context.Context, ttl time.Duration, req LoadRequest) (Lock, Snapshot, error)
	// Load reads records without locking.
	Load(ctx context.Context, req LoadRequest) (Snapshot, error)
	// Commit applies m atomically, then releases unlock if non-nil. The
	// release rides in the same round trip.
	Commit(ctx context.Context, m Mutation, unlock *Lock) error
	// Status reads the instance's InstanceStatus alone, the one read a
	// last_operation poll needs (ErrNotFound when there is none).
	Status(ctx context.Context, instanceID string) (InstanceStatus, error)
	// Unlock releases a lock without writing.
	Unlock(ctx context.Context, l Lock) error
	Ping(ctx context.Context) error
}

// Job is a unit of async work: run one attempt of the operation it names.
type Job struct {
	// ID is the queue's own delivery ID, set by the queue.
	ID          string
	InstanceID  string
	OperationID string
	// ServiceID is the instance's offering, so a worker knows the job's
	// producer (for the per-producer limit) without a read. Jobs queued by
	// an older Agora have none.
	ServiceID string
}

// JobQueue is a durable queue of async work shared by every replica. It
// holds at most one job per operation; each job is delivered to one
// consumer at a time. A delivered job is the consumer's for Lease after
// the delivery, and after each Heartbeat, counted from when the call was
// sent; after that another consumer may take it over.
type JobQueue interface {
	// Enqueue queues job; a job already queued for the same operation is
	// not queued twice.
	Enqueue(ctx context.Context, job Job) error
	// Next blocks up to a short poll interval (well under Lease) for a job
	// for consumer and returns ErrNotFound when there is none.
	Next(ctx context.Context, consumer string) (Job, error)
	// Heartbeat renews consumer's lease on job, or returns ErrJobLost when
	// another consumer holds it now or it is gone; it never takes a job
	// back.
	Heartbeat(ctx context.Context, consumer string, job Job) error
	// Release gives consumer's job back to the queue, to be delivered again
	// once after has passed; the consumer holds nothing while it waits.
	// ErrJobLost when consumer no longer holds it.
	Release(ctx context.Context, consumer string, job Job, after time.Duration) error
	// Done removes the job for good.
	Done(ctx context.Context, job Job) error
	// Promote delivers released jobs whose time has come. Any replica may
	// run it, often.
	Promote(ctx context.Context) error
	// Tidy is housekeeping any replica runs now and then: it records that
	// consumers (this replica's) are alive, removes consumers no replica
	// has vouched for in a long time and that hold no job, and takes over
	// jobs an older Agora queued elsewhere.
	Tidy(ctx context.Context, consumers []string) error
	// Lease is how long a delivered job stays a consumer's without a
	// heartbeat.
	Lease() time.Duration
}

// CredentialStore keeps binding credentials (and async request parameters,
// which may hold secrets) out of Redis. It decorates bind and unbind: the
// broker writes what the adapter returned and deletes it on unbind.
type CredentialStore interface {
	// PutBinding stores creds and returns the reference kept in Redis.
	PutBinding(ctx context.Context, instanceID, bindingID string, creds map[string]any) (string, error)
	// BindingRef is the reference PutBinding returns for that binding, so
	// a half-finished bind can be cleaned up without a stored reference.
	BindingRef(instanceID, bindingID string) string
	// ParametersRef is the reference PutParameters returns for that
	// operation, so the parameters a failed operation kept for a retry can
	// be dropped once another operation supersedes it.
	ParametersRef(instanceID, operationID string) string
	// GetBinding reads creds back (ErrNotFound when absent).
	GetBinding(ctx context.Context, ref string) (map[string]any, error)
	// PutParameters stores an async operation's request parameters.
	PutParameters(ctx context.Context, instanceID, operationID string, params map[string]any) (string, error)
	// PutCurrentParameters stores the parameters an instance or binding
	// has once operationID succeeds, and returns the reference its record
	// keeps (Instance.ParametersRef, Binding.ParametersRef). Each
	// operation writes its own secret, so the record always points at a
	// complete one; the one it replaces is deleted after the commit.
	PutCurrentParameters(ctx context.Context, instanceID, operationID string, params map[string]any) (string, error)
	GetParameters(ctx context.Context, ref string) (map[string]any, error)
	// Delete removes a secret completely, every version and its metadata.
	// A missing secret is not an error.
	Delete(ctx context.Context, ref string) error
	Ping(ctx context.Context) error
}
