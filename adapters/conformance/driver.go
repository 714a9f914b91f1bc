package conformance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// The driver runs every adapter call the way Agora's broker would: with a
// deadline, following Pending results through Poller, and surviving
// panics and adapters that never return. It only ever talks to the
// adapters.Adapter interface, so the same checks serve an in-process Go
// adapter and a client for a remote one.

// errPendingWithoutPoller is the kit's own verdict, not an adapter error.
var errPendingWithoutPoller = errors.New("returned Pending, but the adapter does not implement adapters.Poller")

// errNoCredentials: Bind (or its Poll) succeeded with nothing to bind.
var errNoCredentials = errors.New("returned no credentials")

// panicError is a recovered panic, with the first frames of the stack
// below the panic so the producer sees her own code first.
type panicError struct {
	value any
	stack string
}

func (e *panicError) Error() string {
	return fmt.Sprintf("panic: %v\n%s", e.value, e.stack)
}

// abandonedError: the adapter ignored its ctx past CallTimeout and a grace
// period as long again, so the kit stopped waiting for it.
type abandonedError struct {
	op     string
	waited time.Duration
}

func (e *abandonedError) Error() string {
	return fmt.Sprintf("%s was still running %s after it started, long past its deadline, so the kit stopped waiting: it ignores ctx", e.op, roundDuration(e.waited))
}

// timing is what the timeouts check needs to know about one call.
type timing struct {
	elapsed   time.Duration
	exceeded  bool
	abandoned bool
}

// outcome crosses from the call's goroutine over a channel, so an
// abandoned call can never race with the kit over a shared variable.
type outcome[T any] struct {
	val T
	err error
}

// guard runs fn on its own goroutine, turning a panic into an error. It
// waits until deadline, then as long as CallTimeout again for an adapter
// that is slow to notice its ctx, and then gives up on it: a hung adapter
// must not hang the run, and a slow one should still be judged on what it
// returns.
func guard[T any](op string, deadline time.Time, grace time.Duration, fn func() (T, error)) (T, timing, error) {
	start := time.Now()
	done := make(chan outcome[T], 1)
	go func() {
		var o outcome[T]
		defer func() {
			if p := recover(); p != nil {
				o = outcome[T]{err: &panicError{value: p, stack: panicStack()}}
			}
			done <- o
		}()
		o.val, o.err = fn()
	}()

	wait := time.NewTimer(time.Until(deadline))
	defer wait.Stop()
	select {
	case o := <-done:
		elapsed := time.Since(start)
		return o.val, timing{elapsed: elapsed, exceeded: !time.Now().Before(deadline)}, o.err
	case <-wait.C:
	}
	wait.Reset(grace)
	select {
	case o := <-done:
		return o.val, timing{elapsed: time.Since(start), exceeded: true}, o.err
	case <-wait.C:
		var zero T
		elapsed := time.Since(start)
		return zero, timing{elapsed: elapsed, exceeded: true, abandoned: true}, &abandonedError{op: op, waited: elapsed}
	}
}

// panicStack returns up to four frames just below the panic call, and
// none of the kit's own: they would only bury the producer's line.
func panicStack() string {
	kit := reflect.TypeFor[runner]().PkgPath() + "."
	lines := strings.Split(strings.TrimSpace(string(debug.Stack())), "\n")
	start := 1 // past "goroutine N [running]:"
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") {
			start = i + 2 // past the panic frame and its file line
			break
		}
	}
	var frames []string
	// Each frame is a function line followed by its file line.
	for i := start; i+1 < len(lines) && len(frames) < 8; i += 2 {
		if strings.HasPrefix(lines[i], kit) {
			break
		}
		frames = append(frames, lines[i], lines[i+1])
	}
	return strings.Join(frames, "\n")
}

// adapterCall runs one adapter method through guard and records what the
// timeouts and error-shapes checks judge at the end of the run. Panics and
// abandoned calls are the kit's verdicts, not errors the adapter returned,
// so only the latter are judged for their shape.
func adapterCall[T any](r *runner, check, op string, deadline time.Time, fn func() (T, error)) (T, error) {
	val, t, err := guard(op, deadline, r.opts.CallTimeout, fn)
	r.recordCall(check, op, t)
	var p *panicError
	var a *abandonedError
	if err != nil && !errors.As(err, &p) && !errors.As(err, &a) {
		r.recordError(check, op, err)
	}
	return val, err
}

// callContext gives one operation (a call and the polling it leads to)
// its deadline.
func (r *runner) callContext(parent context.Context) (context.Context, context.CancelFunc, time.Time) {
	deadline := time.Now().Add(r.opts.CallTimeout)
	ctx, cancel := context.WithDeadline(parent, deadline)
	return ctx, cancel, deadline
}

// poll follows a Pending result until the adapter reports Succeeded or
// Failed, or the operation's deadline passes.
func (r *runner) poll(ctx context.Context, check string, deadline time.Time, req adapters.PollRequest) (adapters.PollResult, error) {
	poller, ok := r.adapter.(adapters.Poller)
	if !ok {
		return adapters.PollResult{}, fmt.Errorf("%s %w", opName(req.Kind), errPendingWithoutPoller)
	}
	start := time.Now()
	for {
		res, err := adapterCall(r, check, "Poll", deadline, func() (adapters.PollResult, error) {
			return poller.Poll(ctx, req)
		})
		if err != nil {
			return res, fmt.Errorf("poll of pending %s: %w", req.Kind, err)
		}
		switch res.State {
		case adapters.Succeeded:
			return res, nil
		case adapters.Failed:
			// Agora shows the description to the app developer: it is
			// judged for leaked secrets like any error text.
			r.recordError(check, "Poll description", errors.New(res.Description))
			return res, fmt.Errorf("pending %s failed: %s", req.Kind, res.Description)
		case adapters.InProgress:
		default:
			return res, fmt.Errorf("poll of pending %s returned unknown state %q", req.Kind, res.State)
		}
		wait := time.NewTimer(r.opts.PollInterval)
		select {
		case <-wait.C:
		case <-ctx.Done():
			wait.Stop()
			if time.Now().Before(deadline) {
				return res, fmt.Errorf("polling pending %s: %w", req.Kind, ctx.Err())
			}
			op := opName(req.Kind) + " (pending)"
			r.recordCall(check, op, timing{elapsed: time.Since(start), exceeded: true})
			return res, fmt.Errorf("%s still in progress when CallTimeout (%s) ran out: %w", op, r.opts.CallTimeout, ctx.Err())
		}
	}
}

func opName(k adapters.OperationKind) string {
	switch k {
	case adapters.OpProvision:
		return "Provision"
	case adapters.OpUpdate:
		return "Update"
	case adapters.OpDeprovision:
		return "Deprovision"
	case adapters.OpBind:
		return "Bind"
	case adapters.OpUnbind:
		return "Unbind"
	}
	return string(k)
}

func (r *runner) provision(ctx context.Context, check string, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	ctx, cancel, deadline := r.callContext(ctx)
	defer cancel()
	res, err := adapterCall(r, check, "Provision", deadline, func() (adapters.ProvisionResult, error) {
		return r.adapter.Provision(ctx, req)
	})
	if err != nil || !res.Pending {
		return res, err
	}
	pr, err := r.poll(ctx, check, deadline, adapters.PollRequest{
		Kind: adapters.OpProvision, InstanceID: req.InstanceID, Offering: req.Offering,
		Plan: req.Plan, Token: res.OperationToken, Origin: req.Origin,
	})
	if err != nil {
		return res, err
	}
	if pr.Instance != nil {
		res = *pr.Instance
	}
	res.Pending = false
	return res, nil
}

func (r *runner) update(ctx context.Context, check string, updater adapters.Updater, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	ctx, cancel, deadline := r.callContext(ctx)
	defer cancel()
	res, err := adapterCall(r, check, "Update", deadline, func() (adapters.UpdateResult, error) {
		return updater.Update(ctx, req)
	})
	if err != nil || !res.Pending {
		return res, err
	}
	pr, err := r.poll(ctx, check, deadline, adapters.PollRequest{
		Kind: adapters.OpUpdate, InstanceID: req.InstanceID, Offering: req.Offering,
		Plan: req.Plan, Token: res.OperationToken, Origin: req.Origin,
	})
	if err != nil {
		return res, err
	}
	if pr.Instance != nil {
		res.DashboardURL, res.Metadata, res.Receipt = pr.Instance.DashboardURL, pr.Instance.Metadata, pr.Instance.Receipt
	}
	res.Pending = false
	return res, nil
}

func (r *runner) deprovision(ctx context.Context, check string, req adapters.DeprovisionRequest) error {
	ctx, cancel, deadline := r.callContext(ctx)
	defer cancel()
	res, err := adapterCall(r, check, "Deprovision", deadline, func() (adapters.DeprovisionResult, error) {
		return r.adapter.Deprovision(ctx, req)
	})
	if err != nil || !res.Pending {
		return err
	}
	_, err = r.poll(ctx, check, deadline, adapters.PollRequest{
		Kind: adapters.OpDeprovision, InstanceID: req.InstanceID, Offering: req.Offering,
		Plan: req.Plan, Token: res.OperationToken, Origin: req.Origin,
	})
	// A poller that no longer finds the instance it was removing is done.
	if errors.Is(err, adapters.ErrNotFound) {
		return nil
	}
	return err
}

func (r *runner) bind(ctx context.Context, check string, req adapters.BindRequest) (adapters.BindResult, error) {
	ctx, cancel, deadline := r.callContext(ctx)
	defer cancel()
	res, err := adapterCall(r, check, "Bind", deadline, func() (adapters.BindResult, error) {
		return r.adapter.Bind(ctx, req)
	})
	if err == nil && res.Pending {
		var pr adapters.PollResult
		pr, err = r.poll(ctx, check, deadline, adapters.PollRequest{
			Kind: adapters.OpBind, InstanceID: req.InstanceID, BindingID: req.BindingID,
			Offering: req.Offering, Plan: req.Plan, Token: res.OperationToken, Origin: req.Origin,
		})
		switch {
		case err != nil:
		case pr.Bind == nil:
			err = fmt.Errorf("poll reported the pending bind succeeded, but PollResult.Bind is nil: %w", errNoCredentials)
		default:
			res = *pr.Bind
			res.Pending = false
		}
	}
	// Whatever the outcome, these values are secrets from now on: no error
	// text may contain them.
	r.noteCredentials(res.Credentials)
	if err == nil && len(res.Credentials) == 0 {
		err = fmt.Errorf("bind %w", errNoCredentials)
	}
	return res, err
}

func (r *runner) unbind(ctx context.Context, check string, req adapters.UnbindRequest) error {
	ctx, cancel, deadline := r.callContext(ctx)
	defer cancel()
	res, err := adapterCall(r, check, "Unbind", deadline, func() (adapters.UnbindResult, error) {
		return r.adapter.Unbind(ctx, req)
	})
	if err != nil || !res.Pending {
		return err
	}
	_, err = r.poll(ctx, check, deadline, adapters.PollRequest{
		Kind: adapters.OpUnbind, InstanceID: req.InstanceID, BindingID: req.BindingID,
		Offering: req.Offering, Plan: req.Plan, Token: res.OperationToken, Origin: req.Origin,
	})
	if errors.Is(err, adapters.ErrNotFound) {
		return nil
	}
	return err
}

// callback runs one of the producer's Check* functions with the same
// deadline and panic safety as an adapter call. Its errors are the
// producer's verdicts, so they are not judged as adapter errors.
func (r *runner) callback(name string, fn func(ctx context.Context) error) error {
	ctx, cancel, deadline := r.callContext(r.ctx)
	defer cancel()
	_, _, err := guard(name, deadline, r.opts.CallTimeout, func() (struct{}, error) {
		return struct{}{}, fn(ctx)
	})
	return err
}
