package secrets

import (
	"fmt"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

const (
	// maxPlainName is the longest ID used as is. OSB IDs are usually GUIDs
	// (36 characters); longer ones are shortened and hashed.
	maxPlainName = 64
	// keptOfChanged is how much of a changed ID stays readable before the hash.
	keptOfChanged = 40
	// hashChars: 64 bits of SHA-256, so two IDs sharing a readable part
	// cannot be made to collide by trial.
	hashChars = 16
)

// vaultName turns an OSB instance or binding ID into a name usable in
// Vault paths, policy names, role names and entity names: lowercase
// [a-z0-9-]. Unlike adapters.SafeName it keeps a GUID as it is, so an
// operator finds an instance's folder under the ID the platform shows.
//
// The mapping is deterministic (a repeated request, on any replica, finds
// what the first one created) and injective up to a 64-bit hash:
//   - an ID that already is [a-z0-9-], has no "--", does not start or end
//     with "-", and is at most 64 characters is used unchanged;
//   - any other ID becomes its sanitised, shortened form + "--" + a hash of
//     the original ID.
//
// The sanitised form never contains "--", so only changed IDs contain it;
// an unchanged ID can therefore never equal another ID's changed form.
// That matters for isolation: two instances must never share a path. The
// names must never change: existing spaces and bindings are found by them
// alone (names_test.go pins them).
func vaultName(id string) string {
	// Sanitize turns each other character into a space; Fields then drops
	// the spaces at either end and joins each run of them into one '-'.
	clean := strings.Join(strings.Fields(adapters.Sanitize(id, ' ', 0)), "-")
	if clean != "" && clean == id && len(clean) <= maxPlainName {
		return clean
	}
	if len(clean) > keptOfChanged {
		clean = strings.TrimRight(clean[:keptOfChanged], "-")
	}
	if clean == "" {
		clean = "id"
	}
	return clean + "--" + adapters.ShortHash(id, hashChars)
}

// space is where one instance lives in Vault.
type space struct {
	kvMount string // "secret"
	path    string // "agora-secrets/<instance>", relative to kvMount
	policy  string // "agora-secrets-<instance>"
}

// Receipt keys. Receipts are stored in Redis: names and accessors only.
const (
	receiptKVMount          = "kv_mount"
	receiptPath             = "path"
	receiptPolicy           = "policy"
	receiptRole             = "role"
	receiptEntity           = "entity"
	receiptApproleMount     = "approle_mount"
	receiptSecretIDAccessor = "secret_id_accessor"
	// receiptRecords marks an instance whose every binding is recorded
	// under recordsPath; its value is the record format's version.
	receiptRecords = "records"
)

func (a *Adapter) spaceFor(instanceID string) space {
	name := vaultName(instanceID)
	return space{
		kvMount: a.settings.KVMount,
		path:    a.settings.PathPrefix + "/" + name,
		policy:  "agora-secrets-" + name,
	}
}

// spaceFromReceipt prefers what Provision recorded, so an instance keeps
// working (and is cleaned up where it really lives) even after an operator
// changes kv_mount or path_prefix for new instances.
func (a *Adapter) spaceFromReceipt(instanceID string, r map[string]string) space {
	s := a.spaceFor(instanceID)
	if r[receiptKVMount] != "" && r[receiptPath] != "" && r[receiptPolicy] != "" {
		s = space{kvMount: r[receiptKVMount], path: r[receiptPath], policy: r[receiptPolicy]}
	}
	return s
}

func (s space) receipt() map[string]string {
	return map[string]string{receiptKVMount: s.kvMount, receiptPath: s.path, receiptPolicy: s.policy}
}

// policyHCL grants full use of the instance's KV v2 folder and nothing
// else: data/ holds the secrets, metadata/ lists them and deletes every
// version. The exact base path is granted too, because "<base>/*" does not
// match "<base>" itself. The comment carries only the safe name: a raw ID
// could hold a newline and inject rules.
func (s space) policyHCL() string {
	caps := `capabilities = ["create", "read", "update", "delete", "list"]`
	var b strings.Builder
	fmt.Fprintf(&b, "# Managed by Agora's secrets adapter: instance space %s/%s. Do not edit.\n", s.kvMount, s.path)
	for _, kind := range []string{"data", "metadata"} {
		base := s.kvMount + "/" + kind + "/" + s.path
		fmt.Fprintf(&b, "path %q {\n  %s\n}\n", base, caps)
		fmt.Fprintf(&b, "path %q {\n  %s\n}\n", base+"/*", caps)
	}
	return b.String()
}

// roleName is the AppRole role of one binding. It depends on the binding
// alone so Unbind finds it even without a receipt.
func roleName(bindingID string) string { return "agora-" + vaultName(bindingID) }

// entityName is the identity entity every login of the binding's role is
// attached to. Deleting it invalidates all tokens issued to the binding.
func entityName(bindingID string) string { return "agora-" + vaultName(bindingID) }
