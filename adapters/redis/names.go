package redis

import (
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// Names are derived from IDs rather than stored, so Unbind and Deprovision
// work even when the receipt Bind returned was lost in a crash. They are
// built from adapters.SafeID, which never contains '-', ':' or a glob
// character: `agora-<instance>-` is then an unambiguous user prefix
// (instance "a" can never own the users of instance "a-b"), and the key
// namespace is safe inside ACL key patterns and SCAN MATCH. These names
// must never change: existing users and keys are found by them alone
// (names_test.go pins them).

// userNamePrefix starts every ACL user this adapter creates, so an operator
// can tell Agora's users from hand-made ones.
const userNamePrefix = "agora"

// instanceUserPrefix is the prefix shared by all binding users of one
// instance; Deprovision finds leftover users with it.
func instanceUserPrefix(instanceID string) string {
	return adapters.SafeName(userNamePrefix, instanceID) + "-"
}

// bindingUserName is the ACL user of one binding.
func bindingUserName(instanceID, bindingID string) string {
	return adapters.SafeName(userNamePrefix, instanceID, bindingID)
}

// keyPrefix is the instance's key and channel namespace. The trailing ':'
// keeps instance "ab" out of instance "abc"'s namespace.
func keyPrefix(root, instanceID string) string {
	return root + ":" + adapters.SafeID(instanceID) + ":"
}

// globEscape escapes the characters Redis glob patterns treat specially.
// SafeID and the validated root never contain them; escaping anyway keeps
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
