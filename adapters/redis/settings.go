package redis

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// Settings is the offering's `config:` section in catalog.yml.
type Settings struct {
	// Addr is host:port of the Redis server Agora administers.
	Addr string `json:"addr"`
	// AdminUsername is the ACL user Agora logs in as; empty means the
	// server's default user.
	AdminUsername string `json:"admin_username"`
	// AdminPassword may be a `vault:path#key` reference in catalog.yml;
	// Agora resolves it before the adapter sees it.
	AdminPassword string `json:"admin_password"`
	// PublicHost is the host name applications use, when it differs from
	// the host in Addr (for example a load balancer).
	PublicHost string `json:"public_host"`
	// KeyPrefixRoot starts every instance namespace: `<root>:<instance>:`.
	KeyPrefixRoot string `json:"key_prefix_root"`
}

// PlanSettings is one plan's `config:` section.
type PlanSettings struct {
	// ACLCategories are ACL category rules such as "+@read" or "-@slow".
	ACLCategories []string `json:"acl_categories"`
	// Commands are single-command rules such as "-eval" or "+client|info",
	// applied after the categories.
	Commands []string `json:"commands"`
}

var (
	prefixRootPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	categoryRule      = regexp.MustCompile(`^[+-]@([a-z]+)$`)
	commandRule       = regexp.MustCompile(`^[+-][a-z][a-z0-9_-]*(\|[a-z][a-z0-9_-]*)?$`)
)

// Validate reports every problem at once, so an operator fixes the section
// in one round instead of one error per restart.
func (s Settings) Validate() error {
	var errs []error
	if s.Addr == "" {
		errs = append(errs, errors.New("addr: required (host:port)"))
	} else if host, port, err := net.SplitHostPort(s.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr: %q is not host:port: %w", s.Addr, err))
	} else {
		if host == "" {
			errs = append(errs, fmt.Errorf("addr: %q has no host", s.Addr))
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			errs = append(errs, fmt.Errorf("addr: port %q is not a number from 1 to 65535", port))
		}
	}
	if strings.ContainsAny(s.AdminUsername, " \t\r\n") {
		errs = append(errs, errors.New("admin_username: must not contain whitespace"))
	}
	// A reference that reached the adapter unresolved would otherwise surface
	// later as a confusing WRONGPASS on every request.
	if strings.HasPrefix(s.AdminPassword, "vault:") {
		errs = append(errs, errors.New("admin_password: looks like an unresolved vault: reference"))
	}
	if s.PublicHost != "" {
		if err := adapters.CheckHost(s.PublicHost); err != nil {
			errs = append(errs, fmt.Errorf("public_host: %w", err))
		}
	}
	switch {
	case s.KeyPrefixRoot == "":
		errs = append(errs, errors.New("key_prefix_root: required"))
	case !prefixRootPattern.MatchString(s.KeyPrefixRoot):
		// ':' is excluded so that root "a" with instance "b" can never cover
		// the namespaces of a second offering whose root is "a:b".
		errs = append(errs, fmt.Errorf("key_prefix_root: %q must be 1-64 characters of A-Z a-z 0-9 . _ - (no ':' or glob characters)", s.KeyPrefixRoot))
	case strings.EqualFold(s.KeyPrefixRoot, "agora"):
		errs = append(errs, errors.New("key_prefix_root: \"agora\" is reserved for Agora's own state keys"))
	}
	return errors.Join(errs...)
}

// Validate reports every problem at once. Each category must exist in
// Redis 7.0, because an unknown one would make every bind of the plan fail.
func (p PlanSettings) Validate() error {
	var errs []error
	grants, malformed := false, false
	if len(p.ACLCategories) == 0 {
		errs = append(errs, errors.New(`acl_categories: required, e.g. ["+@read", "+@write", "+@connection"]`))
	}
	for i, rule := range p.ACLCategories {
		m := categoryRule.FindStringSubmatch(rule)
		switch {
		case m == nil:
			malformed = true
			errs = append(errs, fmt.Errorf("acl_categories[%d]: %q must be +@category or -@category", i, rule))
		case !knownCategory(m[1]):
			malformed = true
			errs = append(errs, fmt.Errorf("acl_categories[%d]: %q names an unknown ACL category %q", i, rule, m[1]))
		case rule[0] == '+':
			grants = true
		}
	}
	for i, rule := range p.Commands {
		if !commandRule.MatchString(rule) {
			malformed = true
			errs = append(errs, fmt.Errorf("commands[%d]: %q must be +command, -command or ±command|subcommand (lower case)", i, rule))
			continue
		}
		if rule[0] == '+' {
			grants = true
		}
	}
	// Only worth saying when every rule was well formed; otherwise the
	// fix of a malformed "+" rule may already settle it.
	if len(p.ACLCategories) > 0 && !grants && !malformed {
		errs = append(errs, errors.New("acl_categories: grants nothing; add at least one + rule"))
	}
	return errors.Join(errs...)
}

// rules returns the plan's command rules in the order Redis applies them.
func (p PlanSettings) rules() []string {
	out := make([]string, 0, len(p.ACLCategories)+len(p.Commands))
	out = append(out, p.ACLCategories...)
	return append(out, p.Commands...)
}

// knownCategory lists the ACL categories of Redis 7.0 (ACL CAT).
func knownCategory(c string) bool {
	switch c {
	case "keyspace", "read", "write", "set", "sortedset", "list", "hash",
		"string", "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin",
		"fast", "slow", "blocking", "dangerous", "connection", "transaction",
		"scripting", "all":
		return true
	}
	return false
}

// tenancyGuards are appended after every plan's rules, so no plan can grant
// them back. Each one closes a way around `~prefix*` on a shared server:
//   - @admin, @dangerous: FLUSHALL, KEYS, CONFIG, CLIENT KILL, DEBUG, ...
//   - select, move, copy, swapdb: key patterns apply in every logical
//     database, so a tenant could park keys in db 3 where Deprovision (which
//     cleans db 0) never looks. COPY ... DB n does exactly that.
//   - scan, randomkey, pubsub: not key- or channel-checked, they reveal other
//     tenants' key and channel names.
//   - function, script|flush, script|kill: functions and the script cache
//     are server-wide, so one tenant could delete or kill another's.
func tenancyGuards() []string {
	return []string{
		"-@admin", "-@dangerous",
		"-select", "-move", "-copy", "-swapdb",
		"-scan", "-randomkey", "-pubsub",
		"-function", "-script|flush", "-script|kill",
	}
}
