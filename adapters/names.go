package adapters

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// An adapter derives the names of its backend objects from the instance
// and binding IDs instead of storing them: a repeat after a crash, on any
// replica, must find what the first call created. OSB IDs are any string
// the platform chooses, so a name is built from these helpers rather than
// from the raw ID. Once an adapter has shipped, its names must never
// change: existing objects are found by them alone.

// ShortHash returns the first hexDigits hex digits (at most 64) of the
// SHA-256 of id. It tells IDs apart whatever characters they hold, in a
// fixed length a backend's name limit can plan for.
func ShortHash(id string, hexDigits int) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])[:hexDigits]
}

// Sanitize lower-cases id, replaces every character other than a-z and
// 0-9 with sep (one sep per character), and cuts the result to max bytes;
// max <= 0 keeps it whole. The result never needs quoting, but it is for
// an operator's eyes only: "a-b" and "A_B" sanitize alike, so a name that
// must be unique also needs ShortHash or SafeID.
func Sanitize(id string, sep byte, max int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if max > 0 && b.Len() == max {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte(sep)
		}
	}
	return b.String()
}

// MaxSafeIDLen is the longest SafeID.
const MaxSafeIDLen = 32

var (
	canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	shortPlainID  = regexp.MustCompile(`^[a-z0-9]{1,24}$`)
)

// SafeID turns an ID into at most MaxSafeIDLen lower-case letters and
// digits: safe in user names, key patterns, glob MATCH patterns and URL
// paths, and free of '-', the separator SafeName puts between IDs.
//
// The three forms cannot collide: a canonical UUID becomes its 32 hex
// digits, a short plain ID (1 to 24 of a-z0-9) stays as it is, and any
// other ID becomes 'x' plus 31 hex digits of its SHA-256 (not a UUID's
// form, because of the 'x').
func SafeID(id string) string {
	switch {
	case canonicalUUID.MatchString(id):
		return strings.ReplaceAll(id, "-", "")
	case shortPlainID.MatchString(id):
		return id
	default:
		return "x" + ShortHash(id, MaxSafeIDLen-1)
	}
}

// SafeName returns prefix followed by '-' and the SafeID of each ID:
// SafeName("agora", instanceID, bindingID) is "agora-<instance>-<binding>",
// at most len(prefix) + (1+MaxSafeIDLen) bytes per ID.
//
// Because a SafeID never holds '-', SafeName(p, a) + "-" is an unambiguous
// prefix of every name SafeName(p, a, ...) makes: instance "a" can never
// claim the users of instance "a-b", so a deprovision can find an
// instance's leftovers by prefix.
func SafeName(prefix string, ids ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, id := range ids {
		b.WriteByte('-')
		b.WriteString(SafeID(id))
	}
	return b.String()
}
