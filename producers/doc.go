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
// It keeps its state through two small interfaces, Store (producers,
// slice versions, the catalog generation; redisstore.ProducerStore) and
// SecretStore (protocol secrets; vaultstore.ProducerSecrets), and reads
// the broker's instances through Instances. Their keys and paths are
// documented with their implementations.
//
// What this package must never do: talk to Redis or Vault itself, or keep
// a secret in its Store. A token is
// stored as its sha256 only, and shown once. The remote adapter's protocol
// secret goes to Vault (SecretStore) and the stored slice keeps only a
// vault: reference. A producer's slice may not reference any other Vault
// path, so no producer can make Agora hand her someone else's secret.
package producers
