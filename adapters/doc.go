// Package adapters is the contract between Agora and the producer teams that
// contribute services to its catalog.
//
// A producer implements the small Adapter interface (provision, deprovision,
// bind, unbind) and, when its backend can, any of the optional capabilities
// (Updater, Poller, Pinger, Closer). Agora finds the optional ones by type
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
// Two helpers save producers from writing the same code again:
// DecodeConfig, for a Factory's New, decodes and validates the offering's
// and every plan's settings and reports every problem at once; NewPassword
// generates passwords that need no escaping in URIs.
package adapters
