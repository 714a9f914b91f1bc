package adapters

import "context"

// Inspector is implemented by adapters that can say whether an instance
// really exists on their backend. Agora asks only when the platform
// engineer reconciles an instance (`agora admin instances reconcile`),
// to correct its record after a fault: a provision that failed in Agora's
// eyes but created the instance, or an instance someone deleted behind
// Agora's back. Never on a request path, so it may be slow.
type Inspector interface {
	Inspect(ctx context.Context, req InspectRequest) (InspectResult, error)
}

// InspectRequest names the instance to look for. Receipt is what Agora
// stored for it; it is empty for an instance whose provision failed, so
// an adapter should find its resources from InstanceID alone (as its
// Deprovision must anyway).
type InspectRequest struct {
	InstanceID string
	Offering   string
	Plan       Plan
	Receipt    Receipt
	Origin     Origin
}

// InspectResult is what the backend holds of the instance.
type InspectResult struct {
	// Exists says the instance's resources are there and usable. A
	// partial instance (a database without its owner role) is not: Agora
	// then records it failed, and the platform's delete cleans up the rest.
	Exists bool
	// Receipt, DashboardURL and Metadata are adopted when Agora marks an
	// instance ready that it had recorded as failed; leave them empty to
	// keep what Agora has.
	Receipt      Receipt
	DashboardURL string
	Metadata     Metadata
	// Detail says what was found, for the platform engineer: names of
	// resources, never a secret.
	Detail string
}
