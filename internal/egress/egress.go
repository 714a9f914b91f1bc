// Package egress is the platform engineer's rule for where the producer
// gate and the canary may connect: a producer names her adapter's URL,
// and without a rule Agora would call whatever she names from inside the
// platform's network (its own Redis and Vault, loopback services, the
// cloud's metadata address) and tell her which ports are open.
//
// A Policy checks a URL before any request is sent (CheckURL: the host
// name against the allow-list, every address it resolves to against the
// refusals), and again at every connection (DialContext, through a
// net.Dialer Control function that sees the address actually dialled), so
// a host name that resolves to a refused address later (DNS rebinding)
// is refused too.
//
// The rules, in order:
//   - the addresses of Agora's own Redis and Vault (host and port) are
//     always refused;
//   - loopback, link-local and unspecified addresses are refused unless
//     an allow-list CIDR contains them (agora dev allows loopback);
//   - with an allow-list, a URL must name an allowed host (exact, or
//     "*.example.com" for its subdomains) or resolve only to addresses
//     inside an allowed CIDR; without one, any other address is allowed.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Endpoint is an address Agora itself depends on, refused by name.
type Endpoint struct {
	// Name says whose it is in the refusal ("Agora's Redis").
	Name string
	// HostPort is where it listens: a host name or address, and a port.
	HostPort string
}

// Config is the platform engineer's rule.
type Config struct {
	// Allow are CIDRs ("10.20.0.0/16", "127.0.0.0/8") and host names
	// ("adapters.example.com", "*.adapters.example.com"); empty allows
	// every address the refusals leave.
	Allow []string
	// Own are Agora's own dependencies: always refused.
	Own []Endpoint
	// Resolver looks host names up; default net.DefaultResolver.
	Resolver *net.Resolver
	// DialTimeout bounds one connection attempt (default 10s).
	DialTimeout time.Duration
}

// Policy applies a Config. It is safe for concurrent use.
type Policy struct {
	prefixes []netip.Prefix
	hosts    []string // lower case; "*.x" matches subdomains of x
	own      []ownAddr
	resolver *net.Resolver
	dialer   *net.Dialer
}

type ownAddr struct {
	name string
	host string // lower case, as configured
	addr netip.AddrPort
	port string
}

// RefusedError is a URL or address the policy refuses, with the rule.
type RefusedError struct {
	Target string // the URL, or the address dialled
	Reason string // what it is ("127.0.0.1 is a loopback address")
	Rule   string // the rule that refuses it, in the config's words
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("egress refused for %s: %s (rule: %s)", e.Target, e.Reason, e.Rule)
}

// New parses the allow-list and resolves Agora's own endpoints once (an
// endpoint that does not resolve now is still refused by its name).
func New(ctx context.Context, cfg Config) (*Policy, error) {
	p := &Policy{resolver: cfg.Resolver}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	prefixes, hosts, err := ParseAllow(cfg.Allow)
	if err != nil {
		return nil, err
	}
	p.prefixes, p.hosts = prefixes, hosts
	for _, e := range cfg.Own {
		host, port, err := net.SplitHostPort(e.HostPort)
		if err != nil {
			continue
		}
		p.own = append(p.own, ownAddr{name: e.Name, host: strings.ToLower(host), port: port})
		addrs, err := p.lookup(ctx, host)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ap, err := netip.ParseAddrPort(net.JoinHostPort(a.String(), port)); err == nil {
				p.own = append(p.own, ownAddr{name: e.Name, host: strings.ToLower(host), addr: ap, port: port})
			}
		}
	}
	timeout := cfg.DialTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	p.dialer = &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: p.control}
	return p, nil
}

// ParseAllow splits an allow-list into CIDRs (a bare address is its own
// /32 or /128) and host names, reporting every entry that is neither.
func ParseAllow(allow []string) ([]netip.Prefix, []string, error) {
	var prefixes []netip.Prefix
	var hosts []string
	var errs []error
	for i, a := range allow {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
			errs = append(errs, fmt.Errorf("gate.egress.allow[%d]: is empty", i))
		case strings.Contains(a, "/"):
			pfx, err := netip.ParsePrefix(a)
			if err != nil {
				errs = append(errs, fmt.Errorf("gate.egress.allow[%d]: %q is not a CIDR such as 10.0.0.0/8", i, a))
				continue
			}
			prefixes = append(prefixes, pfx.Masked())
		default:
			if addr, err := netip.ParseAddr(a); err == nil {
				prefixes = append(prefixes, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
				continue
			}
			if !validHost(strings.TrimPrefix(a, "*.")) {
				errs = append(errs, fmt.Errorf("gate.egress.allow[%d]: %q is neither a CIDR nor a host name", i, a))
				continue
			}
			hosts = append(hosts, strings.ToLower(a))
		}
	}
	return prefixes, hosts, errors.Join(errs...)
}

// validHost is a loose host-name check: letters, digits, dots and dashes.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if !(r == '.' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (p *Policy) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = a.Unmap()
	}
	return out, nil
}

// CheckURL refuses a URL the gate and the canary must not call: one
// whose host is not allowed or resolves to a refused address. It sends
// nothing to the URL.
func (p *Policy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return &RefusedError{Target: raw, Reason: "it is not an http or https URL with a host", Rule: "adapter URLs are http(s)://host[:port]"}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return p.checkHost(ctx, raw, u.Hostname(), port)
}

// checkHost applies every rule to a host (name or address) and port:
// Agora's own endpoints by name, the allow-list's host names, and every
// address the host resolves to. target names what is refused.
func (p *Policy) checkHost(ctx context.Context, target, host, port string) error {
	host = strings.ToLower(host)
	for _, o := range p.own {
		if o.host == host && o.port == port {
			return &RefusedError{Target: target, Reason: fmt.Sprintf("%s:%s is %s", host, port, o.name), Rule: "Agora's own Redis and Vault are never called"}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := p.lookup(ctx, host)
	if err != nil {
		return &RefusedError{Target: target, Reason: fmt.Sprintf("host %s does not resolve: %v", host, err), Rule: "hosts the gate and the canary call must resolve from Agora"}
	}
	hostAllowed := p.hostAllowed(host)
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, parsePort(port))
		if err := p.checkAddr(target, ap); err != nil {
			return err
		}
		if !hostAllowed && !p.inPrefixes(a) {
			return &RefusedError{Target: target, Reason: fmt.Sprintf("host %s (%s) is not on the allow-list", host, a),
				Rule: "gate.egress.allow lists the hosts and CIDRs the gate and the canary may call"}
		}
	}
	return nil
}

func parsePort(s string) uint16 {
	var n uint16
	_, _ = fmt.Sscan(s, &n)
	return n
}

// hostAllowed: no allow-list allows every host; otherwise an exact or
// wildcard host entry must match.
func (p *Policy) hostAllowed(host string) bool {
	if len(p.hosts) == 0 && len(p.prefixes) == 0 {
		return true
	}
	for _, h := range p.hosts {
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

func (p *Policy) inPrefixes(a netip.Addr) bool {
	for _, pfx := range p.prefixes {
		if pfx.Contains(a) {
			return true
		}
	}
	return false
}

// checkAddr applies the address rules: Agora's own endpoints, then the
// special ranges refused unless a CIDR allows them.
func (p *Policy) checkAddr(target string, ap netip.AddrPort) error {
	a := ap.Addr().Unmap()
	for _, o := range p.own {
		if o.addr.IsValid() && o.addr.Addr() == a && o.addr.Port() == ap.Port() {
			return &RefusedError{Target: target, Reason: fmt.Sprintf("%s is %s", ap, o.name), Rule: "Agora's own Redis and Vault are never called"}
		}
	}
	var what string
	switch {
	case a.IsLoopback():
		what = "a loopback address"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		what = "a link-local address (cloud metadata services live there)"
	case a.IsUnspecified():
		what = "the unspecified address (it reaches this host)"
	default:
		return nil
	}
	if p.inPrefixes(a) {
		return nil
	}
	return &RefusedError{Target: target, Reason: fmt.Sprintf("%s is %s", a, what),
		Rule: "loopback, link-local and unspecified addresses are refused unless a CIDR in gate.egress.allow contains them"}
}

// control runs for every connection, on the address actually dialled.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &RefusedError{Target: address, Reason: "not an IP address and port", Rule: "connections go to resolved addresses"}
	}
	if err := p.checkAddr(address, ap); err != nil {
		return err
	}
	// With CIDRs only, a host that passed CheckURL resolved inside them;
	// an address outside them now was rebound since.
	if len(p.hosts) == 0 && len(p.prefixes) > 0 && !p.inPrefixes(ap.Addr().Unmap()) {
		return &RefusedError{Target: address, Reason: fmt.Sprintf("%s is not on the allow-list", ap.Addr()),
			Rule: "gate.egress.allow lists the hosts and CIDRs the gate and the canary may call"}
	}
	return nil
}

// DialContext connects like net.Dialer, refusing any host:port the
// policy refuses: the host (name or address) by every rule CheckURL
// applies, then the address actually dialled. It is the gate's and the
// canary's only way out, to adapters and to the hosts named in the
// credentials adapters return alike, so a credential pointing at a host
// the allow-list does not name is refused as an adapter URL would be.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, &RefusedError{Target: address, Reason: "not a host and port", Rule: "connections go to host:port"}
	}
	if err := p.checkHost(ctx, address, host, port); err != nil {
		return nil, err
	}
	return p.dialer.DialContext(ctx, network, address)
}
