package conformance

import (
	"context"
	"errors"
	"maps"

	"github.com/agora-osb/agora/adapters"
)

// The checks of adapters.Inspector, which Agora's reconcile relies on to
// correct its records: an adapter that answers wrongly would have Agora
// fail a healthy instance, or hand out bindings to one that is gone.
const (
	checkInspect     = "inspect"
	checkInspectGone = "inspect-gone"
)

var wordsInspect = words{
	goText: "Inspect must report Exists for an instance Provision created, whether or not Agora passes its Receipt " +
		"(an instance whose provision Agora recorded as failed has none): derive names from the instance ID, as Deprovision does; " +
		"and it must report Exists false, with no error, for an instance the backend does not have",
	protocol: "GET /v1/instances/{id} must answer \"exists\": true for an instance provision created, with or without its \"receipt\" " +
		"(derive names from the instance ID, as deprovision does), and \"exists\": false with 200 for one the backend does not have" + docs("inspect-capability-inspect"),
}

// inspect calls Inspect under the kit's guards; ok is false when the
// adapter does not inspect (not an Inspector, or one that says
// ErrNotSupported, as a remote adapter without the capability does).
func (r *runner) inspect(ctx context.Context, check string, inst *instanceRef, withReceipt bool) (res adapters.InspectResult, ok bool, err error) {
	inspector, is := r.adapter.(adapters.Inspector)
	if !is {
		return res, false, nil
	}
	r.mu.Lock()
	req := adapters.InspectRequest{InstanceID: inst.id, Offering: r.opts.Offering, Plan: r.plan, Origin: r.origin()}
	if withReceipt {
		req.Receipt = maps.Clone(inst.receipt)
	}
	r.mu.Unlock()
	ctx, cancel, deadline := r.callContext(ctx)
	defer cancel()
	res, err = adapterCall(r, check, "Inspect", deadline, func() (adapters.InspectResult, error) {
		return inspector.Inspect(ctx, req)
	})
	if errors.Is(err, adapters.ErrNotSupported) {
		return res, false, nil
	}
	return res, true, err
}

func (r *runner) checkInspect() verdict {
	if !r.created(r.main) {
		return skip(needsInstance)
	}
	for _, withReceipt := range []bool{true, false} {
		res, ok, err := r.inspect(r.ctx, checkInspect, r.main, withReceipt)
		switch {
		case !ok:
			return skip("%s", sayf(r, wordsNoCapability, "adapters.Inspector", "inspect"))
		case err != nil:
			return fail(r.hintFor(err, r.say(wordsInspect)), "Inspect of %s (receipt passed: %t): %s", r.main.id, withReceipt, r.describe(err))
		case !res.Exists:
			return fail(r.say(wordsInspect), "Inspect of %s, which Provision created, reported Exists false (receipt passed: %t; detail %q)", r.main.id, withReceipt, res.Detail)
		}
	}
	missing := &instanceRef{id: newID()}
	res, _, err := r.inspect(r.ctx, checkInspect, missing, false)
	switch {
	case err != nil:
		return fail(r.hintFor(err, r.say(wordsInspect)), "Inspect of never-created instance %s: %s", missing.id, r.describe(err))
	case res.Exists:
		return fail(r.say(wordsInspect), "Inspect of never-created instance %s reported Exists (detail %q)", missing.id, res.Detail)
	}
	return pass()
}

func (r *runner) checkInspectGone() verdict {
	if !r.gone(r.main) {
		return skip("needs the instance removed by the deprovision check, which did not succeed")
	}
	res, ok, err := r.inspect(r.ctx, checkInspectGone, r.main, true)
	switch {
	case !ok:
		return skip("%s", sayf(r, wordsNoCapability, "adapters.Inspector", "inspect"))
	case err != nil:
		return fail(r.hintFor(err, r.say(wordsInspect)), "Inspect of deprovisioned instance %s: %s", r.main.id, r.describe(err))
	case res.Exists:
		return fail(r.say(wordsInspect), "Inspect of %s reported Exists after Deprovision succeeded (detail %q)", r.main.id, res.Detail)
	}
	return pass()
}
