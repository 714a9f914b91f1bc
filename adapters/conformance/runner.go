package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// runner holds one run's state. Everything lives here, never at package
// level, so parallel runs (t.Parallel, several adapters) cannot interfere.
type runner struct {
	opts    Options
	ctx     context.Context
	plan    adapters.Plan
	appGUID string
	log     *guardedLog
	logger  *slog.Logger
	adapter adapters.Adapter
	results []CheckResult

	// mu guards what concurrent adapter calls record and update.
	mu        sync.Mutex
	calls     []callRecord
	errs      []errorRecord
	secrets   map[string]string // credential value → the key it came from
	instances []*instanceRef
	bindings  []*bindingRef
	cleaned   bool
	// unverifiedSeen are the credential types the run could not use.
	unverifiedSeen []string

	// What the main flow hands from one check to the next.
	main   *instanceRef
	first  *bindingRef
	second *bindingRef
}

type callRecord struct {
	check, op string
	timing    timing
}

type errorRecord struct {
	check, op string
	err       error
}

// instanceRef is an instance the run asked for. Every one is tracked from
// before its first Provision, so cleanup also removes what a failed or
// abandoned call may have half created.
type instanceRef struct {
	id      string
	receipt adapters.Receipt
	created bool
	gone    bool
}

type bindingRef struct {
	id       string
	instance *instanceRef
	receipt  adapters.Receipt
	// issued holds every credential set Bind returned, latest last: all
	// of them must stop working after Unbind.
	issued []map[string]any
	gone   bool
}

func newRunner(ctx context.Context, opts Options, plan adapters.Plan) *runner {
	log := &guardedLog{logf: opts.Logf}
	handler := slog.NewTextHandler(log, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		// Logf adds its own context; a timestamp per line is noise there.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})
	return &runner{
		opts:    opts,
		ctx:     ctx,
		plan:    plan,
		appGUID: newID(),
		log:     log,
		logger:  slog.New(handler).With("adapter", opts.Factory.Name, "offering", opts.Offering),
		secrets: map[string]string{},
	}
}

// guardedLog forwards to Logf until the run ends. An adapter may log from
// a goroutine the kit abandoned; after Run returns that line is dropped,
// because t.Logf panics once its test has finished.
type guardedLog struct {
	mu     sync.Mutex
	closed bool
	logf   func(format string, args ...any)
}

func (l *guardedLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.logf(format, args...)
	}
}

// Write receives the adapter's slog records, one per call.
func (l *guardedLog) Write(p []byte) (int, error) {
	l.printf("adapter log: %s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (l *guardedLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
}

// newID makes IDs unique per run, so runs against a shared backend never
// collide, and recognisable, so leftovers can be found by hand.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return "conf-" + hex.EncodeToString(b[:])
}

func (r *runner) newInstance() *instanceRef {
	inst := &instanceRef{id: newID()}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.instances = append(r.instances, inst)
	return inst
}

func (r *runner) newBinding(inst *instanceRef) *bindingRef {
	b := &bindingRef{id: newID(), instance: inst}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bindings = append(r.bindings, b)
	return b
}

func (r *runner) recordCall(check, op string, t timing) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, callRecord{check: check, op: op, timing: t})
}

func (r *runner) recordError(check, op string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, errorRecord{check: check, op: op, err: err})
}

func (r *runner) noteCredentials(creds map[string]any) {
	found := secretValues(creds)
	r.mu.Lock()
	defer r.mu.Unlock()
	maps.Copy(r.secrets, found)
}

// describe is how an error reaches a report: its text, with every
// credential value the run has seen replaced, so a leaking adapter does
// not leak into CI logs as well.
func (r *runner) describe(err error) string {
	msg, _ := safeMessage(err)
	r.mu.Lock()
	secrets := slices.Collect(maps.Keys(r.secrets))
	r.mu.Unlock()
	// Longest first, so a URI is replaced whole before its password.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return msg
}

func (r *runner) origin() adapters.Origin {
	return adapters.Origin{
		RequestID: newID(),
		Platform:  "conformance",
		Context:   json.RawMessage(`{"platform":"conformance"}`),
	}
}

// params gives each call its own copy, so an adapter that writes to its
// parameters cannot change what a later or concurrent call sees.
func params(m map[string]any) map[string]any {
	out, _ := viaJSON(m) // prepare already proved m encodes
	return out
}

func (r *runner) provisionRequest(inst *instanceRef, p map[string]any) adapters.ProvisionRequest {
	return adapters.ProvisionRequest{
		InstanceID: inst.id, Offering: r.opts.Offering, Plan: r.plan,
		Parameters: params(p), Origin: r.origin(),
	}
}

func (r *runner) updateRequest(inst *instanceRef) adapters.UpdateRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return adapters.UpdateRequest{
		InstanceID: inst.id, Offering: r.opts.Offering, Plan: r.plan, PreviousPlan: r.plan,
		Parameters: params(r.opts.ProvisionParameters), Receipt: maps.Clone(inst.receipt), Origin: r.origin(),
	}
}

func (r *runner) deprovisionRequest(inst *instanceRef) adapters.DeprovisionRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return adapters.DeprovisionRequest{
		InstanceID: inst.id, Offering: r.opts.Offering, Plan: r.plan,
		Receipt: maps.Clone(inst.receipt), Origin: r.origin(),
	}
}

func (r *runner) bindRequest(b *bindingRef) adapters.BindRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return adapters.BindRequest{
		InstanceID: b.instance.id, BindingID: b.id, Offering: r.opts.Offering, Plan: r.plan,
		AppGUID: r.appGUID, Parameters: params(r.opts.BindParameters),
		InstanceReceipt: maps.Clone(b.instance.receipt), Origin: r.origin(),
	}
}

func (r *runner) unbindRequest(b *bindingRef) adapters.UnbindRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return adapters.UnbindRequest{
		InstanceID: b.instance.id, BindingID: b.id, Offering: r.opts.Offering, Plan: r.plan,
		InstanceReceipt: maps.Clone(b.instance.receipt), Receipt: maps.Clone(b.receipt), Origin: r.origin(),
	}
}

// doProvision provisions inst and keeps its receipt for later calls, as
// the broker would.
func (r *runner) doProvision(ctx context.Context, check string, inst *instanceRef, p map[string]any) error {
	res, err := r.provision(ctx, check, r.provisionRequest(inst, p))
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	inst.created = true
	if res.Receipt != nil {
		inst.receipt = maps.Clone(res.Receipt)
	}
	return nil
}

func (r *runner) doDeprovision(ctx context.Context, check string, inst *instanceRef) error {
	err := r.deprovision(ctx, check, r.deprovisionRequest(inst))
	if err == nil || errors.Is(err, adapters.ErrNotFound) {
		r.mu.Lock()
		inst.gone = true
		r.mu.Unlock()
	}
	return err
}

func (r *runner) doBind(ctx context.Context, check string, b *bindingRef) (map[string]any, error) {
	res, err := r.bind(ctx, check, r.bindRequest(b))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b.issued = append(b.issued, res.Credentials)
	if res.Receipt != nil {
		b.receipt = maps.Clone(res.Receipt)
	}
	return res.Credentials, nil
}

func (r *runner) doUnbind(ctx context.Context, check string, b *bindingRef) error {
	err := r.unbind(ctx, check, r.unbindRequest(b))
	if err == nil || errors.Is(err, adapters.ErrNotFound) {
		r.mu.Lock()
		b.gone = true
		r.mu.Unlock()
	}
	return err
}

func (r *runner) created(inst *instanceRef) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return inst != nil && inst.created && !inst.gone
}

func (r *runner) gone(v interface{ isGone() bool }) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return v.isGone()
}

func (i *instanceRef) isGone() bool { return i != nil && i.gone }
func (b *bindingRef) isGone() bool  { return b != nil && b.gone }

// latest returns b's newest credentials, or nil when Bind never succeeded.
func (r *runner) latest(b *bindingRef) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b == nil || len(b.issued) == 0 {
		return nil
	}
	return b.issued[len(b.issued)-1]
}

// removeQuietly removes a side instance and its bindings at once, so the
// main flow is not run next to leftovers. What fails here is left for the
// cleanup check, which tries again and reports it.
func (r *runner) removeQuietly(check string, inst *instanceRef, bindings ...*bindingRef) {
	for _, b := range bindings {
		if b != nil && !r.gone(b) {
			if err := r.doUnbind(r.ctx, check, b); !isGoneError(err) {
				r.log.printf("%s: removing binding %s: %s", check, b.id, r.describe(err))
			}
		}
	}
	if inst != nil && !r.gone(inst) {
		if err := r.doDeprovision(r.ctx, check, inst); !isGoneError(err) {
			r.log.printf("%s: removing instance %s: %s", check, inst.id, r.describe(err))
		}
	}
}

func (r *runner) closeAdapter(a adapters.Adapter) {
	c, ok := a.(adapters.Closer)
	if !ok {
		return
	}
	deadline := time.Now().Add(r.opts.CallTimeout)
	if _, _, err := guard("Close", deadline, r.opts.CallTimeout, func() (struct{}, error) {
		return struct{}{}, c.Close()
	}); err != nil {
		r.log.printf("Close: %s", r.describe(err))
	}
}
