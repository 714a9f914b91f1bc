package mysql

import (
	"crypto/rand"
	"fmt"
	"strings"
)

const (
	passwordLength = 40
	// Letters and digits only: the password goes into URIs and JDBC URLs,
	// and a character that needs escaping there is a bug waiting for an
	// application that forgets to.
	passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// newPassword returns 40 characters from crypto/rand, about 238 bits.
func newPassword() (string, error) {
	out := make([]byte, 0, passwordLength)
	buf := make([]byte, 64)
	// Rejection sampling keeps every character equally likely: 248 is the
	// largest multiple of 62 that fits a byte.
	for len(out) < passwordLength {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		for _, b := range buf {
			if b < 248 && len(out) < passwordLength {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(out), nil
}

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
