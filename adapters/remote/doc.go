// Package remote lets a producer contribute a service as a small HTTP
// service in any language, speaking Agora's adapter protocol v1
// (docs/adapter-protocol.md), instead of a Go package compiled into Agora.
//
// It holds both ends of the protocol:
//
//   - Factory (adapter name "remote") builds a Client: an adapters.Adapter
//     that turns each call into one signed HTTP request, with per-call
//     timeouts, bounded retries with backoff and jitter, and a circuit
//     breaker, so a dead adapter yields a clear error naming its producer
//     and URL, never a hang. Capabilities are declared, not assumed: the
//     Go type Factory returns implements adapters.Updater and
//     adapters.Poller only as the offering's config.capabilities lists
//     "update" and "status" (default none), so the catalog refuses
//     promises the config does not back; at run time the Client checks
//     the list against what the adapter declares at GET /v1/capabilities.
//   - Handler serves any adapters.Adapter over the protocol, for producers
//     who write their service in Go: signature and replay checks, routing,
//     and the mapping of adapters' sentinel errors to status codes.
//   - Conformance runs the conformance kit (adapters/conformance) through
//     a Client built with the capabilities the adapter declares, plus
//     checks of the protocol's own rules (signatures, stale timestamps,
//     replays) and, for the producer gate, of a configured capability
//     list. It backs `agora adapter test` and the producer gate.
//
// What it must never do: keep state at package level (every Client and
// Handler owns its own breaker, caches and HTTP client), read settings
// from the environment, give a Client a method for a capability its config
// does not list, import package testing (it is linked into the agora
// binary), or put the shared secret or a credential into an error, a log
// line or a URL.
package remote
