package mysql

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// Names are derived from IDs rather than stored, so a repeated call after a
// crash finds what the first one created. Every name starts with
// "agora_<16 hex digits of sha256(instance ID)>_": the hash keeps the names
// of different instances apart whatever characters the platform puts in
// its IDs. User names stay within MySQL's 32 characters (MariaDB allows
// 80), database names within 64.
type instanceNames struct {
	// prefix starts the database name and every user name of the instance.
	prefix   string
	database string
}

func namesFor(instanceID string) instanceNames {
	prefix := "agora_" + shortHash(instanceID, 16) + "_"
	return instanceNames{
		prefix: prefix,
		// The sanitized tail lets an operator recognise the instance in
		// SHOW DATABASES; uniqueness comes from the hash.
		database: prefix + sanitize(instanceID, 24),
	}
}

// user is the binding's user name: 23 + 9 = 32 characters. Nine hex digits
// of the binding ID are plenty: they only need to tell apart the bindings
// of one instance.
func (n instanceNames) user(bindingID string) string {
	return n.prefix + shortHash(bindingID, 9)
}

func shortHash(id string, hexDigits int) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])[:hexDigits]
}

// sanitize keeps lower-case ASCII letters and digits, turns everything
// else into '_' and cuts the result to max bytes.
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

// quoteIdent quotes a database name for SQL: backticks, with any backtick
// inside doubled.
func quoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}

// grantTarget quotes a database name for GRANT ... ON <db>.*, where '_'
// and '%' are wildcards: unescaped, a grant on agora_x would also cover
// agoraXx. Escaping them makes the grant match this database only.
func grantTarget(name string) string {
	r := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`)
	return quoteIdent(r.Replace(name)) + ".*"
}

func sortStrings(s []string) { sort.Strings(s) }
