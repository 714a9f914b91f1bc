package postgres

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const scramIterations = 4096

// scramVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for
// password (the format of pg_authid.rolpassword). Sending the verifier
// instead of the password keeps the password out of the server's statement
// log, pg_stat_statements and pg_stat_activity. PostgreSQL accepts it as
// is in ALTER/CREATE ROLE ... PASSWORD.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generate salt: %w", err)
	}
	return scramVerifierWithSalt(password, salt, scramIterations)
}

func scramVerifierWithSalt(password string, salt []byte, iterations int) (string, error) {
	// SASLprep would normalise a password before hashing; ours are ASCII
	// letters and digits, which it leaves unchanged.
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("derive scram key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s",
		iterations, enc(salt), enc(storedKey[:]), enc(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// quoteLiteral quotes s as an SQL string literal. It is for the few places
// PostgreSQL takes no parameters (utility statements such as ALTER ROLE).
// It works whatever standard_conforming_strings says, like libpq's
// PQescapeLiteral: quotes are doubled, and a string with a backslash uses
// the E'...' form with the backslashes doubled.
func quoteLiteral(s string) (string, error) {
	if strings.ContainsRune(s, 0) {
		return "", errors.New("a string literal cannot hold a NUL byte")
	}
	q := strings.ReplaceAll(s, `'`, `''`)
	if strings.Contains(q, `\`) {
		return ` E'` + strings.ReplaceAll(q, `\`, `\\`) + `'`, nil
	}
	return `'` + q + `'`, nil
}
