// Package marketplace serves the marketplace page, GET /marketplace: every
// offering and plan of the catalog in force with its producer and contact,
// description, parameter documentation rendered from the plans' JSON
// schemas, maintenance version, deprecation state and capabilities, and
// each offering's health (the adapter's recent error ratio, and the
// canary's last result once a canary runs). A producer who signs in with
// her token sees, besides, her own offerings' instance counts and recent
// failed operations; the platform engineer sees every offering's counts.
//
// The page is server-rendered with html/template and works without
// JavaScript; a few lines of plain JS add a filter box. Like every
// surface it is a set of httpapi.Routes behind the one edge (request id,
// access log, metrics); only its auth is its own (see Options and the
// README's "Marketplace page").
//
// What it must never do: trust a producer's words (every description,
// name, title, metadata field and URL is escaped by the template, and
// only http and https URLs become links), show a credential, token,
// adapter config or secret reference (adapter config is never read), or
// show one producer's private data (counts, failures) to another. Every
// read it makes costs a constant number of Redis round trips, whatever the
// number of instances.
package marketplace
