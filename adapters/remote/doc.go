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
//     and URL, never a hang.
//   - Handler serves any adapters.Adapter over the protocol, for producers
//     who write their service in Go: signature and replay checks, routing,
//     and the mapping of adapters' sentinel errors to status codes.
//   - Conformance runs the conformance kit through a Client plus checks of
//     the protocol's own rules (signatures, stale timestamps, replays). It
//     backs `agora adapter test` and can back a registration gate.
//
// What it must never do: keep state at package level (every Client and
// Handler owns its own breaker, caches and HTTP client), read settings
// from the environment, or put the shared secret or a credential into an
// error, a log line or a URL.
package remote
