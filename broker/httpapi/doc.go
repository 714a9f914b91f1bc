// Package httpapi is the HTTP front of the Agora broker: the gorilla/mux root
// router, the OSB /v2 surface (brokerapi v11 mounted under /v2), /healthz and
// /readyz, and the *http.Server lifecycle.
//
// It owns everything a platform sees before the broker does: basic auth,
// the X-Broker-API-Version range, request and originating identity, body and
// ID sanity, the precomputed catalog bytes, panics and the access log. A
// request it rejects never reaches the broker, so a bad request changes
// nothing.
//
// It must never hold broker state, decide OSB semantics (idempotency,
// async, error mapping belong to package broker), or log request bodies,
// credentials or the Authorization header.
package httpapi
