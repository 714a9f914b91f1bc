// Package redisstore keeps Agora's state in Redis (single node, Sentinel
// or Cluster, through go-redis's UniversalClient): the broker's instances,
// bindings, operations and async job queue (Store, Queue), and producer
// self-service's producers and slice versions (ProducerStore). This is
// the one place Agora's Redis keys are documented.
//
// # Key scheme
//
// Every key of one instance carries the instance ID as a hash tag, so that
// all of them live in one Cluster slot and a Lua script can change them
// atomically; the job queue's keys likewise share the tag {jobs}. No
// script spans the two families. With the default prefix "agora":
//
//	agora:{<iid>}:instance                     string  Instance JSON
//	agora:{<iid>}:bindings                     hash    binding ID -> Binding JSON
//	agora:{<iid>}:ops                          hash    operation ID -> Operation JSON
//	agora:{<iid>}:lock                         string  lock token, with an expiry (PX)
//	agora:{<iid>}:status                       string  the instance's latest operation summary, written with the instance; after an async deprovision, that operation marked deleted, expiring (the tombstone). Ahead of the summary, the ready-made answer to a poll ("p" and "osb", see withAnswer): one GET answers last_operation
//	agora:{<iid>}:binding-tombstone:<bid>      string  final Operation JSON of the async unbind that deleted the binding (expires)
//	agora:{jobs}:stream                        stream  async jobs ready to run; consumer group "agora-workers"
//	agora:{jobs}:delayed                       zset    jobs released until their next attempt (JSON: instance,
//	                                                   operation, service), scored by due time in ms
//	agora:{jobs}:queued                        set     operation IDs that have a job (stream or delayed), so
//	                                                   an operation never has two
//	agora:{jobs}:consumers                     zset    the group's consumers each replica vouches for, scored
//	                                                   by when it last did (ms); the rest are removed once idle
//	agora:jobs                                 stream  the job stream of earlier Agora versions (no hash tag): only
//	                                                   read, to move its jobs over; deleted once empty
//	agora:offering:{<service_id>}:by-creation  zset    the instances of one offering (index.go), members
//	                                                   "<created ns, 19 digits>/<iid>" scored 0, so in creation
//	                                                   order: added before the instance is first committed,
//	                                                   removed after it is deleted, so a superset; rebuildable
//	                                                   from the records
//	agora:offering:{<service_id>}:instances    set     the index of earlier Agora versions (instance IDs): moved
//	                                                   into the ordered one when workers start; until then
//	                                                   read after it, and removed from on deprovision
//	agora:{expiries}:bindings                  zset    JSON ["<iid>","<bid>"] of every binding with an expires_at,
//	                                                   scored by it in ms (expiry.go): added before the binding is
//	                                                   committed bound, removed after it is gone, so a superset;
//	                                                   drained by the workers, which revoke what is due
//
// Counts (counts.go), for metrics, moved when an outcome is committed:
//
//	agora:counts                               hash    "<service_id>|<plan_id>|instances" and "...|bindings" -> count; a count
//	                                                   that reaches zero is removed, so a Redis without instances holds none
//
// Catalog webhook (catalognotices.go), one tag so its scripts see both:
//
//	agora:{catalog-notices}:lease              string  the replica announcing a catalog change (PX)
//	agora:{catalog-notices}:delivered          string  summary JSON of the catalog last announced (names, fingerprints)
//
// Canary (canary.go), one tag; bounded by the live offerings (a result
// whose offering left the catalog is dropped) and 20 results each:
//
//	agora:{canary}:lease                       string  the replica running the canary (PX)
//	agora:{canary}:latest                      hash    offering ID -> JSON of its latest result (producers.CanaryResult)
//	agora:{canary}:history:<offering-id>       list    its last 20 results, newest first
//
// Producer self-service ({<name>} is a hash tag, so a producer's record
// and versions change together in one MULTI; the claims share one tag so
// one script decides a name and namespace atomically):
//
//	agora:producers                                  set     every producer name (the listing; no SCAN)
//	agora:producers:{<name>}:record                  string  producer record JSON, with the sha256 of her token
//	agora:producers:{<name>}:slices                  hash    version number -> SliceVersion JSON (slice text, status, author, time, gate report)
//	agora:producers:{<name>}:version                 string  counter handing out version numbers
//	agora:producers:{claims}:names                   hash    producer name -> namespace
//	agora:producers:{claims}:namespaces              hash    namespace -> producer name
//	agora:producers:{claims}:namespace-prefixes      hash    every proper dash-prefix of a claimed namespace -> producer name
//	agora:catalog:generation                         string  counter; INCR on every change of a live slice
//	agora:catalog:lock                               string  serialises going live across producers and replicas (expires)
//
// # Job lifecycle
//
// Enqueue adds a job to the stream (unless its operation is in the queued
// set). XREADGROUP delivers it to one consumer; that consumer holds it
// while its heartbeats (XCLAIM, only while XPENDING still names it) keep
// it from going idle for claim_idle, after which XAUTOCLAIM lets another
// consumer take it over. After one attempt the worker removes it (XACK,
// XDEL, SREM) or releases it to the delayed set; Promote moves due jobs
// back to the stream. The Operation record, not the queue, says how many
// attempts ran and when the next may start; its attempt token fences the
// attempt's commits.
//
// What this package must never do: store a secret (the broker hands it
// records that hold fingerprints and Vault references only), or run KEYS
// or SCAN: every call is a constant number of round trips.
package redisstore
