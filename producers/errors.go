package producers

import (
	"errors"
	"fmt"
)

// Kinds of failure. The HTTP API maps each to one status code, in one
// place (producerapi); every *Error wraps exactly one of them.
var (
	ErrUnauthenticated = errors.New("unauthenticated") // 401
	ErrNotFound        = errors.New("not found")       // 404
	ErrConflict        = errors.New("conflict")        // 409
	ErrForbidden       = errors.New("forbidden")       // 403
	ErrInvalid         = errors.New("invalid")         // 400
	ErrGateFailed      = errors.New("gate failed")     // 422
	ErrUnavailable     = errors.New("unavailable")     // 503: Redis, Vault, no gate configured
)

// Error is a failure the caller can act on: a message that names the fix,
// the validation problems with their paths, or the gate's report.
type Error struct {
	Kind     error
	Message  string
	Problems []FieldProblem
	Gate     *GateResult
	// Cause is for the log only; it may name internals.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

// Unwrap makes errors.Is(err, ErrInvalid) and the like work.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// Fail returns an *Error of kind with a message that names the fix.
func Fail(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Unavailable reports a dependency failure, naming which one owns the fix.
func Unavailable(cause error, format string, args ...any) *Error {
	return &Error{Kind: ErrUnavailable, Message: fmt.Sprintf(format, args...), Cause: cause}
}
