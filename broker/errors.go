package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/pivotal-cf/brokerapi/v11/domain/apiresponses"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker/catalog"
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

// fail is the one place where errors become OSB responses. The platform
// (and the app developer behind it) gets a clear description with the
// request id to quote; the log gets the full error chain. brokerapi finds
// *apiresponses.FailureResponse by type switch, not errors.As, so the
// value returned here is never wrapped.
func (b *Broker) fail(ctx context.Context, action string, err error) error {
	if err == nil {
		return nil
	}
	var ready *apiresponses.FailureResponse
	if errors.As(err, &ready) {
		return ready
	}
	status, code, msg := classify(err)
	rid := requestID(ctx)
	level := slog.LevelWarn
	if status >= 500 {
		level = slog.LevelError
	}
	b.log.Log(ctx, level, "osb request failed", "action", action, "status", status, "request_id", rid, "error", err.Error())
	if rid != "" {
		msg += " (request id " + rid + ")"
	}
	return apiresponses.NewFailureResponseBuilder(errors.New(msg), status, action).WithErrorKey(code).Build()
}

func classify(err error) (status int, code, msg string) {
	var oe *osbError
	var ae *adapterError
	var se *stateError
	var ce *credentialError
	switch {
	case errors.As(err, &oe):
		return oe.status, oe.code, oe.msg
	case errors.Is(err, ErrLocked):
		return http.StatusUnprocessableEntity, "ConcurrencyError", "another request is changing this service instance right now; retry shortly"
	case errors.As(err, &ae):
		return classifyAdapter(ae)
	case errors.As(err, &ce):
		return http.StatusServiceUnavailable, "", "Agora's credential store (Vault) failed: " + ce.err.Error() + "; retry later, or ask the platform team if it persists"
	case errors.As(err, &se):
		return http.StatusServiceUnavailable, "", "Agora's state store (Redis) failed: " + se.err.Error() + "; retry later or ask the platform team"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "", "the request timed out"
	default:
		return http.StatusInternalServerError, "", "internal error in Agora"
	}
}

func classifyAdapter(ae *adapterError) (int, string, string) {
	switch {
	case errors.Is(ae.err, adapters.ErrInvalidParameters):
		return http.StatusBadRequest, "", ae.err.Error()
	case errors.Is(ae.err, adapters.ErrAlreadyExists):
		return http.StatusConflict, "", fmt.Sprintf("%s: %v", ae.offering.Name, ae.err)
	case errors.Is(ae.err, adapters.ErrNotSupported):
		return http.StatusUnprocessableEntity, "", fmt.Sprintf("%s does not support this %s: %v", ae.offering.Name, ae.op, ae.err)
	case errors.Is(ae.err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "", fmt.Sprintf("%s did not answer in time during %s", owner(ae.offering), ae.op)
	default:
		return http.StatusBadGateway, "", fmt.Sprintf("%s failed during %s: %v", owner(ae.offering), ae.op, ae.err)
	}
}

// requestFault reports whether an adapter error means the request itself
// was wrong. The adapter contract promises that such a request created
// nothing, so the broker forgets it instead of keeping a failed record.
func requestFault(err error) bool {
	return errors.Is(err, adapters.ErrInvalidParameters) ||
		errors.Is(err, adapters.ErrAlreadyExists) ||
		errors.Is(err, adapters.ErrNotSupported)
}
