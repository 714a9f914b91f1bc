// Package redis is the cache-team's adapter: it shares one Redis server among
// many service instances by giving each instance its own key namespace
// (`<key_prefix_root>:<instance>:`) and each binding its own ACL user that
// can only reach keys and channels inside that namespace.
//
// Redis has no per-tenant database, so isolation rests entirely on ACLs:
// every binding user is created from a full `reset`, is confined with
// `~prefix*` and `&prefix*`, gets the plan's command rules, and always ends
// with a fixed list of tenancy guards that the plan cannot undo (commands
// that ignore key patterns or reach other logical databases).
//
// What it must never do: touch keys or users outside the namespaces and
// user names it derives from instance and binding IDs, touch Agora's own
// state keys, or modify the server's `default` user.
package redis
