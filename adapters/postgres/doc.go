// Package postgres is the data-team's adapter for PostgreSQL (13 or later).
//
// Each service instance is one database owned by a NOLOGIN "owner" role;
// each binding is a LOGIN role that is a member of the owner role and whose
// sessions start with `SET role = owner`, so whatever one binding creates
// belongs to the instance rather than to the binding and stays usable by
// every other binding.
//
// The adapter derives every name from the instance and binding IDs, so it
// keeps no state of its own: a repeated or half-finished call finds its
// objects by name and in the catalogs and finishes the job.
//
// What it must never do: issue a password twice, log one, or touch objects
// whose names lack its "agora_" prefix (apart from PUBLIC's grants on the
// instance database it creates).
package postgres
