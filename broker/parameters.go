package broker

import (
	"context"
	"errors"
	"maps"

	"github.com/agora-osb/agora/broker/catalog"
)

// The parameters an instance or a binding has are what GET instance and
// GET binding return, what an update merges into and what a rotation
// hands on. They may hold secrets, so they live in the credential store
// (Vault) and the record keeps a reference (ParametersRef).
//
// Commit discipline: each successful operation writes the parameters it
// leaves in force to a secret of its own (keyed by the operation ID)
// before the commit that points the record at it, and the secret it
// replaces is deleted only after that commit. The record therefore only
// ever points at a complete secret. A failure between the steps leaves at
// worst a secret no record points to, which the orphan sweep finds
// (orphans.go) and a retry of the same operation overwrites.

// putCurrentParameters stores params as what t's instance or binding has
// once t's operation succeeds, and returns the reference for the record
// ("" for none: nothing is written for {}).
func (b *Broker) putCurrentParameters(ctx context.Context, t *task, params map[string]any) (string, error) {
	if len(params) == 0 {
		return "", nil
	}
	ref, err := b.creds.PutCurrentParameters(ctx, t.inst.ID, t.op.ID, params)
	if err != nil {
		return "", credErr(err)
	}
	return ref, nil
}

// parametersAfterUpdate returns the reference of the parameters an
// updated instance has. The spec: a request without parameters changes
// none, and platforms send only the ones the user named, so the update's
// parameters are merged into the instance's, key by key at the top
// level; a key sent as null is removed.
func (b *Broker) parametersAfterUpdate(ctx context.Context, t *task) (string, error) {
	if len(t.params) == 0 {
		return t.inst.ParametersRef, nil
	}
	current, err := b.readParameters(ctx, t.inst.ParametersRef)
	if err != nil {
		return "", err
	}
	return b.putCurrentParameters(ctx, t, mergeParameters(current, t.params))
}

// adoptKeptParameters makes the parameters a failed operation kept for a
// retry the ones an instance has, for a reconcile that finds that the
// operation's work was done after all ("" when it kept none).
func (b *Broker) adoptKeptParameters(ctx context.Context, instanceID, operationID string, failed *Operation) (string, error) {
	if failed == nil || failed.ParametersRef == "" {
		return "", nil
	}
	params, err := b.readParameters(ctx, failed.ParametersRef)
	if err != nil || len(params) == 0 {
		return "", err
	}
	ref, err := b.creds.PutCurrentParameters(ctx, instanceID, operationID, params)
	if err != nil {
		return "", credErr(err)
	}
	return ref, nil
}

// mergeParameters returns current with update's top-level keys applied.
func mergeParameters(current, update map[string]any) map[string]any {
	merged := maps.Clone(current)
	if merged == nil {
		merged = map[string]any{}
	}
	for k, v := range update {
		if v == nil {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	return merged
}

// readParameters reads the parameters at ref ({} for none). A secret
// that is gone (deleted by hand, say) reads as none: the instance keeps
// working, and the platform sees {} rather than an error on every GET.
func (b *Broker) readParameters(ctx context.Context, ref string) (map[string]any, error) {
	if ref == "" {
		return map[string]any{}, nil
	}
	params, err := b.creds.GetParameters(ctx, ref)
	switch {
	case errors.Is(err, ErrNotFound):
		b.log.Warn("the parameters a record points to are gone from Vault; reading them as none", "ref", ref)
		return map[string]any{}, nil
	case err != nil:
		return nil, credErr(err)
	}
	if params == nil {
		params = map[string]any{}
	}
	return params, nil
}

// shownParameters is what GET instance and GET binding return as
// parameters: nil (the field left out, as the spec allows) when the plan
// marks them sensitive, or is no longer in the catalog to say, else the
// stored ones, {} when there are none.
func (b *Broker) shownParameters(ctx context.Context, plan *catalog.Plan, ref string) (map[string]any, error) {
	if plan == nil || plan.SensitiveParameters {
		return nil, nil
	}
	return b.readParameters(ctx, ref)
}

// dropReplacedParameters deletes, once m is committed, the parameters
// secrets that m left without a record: an instance's previous ones
// after an update, an instance's or binding's after it is deleted. A
// failure leaves an orphan for the sweep, so it is logged, not returned.
func (b *Broker) dropReplacedParameters(ctx context.Context, t *task, m Mutation) {
	var stale []string
	if inst := t.inst; inst != nil && inst.ParametersRef != "" {
		if m.DeleteInstance || (m.PutInstance != nil && m.PutInstance.ParametersRef != inst.ParametersRef) {
			stale = append(stale, inst.ParametersRef)
		}
	}
	if bnd := t.binding; bnd != nil && bnd.ParametersRef != "" && m.DeleteBinding == bnd.ID {
		stale = append(stale, bnd.ParametersRef)
	}
	for _, ref := range stale {
		b.dropSecret(ctx, ref, "replaced or deleted parameters")
	}
}

// dropSecret deletes a secret that no record points to any more; a
// failure leaves an orphan for the sweep (agora admin orphans).
func (b *Broker) dropSecret(ctx context.Context, ref, what string) {
	if err := b.creds.Delete(context.WithoutCancel(ctx), ref); err != nil {
		b.log.Warn("delete "+what+" from Vault; `agora admin orphans` finds the leftover", "ref", ref, "error", err)
	}
}
