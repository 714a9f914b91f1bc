package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
)

// WorkerConfig tunes the async engine of one replica.
type WorkerConfig struct {
	// Consumer names this replica in the job queue. It must be unique per
	// process; the default is host-pid-random.
	Consumer string
	// Concurrency is how many jobs this replica runs at once (default 4).
	Concurrency int
	// Heartbeat is how often a running job tells the queue it is alive.
	// It must be well under the queue's claim idle time (default 10s).
	Heartbeat time.Duration
	// MaxBackoff caps the wait between retries of a transient failure
	// (default 30s).
	MaxBackoff time.Duration
}

// RunWorkers runs the async engine until ctx is cancelled. Jobs running at
// that moment are abandoned without being acknowledged, so another
// replica (or this one, restarted) takes them over: their work is
// idempotent.
func (b *Broker) RunWorkers(ctx context.Context, cfg WorkerConfig) {
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		cfg.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:8])
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 10 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	b.log.Info("async workers started", "consumer", cfg.Consumer, "concurrency", cfg.Concurrency)
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() { b.workLoop(ctx, cfg) })
	}
	wg.Wait()
}

func (b *Broker) workLoop(ctx context.Context, cfg WorkerConfig) {
	for ctx.Err() == nil {
		job, err := b.jobs.Next(ctx, cfg.Consumer)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("async worker cannot read the job queue (Redis); retrying", "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		b.runJob(ctx, cfg, job)
	}
}

// runJob executes one job while heartbeating, and acknowledges it unless
// the work must be taken up again later.
func (b *Broker) runJob(ctx context.Context, cfg WorkerConfig, job Job) {
	jobCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-jobCtx.Done():
				return
			case <-t.C:
				if err := b.jobs.Heartbeat(jobCtx, cfg.Consumer, job); err != nil && jobCtx.Err() == nil {
					b.log.Warn("job heartbeat failed", "operation_id", job.OperationID, "error", err)
				}
			}
		}
	}()
	log := b.log.With("instance_id", job.InstanceID, "operation_id", job.OperationID)
	if err := b.execute(jobCtx, cfg, job); err != nil {
		// Left unacknowledged: the queue delivers it again once this
		// worker stops heartbeating it.
		log.Warn("async job interrupted; it will be taken up again", "error", err)
		return
	}
	if err := b.jobs.Done(context.WithoutCancel(ctx), job); err != nil {
		// The operation is recorded as finished, so a redelivery is a
		// no-op; nothing is lost.
		log.Warn("acknowledge job", "error", err)
	}
}

// execute runs the operation a job names to its end. It returns an error
// only when the job should be delivered again (shutdown, or Redis failing
// while recording the outcome).
func (b *Broker) execute(ctx context.Context, cfg WorkerConfig, job Job) error {
	op, err := b.awaitOperation(ctx, job)
	if err != nil || op == nil || op.Finished() {
		return err
	}
	log := b.log.With("instance_id", op.InstanceID, "operation_id", op.ID, "kind", op.Kind)
	t, do, fail, err := b.loadTask(ctx, op)
	if errors.Is(err, errRecordsGone) {
		// Nothing is left to act on or to record the outcome in (the
		// instance was deleted under the operation); redelivering the job
		// could never change that.
		log.Warn("dropping a job whose instance or binding record is gone", "error", err)
		return nil
	}
	if err != nil {
		var terminal *adapters.TerminalError
		if !errors.As(err, &terminal) {
			return err
		}
		// The operation can never run (its plan left the catalog, say).
		return b.finish(ctx, t, fail(t, err), log)
	}
	t.until = op.Deadline
	backoff := min(time.Second, cfg.MaxBackoff)
	for {
		if !b.now().Before(op.Deadline) {
			err := b.adapterFail(t, op.Kind, fmt.Errorf("did not finish within %s: %w", op.Deadline.Sub(op.CreatedAt).Round(time.Second), context.DeadlineExceeded))
			return b.finish(ctx, t, fail(t, err), log)
		}
		callCtx, cancel := context.WithDeadline(ctx, op.Deadline)
		m, err := do(callCtx, t)
		cancel()
		if err == nil {
			log.Info("async operation succeeded", "attempts", t.op.Attempts+1)
			return b.finish(ctx, t, m, log)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if adapters.IsTerminal(err) || requestFault(err) {
			log.Warn("async operation failed", "error", err)
			return b.finish(ctx, t, fail(t, err), log)
		}
		t.op.Attempts++
		log.Warn("async operation hit a transient failure; retrying", "attempt", t.op.Attempts, "backoff", backoff, "error", err)
		if !sleep(ctx, min(backoff, time.Until(op.Deadline))) {
			return ctx.Err()
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

// finish records the outcome, but only while the operation is still in
// progress: a second worker that raced us, or a deadline, wins otherwise.
func (b *Broker) finish(ctx context.Context, t *task, m Mutation, log interface{ Warn(string, ...any) }) error {
	m.IfOperationInProgress = t.op.ID
	err := b.state.Commit(context.WithoutCancel(ctx), m, nil)
	if err == nil {
		b.unindexDeleted(ctx, t.inst, m)
	}
	if errors.Is(err, ErrStale) {
		log.Warn("operation was already finished elsewhere; outcome dropped")
		err = nil
	}
	if err != nil {
		return stateErr(err)
	}
	b.dropParameters(context.WithoutCancel(ctx), t.op)
	return nil
}

// awaitOperation reads the job's operation. A job is queued just before
// its operation is committed, under the instance lock; while that lock is
// held the commit may still land, so wait for it. Once the lock is free
// and there is still no operation, the request failed after queueing:
// nil tells the caller to drop the job.
func (b *Broker) awaitOperation(ctx context.Context, job Job) (*Operation, error) {
	for {
		snap, err := b.state.Load(ctx, LoadRequest{InstanceID: job.InstanceID, OperationID: job.OperationID})
		if err != nil {
			return nil, err
		}
		if snap.Operation != nil && snap.Operation.ID == job.OperationID {
			return snap.Operation, nil
		}
		lock, snap, err := b.state.LockAndLoad(ctx, 5*time.Second, LoadRequest{InstanceID: job.InstanceID, OperationID: job.OperationID})
		if errors.Is(err, ErrLocked) {
			if !sleep(ctx, 50*time.Millisecond) {
				return nil, ctx.Err()
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		if uerr := b.state.Unlock(ctx, lock); uerr != nil {
			return nil, uerr
		}
		if snap.Operation != nil && snap.Operation.ID == job.OperationID {
			return snap.Operation, nil
		}
		b.log.Warn("dropping a job whose operation was never recorded", "instance_id", job.InstanceID, "operation_id", job.OperationID)
		return nil, nil
	}
}

// errRecordsGone: the records an operation works on no longer exist.
var errRecordsGone = errors.New("its instance or binding record no longer exists")

type doFunc func(context.Context, *task) (Mutation, error)
type failFunc func(*task, error) Mutation

// loadTask reads what the operation needs: its records, its plan and its
// parameters. A plan that left the catalog is a terminal error.
func (b *Broker) loadTask(ctx context.Context, op *Operation) (*task, doFunc, failFunc, error) {
	snap, err := b.state.Load(ctx, LoadRequest{InstanceID: op.InstanceID, BindingID: op.BindingID, AllBindings: op.Kind == adapters.OpDeprovision})
	if err != nil {
		return nil, nil, nil, err
	}
	t := &task{op: op, inst: snap.Instance, binding: snap.Binding, bindings: snap.Bindings}
	var do doFunc
	var fail failFunc
	switch op.Kind {
	case adapters.OpProvision:
		do, fail = b.doProvision, b.failProvision
	case adapters.OpUpdate:
		do, fail = b.doUpdate, b.failUpdate
	case adapters.OpDeprovision:
		do, fail = b.doDeprovision, b.failDeprovision
	case adapters.OpBind:
		do, fail = b.doBind, b.failBind
	case adapters.OpUnbind:
		do, fail = b.removeBinding, b.failUnbind
	default:
		return nil, nil, nil, fmt.Errorf("unknown operation kind %q", op.Kind)
	}
	if t.inst == nil || (op.BindingID != "" && t.binding == nil) {
		return nil, nil, nil, fmt.Errorf("operation %s: %w", op.ID, errRecordsGone)
	}
	var ok bool
	cat := b.catalog.Load()
	t.off, t.plan, ok = cat.Plan(t.inst.ServiceID, op.PlanID)
	if op.Kind == adapters.OpUpdate {
		var prevOK bool
		_, t.prevPlan, prevOK = cat.Plan(t.inst.ServiceID, op.PreviousPlanID)
		ok = ok && prevOK
	}
	if !ok {
		t.off = placeholderOffering(t.inst.ServiceID)
		t.plan = &catalog.Plan{ID: op.PlanID}
		return t, do, fail, adapters.Terminal(fmt.Errorf("plan %s of service %s is no longer in the catalog", op.PlanID, t.inst.ServiceID))
	}
	if op.ParametersRef != "" {
		if t.params, err = b.creds.GetParameters(ctx, op.ParametersRef); err != nil {
			if errors.Is(err, ErrNotFound) {
				// Gone for good: redelivering the job cannot bring them back.
				return t, do, fail, adapters.Terminal(credErr(err))
			}
			return nil, nil, nil, credErr(err)
		}
	}
	return t, do, fail, nil
}

func placeholderOffering(serviceID string) *catalog.Offering {
	return &catalog.Offering{ID: serviceID, Name: serviceID, AdapterName: "unknown", Producer: "unknown"}
}

// sleep waits d or until ctx ends; false means ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
