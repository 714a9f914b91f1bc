// Package catalog turns the producers' catalog sections (catalog.yml, and
// later the slices producers register at run time) into the one OSB catalog
// Agora serves, and answers the questions the broker asks of it on every
// request: which offering and plan an ID names, which adapter serves it,
// whether the plan is async, and whether the platform's parameters match
// the plan's JSON schemas.
//
// Work happens in two steps, so that every source goes through the same
// rules:
//
//   - Parse (or ParseFile, ParseSource) strictly decodes one source into a
//     File. Unknown fields are errors, so a typo never passes silently.
//   - Build validates any number of Files together, reporting every problem
//     at once with its field path, derives missing IDs, compiles the JSON
//     schemas, resolves vault references in adapter config, calls each
//     adapter's factory and precomputes the GET /v2/catalog body. A
//     producer's `upstream:` broker is imported first, through the
//     Importer the caller passes (this package never imports an adapter),
//     and its offerings go through the same checks.
//
// The resulting Catalog is immutable and safe for concurrent use: a changed
// catalog is a new Build, swapped in by the caller.
//
// What this package must never do: talk to Redis or Vault itself, or keep
// a secret. Vault references are resolved through the SecretResolver the
// caller passes; the resolved values go to the adapter's factory and are
// not kept, logged or echoed in errors.
package catalog
