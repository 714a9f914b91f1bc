package adapters

import (
	"errors"
	"fmt"
)

// Sentinel errors for the expected conditions. Wrap them with %w so the
// backend's own message stays in the chain for the operator's log; Agora
// maps them to OSB responses in one place (broker/errors.go).
var (
	// ErrNotFound: the instance or binding does not exist on the backend.
	// On Deprovision and Unbind it means "already gone" and counts as success.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the backend holds a conflicting resource that this
	// request did not create. (A repeat of the same request is not this
	// error; it must succeed.)
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidParameters: the parameters passed schema validation but the
	// backend cannot honour them. The message is shown to the app developer.
	ErrInvalidParameters = errors.New("invalid parameters")
	// ErrNotSupported: the adapter does not offer this operation or change
	// (for example a plan change it cannot perform).
	ErrNotSupported = errors.New("not supported")
)

// TerminalError marks a failure that retrying cannot fix. Agora's async
// engine reports the operation as failed at once instead of retrying it.
type TerminalError struct {
	Err error
}

func (e *TerminalError) Error() string { return e.Err.Error() }

// Unwrap keeps the wrapped chain visible to errors.Is and errors.As.
func (e *TerminalError) Unwrap() error { return e.Err }

// Terminal wraps err so that the async engine does not retry it.
// Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &TerminalError{Err: err}
}

// IsTerminal reports whether retrying err is pointless. The sentinel
// errors above are terminal too: repeating the same request cannot change
// the answer.
func IsTerminal(err error) bool {
	var t *TerminalError
	return errors.As(err, &t) ||
		errors.Is(err, ErrAlreadyExists) ||
		errors.Is(err, ErrInvalidParameters) ||
		errors.Is(err, ErrNotSupported)
}

// InvalidParameters returns an error wrapping ErrInvalidParameters with a
// message meant for the app developer.
func InvalidParameters(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidParameters, fmt.Sprintf(format, args...))
}

// SaidError is an adapter's own explanation of a failure, in words meant
// for the app developer. Agora shows it in the OSB error description and
// in last_operation; the rest of the error chain (the adapter's address,
// Agora's plumbing) goes to the operator's log only. Create it with Said.
type SaidError struct {
	Message string
}

func (e *SaidError) Error() string { return e.Message }

// Said marks msg as the adapter's explanation for the app developer, such
// as "quota of 5 databases exceeded". Wrap it like any error:
// adapters.Terminal(adapters.Said("quota of 5 databases exceeded")), or
// fmt.Errorf("create database %s: %w", name, adapters.Said("disk full")).
// It must never hold a secret or an internal address.
func Said(msg string) error {
	return &SaidError{Message: msg}
}

// SaidOf returns the message an adapter marked with Said, if the chain of
// err holds one.
func SaidOf(err error) (string, bool) {
	if s, ok := errors.AsType[*SaidError](err); ok {
		return s.Message, true
	}
	return "", false
}
