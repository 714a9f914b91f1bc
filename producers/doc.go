// Package producers is producer self-service: producer teams register
// themselves (or are created by the platform engineer), get a token, and
// put their slice of the catalog at run time. A slice goes through the same
// validation as catalog.yml (merged with every other source, so names and
// IDs cannot collide), then through the conformance gate against the
// producer's remote adapter, and becomes a numbered version that is
// approved (by an admin, or automatically for trusted producers) before it
// goes live. Going live bumps a generation counter; every replica's
// livecatalog.Loader rebuilds its catalog when the counter moves.
//
// # Key scheme
//
// With the default prefix "agora" ({name} is a Redis Cluster hash tag, so a
// producer's record and versions change together in one MULTI):
//
//	agora:producers                       set     every producer name (the listing; no SCAN)
//	agora:producers:{<name>}:record       string  producer record JSON, with the sha256 of her token
//	agora:producers:{<name>}:slices       hash    version number -> SliceVersion JSON (slice text, status, author, time, gate report)
//	agora:producers:{<name>}:version      string  counter handing out version numbers
//	agora:catalog:generation              string  counter; INCR on every change of a live slice
//	agora:catalog:lock                    string  serialises going live across producers and replicas (expires)
//
// The per-offering instance index (agora:offering:{<service_id>}:instances)
// belongs to the broker's state store; see broker.InstanceIndex.
//
// What this package must never do: keep a secret in Redis. A token is
// stored as its sha256 only, and shown once. The remote adapter's protocol
// secret goes to Vault (SecretStore) and the stored slice keeps only a
// vault: reference. A producer's slice may not reference any other Vault
// path, so no producer can make Agora hand her someone else's secret.
package producers
