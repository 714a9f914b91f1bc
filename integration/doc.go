// Package integration holds Agora's end-to-end suites (Ginkgo v2). They
// build the real `agora` binary, run it as a subprocess against a real
// Redis at 127.0.0.1:6379 and real dev Vault servers (internal/devvault),
// and drive it over HTTP exactly like a platform would.
//
// Run them with `go test ./integration/... -count=1` (part of `make test`).
// Redis must answer at 127.0.0.1:6379: the suite fails, never skips, when
// it does not. Every run works under its own Redis key prefix
// (agora-it-<random>) and deletes its keys afterwards; it never flushes.
//
// What this package must never do: touch Redis keys outside its own
// prefix, or depend on anything but the binary's HTTP API, its config file
// and what an operator could inspect in Redis and Vault.
package integration
