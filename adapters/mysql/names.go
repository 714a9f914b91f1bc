package mysql

import (
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// Names are derived from IDs rather than stored, so a repeated call after a
// crash finds what the first one created. Every name starts with
// "agora_<16 hex digits of sha256(instance ID)>_": the hash keeps the names
// of different instances apart whatever characters the platform puts in
// its IDs. User names stay within MySQL's 32 characters (MariaDB allows
// 80), database names within 64. These names must never change: existing
// databases and users are found by them alone (names_test.go pins them).
type instanceNames struct {
	// prefix starts the database name and every user name of the instance.
	prefix   string
	database string
}

func namesFor(instanceID string) instanceNames {
	prefix := "agora_" + adapters.ShortHash(instanceID, 16) + "_"
	return instanceNames{
		prefix: prefix,
		// The sanitized tail lets an operator recognise the instance in
		// SHOW DATABASES; uniqueness comes from the hash.
		database: prefix + adapters.Sanitize(instanceID, '_', 24),
	}
}

// user is the binding's user name: 23 + 9 = 32 characters. Nine hex digits
// of the binding ID are plenty: they only need to tell apart the bindings
// of one instance.
func (n instanceNames) user(bindingID string) string {
	return n.prefix + adapters.ShortHash(bindingID, 9)
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
