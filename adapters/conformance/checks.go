package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// The names of the checks, in the order they run.
const (
	checkFactory               = "factory"
	checkUnknownConfig         = "factory-rejects-unknown-config"
	checkPing                  = "ping"
	checkProvision             = "provision"
	checkIdempotentProvision   = "idempotent-provision"
	checkBind                  = "bind"
	checkCredentialsWork       = "credentials-work"
	checkIdempotentBind        = "idempotent-bind"
	checkDistinctCredentials   = "distinct-credentials"
	checkIsolation             = "isolation"
	checkInvalidParameters     = "invalid-parameters"
	checkUnbind                = "unbind"
	checkCredentialsRevoked    = "credentials-revoked"
	checkIdempotentUnbind      = "idempotent-unbind"
	checkUnbindMissing         = "unbind-missing"
	checkBindMissingInstance   = "bind-missing-instance"
	checkUnbindMissingInstance = "unbind-missing-instance"
	checkUpdate                = "update"
	checkConcurrentRepeat      = "concurrent-repeat"
	checkContextCancellation   = "context-cancellation"
	checkDeprovisionRevokes    = "deprovision-revokes-bindings"
	checkDeprovision           = "deprovision"
	checkIdempotentDeprovision = "idempotent-deprovision"
	checkDeprovisionMissing    = "deprovision-missing"
	checkCleanup               = "cleanup"
	checkTimeouts              = "timeouts"
	checkErrorShapes           = "error-shapes"
)

// unknownField is added to the settings to prove the factory decodes them
// strictly.
const unknownField = "agora_conformance_unknown_field"

// Hints shared by several checks.
const (
	hintPanic = "Never panic in an adapter: return an error. Agora recovers, but the platform gets a bare 500 " +
		"and the operator only a stack trace"
	hintRace = "Agora may repeat a call while the first is still working (a platform retry after a timeout). " +
		"Serialise work per instance or binding (a lock, or the backend's own uniqueness) so at least one call succeeds, " +
		"the other succeeds too or returns a clear error, and a later repeat succeeds"
	hintCallback = "The Check function in conformance.Options failed on its own; fix it, or fix the adapter if it is right"
)

// verdict is what a check function decides; run adds the name and time.
type verdict struct {
	skipped, failed bool
	detail, hint    string
}

func pass() verdict { return verdict{} }

func skip(format string, args ...any) verdict {
	return verdict{skipped: true, detail: fmt.Sprintf(format, args...)}
}

func fail(hint, format string, args ...any) verdict {
	return verdict{failed: true, hint: hint, detail: fmt.Sprintf(format, args...)}
}

// hintFor prefers the hint for how a call failed (panic, hang, Pending
// without Poller) over the check's own.
func (r *runner) hintFor(err error, fallback string) string {
	var p *panicError
	var a *abandonedError
	switch {
	case errors.As(err, &p):
		return hintPanic
	case errors.As(err, &a), errors.Is(err, context.DeadlineExceeded):
		return r.say(wordsHonourCtx)
	case errors.Is(err, errPendingWithoutPoller):
		return r.say(wordsNoPoller)
	case errors.Is(err, errNoCredentials):
		return r.say(wordsNoCredentials)
	}
	return fallback
}

func isGoneError(err error) bool {
	return err == nil || errors.Is(err, adapters.ErrNotFound)
}

type step struct {
	name string
	run  func() verdict
	// needsAdapter steps are skipped when Factory.New failed.
	needsAdapter bool
	// always steps run even after ctx is cancelled: they clean up and
	// judge what already happened.
	always bool
}

func (r *runner) run() {
	defer r.finish()
	steps := []step{
		{checkFactory, r.checkFactory, false, false},
		{checkUnknownConfig, r.checkUnknownConfig, true, false},
		{checkPing, r.checkPing, true, false},
		{checkProvision, r.checkProvision, true, false},
		{checkIdempotentProvision, r.checkIdempotentProvision, true, false},
		{checkInspect, r.checkInspect, true, false},
		{checkBind, r.checkBind, true, false},
		{checkCredentialsWork, r.checkCredentialsWork, true, false},
		{checkIdempotentBind, r.checkIdempotentBind, true, false},
		{checkDistinctCredentials, r.checkDistinctCredentials, true, false},
		{checkIsolation, r.checkIsolation, true, false},
		{checkInvalidParameters, r.checkInvalidParameters, true, false},
		{checkUnbind, r.checkUnbind, true, false},
		{checkCredentialsRevoked, r.checkCredentialsRevoked, true, false},
		{checkIdempotentUnbind, r.checkIdempotentUnbind, true, false},
		{checkUnbindMissing, r.checkUnbindMissing, true, false},
		{checkBindMissingInstance, r.checkBindMissingInstance, true, false},
		{checkUnbindMissingInstance, r.checkUnbindMissingInstance, true, false},
		{checkUpdate, r.checkUpdate, true, false},
		{checkConcurrentRepeat, r.checkConcurrentRepeat, true, false},
		{checkContextCancellation, r.checkContextCancellation, true, false},
		{checkDeprovisionRevokes, r.checkDeprovisionRevokes, true, false},
		{checkDeprovision, r.checkDeprovision, true, false},
		{checkIdempotentDeprovision, r.checkIdempotentDeprovision, true, false},
		{checkDeprovisionMissing, r.checkDeprovisionMissing, true, false},
		{checkInspectGone, r.checkInspectGone, true, false},
		{checkCleanup, r.checkCleanup, true, true},
		{checkTimeouts, r.checkTimeouts, false, true},
		{checkErrorShapes, r.checkErrorShapes, false, true},
	}
	for _, s := range steps {
		start := time.Now()
		var v verdict
		switch {
		case s.needsAdapter && r.adapter == nil:
			v = skip("no adapter to test: Factory.New failed (see the factory check)")
		case !s.always && r.ctx.Err() != nil:
			// A cut-short run must not read as a pass in CI.
			v = fail("Run's context was cancelled (a test timeout, or Ctrl-C); run again with more time",
				"run cancelled before this check: %v", r.ctx.Err())
		default:
			v = s.run()
		}
		res := CheckResult{
			Name: s.name, Passed: !v.failed && !v.skipped, Skipped: v.skipped,
			Detail: v.detail, Hint: v.hint, Duration: time.Since(start),
		}
		r.results = append(r.results, res)
		r.log.printf("%s", res.line())
	}
}

// finish still cleans up when a check (or a Check function in Options)
// panicked through the kit, then releases the adapter.
func (r *runner) finish() {
	if r.adapter == nil {
		return
	}
	if !r.cleaned {
		r.cleanup()
	}
	r.closeAdapter(r.adapter)
}

func (r *runner) newAdapter(check string, settings adapters.Decoder) (adapters.Adapter, error) {
	ctx, cancel, deadline := r.callContext(r.ctx)
	defer cancel()
	cfg := adapters.Config{
		Offering: r.opts.Offering, Producer: "conformance", Settings: settings,
		Plans: r.opts.Plans, Logger: r.logger,
	}
	a, err := adapterCall(r, check, "Factory.New", deadline, func() (adapters.Adapter, error) {
		return r.opts.Factory.New(ctx, cfg)
	})
	if err == nil && a == nil {
		err = errors.New("Factory.New returned neither an adapter nor an error")
	}
	return a, err
}

func (r *runner) checkFactory() verdict {
	a, err := r.newAdapter(checkFactory, r.opts.Settings)
	if err != nil {
		return fail(r.hintFor(err, r.say(wordsFactory)),
			"Factory.New failed with the given settings: %s", r.describe(err))
	}
	r.adapter = a
	return pass()
}

func (r *runner) checkUnknownConfig() verdict {
	var settings map[string]any
	if err := r.opts.Settings.Decode(&settings); err != nil {
		return fail("Options.Settings must decode as a JSON object", "cannot add a field to Options.Settings: %v", err)
	}
	if settings == nil {
		settings = map[string]any{}
	}
	settings[unknownField] = true
	a, err := r.newAdapter(checkUnknownConfig, adapters.MapSettings(settings))
	var p *panicError
	var ab *abandonedError
	switch {
	case err == nil:
		r.closeAdapter(a)
		return fail("Decode settings with cfg.Settings.Decode into your settings struct: Agora's decoder rejects unknown fields, "+
			"so a typo in catalog.yml fails at startup instead of being ignored. Do not decode into a map or copy fields by hand; "+
			"an adapter without settings still calls cfg.Settings.Decode(&struct{}{})",
			"Factory.New accepted settings with the unknown field %q", unknownField)
	case errors.As(err, &p), errors.As(err, &ab):
		return fail(r.hintFor(err, ""), "%s", r.describe(err))
	}
	return pass()
}

func (r *runner) checkPing() verdict {
	pinger, ok := r.adapter.(adapters.Pinger)
	if !ok {
		return skip("%s", sayf(r, wordsNoCapability, "adapters.Pinger", "ping"))
	}
	ctx, cancel, deadline := r.callContext(r.ctx)
	defer cancel()
	_, err := adapterCall(r, checkPing, "Ping", deadline, func() (struct{}, error) {
		return struct{}{}, pinger.Ping(ctx)
	})
	if err != nil {
		return fail(r.hintFor(err, "Ping must return nil when the backend answers: check the settings (address, credentials) and that the backend runs"),
			"Ping: %s", r.describe(err))
	}
	return pass()
}

const needsInstance = "needs the instance from the provision check, which did not succeed"

func (r *runner) checkProvision() verdict {
	r.main = r.newInstance()
	if err := r.doProvision(r.ctx, checkProvision, r.main, r.opts.ProvisionParameters); err != nil {
		return fail(r.hintFor(err, r.say(wordsProvision)),
			"Provision of %s: %s", r.main.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkIdempotentProvision() verdict {
	if !r.created(r.main) {
		return skip(needsInstance)
	}
	err := r.doProvision(r.ctx, checkIdempotentProvision, r.main, r.opts.ProvisionParameters)
	if err == nil {
		return pass()
	}
	hint := r.say(wordsIdempotentProvision)
	if errors.Is(err, adapters.ErrAlreadyExists) {
		hint = r.say(wordsAlreadyExistsOnRepeat)
	}
	return fail(r.hintFor(err, hint), "repeated Provision of %s: %s", r.main.id, r.describe(err))
}

const needsBinding = "needs the binding from the bind check, which did not succeed"

func (r *runner) checkBind() verdict {
	if !r.created(r.main) {
		return skip(needsInstance)
	}
	r.first = r.newBinding(r.main)
	if _, err := r.doBind(r.ctx, checkBind, r.first); err != nil {
		return fail(r.hintFor(err, r.say(wordsBind)),
			"Bind of %s: %s", r.first.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkCredentialsWork() verdict {
	creds := r.latest(r.first)
	if creds == nil {
		return skip(needsBinding)
	}
	u := r.use(creds)
	if u.works == nil {
		return r.unverified(u.typ)
	}
	if err := r.callback("CheckCredentials", func(ctx context.Context) error { return u.works(ctx, creds) }); err != nil {
		return fail("The credentials Bind returns must work as soon as Bind returns (or Poll reports Succeeded): create the user and grant "+
			"its access before that. "+r.usedBy(u),
			"the credentials from Bind (type %s) do not work: %s", u.typ, r.describe(err))
	}
	return pass()
}

func (r *runner) checkIdempotentBind() verdict {
	if r.latest(r.first) == nil {
		return skip(needsBinding)
	}
	creds, err := r.doBind(r.ctx, checkIdempotentBind, r.first)
	if err != nil {
		return fail(r.hintFor(err, "A repeat of the same Bind must succeed and return credentials that work. An adapter that cannot read the "+
			"old password back sets a new one and returns that"),
			"repeated Bind of %s: %s", r.first.id, r.describe(err))
	}
	u := r.use(creds)
	if u.works == nil {
		// credentials-work already reported the type as unverified.
		return pass()
	}
	if err := r.callback("CheckCredentials", func(ctx context.Context) error { return u.works(ctx, creds) }); err != nil {
		return fail("After a repeated Bind, the credentials it returned are the ones Agora keeps, so they must work. If you rotate the "+
			"password on a repeat, return the new one. "+r.usedBy(u),
			"the credentials from the repeated Bind (type %s) do not work: %s", u.typ, r.describe(err))
	}
	return pass()
}

func (r *runner) checkDistinctCredentials() verdict {
	first := r.latest(r.first)
	if first == nil {
		return skip(needsBinding)
	}
	r.second = r.newBinding(r.main)
	second, err := r.doBind(r.ctx, checkDistinctCredentials, r.second)
	if err != nil {
		return fail(r.hintFor(err, "Bind must work for every new binding on an instance, not only the first"),
			"Bind of a second binding %s: %s", r.second.id, r.describe(err))
	}
	if why := sameLogin(first, second); why != "" {
		return fail("Create a distinct user (or key) with a fresh random password for each binding, so that unbinding one "+
			"application revokes only that application's access", "%s", why)
	}
	return pass()
}

func (r *runner) checkIsolation() verdict {
	credsA := r.latest(r.first)
	if credsA == nil {
		return skip(needsBinding)
	}
	u := r.use(credsA)
	if u.isolated == nil {
		return r.unverified(u.typ)
	}
	if u.works != nil {
		if err := r.callback("CheckCredentials", func(ctx context.Context) error { return u.works(ctx, credsA) }); err != nil {
			return skip("needs credentials that work, and the first binding's do not (see credentials-work)")
		}
	}
	other := r.newInstance()
	binding := r.newBinding(other)
	defer r.removeQuietly(checkIsolation, other, binding)
	if err := r.doProvision(r.ctx, checkIsolation, other, r.opts.ProvisionParameters); err != nil {
		return fail(r.hintFor(err, "Provision must work for a second instance too"),
			"Provision of a second instance %s: %s", other.id, r.describe(err))
	}
	credsB, err := r.doBind(r.ctx, checkIsolation, binding)
	if err != nil {
		return fail(r.hintFor(err, "Bind must work on a second instance too"),
			"Bind on the second instance %s: %s", other.id, r.describe(err))
	}
	if u.works != nil {
		if err := r.callback("CheckCredentials", func(ctx context.Context) error { return u.works(ctx, credsB) }); err != nil {
			return fail(r.usedBy(u), "the credentials of the second instance %s do not work: %s", other.id, r.describe(err))
		}
	}
	hint := "Scope each binding's credentials to its own instance: grant them on that instance's database, vhost, key prefix or path only. " + r.usedBy(u)
	if err := r.callback("CheckIsolation", func(ctx context.Context) error { return u.isolated(ctx, credsA, credsB) }); err != nil {
		return fail(hint, "credentials of instance %s reach the data of instance %s: %s", r.main.id, other.id, r.describe(err))
	}
	if err := r.callback("CheckIsolation", func(ctx context.Context) error { return u.isolated(ctx, credsB, credsA) }); err != nil {
		return fail(hint, "credentials of instance %s reach the data of instance %s: %s", other.id, r.main.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkInvalidParameters() verdict {
	if r.opts.InvalidProvisionParameters == nil {
		return skip("%s", r.say(wordsNoInvalidParameters))
	}
	inst := r.newInstance()
	err := r.doProvision(r.ctx, checkInvalidParameters, inst, r.opts.InvalidProvisionParameters)
	// Deprovision whatever happened: it removes what an adapter that
	// accepted the parameters created, and proves a rejection created nothing.
	derr := r.doDeprovision(r.ctx, checkInvalidParameters, inst)
	hint := r.say(wordsInvalidParameters)
	switch {
	case err == nil:
		detail := fmt.Sprintf("Provision accepted the invalid parameters %s", r.describeParams(r.opts.InvalidProvisionParameters))
		if r.opts.invalidWhy != "" {
			detail += " (derived from the plan's schema: " + r.opts.invalidWhy + ")"
		}
		return fail(hint, "%s", detail)
	case !errors.Is(err, adapters.ErrInvalidParameters):
		return fail(r.hintFor(err, hint), "Provision rejected the invalid parameters, but not as invalid parameters: %s", r.describe(err))
	case !isGoneError(derr):
		return fail(r.hintFor(derr, "A rejected Provision must create nothing. "+sayf(r, wordsGoneIsSuccess, "instance")),
			"Deprovision after the rejected Provision: %s", r.describe(derr))
	}
	return pass()
}

func (r *runner) checkUnbind() verdict {
	if r.latest(r.first) == nil {
		return skip(needsBinding)
	}
	var problems []string
	hint := r.say(wordsUnbind)
	for _, b := range []*bindingRef{r.second, r.first} {
		if r.latest(b) == nil {
			continue
		}
		err := r.doUnbind(r.ctx, checkUnbind, b)
		switch {
		case err == nil:
		case errors.Is(err, adapters.ErrNotFound):
			problems = append(problems, fmt.Sprintf("Unbind of %s reported not found for a binding Bind created: %s", b.id, r.describe(err)))
			hint = r.say(wordsUnbindFinds)
		default:
			problems = append(problems, fmt.Sprintf("Unbind of %s: %s", b.id, r.describe(err)))
			hint = r.hintFor(err, hint)
		}
	}
	if len(problems) > 0 {
		return fail(hint, "%s", strings.Join(problems, "\n"))
	}
	return pass()
}

func (r *runner) checkCredentialsRevoked() verdict {
	if !r.gone(r.first) {
		return skip("needs the binding removed by the unbind check, which did not succeed")
	}
	u := r.use(r.latest(r.first))
	if u.revoked == nil {
		return r.unverified(u.typ)
	}
	var problems []string
	for _, b := range []*bindingRef{r.first, r.second} {
		if !r.gone(b) {
			continue
		}
		r.mu.Lock()
		issued := slices.Clone(b.issued)
		r.mu.Unlock()
		for i, creds := range issued {
			if err := r.callback("CheckRevoked", func(ctx context.Context) error { return u.revoked(ctx, creds) }); err != nil {
				problems = append(problems, fmt.Sprintf("binding %s, credentials %d of %d issued: %s", b.id, i+1, len(issued), r.describe(err)))
			}
		}
	}
	if len(problems) > 0 {
		return fail("Unbind must revoke every credential issued for the binding, including those from repeated Bind calls. "+r.usedBy(u),
			"credentials still work after Unbind:\n%s", strings.Join(problems, "\n"))
	}
	return pass()
}

func (r *runner) checkIdempotentUnbind() verdict {
	if !r.gone(r.first) {
		return skip("needs the binding removed by the unbind check, which did not succeed")
	}
	if err := r.doUnbind(r.ctx, checkIdempotentUnbind, r.first); !isGoneError(err) {
		return fail(r.hintFor(err, sayf(r, wordsGoneIsSuccess, "binding")),
			"repeated Unbind of %s: %s", r.first.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkUnbindMissing() verdict {
	if !r.created(r.main) {
		return skip(needsInstance)
	}
	// Not tracked for cleanup: nothing was ever bound under this ID.
	missing := &bindingRef{id: newID(), instance: r.main}
	if err := r.unbind(r.ctx, checkUnbindMissing, r.unbindRequest(missing)); !isGoneError(err) {
		return fail(r.hintFor(err, sayf(r, wordsGoneIsSuccess, "binding")+"; that includes a binding the adapter never created"),
			"Unbind of never-created binding %s: %s", missing.id, r.describe(err))
	}
	return pass()
}

// checkBindMissingInstance binds to an instance that was never
// provisioned: the adapter must answer not found and issue nothing.
func (r *runner) checkBindMissingInstance() verdict {
	// Tracked for cleanup: an adapter that wrongly binds (or creates the
	// instance on the way) must not leave that behind.
	missing := r.newInstance()
	b := r.newBinding(missing)
	creds, err := r.doBind(r.ctx, checkBindMissingInstance, b)
	switch {
	case err == nil:
		// The credentials are not used: a check that wrote with them would
		// itself create something in a space no deprovision removes.
		return fail(r.say(wordsBindMissingInstance), "Bind on never-provisioned instance %s returned credentials (type %s) instead of not found",
			missing.id, r.use(creds).typ)
	case errors.Is(err, adapters.ErrNotFound):
		r.mu.Lock()
		b.gone = true
		r.mu.Unlock()
		return pass()
	}
	return fail(r.hintFor(err, r.say(wordsBindMissingInstance)), "Bind on never-provisioned instance %s: %s", missing.id, r.describe(err))
}

// checkUnbindMissingInstance unbinds from an instance that was never
// provisioned: gone is success, anything else fails a platform's retry.
func (r *runner) checkUnbindMissingInstance() verdict {
	missing := &bindingRef{id: newID(), instance: &instanceRef{id: newID()}}
	if err := r.unbind(r.ctx, checkUnbindMissingInstance, r.unbindRequest(missing)); !isGoneError(err) {
		return fail(r.hintFor(err, sayf(r, wordsGoneIsSuccess, "binding")+"; that includes a binding of an instance that never existed"),
			"Unbind on never-provisioned instance %s: %s", missing.instance.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkUpdate() verdict {
	updater, ok := r.adapter.(adapters.Updater)
	if !ok {
		return skip("%s", sayf(r, wordsNoCapability, "adapters.Updater", "update"))
	}
	if !r.created(r.main) {
		return skip(needsInstance)
	}
	res, err := r.update(r.ctx, checkUpdate, updater, r.updateRequest(r.main))
	if err != nil {
		return fail(r.hintFor(err, "An Update that changes nothing (same plan, same parameters) must succeed: platforms send one when only "+
			"the instance's name or context changes"),
			"Update of %s to the same plan with the same parameters: %s", r.main.id, r.describe(err))
	}
	if res.Receipt != nil {
		r.mu.Lock()
		r.main.receipt = maps.Clone(res.Receipt)
		r.mu.Unlock()
	}
	return pass()
}

// twice runs fn on two goroutines at once.
func twice(fn func() error) [2]error {
	var errs [2]error
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = fn() })
	}
	wg.Wait()
	return errs
}

func (r *runner) raceVerdict(op string, errs [2]error) (verdict, bool) {
	for _, err := range errs {
		var p *panicError
		if errors.As(err, &p) {
			return fail(hintPanic, "one of two concurrent %s calls: %s", op, r.describe(err)), true
		}
	}
	if errs[0] != nil && errs[1] != nil {
		return fail(r.hintFor(errs[0], hintRace), "neither of two concurrent %s calls succeeded:\nfirst: %s\nsecond: %s",
			op, r.describe(errs[0]), r.describe(errs[1])), true
	}
	return verdict{}, false
}

func (r *runner) checkConcurrentRepeat() verdict {
	const check = checkConcurrentRepeat
	inst := r.newInstance()
	errs := twice(func() error { return r.doProvision(r.ctx, check, inst, r.opts.ProvisionParameters) })
	if v, bad := r.raceVerdict("Provision", errs); bad {
		return v
	}
	if err := r.doProvision(r.ctx, check, inst, r.opts.ProvisionParameters); err != nil {
		return fail(r.hintFor(err, hintRace), "Provision of %s after two concurrent Provision calls: %s", inst.id, r.describe(err))
	}
	b := r.newBinding(inst)
	errs = twice(func() error { _, err := r.doBind(r.ctx, check, b); return err })
	if v, bad := r.raceVerdict("Bind", errs); bad {
		return v
	}
	if _, err := r.doBind(r.ctx, check, b); err != nil {
		return fail(r.hintFor(err, hintRace), "Bind of %s after two concurrent Bind calls: %s", b.id, r.describe(err))
	}
	if err := r.doUnbind(r.ctx, check, b); err != nil {
		return fail(r.hintFor(err, hintRace), "Unbind of %s after the concurrent Bind calls: %s", b.id, r.describe(err))
	}
	if err := r.doDeprovision(r.ctx, check, inst); err != nil {
		return fail(r.hintFor(err, hintRace), "Deprovision of %s after the concurrent Provision calls: %s", inst.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkContextCancellation() verdict {
	const check = checkContextCancellation
	inst := r.newInstance()
	defer r.removeQuietly(check, inst)
	cancelled, cancel := context.WithCancel(r.ctx)
	cancel()
	req := r.provisionRequest(inst, r.opts.ProvisionParameters)
	start := time.Now()
	// Called directly, not through the Pending driver: accepting work on
	// a cancelled context is already the failure.
	res, err := adapterCall(r, check, "Provision", start.Add(r.opts.CallTimeout), func() (adapters.ProvisionResult, error) {
		return r.adapter.Provision(cancelled, req)
	})
	hint := r.say(wordsHonourCtx) + ". Agora cancels a call when the platform gives up on it; work done after that is orphaned"
	var p *panicError
	switch {
	case errors.As(err, &p):
		return fail(hintPanic, "Provision with a cancelled context: %s", r.describe(err))
	case time.Since(start) >= r.opts.CallTimeout:
		return fail(hint, "Provision with an already-cancelled context did not return within %s (%s)", r.say(wordsTimeoutName), r.opts.CallTimeout)
	case err == nil && res.Pending:
		return fail(hint, "Provision with an already-cancelled context accepted the work (returned Pending) instead of an error")
	case err == nil:
		return fail(hint, "Provision with an already-cancelled context succeeded instead of returning an error")
	}
	return pass()
}

// checkDeprovisionRevokes deprovisions an instance that still has a
// binding, as a platform's orphan mitigation does (it never unbinds
// first), and proves the binding's credentials stopped working.
func (r *runner) checkDeprovisionRevokes() verdict {
	const check = checkDeprovisionRevokes
	inst := r.newInstance()
	b := r.newBinding(inst)
	defer r.removeQuietly(check, inst, b)
	if err := r.doProvision(r.ctx, check, inst, r.opts.ProvisionParameters); err != nil {
		return fail(r.hintFor(err, "Provision must work for every new instance"), "Provision of %s: %s", inst.id, r.describe(err))
	}
	creds, err := r.doBind(r.ctx, check, b)
	if err != nil {
		return fail(r.hintFor(err, "Bind must work for every new binding"), "Bind of %s: %s", b.id, r.describe(err))
	}
	u := r.use(creds)
	if u.works == nil || u.revoked == nil {
		return r.unverified(u.typ)
	}
	if err := r.callback("CheckCredentials", func(ctx context.Context) error { return u.works(ctx, creds) }); err != nil {
		return skip("the credentials from Bind did not work before the deprovision either (see credentials-work)")
	}
	if err := r.doDeprovision(r.ctx, check, inst); err != nil {
		return fail(r.hintFor(err, r.say(wordsDeprovisionBindings)), "Deprovision of %s, which still has binding %s: %s", inst.id, b.id, r.describe(err))
	}
	r.mu.Lock()
	b.gone = true // the instance took it along; nothing is left to unbind
	r.mu.Unlock()
	if err := r.callback("CheckRevoked", func(ctx context.Context) error { return u.revoked(ctx, creds) }); err != nil {
		return fail(r.say(wordsDeprovisionBindings)+". "+r.usedBy(u),
			"credentials of binding %s still work after its instance %s was deprovisioned without an unbind first: %s", b.id, inst.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkDeprovision() verdict {
	if !r.created(r.main) {
		return skip(needsInstance)
	}
	err := r.doDeprovision(r.ctx, checkDeprovision, r.main)
	switch {
	case err == nil:
		return pass()
	case errors.Is(err, adapters.ErrNotFound):
		return fail(r.say(wordsDeprovisionFinds),
			"Deprovision of %s reported not found for an instance Provision created: %s", r.main.id, r.describe(err))
	}
	return fail(r.hintFor(err, r.say(wordsDeprovision)),
		"Deprovision of %s: %s", r.main.id, r.describe(err))
}

func (r *runner) checkIdempotentDeprovision() verdict {
	if !r.gone(r.main) {
		return skip("needs the instance removed by the deprovision check, which did not succeed")
	}
	if err := r.deprovision(r.ctx, checkIdempotentDeprovision, r.deprovisionRequest(r.main)); !isGoneError(err) {
		return fail(r.hintFor(err, sayf(r, wordsGoneIsSuccess, "instance")),
			"repeated Deprovision of %s: %s", r.main.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkDeprovisionMissing() verdict {
	// Not tracked for cleanup: nothing was ever provisioned under this ID.
	missing := &instanceRef{id: newID()}
	if err := r.deprovision(r.ctx, checkDeprovisionMissing, r.deprovisionRequest(missing)); !isGoneError(err) {
		return fail(r.hintFor(err, sayf(r, wordsGoneIsSuccess, "instance")+"; that includes an instance the adapter never created"),
			"Deprovision of never-created instance %s: %s", missing.id, r.describe(err))
	}
	return pass()
}

func (r *runner) checkCleanup() verdict {
	left := r.cleanup()
	for attempt := 1; len(left) > 0 && attempt < r.opts.CleanupAttempts; attempt++ {
		time.Sleep(time.Duration(attempt) * time.Second)
		left = r.cleanup()
	}
	if len(left) > 0 {
		return fail("Unbind and Deprovision must succeed for everything the run created. Remove the leftovers listed here from the "+
			"backend by hand; every ID the kit uses starts with conf-",
			"could not remove what the run created:\n%s", strings.Join(left, "\n"))
	}
	return pass()
}

// cleanup removes every binding, then every instance, the run created and
// has not seen removed. It ignores the caller's cancellation: a run cut
// short must not leave resources on a producer's real backend.
func (r *runner) cleanup() (left []string) {
	r.cleaned = true
	ctx := context.WithoutCancel(r.ctx)
	r.mu.Lock()
	bindings, instances := slices.Clone(r.bindings), slices.Clone(r.instances)
	r.mu.Unlock()
	for _, b := range bindings {
		// Deprovision takes an instance's bindings with it.
		if r.gone(b) || r.gone(b.instance) {
			continue
		}
		if err := r.doUnbind(ctx, checkCleanup, b); !isGoneError(err) {
			left = append(left, fmt.Sprintf("binding %s of instance %s: Unbind: %s", b.id, b.instance.id, r.describe(err)))
		}
	}
	for _, inst := range instances {
		if r.gone(inst) {
			continue
		}
		if err := r.doDeprovision(ctx, checkCleanup, inst); !isGoneError(err) {
			left = append(left, fmt.Sprintf("instance %s: Deprovision: %s", inst.id, r.describe(err)))
		}
	}
	return left
}

func (r *runner) checkTimeouts() verdict {
	r.mu.Lock()
	calls := slices.Clone(r.calls)
	r.mu.Unlock()
	var slow []string
	for _, c := range calls {
		switch {
		case c.timing.abandoned:
			slow = append(slow, fmt.Sprintf("%s (in %s): still running after %s; abandoned", c.op, c.check, roundDuration(c.timing.elapsed)))
		case c.timing.exceeded:
			slow = append(slow, fmt.Sprintf("%s (in %s): took %s", c.op, c.check, roundDuration(c.timing.elapsed)))
		}
	}
	if len(slow) > 0 {
		return fail(r.say(wordsHonourCtx)+". Agora gives every call a deadline (Cloud Controller gives up after 60s); a call that ignores it "+
			"holds a worker and the instance's lock",
			"%d of %d calls exceeded %s (%s):\n%s", len(slow), len(calls), r.say(wordsTimeoutName), r.opts.CallTimeout, strings.Join(slow, "\n"))
	}
	return pass()
}

// maxProblems keeps a report readable when every call fails the same way.
const maxProblems = 10

func (r *runner) checkErrorShapes() verdict {
	r.mu.Lock()
	errs := slices.Clone(r.errs)
	secrets := maps.Clone(r.secrets)
	r.mu.Unlock()
	values := slices.Collect(maps.Keys(secrets))
	slices.Sort(values)

	var problems, hints []string
	addHint := func(h string) {
		if !slices.Contains(hints, h) {
			hints = append(hints, h)
		}
	}
	for _, e := range errs {
		msg, panicked := safeMessage(e.err)
		where := fmt.Sprintf("%s (in %s)", e.op, e.check)
		switch {
		case panicked:
			problems = append(problems, fmt.Sprintf("%s returned an error whose %s", where, msg))
			addHint("Error() must not panic: never return a typed nil pointer as an error, and give adapters.TerminalError a non-nil Err")
		case strings.TrimSpace(msg) == "":
			problems = append(problems, fmt.Sprintf("%s returned an error with an empty message (%T)", where, e.err))
			addHint(r.say(wordsEmptyMessage))
		default:
			for _, v := range values {
				if strings.Contains(msg, v) {
					problems = append(problems, fmt.Sprintf("%s: its text contains the credential %s", where, secrets[v]))
					addHint("Never put a credential in an error or a Poll description: Agora logs errors and shows them to app developers. " +
						"Name the user or the resource instead")
					break
				}
			}
		}
	}
	if len(problems) == 0 {
		return pass()
	}
	n := len(problems)
	if n > maxProblems {
		problems = append(problems[:maxProblems], fmt.Sprintf("and %d more", n-maxProblems))
	}
	return fail(strings.Join(hints, ". "), "%d of %d errors are malformed or leak secrets:\n%s", n, len(errs), strings.Join(problems, "\n"))
}
