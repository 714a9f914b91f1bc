// Package catalog turns the producers' catalog sections (catalog.yml, and
// later the slices producers register at run time) into the one OSB catalog
// Agora serves, and answers the questions the broker asks of it on every
// request: which offering and plan an ID names, which adapter serves it,
// whether the plan is async, and whether the platform's parameters match
// the plan's JSON schemas.
//
// Work happens in steps, so that every source goes through the same
// rules, and checking never means building:
//
//   - Parse (or ParseFile, ParseSource) strictly decodes one source into a
//     File. Unknown fields are errors, so a typo never passes silently.
//   - Check applies every rule to any number of Files together, without
//     any I/O, reporting every problem at once with its field path: names,
//     IDs, plans, schemas, the shape of vault references and upstream
//     sections, and each adapter's config through its Factory.Check.
//     `agora catalog check` and a producer's apply run it.
//   - Build applies the same rules, then instantiates: it resolves vault
//     references, imports each producer's `upstream:` broker through the
//     Importer the caller passes (this package never imports an
//     adapter; an ImportCache keeps one import per catalog generation),
//     calls each adapter's factory and precomputes the GET /v2/catalog
//     body. Given the catalog it replaces (BuildOptions.Previous), it
//     keeps the adapter of every offering whose config did not change, so
//     a rebuild builds only what changed.
//
// The resulting Catalog is immutable and safe for concurrent use: a changed
// catalog is a new Build, swapped in by the caller.
//
// What this package must never do: talk to Redis or Vault itself, or keep
// a secret. Vault references are resolved through the SecretResolver the
// caller passes; the resolved values go to the adapter's factory and are
// not kept, logged or echoed in errors.
package catalog
