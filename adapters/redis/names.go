package redis

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// userNamePrefix starts every ACL user this adapter creates, so an operator
// can tell Agora's users from hand-made ones.
const userNamePrefix = "agora-"

var (
	canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	shortPlainID  = regexp.MustCompile(`^[a-z0-9]{1,24}$`)
)

// safeID turns an OSB ID (any string) into a name part that is safe inside
// ACL user names, key patterns and glob MATCH patterns, and that never
// contains '-'. The absence of '-' is what makes `agora-<instance>-` an
// unambiguous prefix: instance "a" can never own the users of instance "a-b".
//
// The three forms cannot collide: UUIDs become 32 hex characters, short
// plain IDs keep at most 24 characters, and everything else becomes 'x' plus
// 31 hex characters of SHA-256 (not a hex string, because of the 'x').
func safeID(id string) string {
	switch {
	case canonicalUUID.MatchString(id):
		return strings.ReplaceAll(id, "-", "")
	case shortPlainID.MatchString(id):
		return id
	default:
		sum := sha256.Sum256([]byte(id))
		return "x" + hex.EncodeToString(sum[:])[:31]
	}
}

// instanceUserPrefix is the prefix shared by all binding users of one
// instance; Deprovision finds leftover users with it.
func instanceUserPrefix(instanceID string) string {
	return userNamePrefix + safeID(instanceID) + "-"
}

// bindingUserName is deterministic so that Unbind and Deprovision work even
// when the receipt Bind returned was lost in a crash.
func bindingUserName(instanceID, bindingID string) string {
	return instanceUserPrefix(instanceID) + safeID(bindingID)
}

// keyPrefix is the instance's key and channel namespace. The trailing ':'
// keeps instance "ab" out of instance "abc"'s namespace.
func keyPrefix(root, instanceID string) string {
	return root + ":" + safeID(instanceID) + ":"
}

// globEscape escapes the characters Redis glob patterns treat specially.
// safeID and the validated root never contain them; escaping anyway keeps
// SCAN MATCH correct if those rules are ever relaxed.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
