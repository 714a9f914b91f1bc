package postgres

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
)

// Names are derived from IDs rather than stored, so a repeated call after a
// crash finds what the first one created. Every name starts with
// "agora_<16 hex digits of sha256(instance ID)>": the hash keeps names of
// different instances apart whatever characters the platform puts in its
// IDs, and the sanitized tail lets an operator recognise the instance in
// `\l` and `\du`. All names stay within PostgreSQL's 63-byte limit.
type instanceNames struct {
	// prefix starts every database and role name of the instance.
	prefix   string
	database string
	owner    string
	// bindingPrefix starts every binding role of the instance.
	bindingPrefix string
}

func namesFor(instanceID string) instanceNames {
	prefix := "agora_" + shortHash(instanceID, 16)
	return instanceNames{
		prefix:        prefix,
		database:      prefix + "_" + sanitize(instanceID, 24),
		owner:         prefix + "_owner",
		bindingPrefix: prefix + "_b_",
	}
}

// bindingRole is the LOGIN role of one binding: at most 22+3+12+1+24 = 62
// bytes.
func (n instanceNames) bindingRole(bindingID string) string {
	return n.bindingPrefix + shortHash(bindingID, 12) + "_" + sanitize(bindingID, 24)
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

func shortHash(id string, hexDigits int) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])[:hexDigits]
}

// sanitize keeps lower-case ASCII letters and digits and turns everything
// else into '_', so the result never needs quoting to be read, and cuts it
// to max bytes. It is for readability only; uniqueness comes from the hash.
func sanitize(id string, max int) string {
	var b strings.Builder
	for _, r := range strings.ToLower(id) {
		if b.Len() == max {
			break
		}
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
