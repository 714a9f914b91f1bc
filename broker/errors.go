package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"

	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/broker/requestinfo"
)

// osbError is a failure the broker decided on itself: bad input, a
// conflict, a concurrent request.
type osbError struct {
	status int
	code   string // OSB error code, such as "ConcurrencyError"
	msg    string
}

func (e *osbError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &osbError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &osbError{status: http.StatusConflict, msg: fmt.Sprintf(format, args...)}
}

func concurrency(format string, args ...any) error {
	return &osbError{status: http.StatusUnprocessableEntity, code: "ConcurrencyError", msg: fmt.Sprintf(format, args...)}
}

func unprocessable(format string, args ...any) error {
	return &osbError{status: http.StatusUnprocessableEntity, msg: fmt.Sprintf(format, args...)}
}

func unprocessableCode(code, format string, args ...any) error {
	return &osbError{status: http.StatusUnprocessableEntity, code: code, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &osbError{status: http.StatusNotFound, msg: fmt.Sprintf(format, args...)}
}

var (
	errAsyncRequired = &osbError{status: http.StatusUnprocessableEntity, code: "AsyncRequired",
		msg: "this service plan requires client support for asynchronous service operations (accepts_incomplete=true)"}
	errMaintenanceInfoConflict = &osbError{status: http.StatusUnprocessableEntity, code: "MaintenanceInfoConflict",
		msg: "the maintenance_info.version in the request does not match the plan's in the catalog; fetch the catalog again"}
	errMaintenanceInfoNil = &osbError{status: http.StatusUnprocessableEntity, code: "MaintenanceInfoConflict",
		msg: "maintenance_info was passed, but the plan has no maintenance_info in the catalog"}
)

// adapterError marks a failure of a producer's adapter, so the message can
// name who owns the fix.
type adapterError struct {
	offering *catalog.Offering
	op       adapters.OperationKind
	err      error
}

func (e *adapterError) Error() string {
	return fmt.Sprintf("%s %s: %v", owner(e.offering), e.op, e.err)
}

func (e *adapterError) Unwrap() error { return e.err }

// overdueError is an async operation given up at its deadline after
// failed attempts: the platform reads the last failure's words, the log
// its chain.
type overdueError struct {
	public, detail string
}

func (e *overdueError) Error() string { return e.detail }

// stateError marks a failure of the state store (Redis).
type stateError struct{ err error }

func (e *stateError) Error() string { return "state store (Redis): " + e.err.Error() }
func (e *stateError) Unwrap() error { return e.err }

// credentialError marks a failure of the credential store (Vault).
type credentialError struct{ err error }

func (e *credentialError) Error() string { return "credential store (Vault): " + e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

func stateErr(err error) error {
	if err == nil || errors.Is(err, ErrLocked) || errors.Is(err, ErrStale) {
		return err
	}
	return &stateError{err: err}
}

func credErr(err error) error {
	if err == nil {
		return nil
	}
	return &credentialError{err: err}
}

// failure is an error sorted for its two audiences: what the app developer
// is told (public, with who owns the fix), and who that owner is. The full
// chain, with addresses and paths, is for the operator's log only.
type failure struct {
	status int
	code   string // OSB error code, such as "ConcurrencyError"
	public string
	// owner is who must act: "adapter", "vault", "redis", "agora", or ""
	// when the request itself was wrong.
	owner string
}

// fail is the one place where errors become OSB responses. The platform
// (and the app developer behind it) gets a clear description that names
// who owns the fix, with the request id to quote; the full error chain
// goes to the request's one access-log line (requestinfo.Outcome).
// brokerapi finds *apiresponses.FailureResponse by type switch, not
// errors.As, so the value returned here is never wrapped.
func (b *Broker) fail(ctx context.Context, action string, err error) error {
	if err == nil {
		return nil
	}
	info := requestinfo.From(ctx)
	if ready, ok := errors.AsType[*apiresponses.FailureResponse](err); ok {
		// brokerapi's own answers with empty bodies (410 Gone).
		info.SetOutcome(requestinfo.Outcome{Error: err.Error()})
		return ready
	}
	f := classify(err)
	info.SetOutcome(requestinfo.Outcome{Error: err.Error(), Code: f.code, Owner: f.owner})
	if info == nil {
		// Called without the edge (a Go caller): nobody else logs it.
		b.log.Log(ctx, logLevel(f), "osb request failed", "action", action, "status", f.status, "error", err.Error())
	}
	msg := b.publicText(f, err)
	if id := requestinfo.ID(ctx); id != "" {
		msg += " (request id " + id + ")"
	}
	return apiresponses.NewFailureResponseBuilder(errors.New(msg), f.status, action).WithErrorKey(f.code).Build()
}

// publicText is what the app developer reads: the public words, plus the
// whole chain only where the operator switched details on (agora dev).
func (b *Broker) publicText(f failure, err error) string {
	if b.exposeDetails && f.owner != "" {
		return f.public + " [details: " + err.Error() + "]"
	}
	return f.public
}

// logLevel says who must act: ERROR for the platform engineer, WARN for a
// producer's adapter, DEBUG for what the client got wrong.
func logLevel(f failure) slog.Level {
	switch f.owner {
	case "":
		return slog.LevelDebug
	case "adapter":
		return slog.LevelWarn
	}
	return slog.LevelError
}

func classify(err error) failure {
	var oe *osbError
	var ae *adapterError
	var se *stateError
	var ce *credentialError
	switch {
	case errors.As(err, &oe):
		return failure{status: oe.status, code: oe.code, public: oe.msg}
	case errors.Is(err, ErrLocked):
		return failure{status: http.StatusUnprocessableEntity, code: "ConcurrencyError", public: "another request is changing this service instance right now; retry shortly"}
	case errors.As(err, new(*forcedError)):
		fe, _ := errors.AsType[*forcedError](err)
		return failure{status: http.StatusUnprocessableEntity, owner: "agora", public: fe.Error()}
	case errors.As(err, new(*overdueError)):
		oe, _ := errors.AsType[*overdueError](err)
		return failure{status: http.StatusGatewayTimeout, owner: "adapter", public: oe.public}
	case errors.As(err, &ae):
		return classifyAdapter(ae)
	case errors.As(err, &ce):
		return failure{status: http.StatusServiceUnavailable, owner: "vault",
			public: "Agora's credential store (Vault) is failing; retry later, and tell the platform team if it persists"}
	case errors.As(err, &se):
		return failure{status: http.StatusServiceUnavailable, owner: "redis",
			public: "Agora's state store (Redis) is failing; retry later, and tell the platform team if it persists"}
	case errors.Is(err, context.DeadlineExceeded):
		return failure{status: http.StatusGatewayTimeout, owner: "agora", public: "the request timed out inside Agora; retry it"}
	default:
		return failure{status: http.StatusInternalServerError, owner: "agora", public: "internal error in Agora; tell the platform team"}
	}
}

// classifyAdapter words an adapter's failure. Only what an adapter meant
// for app developers reaches them: an invalid-parameters message, and an
// explanation marked with adapters.Said. Anything else in the chain may
// name internal hosts, so it goes to the log, and the developer learns who
// owns the fix.
func classifyAdapter(ae *adapterError) failure {
	who := owner(ae.offering)
	switch {
	case errors.Is(ae.err, adapters.ErrInvalidParameters):
		return failure{status: http.StatusBadRequest, public: ae.err.Error()}
	case errors.Is(ae.err, adapters.ErrAlreadyExists):
		return failure{status: http.StatusConflict, owner: "adapter",
			public: fmt.Sprintf("%s: the backend already holds a conflicting resource for this %s; ask %s", ae.offering.Name, ae.op, who)}
	case errors.Is(ae.err, adapters.ErrNotSupported):
		return failure{status: http.StatusUnprocessableEntity,
			public: fmt.Sprintf("%s does not support this %s", ae.offering.Name, ae.op)}
	case Unreachable(ae.err):
		return failure{status: http.StatusBadGateway, owner: "adapter",
			public: fmt.Sprintf("%s failed during %s: its backend could not be reached; retry later, and tell its producer if it persists", who, ae.op)}
	case errors.Is(ae.err, context.DeadlineExceeded):
		return failure{status: http.StatusGatewayTimeout, owner: "adapter",
			public: fmt.Sprintf("%s did not answer in time during %s", who, ae.op)}
	}
	if said, ok := adapters.SaidOf(ae.err); ok {
		return failure{status: http.StatusBadGateway, owner: "adapter",
			public: fmt.Sprintf("%s failed during %s: %s", who, ae.op, said)}
	}
	return failure{status: http.StatusBadGateway, owner: "adapter",
		public: fmt.Sprintf("%s failed during %s; its producer finds the cause under this request id", who, ae.op)}
}

// Unreachable reports a failure to connect at all (refused, no route, no
// such host), which "did not answer in time" would misdescribe.
func Unreachable(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return true
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && dnsErr.IsNotFound {
		return true
	}
	opErr, ok := errors.AsType[*net.OpError](err)
	return ok && opErr.Op == "dial" && !opErr.Timeout()
}

// requestFault reports whether an adapter error means the request itself
// was wrong. The adapter contract promises that such a request created
// nothing, so the broker forgets it instead of keeping a failed record.
func requestFault(err error) bool {
	return errors.Is(err, adapters.ErrInvalidParameters) ||
		errors.Is(err, adapters.ErrAlreadyExists) ||
		errors.Is(err, adapters.ErrNotSupported)
}
