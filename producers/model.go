package producers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters/conformance"
)

// State is where a producer is in her life.
type State string

// Producer states. A pending producer can sign in and read, but not put a
// slice; a suspended one can do neither. A suspended producer's live slice
// stays in the catalog: her existing instances still need it.
const (
	StatePending   State = "pending"
	StateActive    State = "active"
	StateSuspended State = "suspended"
)

// Producer is a producer team as the API shows it. It never carries the
// token or its hash.
type Producer struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
	// Namespace is the prefix every offering name of hers must start with
	// ("team-x-"), so teams cannot squat each other's names.
	Namespace string `json:"namespace"`
	State     State  `json:"state"`
	// AutoApproveSlices lets her slices go live as soon as the gate
	// passes, without an admin.
	AutoApproveSlices bool `json:"auto_approve_slices"`
	// LiveVersion is the slice version in the catalog; 0 when none.
	LiveVersion    int       `json:"live_version"`
	SelfRegistered bool      `json:"self_registered"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// SliceStatus is where a slice version is in its life.
type SliceStatus string

// Slice statuses. At most one version of a producer is live.
const (
	SlicePendingApproval SliceStatus = "pending_approval"
	SliceLive            SliceStatus = "live"
	SliceSuperseded      SliceStatus = "superseded"
	SliceRejected        SliceStatus = "rejected"
)

// SliceVersion is one stored version of a producer's slice.
type SliceVersion struct {
	Version int         `json:"version"`
	Status  SliceStatus `json:"status"`
	// Author is who made it: "producer:<name>" or "admin:<user>".
	Author string `json:"author"`
	// Action says how: "apply", "restore of v3", "deprecate plan x/y",
	// "remove offering x".
	Action    string    `json:"action"`
	CreatedAt time.Time `json:"created_at"`
	// DecidedAt and DecidedBy record the approval or rejection.
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"`
	Reason    string     `json:"reason,omitempty"`
	// BasedOn is the live version an edit by Agora (deprecate, remove)
	// started from; it goes live only while that is still the live one.
	BasedOn int `json:"based_on,omitempty"`
	// Offerings names the offerings of this version.
	Offerings []string    `json:"offerings"`
	Gate      *GateResult `json:"gate,omitempty"`
	// Slice is the YAML text, with the protocol secret replaced by its
	// vault: reference. Left out of version listings.
	Slice string `json:"slice,omitempty"`
}

// GateResult is the conformance gate's verdict on a slice: one report per
// offering, flattened into check lines.
type GateResult struct {
	Summary string      `json:"summary"`
	Failed  bool        `json:"failed"`
	Checks  []GateCheck `json:"checks"`
	// Note explains a version that did not run the gate (a deprecation
	// or removal changes no adapter).
	Note string `json:"note,omitempty"`
	// Unverified are the credential types the kit could not verify by
	// using them, as "offering: type", allowed by the platform engineer
	// or not.
	Unverified []string `json:"unverified,omitempty"`
	// NotAutoApprovable says why the slice may not go live without the
	// platform engineer, however trusted its producer: failed checks,
	// credential types nobody verified. Empty when nothing stands in the
	// way. The platform engineer sees it, with the checks, on approval.
	NotAutoApprovable []string `json:"not_auto_approvable,omitempty"`
}

// AutoApprovable reports whether the gate lets the slice go live without
// the platform engineer's decision.
func (g *GateResult) AutoApprovable() bool { return g != nil && len(g.NotAutoApprovable) == 0 }

// GateCheck is one check of the conformance kit against one offering.
type GateCheck struct {
	Offering string `json:"offering"`
	// Plan is the plan the kit ran with; reports stored before the gate
	// judged every plan have none.
	Plan       string `json:"plan,omitempty"`
	Name       string `json:"name"`
	Result     string `json:"result"` // pass, fail or skip
	Detail     string `json:"detail,omitempty"`
	Hint       string `json:"hint,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

// gateRun is one kit run of the gate: an offering, judged with one of
// its plans.
type gateRun struct {
	Offering, Plan string
	Report         conformance.Report
}

// where names the offering and plan of a run, for a reason or a note.
func (r gateRun) where() string {
	if r.Plan == "" {
		return "offering " + r.Offering
	}
	return fmt.Sprintf("offering %s plan %s", r.Offering, r.Plan)
}

// gateResult flattens the reports of every run, and says what keeps the
// slice from automatic approval: any failed check, on any plan, and any
// credential type the kit could not verify unless allowed names it.
func gateResult(runs []gateRun, allowed func(credentialType string) bool) *GateResult {
	g := &GateResult{Checks: []GateCheck{}}
	var passed, failed, skipped int
	for _, run := range runs {
		var failedHere []string
		for _, c := range run.Report.Results {
			gc := GateCheck{Offering: run.Offering, Plan: run.Plan, Name: c.Name, Result: c.Outcome(), Detail: c.Detail, Hint: c.Hint, DurationMS: c.Duration.Milliseconds()}
			switch gc.Result {
			case "skip":
				skipped++
			case "pass":
				passed++
			default:
				failed++
				failedHere = append(failedHere, c.Name)
			}
			g.Checks = append(g.Checks, gc)
		}
		if len(failedHere) > 0 {
			g.NotAutoApprovable = append(g.NotAutoApprovable, fmt.Sprintf("%s: %d check(s) failed: %s", run.where(), len(failedHere), strings.Join(failedHere, ", ")))
		}
		for _, t := range run.Report.Unverified {
			u := run.Offering + ": " + t
			if slices.Contains(g.Unverified, u) {
				continue // every plan of an offering returns the same type
			}
			g.Unverified = append(g.Unverified, u)
			if allowed == nil || !allowed(t) {
				g.NotAutoApprovable = append(g.NotAutoApprovable, fmt.Sprintf(
					"offering %s: the kit could not verify credentials of type %q by using them (the platform engineer may allow the type with gate.allow_unverified_types)", run.Offering, t))
			}
		}
	}
	g.Failed = failed > 0
	g.Summary = summary(passed, failed, skipped)
	return g
}

func summary(passed, failed, skipped int) string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", passed, failed, skipped)
}

// Created is the answer to creating or registering a producer, and to
// rotating a token: the only time the token is ever shown.
type Created struct {
	Producer Producer `json:"producer"`
	Token    string   `json:"token"`
}

// ApplyResult is the answer to putting, restoring, deprecating or
// removing: the new version and where it stands.
type ApplyResult struct {
	Producer string      `json:"producer"`
	Version  int         `json:"version"`
	Status   SliceStatus `json:"status"`
	Gate     *GateResult `json:"gate,omitempty"`
	// Warnings are things the producer should know that do not stop the
	// slice (an auto-approval that failed, a deprecation undone).
	Warnings []string `json:"warnings,omitempty"`
}

// FieldProblem is one validation problem, at a field path relative to the
// slice ("offerings[0].plans[1].id").
type FieldProblem struct {
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

// OfferingView is one offering of a producer's live slice.
type OfferingView struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	// InCatalog is false while the replica that answers has not loaded
	// the generation that made it live yet.
	InCatalog bool       `json:"in_catalog"`
	Hidden    bool       `json:"hidden"` // every plan is deprecated
	Plans     []PlanView `json:"plans"`
	Instances int        `json:"instances"`
	// Health is the canary's latest verdict on the offering; absent
	// while the canary has not run against it (or runs nowhere).
	Health *CanaryResult `json:"health,omitempty"`
}

// PlanView is one plan of an offering.
type PlanView struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Deprecated bool   `json:"deprecated"`
}

// InstanceView is one instance of a producer's offering. No credentials,
// no credential references, no receipts.
type InstanceView struct {
	ID       string `json:"id"`
	Offering string `json:"offering"`
	// Producer is set in the platform engineer's listing only.
	Producer  string         `json:"producer,omitempty"`
	ServiceID string         `json:"service_id"`
	Plan      string         `json:"plan"`
	PlanID    string         `json:"plan_id"`
	State     string         `json:"state"`
	LastOp    *OperationView `json:"last_operation,omitempty"`
	Bindings  []BindingView  `json:"bindings"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// BindingView is one binding of an instance, without its credentials.
type BindingView struct {
	ID        string         `json:"id"`
	AppGUID   string         `json:"app_guid,omitempty"`
	State     string         `json:"state"`
	LastOp    *OperationView `json:"last_operation,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// OperationView is the latest operation of an instance or binding.
type OperationView struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	State       string    `json:"state"`
	Async       bool      `json:"async"`
	Description string    `json:"description,omitempty"`
	InstanceID  string    `json:"instance_id"`
	BindingID   string    `json:"binding_id,omitempty"`
	Offering    string    `json:"offering"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Status is a producer's overview: her record, what is live, what waits.
type Status struct {
	Producer  Producer       `json:"producer"`
	Offerings []OfferingView `json:"offerings"`
	Pending   []int          `json:"pending_versions"`
	// Latest is her newest slice version (without its text), with the
	// gate's report: every check with its hint, and why it waits.
	Latest   *SliceVersion `json:"latest_version,omitempty"`
	Failures int           `json:"failed_operations"`
	// FailuresPartial says Failures counts the first page of her
	// instances only (agora producer operations --failed walks them all).
	FailuresPartial bool `json:"failed_operations_partial,omitempty"`
}

// CatalogStatus is what an admin sees of the catalog generations.
type CatalogStatus struct {
	Generation int64 `json:"generation"`
}
