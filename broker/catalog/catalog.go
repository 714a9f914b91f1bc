package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pivotal-cf/brokerapi/v11/domain"

	"github.com/agora-osb/agora/adapters"
)

// Catalog is the built, validated catalog. It never changes after Build, so
// any number of requests may read it at once; a new catalog is a new Build.
type Catalog struct {
	offerings []*Offering
	byID      map[string]*Offering
	plansByID map[string]*Plan
	planOwner map[string]*Offering
	services  []domain.Service
	body      []byte
	etag      string

	closeOnce sync.Once
	closeErr  error
}

// Offering is one validated service offering with its ready adapter.
// Treat it as read-only: it is shared by every request.
type Offering struct {
	ID          string
	Name        string
	Description string
	// Producer and Contact name the team that owns the offering, for
	// errors that tell the operator who owns the fix.
	Producer    string
	Contact     string
	AdapterName string
	Adapter     adapters.Adapter
	// handle is the Adapter's share in the catalogs that serve it; nil in
	// a catalog that only checked (Check builds nothing).
	handle *adapterHandle

	Bindable             bool
	PlanUpdateable       bool
	InstancesRetrievable bool
	BindingsRetrievable  bool
	AllowContextUpdates  bool
	// OmitBindingEndpoints: see OfferingSpec.OmitBindingEndpoints.
	OmitBindingEndpoints bool

	Plans []*Plan
}

// Plan is one validated plan. Treat it as read-only.
type Plan struct {
	ID          string
	Name        string
	Description string
	// Free is the OSB free flag (default true).
	Free bool
	// Async plans require accepts_incomplete=true on every mutating request.
	Async bool
	// OperationTimeout is how long async work may run before Agora reports
	// it failed (default one hour).
	OperationTimeout time.Duration
	// MaximumPollingDuration is what the catalog tells the platform; 0 when
	// the plan does not set one.
	MaximumPollingDuration time.Duration
	// Bindable and PlanUpdateable are effective: the plan's own value when
	// set, else the offering's.
	Bindable        bool
	PlanUpdateable  bool
	MaintenanceInfo *domain.MaintenanceInfo
	// Deprecated plans are left out of JSON, so platforms offer them to
	// no one, and the broker refuses new instances of them; Plan and
	// Services still return them, so the instances that exist keep working
	// until they are deleted and a stray provision gets a clear 400.
	Deprecated bool
	// BindingRotatable: its bindings may be rotated (OSB 2.17); only
	// ever true on a bindable plan.
	BindingRotatable bool
	// SensitiveParameters: GET instance and GET binding withhold the
	// parameters Agora keeps for the plan's instances and bindings.
	SensitiveParameters bool

	provisionSchema *paramSchema
	updateSchema    *paramSchema
	bindSchema      *paramSchema
}

// Ref is the plan's identity as adapters see it.
func (p *Plan) Ref() adapters.Plan {
	return adapters.Plan{ID: p.ID, Name: p.Name}
}

// ValidateProvisionParameters checks provision parameters against the
// plan's service_instance.create schema. Without a schema any object is
// accepted. A mismatch is a *ParameterError listing every violation.
func (p *Plan) ValidateProvisionParameters(params map[string]any) error {
	return p.provisionSchema.validate(params)
}

// ValidateUpdateParameters checks update parameters against the plan's
// service_instance.update schema.
func (p *Plan) ValidateUpdateParameters(params map[string]any) error {
	return p.updateSchema.validate(params)
}

// ValidateBindParameters checks bind parameters against the plan's
// service_binding.create schema.
func (p *Plan) ValidateBindParameters(params map[string]any) error {
	return p.bindSchema.validate(params)
}

// Services returns the catalog as brokerapi's domain types, which its
// handlers use to check service and plan IDs. The slice is a copy; the
// values inside are shared and must not be modified. Serve GET /v2/catalog
// from JSON, not from these: brokerapi's types print "parameters": null for
// absent schemas.
func (c *Catalog) Services() []domain.Service {
	return slices.Clone(c.services)
}

// JSON returns the exact GET /v2/catalog response body, {"services":[...]}.
// It is computed once; each call returns a copy.
func (c *Catalog) JSON() []byte {
	return bytes.Clone(c.body)
}

// SharedJSON is JSON without the copy, for the HTTP edge, which serves it
// on every catalog request and only writes it: the bytes are the
// catalog's own, and must not be modified.
func (c *Catalog) SharedJSON() []byte {
	return c.body
}

// ETag is a strong entity tag of the JSON body, for the optional caching
// the OSB spec allows on GET /v2/catalog.
func (c *Catalog) ETag() string {
	return c.etag
}

// Offering returns the offering with the given OSB service ID.
func (c *Catalog) Offering(serviceID string) (*Offering, bool) {
	o, ok := c.byID[serviceID]
	return o, ok
}

// Plan returns the plan with the given ID and its offering, only when the
// plan belongs to that offering: a platform that pairs a plan with the
// wrong service ID gets "not found", never another team's adapter.
func (c *Catalog) Plan(serviceID, planID string) (*Offering, *Plan, bool) {
	o, ok := c.byID[serviceID]
	if !ok || c.planOwner[planID] != o {
		return nil, nil, false
	}
	return o, c.plansByID[planID], true
}

// Offerings returns every offering in catalog order (sources in the order
// given to Build, then as written).
func (c *Catalog) Offerings() []*Offering {
	return slices.Clone(c.offerings)
}

// Close releases the catalog's adapters: each is closed (when it
// implements adapters.Closer) once no catalog built after this one reuses
// it. Call it once the catalog is no longer served (after a swap, once
// in-flight requests are done). Later calls return the first result.
func (c *Catalog) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = closeAdapters(c.offerings)
	})
	return c.closeErr
}

func closeAdapters(offerings []*Offering) error {
	var errs []error
	for _, o := range offerings {
		if o.handle == nil {
			continue
		}
		if err := o.handle.release(); err != nil {
			errs = append(errs, fmt.Errorf("close adapter %q of offering %q: %w", o.AdapterName, o.Name, err))
		}
	}
	return errors.Join(errs...)
}
