package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// Factory returns the factory catalog.yml refers to as `adapter: rabbitmq`.
func Factory() adapters.Factory {
	return adapters.Factory{
		Name:        "rabbitmq",
		Description: "Shared RabbitMQ: one vhost per instance, one user per binding (messaging-team)",
		New:         adapters.Constructor(New),
		Check:       adapters.CheckConfig[Settings, PlanSettings, Adapter](),
	}
}

// Adapter administers one RabbitMQ cluster for one catalog offering.
type Adapter struct {
	settings      Settings
	host          string // what applications connect to
	managementURL string // what credentials advertise, with a trailing slash
	plans         adapters.PlanSettings[PlanSettings]
	api           *management
	logger        *slog.Logger
}

// New decodes and validates cfg, reporting every problem at once. It does
// not contact RabbitMQ: a server that is down at startup is reported by
// Ping.
func New(_ context.Context, cfg adapters.Config) (*Adapter, error) {
	s, plans, err := adapters.DecodeConfig[Settings, PlanSettings](cfg)
	if err != nil {
		return nil, err // as is: see DecodeConfig
	}
	host := s.AMQPHost
	mgmtURL, _ := url.Parse(s.ManagementURL) // validated above
	if s.PublicHost != "" {
		host = s.PublicHost
		if port := mgmtURL.Port(); port != "" {
			mgmtURL.Host = net.JoinHostPort(s.PublicHost, port)
		} else {
			mgmtURL.Host = s.PublicHost
		}
	}
	mgmtURL.Path = strings.TrimRight(mgmtURL.Path, "/") + "/"
	return &Adapter{
		settings:      s,
		host:          host,
		managementURL: mgmtURL.String(),
		plans:         plans,
		api:           newManagement(s),
		logger:        cfg.Logger,
	}, nil
}

// Provision creates the instance's vhost and sets the plan's limits. PUT
// on an existing vhost is a no-op, so a repeat finishes a half-done call.
func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	plan, err := a.plans.Lookup(req.Plan)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.ProvisionResult{}, err
	}
	vhost := vhostName(req.InstanceID)
	body := map[string]any{
		"description": "Agora service instance " + req.InstanceID,
		"tags":        "agora",
	}
	if err := a.api.call(ctx, http.MethodPut, path("vhosts", vhost), body, nil); err != nil {
		return adapters.ProvisionResult{}, fmt.Errorf("provision: create vhost %s: %w", vhost, err)
	}
	// A new vhost has no limits, so only the set ones need a call.
	if err := a.applyLimits(ctx, vhost, plan, false); err != nil {
		return adapters.ProvisionResult{}, fmt.Errorf("provision: %w", err)
	}
	return adapters.ProvisionResult{
		Metadata: adapters.Metadata{Attributes: map[string]any{"vhost": vhost}},
		Receipt:  adapters.Receipt{"vhost": vhost, "user_prefix": instanceUserPrefix(req.InstanceID)},
	}, nil
}

// Bind creates (or, on a repeat, resets the password of) the binding's user
// and grants it everything on the instance's vhost only: two round trips.
// A repeat rotates the password: Agora only repeats a bind whose result it
// lost, so the old password was never handed out.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	if _, err := a.plans.Lookup(req.Plan); err != nil {
		return adapters.BindResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.BindResult{}, err
	}
	password, err := adapters.NewPassword(adapters.PasswordLength)
	if err != nil {
		return adapters.BindResult{}, err
	}
	vhost := vhostName(req.InstanceID)
	user := bindingUserName(req.InstanceID, req.BindingID)
	// tags "" keeps the user out of the management UI and API.
	if err := a.api.call(ctx, http.MethodPut, path("users", user), map[string]string{"password": password, "tags": ""}, nil); err != nil {
		return adapters.BindResult{}, fmt.Errorf("bind: create user %s: %w", user, err)
	}
	perms := map[string]string{"configure": ".*", "write": ".*", "read": ".*"}
	if err := a.api.call(ctx, http.MethodPut, path("permissions", vhost, user), perms, nil); err != nil {
		var apiErr *apiError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest && strings.Contains(apiErr.Reason, "not_found") {
			// The vhost is gone (never provisioned, or deprovisioned):
			// remove the user just created rather than leave an orphan.
			if cleanupErr := a.api.deleteIgnoringMissing(ctx, path("users", user)); cleanupErr != nil {
				err = errors.Join(err, cleanupErr)
			}
			return adapters.BindResult{}, fmt.Errorf("bind: vhost %s of instance %s does not exist: %w: %w", vhost, req.InstanceID, adapters.ErrNotFound, err)
		}
		return adapters.BindResult{}, fmt.Errorf("bind: grant %s on vhost %s: %w", user, vhost, err)
	}

	port := strconv.Itoa(a.settings.AMQPPort)
	uri := url.URL{
		Scheme: "amqp",
		User:   url.UserPassword(user, password),
		Host:   net.JoinHostPort(a.host, port),
		// The AMQP URI spec puts the vhost in one path segment, so a '/'
		// inside it must be escaped too.
		Path:    "/" + vhost,
		RawPath: "/" + url.PathEscape(vhost),
	}
	return adapters.BindResult{
		Credentials: adapters.Typed(adapters.TypeRabbitMQ, map[string]any{
			"uri":            uri.String(),
			"host":           a.host,
			"port":           a.settings.AMQPPort,
			"vhost":          vhost,
			"username":       user,
			"password":       password,
			"management_url": a.managementURL,
		}),
		Endpoints: []adapters.Endpoint{{Host: a.host, Ports: []string{port}, Protocol: "tcp"}},
		Receipt:   adapters.Receipt{"username": user, "vhost": vhost},
	}, nil
}

// Unbind deletes the binding's user, then closes its open connections, so
// revocation takes effect now rather than when the application reconnects.
// Deleting first means the user cannot log in again in between.
func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	user := bindingUserName(req.InstanceID, req.BindingID)
	if err := a.deleteUser(ctx, user); err != nil {
		return adapters.UnbindResult{}, fmt.Errorf("unbind: %w", err)
	}
	return adapters.UnbindResult{}, nil
}

// Deprovision deletes the instance's users (found by name, so users whose
// Bind result was lost are found too), then the vhost, which also drops
// its queues, exchanges, permissions, limits and connections.
func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	users, err := a.instanceUsers(ctx, req.InstanceID)
	if err != nil {
		return adapters.DeprovisionResult{}, fmt.Errorf("deprovision: list users: %w", err)
	}
	for _, u := range users {
		if err := a.deleteUser(ctx, u); err != nil {
			return adapters.DeprovisionResult{}, fmt.Errorf("deprovision: %w", err)
		}
	}
	vhost := vhostName(req.InstanceID)
	if err := a.api.deleteIgnoringMissing(ctx, path("vhosts", vhost)); err != nil {
		return adapters.DeprovisionResult{}, fmt.Errorf("deprovision: delete vhost %s: %w", vhost, err)
	}
	a.logger.InfoContext(ctx, "rabbitmq instance deprovisioned", "instance_id", req.InstanceID, "vhost", vhost, "users_deleted", len(users))
	return adapters.DeprovisionResult{}, nil
}

// Update sets the new plan's limits and removes those it does not have.
// Existing bindings are unaffected: permissions do not depend on the plan.
func (a *Adapter) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	plan, err := a.plans.Lookup(req.Plan)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.UpdateResult{}, err
	}
	vhost := vhostName(req.InstanceID)
	if err := a.applyLimits(ctx, vhost, plan, true); err != nil {
		return adapters.UpdateResult{}, fmt.Errorf("update to plan %q: %w", req.Plan.Name, err)
	}
	return adapters.UpdateResult{Receipt: req.Receipt}, nil
}

// Ping reports whether the management API answers with these credentials.
func (a *Adapter) Ping(ctx context.Context) error {
	if err := a.api.call(ctx, http.MethodGet, "overview", nil, nil); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Close releases idle HTTP connections.
func (a *Adapter) Close() error {
	a.api.http.CloseIdleConnections()
	return nil
}

// applyLimits PUTs each limit the plan sets. With removeUnset it also
// DELETEs the others, which an update needs and a fresh vhost does not.
func (a *Adapter) applyLimits(ctx context.Context, vhost string, plan PlanSettings, removeUnset bool) error {
	for _, l := range plan.limits() {
		p := path("vhost-limits", vhost, l.Name)
		switch {
		case l.Value != nil:
			if err := a.api.call(ctx, http.MethodPut, p, map[string]int{"value": *l.Value}, nil); err != nil {
				return fmt.Errorf("set vhost limit %s=%d on %s: %w", l.Name, *l.Value, vhost, err)
			}
		case removeUnset:
			if err := a.api.deleteIgnoringMissing(ctx, p); err != nil {
				return fmt.Errorf("remove vhost limit %s on %s: %w", l.Name, vhost, err)
			}
		}
	}
	return nil
}

// deleteUser deletes a user and closes its connections; both steps accept
// "already gone".
func (a *Adapter) deleteUser(ctx context.Context, user string) error {
	if err := a.api.deleteIgnoringMissing(ctx, path("users", user)); err != nil {
		return fmt.Errorf("delete user %s: %w", user, err)
	}
	// Closing the user's open connections is best effort: the user is
	// gone, so nothing can reconnect, and the management API answers 500
	// when it races with RabbitMQ closing those connections itself.
	var err error
	for attempt := range 3 {
		if err = a.api.deleteIgnoringMissing(ctx, path("connections", "username", user)); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	a.logger.WarnContext(ctx, "could not close the connections of a deleted rabbitmq user; they end when the server drops them", "user", user, "error", err)
	return nil
}

// instanceUsers lists the instance's binding users by name prefix.
func (a *Adapter) instanceUsers(ctx context.Context, instanceID string) ([]string, error) {
	var all []struct {
		Name string `json:"name"`
	}
	// columns=name keeps the answer small on servers with many users.
	if err := a.api.call(ctx, http.MethodGet, "users?columns=name", nil, &all); err != nil {
		return nil, err
	}
	prefix := instanceUserPrefix(instanceID)
	var mine []string
	for _, u := range all {
		if strings.HasPrefix(u.Name, prefix) {
			mine = append(mine, u.Name)
		}
	}
	sort.Strings(mine)
	return mine, nil
}

// Compile-time guards: the capabilities Agora finds by type assertion.
var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Updater = (*Adapter)(nil)
	_ adapters.Pinger  = (*Adapter)(nil)
	_ adapters.Closer  = (*Adapter)(nil)
)
