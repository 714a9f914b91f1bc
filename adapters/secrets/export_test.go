package secrets

// VaultName exposes the ID-to-name mapping to the external tests, which
// check its properties (deterministic, Vault-safe, collision-free).
func VaultName(id string) string { return vaultName(id) }

// PolicyName and RoleName are the names Vault shows for an instance and a
// binding, so the lifecycle tests can look them up as an operator would.
func PolicyName(instanceID string) string { return "agora-secrets-" + vaultName(instanceID) }

// RoleName is the AppRole role (and identity entity) of a binding.
func RoleName(bindingID string) string { return roleName(bindingID) }
