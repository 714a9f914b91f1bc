package mysql

import "strings"

// redact keeps a password out of an error's text. MySQL quotes part of a
// statement in some errors ("... near '...'"), and a statement that sets a
// password holds it.
func redact(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), password, "<redacted>"), err: err}
}

// redactedError shows the redacted text but keeps the chain, so callers
// can still match the driver's error number with errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
