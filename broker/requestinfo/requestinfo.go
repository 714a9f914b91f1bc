// Package requestinfo is what one HTTP request says, decoded once at the
// edge (package httpapi) into one value that every layer reads: the
// request identity, the OSB API version, the platform's originating
// identity, who authenticated, which surface and endpoint it reached, and,
// for OSB mutations, the body.
//
// The edge stores an *Info in the request context before anything else
// runs; later layers read it with From and never parse headers or bodies
// again. Layers that learn something about the request's outcome (the
// broker's error chain, say) record it on the same value, so the access
// log writes one line per request with everything an operator needs.
//
// What this package must never do: hold a secret. Parameters live in the
// decoded Body only for the length of the request, and neither Info nor
// Body is ever logged or stored whole.
package requestinfo

import (
	"context"
	"sync"
)

// Surface names one HTTP surface of Agora. Auth is the only thing that
// differs between surfaces; everything else goes through the same edge.
type Surface string

// The surfaces.
const (
	SurfaceOSB      Surface = "osb"
	SurfaceProducer Surface = "producer"
	SurfaceAdmin    Surface = "admin"
	SurfaceHealth   Surface = "health"
	SurfaceMetrics  Surface = "metrics"
	// SurfaceMarketplace is the read-only marketplace page.
	SurfaceMarketplace Surface = "marketplace"
)

// PrincipalKind says which kind of credential authenticated a request.
type PrincipalKind string

// The principal kinds.
const (
	// PrincipalPlatform is a platform using the broker's basic-auth pair.
	PrincipalPlatform PrincipalKind = "platform"
	// PrincipalAdmin is the platform engineer (the broker's credentials on
	// the admin surface).
	PrincipalAdmin PrincipalKind = "admin"
	// PrincipalProducer is a producer team's bearer token.
	PrincipalProducer PrincipalKind = "producer"
	// PrincipalViewer is the marketplace page's read-only credential.
	PrincipalViewer PrincipalKind = "viewer"
)

// Principal is who authenticated a request. Zero for unauthenticated
// routes and for requests that failed authentication.
type Principal struct {
	Kind PrincipalKind
	// Name is the basic-auth username or the producer's name.
	Name string
}

// Info is what the edge decoded of one request. Fields set by the edge
// are read-only for every later layer; Outcome is the one part later
// layers write.
type Info struct {
	// ID is X-Broker-API-Request-Identity: the platform's value, or one the
	// edge generated (sent back only with an error answer). Quote it in
	// every error description.
	ID string
	// Surface is the surface the route belongs to.
	Surface Surface
	// Endpoint names the operation in a bounded vocabulary ("provision",
	// "last_operation", "producer_apply" ...), for logs and metrics.
	Endpoint string
	// Resource names what the request is about, as its path (and, for an
	// OSB DELETE, its query) says: "instance_id", "binding_id",
	// "service_id", "plan_id"; on the producer and admin APIs the route's
	// variables ("name", "version", "offering", "plan"). For the audit log.
	Resource map[string]string
	// APIVersion is the parsed X-Broker-API-Version (zero when absent).
	APIVersion Version
	// Originating is the platform user behind the request; nil when the
	// header was absent or malformed.
	Originating *OriginatingIdentity
	// Principal is set by the surface's auth once it succeeds.
	Principal Principal
	// Body is the decoded body of an OSB PUT or PATCH; nil otherwise.
	Body *Body

	mu      sync.Mutex
	outcome Outcome
	reply   map[string]any
}

// Outcome is what the handling layers learned about how the request went,
// beyond the status code: the full error chain for the operator, and the
// OSB error code.
type Outcome struct {
	// Error is the full error chain, for the log only: it may name
	// addresses and paths that app developers must not see.
	Error string
	// Code is the OSB error code (ConcurrencyError ...), if any.
	Code string
	// Owner names who owns the fix of a failure: "adapter", "vault",
	// "redis", "agora" or "" for the client's own mistakes.
	Owner string
}

// SetOutcome records what went wrong. Safe for concurrent use.
func (i *Info) SetOutcome(o Outcome) {
	if i == nil {
		return
	}
	i.mu.Lock()
	i.outcome = o
	i.mu.Unlock()
}

// Outcome returns what SetOutcome recorded.
func (i *Info) Outcome() Outcome {
	if i == nil {
		return Outcome{}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.outcome
}

// SetReplyField records an OSB response field that brokerapi v11's
// response types cannot carry (maintenance_info in GET instance); the
// edge adds it to a successful answer. Safe for concurrent use.
func (i *Info) SetReplyField(name string, value any) {
	if i == nil {
		return
	}
	i.mu.Lock()
	if i.reply == nil {
		i.reply = map[string]any{}
	}
	i.reply[name] = value
	i.mu.Unlock()
}

// ReplyFields returns what SetReplyField recorded (nil: nothing).
func (i *Info) ReplyFields() map[string]any {
	if i == nil {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.reply
}

// Platform is the platform that sent the request: the originating
// identity's platform, else the OSB context's "platform" field, else "".
func (i *Info) Platform() string {
	switch {
	case i == nil:
		return ""
	case i.Originating != nil:
		return i.Originating.Platform
	case i.Body != nil:
		return i.Body.Platform
	}
	return ""
}

// Reset makes i the zero Info again, for reuse by a request that comes
// later. Only the edge that made i may call it, once nothing reads i
// any more.
func (i *Info) Reset() {
	*i = Info{}
}

// ctxKey is unexported so no other package can collide with, or forge,
// the value.
type ctxKey struct{}

// With returns ctx carrying info.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// From returns the Info of the request ctx belongs to, or nil outside a
// request that went through the edge (a background job, a unit test that
// calls the broker directly). Every method of *Info accepts nil.
func From(ctx context.Context) *Info {
	info, _ := ctx.Value(ctxKey{}).(*Info)
	return info
}

// ID returns the request identity of ctx's request, or "".
func ID(ctx context.Context) string {
	if info := From(ctx); info != nil {
		return info.ID
	}
	return ""
}
