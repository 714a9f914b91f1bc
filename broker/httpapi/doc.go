// Package httpapi is Agora's one HTTP edge: every surface (OSB under /v2,
// the producer and admin APIs, /healthz and /readyz, metrics) goes through
// the same chain, and only auth differs per surface:
//
//	recover panics -> request info (request id, API version, originating
//	identity, decoded once into a requestinfo.Info) -> access log and
//	observer -> the surface's auth -> body cap -> the surface's guards
//
// For OSB the guards are the X-Broker-API-Version range, ID sanity, and
// the body decoded once with every field's JSON type checked (a malformed
// body is a 400 naming the field, never brokerapi's 422 with Go's unmarshal
// text); then brokerapi v11 mounted under /v2 with a logger that sees
// nothing. A request the edge rejects never reaches the broker, so a bad
// request changes nothing.
//
// The two requests platforms send most skip the router, brokerapi and the
// chain's wrappers (fast.go): GET /v2/catalog, answered with the
// precomputed catalog bytes, and an instance's GET last_operation,
// answered with the broker's ready-made bytes (PollAnswerer). One function
// keeps the chain's rules for them, in its order; the OSB cases of
// fast_test.go run against both paths and want the same answer, log line
// and Observer call.
//
// It also owns the pieces every surface shares: one Credential type and
// one basic-auth check (BasicAuth), one JSON and error writer (WriteJSON,
// WriteError, whose descriptions cite the request id), and the
// *http.Server lifecycle.
//
// Each request is logged once, when it completes, at a level that says
// who must act (ERROR: the platform engineer; WARN: a producer's adapter,
// or a failed login; INFO: everything a client caused; DEBUG: probes),
// with the outcome the handling layers recorded.
//
// It must never hold broker state, decide OSB semantics (idempotency,
// async, error mapping belong to package broker), or log request bodies,
// parameters, credentials or the Authorization header.
package httpapi
