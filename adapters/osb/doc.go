// Package osb brings an existing Open Service Broker into Agora's one
// catalog without rewriting it.
//
// Two halves:
//
//   - Importer fetches the upstream's GET /v2/catalog while Agora builds its
//     catalog (a producer's `upstream:` section) and turns every upstream
//     offering into an offering served by this adapter, under the
//     producer's name and with IDs Agora derives itself.
//   - Factory builds the adapter ("osb") that forwards provision, update,
//     bind, unbind and deprovision to the upstream with OSB semantics:
//     accepts_incomplete is always sent, a 202 becomes a Pending result
//     that Poll follows through the upstream's last_operation, and the
//     upstream's errors map onto the adapters sentinel errors.
//
// What it must never do: keep state between calls (a Pending operation is
// described entirely by its OperationToken, so any replica can poll it),
// or put a credential in an error, a log line, a token or a receipt.
// Credentials an upstream returns leave this package only in
// BindResult.Credentials, which Agora writes to Vault.
package osb
