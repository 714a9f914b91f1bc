package postgres

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"

	"github.com/agora-osb/agora/adapters"
)

// Names are derived from IDs rather than stored, so a repeated call after a
// crash finds what the first one created. Every name starts with
// "agora_<16 hex digits of sha256(instance ID)>": the hash keeps names of
// different instances apart whatever characters the platform puts in its
// IDs, and the sanitized tail lets an operator recognise the instance in
// `\l` and `\du`. All names stay within PostgreSQL's 63-byte limit. These
// names must never change: existing databases and roles are found by them
// alone (names_test.go pins them).
type instanceNames struct {
	// prefix starts every database and role name of the instance.
	prefix   string
	database string
	owner    string
	// bindingPrefix starts every binding role of the instance.
	bindingPrefix string
}

func namesFor(instanceID string) instanceNames {
	prefix := "agora_" + adapters.ShortHash(instanceID, 16)
	return instanceNames{
		prefix:        prefix,
		database:      prefix + "_" + adapters.Sanitize(instanceID, '_', 24),
		owner:         prefix + "_owner",
		bindingPrefix: prefix + "_b_",
	}
}

// bindingRole is the LOGIN role of one binding: at most 22+3+12+1+24 = 62
// bytes.
func (n instanceNames) bindingRole(bindingID string) string {
	return n.bindingPrefix + adapters.ShortHash(bindingID, 12) + "_" + adapters.Sanitize(bindingID, '_', 24)
}

// lockStmt starts a multi-statement write by serializing it with every
// other write for the same instance. Without it, two calls that ALTER the
// same role or database at once fail with "tuple concurrently updated"
// (a platform retrying through two broker replicas does exactly that).
// The lock is transaction-scoped: it goes when the statement's implicit
// transaction commits or fails, whatever happens to the connection. Like
// all advisory locks it is per database.
func (n instanceNames) lockStmt() string {
	sum := sha256.Sum256([]byte("agora-postgres-instance:" + n.prefix))
	key := int64(binary.BigEndian.Uint64(sum[:8]))
	return "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(key, 10) + ")"
}
