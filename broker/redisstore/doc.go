// Package redisstore keeps Agora's broker state and async job queue in
// Redis (single node, Sentinel or Cluster, through go-redis's
// UniversalClient).
//
// # Key scheme
//
// Every key of one instance carries the instance ID as a hash tag, so that
// all of them live in one Cluster slot and a Lua script can change them
// atomically. With the default prefix "agora":
//
//	agora:{<iid>}:instance                     string  Instance JSON
//	agora:{<iid>}:bindings                     hash    binding ID -> Binding JSON
//	agora:{<iid>}:ops                          hash    operation ID -> Operation JSON
//	agora:{<iid>}:lock                         string  lock token, with an expiry (PX)
//	agora:{<iid>}:status                       string  the instance's latest operation summary, written with the instance; after an async deprovision, that operation marked deleted, expiring (the tombstone)
//	agora:{<iid>}:binding-tombstone:<bid>      string  final Operation JSON of the async unbind that deleted the binding (expires)
//	agora:jobs                                 stream  async jobs; consumer group "agora-workers"
//	agora:offering:{<service_id>}:instances    set     instance IDs of one offering (index.go): added before
//	                                                   the instance is first committed, removed after it is
//	                                                   deleted, so a superset; rebuildable from the records
//
// What this package must never do: store a secret (the broker hands it
// records that hold fingerprints and Vault references only), or run KEYS
// or SCAN: every call is a constant number of round trips.
package redisstore
