// Package broker is Agora's OSB layer: it implements brokerapi's
// ServiceBroker on top of the catalog, the adapters, a StateStore (Redis),
// a CredentialStore (Vault) and a JobQueue for async work.
//
// Per request it looks the plan up in the catalog, takes the instance lock,
// judges idempotency against the stored request fingerprint, persists the
// operation, and runs the adapter call inline (sync plans) or hands it to
// the async engine (Worker). Errors from every layer are turned into OSB
// responses in one function, fail in errors.go. The workers also revoke
// bindings past their expires_at (expiry.go), and the parameters in force
// of instances and bindings are kept for GET and rotation (parameters.go).
//
// What it must never do: write a secret to the StateStore (credentials and
// parameters, of requests and in force, go to the CredentialStore), leave a
// half-written record behind (every multi-record change is one Mutation),
// or call KEYS or SCAN on a request path.
package broker
