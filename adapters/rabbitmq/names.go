package rabbitmq

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// namePrefix starts every vhost and user this adapter creates, so an
// operator can tell Agora's from hand-made ones.
const namePrefix = "agora-"

var (
	canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	shortPlainID  = regexp.MustCompile(`^[a-z0-9]{1,24}$`)
)

// safeID turns an OSB ID (any string) into a name part without '-', so
// that `agora-<instance>-` is an unambiguous prefix: instance "a" can never
// own the users of instance "a-b".
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

// vhostName is the instance's virtual host.
func vhostName(instanceID string) string {
	return namePrefix + safeID(instanceID)
}

// instanceUserPrefix is shared by all binding users of one instance;
// Deprovision finds leftover users with it.
func instanceUserPrefix(instanceID string) string {
	return vhostName(instanceID) + "-"
}

// bindingUserName is deterministic so that Unbind and Deprovision work even
// when the receipt Bind returned was lost in a crash.
func bindingUserName(instanceID, bindingID string) string {
	return instanceUserPrefix(instanceID) + safeID(bindingID)
}
