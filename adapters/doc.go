// Package adapters is the contract between Agora and the producer teams that
// contribute services to its catalog.
//
// A producer implements the small Adapter interface (provision, deprovision,
// bind, unbind) and, when its backend can, any of the optional capabilities
// (Updater, Poller, Pinger, Closer, Inspector). Agora finds the optional ones by type
// assertion, the way database/sql finds driver.Pinger.
//
// What an adapter must never do: touch Agora's Redis or Vault. The broker
// owns state, idempotency bookkeeping, async tracking and credential storage;
// an adapter does backend work and returns results. Everything an adapter
// returns outside BindResult.Credentials is stored in Redis, so it must never
// hold a secret.
//
// Every request and result is a struct, so fields can be added without
// breaking any adapter.
//
// # The template every built-in adapter follows
//
// Producers copy the built-in adapters (mysql, postgres, redis, rabbitmq,
// secrets, osb), so they share one shape, which template_test.go checks:
//
//   - doc.go says what the adapter provisions and what it must never do;
//     adapter.go holds Factory, the Adapter type, New and the operations;
//     settings.go the Settings and PlanSettings types; names.go how backend
//     names derive from IDs.
//   - `func Factory() adapters.Factory` sets Name, a one-line Description
//     naming the owning team, and `New: adapters.Constructor(New)`.
//   - `func New(ctx, cfg) (*Adapter, error)` decodes with DecodeConfig and
//     returns its error as it is. Settings fill their optional fields in
//     ApplyDefaults (Defaulter) and report every problem at once in
//     Validate (Validator). New does not contact the backend: Ping does.
//     cfg.Logger is never nil; an adapter logs without checking.
//   - Each operation looks its plan up with PlanSettings.Lookup and refuses
//     parameters it does not take with NoParameters.
//   - Names derive from IDs with ShortHash, Sanitize, SafeID or SafeName,
//     never from the raw ID, and once shipped they never change: a test
//     pins them, since existing objects are found by them alone.
//   - Passwords come from NewPassword(PasswordLength). A server with an
//     admin account is configured through an embedded ServerSettings (and
//     CheckHost for any other host field); a database binding's
//     credentials come from DatabaseCredentials.
//   - adapter.go ends with compile-time guards, one for Adapter and one for
//     each capability the type implements:
//     `var _ adapters.Updater = (*Adapter)(nil)`.
//   - conformance_test.go runs the adaptertest kit against the real
//     backend; names_test.go pins the generated names.
package adapters
