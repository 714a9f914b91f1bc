package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
)

// WorkerConfig tunes the async engine of one replica.
type WorkerConfig struct {
	// Consumer names this replica in the job queue. It must be unique per
	// process; the default is host-pid-random. Each worker slot consumes
	// as Consumer-<slot>.
	Consumer string
	// Concurrency is how many jobs this replica runs at once (default 4).
	Concurrency int
	// PerProducer is how many of those one producer's jobs may take at
	// once (default half of Concurrency, at least 1), so one producer's
	// slow or failing backend cannot starve the others.
	PerProducer int
	// Heartbeat is how often a running job renews its lease (default, and
	// at most, a quarter of the queue's Lease).
	Heartbeat time.Duration
	// MaxBackoff caps the wait between attempts after a transient failure
	// (default 30s). The first wait is 1s (or MaxBackoff when smaller),
	// doubling, with jitter, never past the operation's deadline.
	MaxBackoff time.Duration
	// Requeue is how long a job waits before it is offered again when its
	// producer is at its limit (half to all of it), or when its record
	// changed under the worker (default 1s).
	Requeue time.Duration
	// Observer hears what the engine does (default: nobody).
	Observer Observer
	// ExpiryScan is how often this replica looks for bindings past their
	// expires_at, to revoke them (default 1s).
	ExpiryScan time.Duration
	// UpgradeScan is how often this replica advances the bulk upgrades
	// that still have work (default 250ms: a step is what starts the next
	// instances once others finish, and costs one read when none runs).
	UpgradeScan time.Duration
}

// Observer hears what the async engine does, for metrics. Its methods are
// called on the workers' goroutines and must return at once.
type Observer interface {
	// JobThrottled: a job of producer was put back unstarted because the
	// producer already had PerProducer jobs running on this replica.
	JobThrottled(producer string)
	// AttemptEnded: a delivered job of producer was worked on, and how that
	// ended.
	AttemptEnded(producer string, outcome AttemptOutcome)
	// Running: a job of producer took a slot of this replica (delta 1) or
	// gave it back (-1).
	Running(producer string, delta int)
}

// AttemptOutcome is how the work on one delivery of a job ended.
type AttemptOutcome string

// Attempt outcomes.
const (
	// AttemptSucceeded: the operation succeeded and is recorded.
	AttemptSucceeded AttemptOutcome = "succeeded"
	// AttemptFailed: the operation failed for good and is recorded.
	AttemptFailed AttemptOutcome = "failed"
	// AttemptRetry: a transient failure; the job waits for its next attempt.
	AttemptRetry AttemptOutcome = "retry"
	// AttemptLost: the worker stopped mid-attempt (its lease ran out,
	// another worker took the job, or the replica is shutting down).
	AttemptLost AttemptOutcome = "lost"
)

type noObserver struct{}

func (noObserver) JobThrottled(string)                 {}
func (noObserver) AttemptEnded(string, AttemptOutcome) {}
func (noObserver) Running(string, int)                 {}

// errLeaseExpired stops an attempt whose heartbeats failed for so long
// that the queue may hand its job to another worker.
var errLeaseExpired = errors.New("its lease ran out: heartbeats to the job queue (Redis) failed")

// RunWorkers runs the async engine until ctx is cancelled. Each delivery
// of a job runs one attempt of its operation: the outcome is recorded, or
// the failure is recorded and the job released until its next attempt, so
// a slot is never held while a job waits. Jobs running when ctx ends are
// abandoned without being acknowledged, so another replica (or this one,
// restarted) takes them over: their work is idempotent.
func (b *Broker) RunWorkers(ctx context.Context, cfg WorkerConfig) {
	lease := b.jobs.Lease()
	if cfg.Consumer == "" {
		host, _ := os.Hostname()
		cfg.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:8])
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.PerProducer <= 0 {
		cfg.PerProducer = max(1, cfg.Concurrency/2)
	}
	if cfg.Heartbeat <= 0 || cfg.Heartbeat > lease/4 {
		cfg.Heartbeat = lease / 4
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.Requeue <= 0 {
		cfg.Requeue = time.Second
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.ExpiryScan <= 0 {
		cfg.ExpiryScan = time.Second
	}
	if cfg.UpgradeScan <= 0 {
		cfg.UpgradeScan = 250 * time.Millisecond
	}
	w := &workers{b: b, cfg: cfg, lease: lease, running: map[string]int{}}
	consumers := make([]string, cfg.Concurrency)
	for i := range consumers {
		consumers[i] = fmt.Sprintf("%s-%d", cfg.Consumer, i)
	}
	b.log.Info("async workers started", "consumer", cfg.Consumer, "concurrency", cfg.Concurrency,
		"per_producer", cfg.PerProducer, "lease", lease)
	var wg sync.WaitGroup
	wg.Go(func() { b.adoptEarlierIndex(ctx) })
	wg.Go(func() { w.maintain(ctx, consumers) })
	for _, consumer := range consumers {
		wg.Go(func() { w.loop(ctx, consumer) })
	}
	wg.Wait()
}

// workers is the async engine of one replica.
type workers struct {
	b     *Broker
	cfg   WorkerConfig
	lease time.Duration

	// running counts this replica's jobs in progress per producer.
	mu      sync.Mutex
	running map[string]int
}

func (w *workers) loop(ctx context.Context, consumer string) {
	for ctx.Err() == nil {
		// The lease starts no later than the delivery, which happens
		// after this call was sent.
		sent := time.Now()
		job, err := w.b.jobs.Next(ctx, consumer)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				w.b.log.Warn("async worker cannot read the job queue (Redis); retrying", "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		w.runJob(ctx, consumer, job, sent)
	}
}

// maintain runs the queue's housekeeping: due jobs back into the queue,
// often; expired bindings into revocation, every ExpiryScan; bulk
// upgrades a step further, every UpgradeScan; dead
// consumers out and older Agoras' jobs in, now and then.
func (w *workers) maintain(ctx context.Context, consumers []string) {
	tick := time.NewTicker(min(250*time.Millisecond, w.lease/8, w.cfg.ExpiryScan, w.cfg.UpgradeScan))
	defer tick.Stop()
	var tidied, scanned, stepped time.Time
	failing := false
	for {
		err := w.b.jobs.Promote(ctx)
		if time.Since(scanned) >= w.cfg.ExpiryScan {
			scanned = time.Now()
			err = errors.Join(err, w.b.revokeExpired(ctx))
		}
		if time.Since(stepped) >= w.cfg.UpgradeScan {
			stepped = time.Now()
			err = errors.Join(err, w.b.advanceUpgrades(ctx))
		}
		if time.Since(tidied) >= w.lease/2 {
			tidied = time.Now()
			err = errors.Join(err, w.b.jobs.Tidy(ctx, consumers))
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			w.b.log.Warn("async job queue housekeeping failed (Redis); released jobs and expired bindings wait until it works again", "error", err)
		case err == nil && failing:
			w.b.log.Info("async job queue housekeeping works again")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// verdict is what becomes of a job after one delivery.
type verdict struct {
	settle settlement
	// after is how long a released job waits.
	after time.Duration
	// outcome is for the Observer ("" when no attempt was made).
	outcome AttemptOutcome
}

type settlement int

const (
	// jobDone: nothing is left to do; the job is removed.
	jobDone settlement = iota
	// jobLater: the job is released, to be delivered again after a wait.
	jobLater
	// jobAbandoned: the job is left as it is, to be taken over once its
	// lease runs out (the worker lost it, shuts down, or cannot reach
	// Redis).
	jobAbandoned
)

func doneWith(outcome AttemptOutcome) verdict { return verdict{settle: jobDone, outcome: outcome} }
func releaseFor(after time.Duration, outcome AttemptOutcome) verdict {
	return verdict{settle: jobLater, after: after, outcome: outcome}
}
func abandon(outcome AttemptOutcome) verdict {
	return verdict{settle: jobAbandoned, outcome: outcome}
}

// runJob works on one delivery of a job while holding its lease.
func (w *workers) runJob(ctx context.Context, consumer string, job Job, sent time.Time) {
	jobCtx, stop := w.hold(ctx, consumer, job, sent)
	producer := w.producerOf(jobCtx, job)
	var v verdict
	if w.acquire(producer) {
		w.cfg.Observer.Running(producer, 1)
		v = w.attempt(jobCtx, job)
		w.cfg.Observer.Running(producer, -1)
		w.release(producer)
	} else {
		// Not started, and the slot is not held waiting: another
		// producer's job may take it.
		w.cfg.Observer.JobThrottled(producer)
		w.b.log.Debug("async job put back: its producer is at its limit on this replica",
			"producer", producer, "operation_id", job.OperationID, "per_producer", w.cfg.PerProducer)
		v = releaseFor(jitter(w.cfg.Requeue), "")
	}
	stop()
	if v.outcome != "" {
		w.cfg.Observer.AttemptEnded(producer, v.outcome)
	}
	ctx = context.WithoutCancel(ctx)
	switch v.settle {
	case jobDone:
		if err := w.b.jobs.Done(ctx, job); err != nil {
			// Whatever happened is recorded, so a redelivery only finds
			// that out again; nothing is lost.
			w.b.log.Warn("acknowledge job", "operation_id", job.OperationID, "error", err)
		}
	case jobLater:
		err := w.b.jobs.Release(ctx, consumer, job, v.after)
		switch {
		case errors.Is(err, ErrJobLost):
			w.b.log.Info("async job was taken over by another worker before it could be released", "operation_id", job.OperationID)
		case err != nil:
			// Taken over once its lease runs out.
			w.b.log.Warn("release job", "operation_id", job.OperationID, "error", err)
		}
	case jobAbandoned:
	}
}

// hold keeps the job's lease while its attempt runs: it heartbeats, and
// cancels the returned context (with the reason as its cause) when
// another worker took the job, or before the lease runs out when
// heartbeats fail, so that by the time the queue may hand the job to
// another worker this one has stopped calling the adapter. The lease
// runs from when the last successful heartbeat was sent; a quarter of it
// is the margin for the attempt to wind down.
func (w *workers) hold(ctx context.Context, consumer string, job Job, sent time.Time) (context.Context, func()) {
	jobCtx, cancel := context.WithCancelCause(ctx)
	usable := w.lease - w.lease/4
	expiry := time.AfterFunc(time.Until(sent.Add(usable)), func() { cancel(errLeaseExpired) })
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(w.cfg.Heartbeat)
		defer tick.Stop()
		failing := false
		for {
			select {
			case <-jobCtx.Done():
				return
			case <-tick.C:
			}
			beat := time.Now()
			beatCtx, cancelBeat := context.WithTimeout(jobCtx, w.cfg.Heartbeat)
			err := w.b.jobs.Heartbeat(beatCtx, consumer, job)
			cancelBeat()
			switch {
			case err == nil:
				expiry.Reset(time.Until(beat.Add(usable)))
				failing = false
			case errors.Is(err, ErrJobLost):
				cancel(ErrJobLost)
				return
			case jobCtx.Err() == nil && !failing:
				failing = true
				w.b.log.Warn("job heartbeat failed; the attempt stops before its lease runs out unless one succeeds",
					"operation_id", job.OperationID, "error", err)
			}
		}
	}()
	return jobCtx, func() {
		expiry.Stop()
		cancel(nil)
		<-stopped
	}
}

// producerOf names the producer whose offering the job works on ("" when
// the offering is unknown). Jobs queued by an older Agora do not say
// their service, so their instance is read.
func (w *workers) producerOf(ctx context.Context, job Job) string {
	sid := job.ServiceID
	if sid == "" {
		if snap, err := w.b.state.Load(ctx, LoadRequest{InstanceID: job.InstanceID}); err == nil && snap.Instance != nil {
			sid = snap.Instance.ServiceID
		}
	}
	if off, ok := w.b.catalog.Load().Offering(sid); ok {
		return off.Producer
	}
	return ""
}

func (w *workers) acquire(producer string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[producer] >= w.cfg.PerProducer {
		return false
	}
	w.running[producer]++
	return true
}

func (w *workers) release(producer string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running[producer]--; w.running[producer] <= 0 {
		delete(w.running, producer)
	}
}

// attempt runs at most one attempt of the job's operation and says what
// becomes of the job.
func (w *workers) attempt(ctx context.Context, job Job) verdict {
	b := w.b
	log := b.log.With("instance_id", job.InstanceID, "operation_id", job.OperationID)
	op, err := b.awaitOperation(ctx, job)
	if err != nil {
		return w.interrupted(ctx, log, "read its operation", err, 0)
	}
	if op == nil || op.Finished() {
		return doneWith("")
	}
	log = log.With("kind", op.Kind)
	now := b.now()
	if wait := op.NextAttemptAt.Sub(now); wait > 0 && now.Before(op.Deadline) {
		// Delivered before its time (its release was lost, say).
		return releaseFor(wait, "")
	}
	t, do, fail, err := b.loadTask(ctx, op)
	if errors.Is(err, errRecordsGone) {
		// Nothing is left to act on or to record the outcome in (the
		// instance was deleted under the operation); redelivering the job
		// could never change that.
		log.Warn("dropping a job whose instance or binding record is gone", "error", err)
		return doneWith("")
	}
	if err != nil {
		var terminal *adapters.TerminalError
		if !errors.As(err, &terminal) {
			return w.interrupted(ctx, log, "load what its operation needs", err, op.Attempts)
		}
		// The operation can never run (its plan left the catalog, say).
		return w.finish(ctx, t, fail(t, err), op.Attempt, err, log)
	}
	if !now.Before(op.Deadline) {
		err := b.adapterFail(t, op.Kind, overdue(op, op.LastDescription, op.LastError))
		return w.finish(ctx, t, fail(t, err), op.Attempt, err, log)
	}

	// Start the attempt: the new token replaces the one read (compare and
	// swap), and fences every commit that follows.
	started := *op
	started.Attempts++
	started.Attempt = newID()
	started.NextAttemptAt = time.Time{}
	started.UpdatedAt = now
	err = b.state.Commit(ctx, Mutation{InstanceID: op.InstanceID, PutOperation: &started,
		IfOperationInProgress: op.ID, Fence: &Fence{Attempt: op.Attempt}}, nil)
	if errors.Is(err, ErrStale) {
		// Finished or started elsewhere since we read it: the next
		// delivery, if it is still ours, looks again.
		return releaseFor(w.cfg.Requeue, "")
	}
	if err != nil {
		return w.interrupted(ctx, log, "record the start of an attempt", err, op.Attempts)
	}
	t.op, t.fence, t.until = &started, &Fence{Attempt: started.Attempt}, op.Deadline
	callCtx, cancel := context.WithDeadline(ctx, op.Deadline)
	m, err := do(callCtx, t)
	cancel()
	switch {
	case err == nil:
		return w.finish(ctx, t, m, started.Attempt, nil, log)
	case ctx.Err() != nil:
		log.Warn("async attempt stopped; the job will be taken up again", "attempt", started.Attempts, "reason", context.Cause(ctx))
		return abandon(AttemptLost)
	case adapters.IsTerminal(err) || requestFault(err):
		return w.finish(ctx, t, fail(t, err), started.Attempt, err, log)
	}

	now = b.now()
	if !now.Before(op.Deadline) {
		err := b.adapterFail(t, op.Kind, overdue(&started, b.publicText(classify(err), err), err.Error()))
		return w.finish(ctx, t, fail(t, err), started.Attempt, err, log)
	}
	wait := min(w.backoff(started.Attempts), op.Deadline.Sub(now))
	retry := started
	retry.NextAttemptAt, retry.LastError, retry.UpdatedAt = now.Add(wait), err.Error(), now
	retry.LastDescription = b.publicText(classify(err), err)
	cerr := b.state.Commit(context.WithoutCancel(ctx), Mutation{InstanceID: op.InstanceID, PutOperation: &retry,
		IfOperationInProgress: op.ID, Fence: t.fence}, nil)
	if errors.Is(cerr, ErrStale) {
		return releaseFor(w.cfg.Requeue, AttemptLost)
	}
	if cerr != nil {
		log.Warn("async attempt failed, and recording that failed too (Redis); the job will be taken up again",
			"attempt", started.Attempts, "error", err, "record_error", cerr)
		return abandon(AttemptRetry)
	}
	log.Warn("async operation hit a transient failure; retrying", "attempt", started.Attempts, "next_attempt_in", wait.Round(time.Millisecond), "error", err)
	return releaseFor(wait, AttemptRetry)
}

// interrupted: the job could not get as far as an attempt (Redis or Vault
// failing); it is released to try again after a backoff.
func (w *workers) interrupted(ctx context.Context, log *slog.Logger, what string, err error, attempts int) verdict {
	if ctx.Err() != nil {
		return abandon("")
	}
	wait := w.backoff(attempts + 1)
	log.Warn("async job cannot "+what+"; trying again", "retry_in", wait.Round(time.Millisecond), "error", err)
	return releaseFor(wait, "")
}

// backoff is the wait after the attempts-th attempt: doubling from 1s (or
// MaxBackoff when smaller) up to MaxBackoff, with jitter.
func (w *workers) backoff(attempts int) time.Duration {
	d := min(time.Second, w.cfg.MaxBackoff)
	for i := 1; i < attempts && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return jitter(min(d, w.cfg.MaxBackoff))
}

// jitter spreads d over [d/2, d], so that jobs put back together do not
// come back together.
func jitter(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }

// finish records the outcome of the operation, fenced on attempt: it
// lands only while the operation is in progress and still in the hands of
// that attempt; a worker that lost its job, or a deadline, wins otherwise.
// cause is the failure (nil for success).
func (w *workers) finish(ctx context.Context, t *task, m Mutation, attempt string, cause error, log *slog.Logger) verdict {
	b := w.b
	m.IfOperationInProgress, m.Fence = t.op.ID, &Fence{Attempt: attempt}
	ctx = context.WithoutCancel(ctx)
	err := b.state.Commit(ctx, m, nil)
	if errors.Is(err, ErrStale) {
		// The job comes back (if it is still ours) and finds out why.
		log.Info("operation was finished or taken over elsewhere; outcome dropped")
		return releaseFor(w.cfg.Requeue, AttemptLost)
	}
	if err != nil {
		log.Warn("record the outcome of an async operation (Redis); the job will be taken up again", "error", err)
		return abandon(AttemptLost)
	}
	b.committed(ctx, t, m)
	if cause == nil || requestFault(cause) || m.PutOperation == nil {
		// A failure on record keeps its parameters, for a retry.
		b.dropParameters(ctx, t.op)
	}
	if cause != nil {
		log.Warn("async operation failed", "attempts", t.op.Attempts, "error", cause)
		return doneWith(AttemptFailed)
	}
	log.Info("async operation succeeded", "attempts", t.op.Attempts)
	return doneWith(AttemptSucceeded)
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

// overdue is why an operation failed at its deadline. After attempts
// that failed, it is the last failure, in the words the platform read for
// it (a backend that could not be reached is not one that "did not answer
// in time"), with its chain for the log; without one, the adapter really
// never answered.
func overdue(op *Operation, lastDescription, lastError string) error {
	within := op.Deadline.Sub(op.CreatedAt).Round(time.Second)
	if lastDescription == "" {
		return fmt.Errorf("did not finish within %s: %w", within, context.DeadlineExceeded)
	}
	return &overdueError{
		public: fmt.Sprintf("%s (given up after %d attempt(s), at the %s deadline)", lastDescription, op.Attempts, within),
		detail: fmt.Sprintf("did not finish within %s, after %d attempt(s); the last one failed: %s", within, op.Attempts, lastError),
	}
}
