// Package sdk holds the producer SDKs of Agora's remote adapter protocol
// v1 (docs/adapter-protocol.md): python/agora_adapter.py and
// node/agora-adapter.js, each one standard-library file that a producer
// copies next to her adapter (`agora adapter init` does). They do the
// protocol's plumbing (signatures and replay protection, routing, JSON,
// error codes, idempotency helpers) so that a producer writes only her
// provision, bind, unbind and deprovision.
//
// The Go package itself is empty: its tests run each SDK's own tests,
// the published signing vectors (docs/signing-vectors.json) included, so
// `go test` holds every language to the same protocol. Go producers need
// no SDK: remote.Handler is theirs.
//
// What the SDKs must never do: depend on anything outside their
// language's standard library, change a request body before the
// producer's function sees it or a result after it returns (fields added
// within v1 must pass through), or accept a request before its signature,
// timestamp and nonce are checked.
package sdk
