// Command devvault runs a real, in-memory HashiCorp Vault server core for
// Agora's integration tests and for `agora dev`.
//
// It is not an imitation of Vault's HTTP API: it links Vault's own core
// (github.com/hashicorp/vault/vault), its HTTP handler
// (github.com/hashicorp/vault/http), the KV secrets engine
// (github.com/hashicorp/vault-plugin-secrets-kv) and the AppRole auth method
// (github.com/hashicorp/vault/builtin/credential/approle), and wires them
// together the way `vault server -dev` does.
//
// Why a separate binary in its own Go module: the upstream `vault` command
// cannot be `go install`ed (its go.mod uses replace directives), and importing
// Vault into Agora's main module would drag hundreds of dependencies into it.
// This directory is therefore a standalone module
// (github.com/agora-osb/agora/tools/devvault); the main module only builds and
// runs it as a subprocess (see internal/devvault).
//
// Usage:
//
//	devvault -addr 127.0.0.1:8200 -root-token root [-parent-pid N]
//
// When everything is ready (listening, unsealed, the chosen root token works,
// KV v2 mounted at secret/ and AppRole enabled at approle/), exactly one line
// is printed on stdout:
//
//	devvault ready addr=http://127.0.0.1:PORT
//
// All other output (including Vault's logger, at warn level) goes to stderr.
// Storage is purely in memory; nothing is written to disk. SIGINT/SIGTERM shut
// it down cleanly (exit 0). With -parent-pid N > 0 it also exits once that
// process is gone, so a crashed parent never leaves an orphan Vault behind.
package main
