package adapters

import (
	"crypto/rand"
	"errors"
	"fmt"
)

// passwordAlphabet is letters and digits only: passwords go into URIs and
// JDBC URLs, and a character that needs escaping there is a bug waiting
// for an application that forgets to.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// PasswordLength is the length of the passwords the built-in adapters
// issue: 43 letters and digits hold 43 × 5.95 ≈ 256 bits.
const PasswordLength = 43

// NewPassword returns length letters and digits from crypto/rand, each
// carrying log2(62) ≈ 5.95 bits.
func NewPassword(length int) (string, error) {
	if length < 1 {
		return "", errors.New("generate password: length must be at least 1")
	}
	out := make([]byte, 0, length)
	buf := make([]byte, 64)
	// Rejection sampling keeps every character equally likely: 248 is the
	// largest multiple of 62 that fits a byte.
	for len(out) < length {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		for _, b := range buf {
			if b < 248 && len(out) < length {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(out), nil
}
