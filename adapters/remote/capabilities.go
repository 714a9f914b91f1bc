package remote

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// Adapter returns c as the adapters.Adapter Agora serves. Its Go type
// implements adapters.Updater only when Settings.Capabilities lists
// "update", and adapters.Poller only when it lists "status"; Pinger and
// Closer always. The catalog finds capabilities by type assertion, so an
// offering that promises updates (plan_updateable, update schemas) on a
// config without "update" fails the catalog check, not an app
// developer's request.
func (c *Client) Adapter() adapters.Adapter {
	update := slices.Contains(c.configured, CapabilityUpdate)
	status := slices.Contains(c.configured, CapabilityStatus)
	switch {
	case update && status:
		return updatingPolling{c}
	case update:
		return updating{c}
	case status:
		return polling{c}
	}
	return c
}

// MissingCapabilityHint tells the catalog how an offering gains a
// capability its adapter's type lacks: for a remote adapter, by listing
// it in config.capabilities.
func (c *Client) MissingCapabilityHint(capability string) string {
	return missingCapabilityHint(capability)
}

func missingCapabilityHint(capability string) string {
	return fmt.Sprintf("add %q to config.capabilities if your adapter declares it at GET /v1/capabilities (docs/adapter-protocol.md, \"Capabilities\")", capability)
}

// updating, polling and updatingPolling are a Client with the optional
// methods its config lists, and no others.
type updating struct{ *Client }

func (u updating) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	return u.update(ctx, req)
}

type polling struct{ *Client }

func (p polling) Poll(ctx context.Context, req adapters.PollRequest) (adapters.PollResult, error) {
	return p.poll(ctx, req)
}

type updatingPolling struct{ *Client }

func (u updatingPolling) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	return u.update(ctx, req)
}

func (u updatingPolling) Poll(ctx context.Context, req adapters.PollRequest) (adapters.PollResult, error) {
	return u.poll(ctx, req)
}

// mismatch is the terminal error of configured capabilities the adapter
// does not declare; call names the call that needed them ("" for Ping).
func (c *Client) mismatch(cs *capabilitySet, missing []string, call string) error {
	who := c.who
	if call != "" {
		who += ": " + call
	}
	return adapters.Terminal(fmt.Errorf("%s: config.capabilities lists %s, but the adapter (%q version %q) does not declare %s at GET /v1/capabilities "+
		"(it declares %s): deploy an adapter release that does, or remove %s from config.capabilities: %w",
		who, quoted(missing), cs.result.Name, cs.result.Version, them(missing), truncate(quoted(cs.result.Capabilities)), them(missing), ErrCapabilityMismatch))
}

// noteUnused logs, once per change, the capabilities the adapter declares
// but the config does not list: Agora does not use them, which is fine,
// but the producer may have meant to.
func (c *Client) noteUnused(ctx context.Context, res capabilitiesResult) {
	var unused []string
	for _, known := range knownCapabilities() {
		if slices.Contains(res.Capabilities, known) && !slices.Contains(c.configured, known) {
			unused = append(unused, known)
		}
	}
	key := strings.Join(unused, ",")
	c.capsMu.Lock()
	changed := key != c.loggedUnused
	c.loggedUnused = key
	c.capsMu.Unlock()
	if changed && len(unused) > 0 {
		c.logger.InfoContext(ctx, "remote adapter declares capabilities its config does not list; Agora does not use them",
			"adapter", c.who, "unused", unused, "configured", c.configured,
			"hint", "list them in config.capabilities to use them")
	}
}

// quoted lists capabilities for an error: "update", "status"; none as "none".
func quoted(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func them(list []string) string {
	if len(list) == 1 {
		return "it"
	}
	return "them"
}

var (
	_ adapters.Adapter = (*Client)(nil)
	_ adapters.Pinger  = (*Client)(nil)
	_ adapters.Closer  = (*Client)(nil)
	_ adapters.Updater = updating{}
	_ adapters.Poller  = polling{}
	_ adapters.Updater = updatingPolling{}
	_ adapters.Poller  = updatingPolling{}
)
