// Package mysql is the data-team's adapter for MariaDB (10.4 or later) and
// MySQL (5.7 or later).
//
// Each service instance is one database; each binding is one user,
// '<name>'@'%', with ALL PRIVILEGES on that database only and the plan's
// MAX_USER_CONNECTIONS.
//
// The adapter derives every name from the instance and binding IDs, so it
// keeps no state of its own: a repeated or half-finished call finds its
// objects by name (information_schema.SCHEMATA, mysql.user) and finishes
// the job.
//
// What it must never do: log a password, return one in an error, or touch
// a database or user whose name lacks its "agora_" prefix.
package mysql
