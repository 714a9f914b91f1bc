// Package secrets is the Agora adapter that hands every service instance its
// own space in HashiCorp Vault's KV v2 engine, the way Cloud Foundry's CredHub
// service broker hands out a credential namespace.
//
// Provision writes one ACL policy per instance that grants exactly the
// instance's KV v2 path. Bind creates one AppRole role per binding (plus an
// identity entity the role's logins attach to) and returns a role_id and
// secret_id. Unbind deletes the role and the entity, which both stops new
// logins and makes every token already issued to the binding unusable at
// once. Deprovision deletes every secret (all versions) under the instance
// path, the policy, and the roles of any binding still left.
//
// What it must never do: use Agora's own Vault client or credential store
// (it talks to the producer's Vault with its own client and token), read
// configuration from the environment, or put a secret into a Receipt or
// Metadata, which Agora stores in Redis.
package secrets
