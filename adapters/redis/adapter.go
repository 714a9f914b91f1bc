package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
)

// scanBatch is the SCAN COUNT hint and so roughly the number of keys one
// UNLINK removes: small enough that no single command blocks the shared
// server noticeably, large enough that 1M keys take ~2000 round trips.
const scanBatch = 500

// Factory returns the factory catalog.yml refers to as `adapter: redis`.
func Factory() adapters.Factory {
	return adapters.Factory{
		Name:        "redis",
		Description: "Shared Redis: one key namespace per instance, one ACL user per binding (cache-team)",
		New:         adapters.Constructor(New),
		Check:       adapters.CheckConfig[Settings, PlanSettings, Adapter](),
	}
}

// Adapter administers one Redis server for one catalog offering.
type Adapter struct {
	settings   Settings
	host, port string // what applications connect to
	plans      adapters.PlanSettings[PlanSettings]
	client     *goredis.Client
	logger     *slog.Logger
}

// New decodes and validates cfg, reporting every problem at once, and
// prepares a connection pool. It does not contact Redis: a server that is
// down at startup is reported by Ping.
func New(_ context.Context, cfg adapters.Config) (*Adapter, error) {
	s, plans, err := adapters.DecodeConfig[Settings, PlanSettings](cfg)
	if err != nil {
		return nil, err // as is: see DecodeConfig
	}
	host, port, _ := net.SplitHostPort(s.Addr) // validated above
	if s.PublicHost != "" {
		host = s.PublicHost
	}
	return &Adapter{
		settings: s,
		host:     host,
		port:     port,
		plans:    plans,
		logger:   cfg.Logger,
		client: goredis.NewClient(&goredis.Options{
			Addr:     s.Addr,
			Username: s.AdminUsername,
			Password: s.AdminPassword,
			// Explicit timeouts: an OSB call has ~60 s in total, and a
			// hanging Redis must surface as an error well before that.
			DialTimeout:           5 * time.Second,
			ReadTimeout:           10 * time.Second,
			WriteTimeout:          10 * time.Second,
			ContextTimeoutEnabled: true,
			PoolSize:              8,
			// CLIENT SETINFO is unknown to Redis 7.0; skip the wasted call.
			DisableIdentity: true,
		}),
	}, nil
}

// Provision checks that Redis answers and that the admin user may manage
// ACLs. The namespace itself needs no creation: it exists once a binding
// writes into it.
func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	if _, err := a.plans.Lookup(req.Plan); err != nil {
		return adapters.ProvisionResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.ProvisionResult{}, err
	}
	// ACL USERS needs the same privilege as Bind's ACL SETUSER, so a
	// misconfigured admin fails here rather than at the first bind.
	if err := a.client.ACLUsers(ctx).Err(); err != nil {
		return adapters.ProvisionResult{}, a.wrap("provision: check ACL privileges", err)
	}
	prefix := keyPrefix(a.settings.KeyPrefixRoot, req.InstanceID)
	return adapters.ProvisionResult{
		Metadata: adapters.Metadata{Attributes: map[string]any{"key_prefix": prefix}},
		Receipt: adapters.Receipt{
			"key_prefix":  prefix,
			"user_prefix": instanceUserPrefix(req.InstanceID),
		},
	}, nil
}

// Bind creates or resets the binding's ACL user in one round trip. A repeat
// rotates the password: Agora only repeats a bind whose result it lost, so
// the old password was never handed out.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	plan, err := a.plans.Lookup(req.Plan)
	if err != nil {
		return adapters.BindResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.BindResult{}, err
	}
	password, err := adapters.NewPassword(adapters.PasswordLength)
	if err != nil {
		return adapters.BindResult{}, err
	}
	user := bindingUserName(req.InstanceID, req.BindingID)
	prefix := keyPrefix(a.settings.KeyPrefixRoot, req.InstanceID)
	// "reset" first makes this a full overwrite, so a repeat can never keep
	// a stale password, key pattern or rule from an earlier attempt.
	rules := append([]string{"reset", "on", ">" + password}, a.userRules(prefix, plan)...)
	pipe := a.client.Pipeline()
	set := pipe.ACLSetUser(ctx, user, rules...)
	save := pipe.Do(ctx, "ACL", "SAVE")
	_, _ = pipe.Exec(ctx) // errors are checked per command
	if err := set.Err(); err != nil {
		return adapters.BindResult{}, a.wrap("bind: ACL SETUSER "+user, err)
	}
	a.checkSaved(ctx, save, "bind")
	uri := url.URL{
		Scheme: "redis",
		User:   url.UserPassword(user, password),
		Host:   net.JoinHostPort(a.host, a.port),
		Path:   "/0",
	}
	port, _ := strconv.Atoi(a.port) // validated in New
	return adapters.BindResult{
		Credentials: adapters.Typed(adapters.TypeRedis, map[string]any{
			"host":       a.host,
			"port":       port,
			"username":   user,
			"password":   password,
			"key_prefix": prefix,
			"uri":        uri.String(),
		}),
		Endpoints: []adapters.Endpoint{{Host: a.host, Ports: []string{a.port}, Protocol: "tcp"}},
		Receipt:   adapters.Receipt{"username": user, "key_prefix": prefix},
	}, nil
}

// Unbind deletes the binding's user and drops its open connections, so
// revocation takes effect now rather than when the application reconnects.
func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	if err := a.deleteUsers(ctx, []string{bindingUserName(req.InstanceID, req.BindingID)}); err != nil {
		return adapters.UnbindResult{}, a.wrap("unbind", err)
	}
	return adapters.UnbindResult{}, nil
}

// Deprovision removes the instance's users first, so nobody writes while
// the keys are being deleted, then deletes the keys in SCAN-sized batches
// with UNLINK (freed in the background), so the shared server never blocks.
// Interrupted, it is simply run again: every step is idempotent.
func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	users, err := a.instanceUsers(ctx, req.InstanceID)
	if err != nil {
		return adapters.DeprovisionResult{}, a.wrap("deprovision: list users", err)
	}
	if err := a.deleteUsers(ctx, users); err != nil {
		return adapters.DeprovisionResult{}, a.wrap("deprovision", err)
	}
	prefix := keyPrefix(a.settings.KeyPrefixRoot, req.InstanceID)
	deleted, batches, err := a.deleteKeys(ctx, prefix)
	if err != nil {
		return adapters.DeprovisionResult{}, a.wrap(fmt.Sprintf("deprovision: delete keys %s* (%d deleted so far)", prefix, deleted), err)
	}
	a.logger.InfoContext(ctx, "redis instance deprovisioned",
		"instance_id", req.InstanceID, "key_prefix", prefix,
		"users_deleted", len(users), "keys_deleted", deleted, "unlink_batches", batches)
	return adapters.DeprovisionResult{}, nil
}

// Update applies the new plan's command rules to every existing binding
// user, keeping passwords, so bound applications keep working.
func (a *Adapter) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	plan, err := a.plans.Lookup(req.Plan)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.UpdateResult{}, err
	}
	users, err := a.instanceUsers(ctx, req.InstanceID)
	if err != nil {
		return adapters.UpdateResult{}, a.wrap("update: list users", err)
	}
	prefix := keyPrefix(a.settings.KeyPrefixRoot, req.InstanceID)
	// "-@all" clears command rules only; passwords and on/off stay.
	rules := append([]string{"-@all"}, a.userRules(prefix, plan)...)
	if len(users) > 0 {
		pipe := a.client.Pipeline()
		sets := make([]*goredis.StatusCmd, len(users))
		for i, u := range users {
			sets[i] = pipe.ACLSetUser(ctx, u, rules...)
		}
		save := pipe.Do(ctx, "ACL", "SAVE")
		_, _ = pipe.Exec(ctx) // errors are checked per command
		var errs []error
		for i, set := range sets {
			if err := set.Err(); err != nil {
				errs = append(errs, fmt.Errorf("ACL SETUSER %s: %w", users[i], err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return adapters.UpdateResult{}, a.wrap(fmt.Sprintf("update: apply plan %q", req.Plan.Name), err)
		}
		a.checkSaved(ctx, save, "update")
	}
	return adapters.UpdateResult{Receipt: req.Receipt}, nil
}

// Ping reports whether Redis answers the admin connection.
func (a *Adapter) Ping(ctx context.Context) error {
	if err := a.client.Ping(ctx).Err(); err != nil {
		return a.wrap("ping", err)
	}
	return nil
}

// Close releases the admin connection pool.
func (a *Adapter) Close() error {
	return a.client.Close()
}

// userRules confines a user to the namespace, then grants the plan, then
// takes back whatever the tenancy guards forbid.
func (a *Adapter) userRules(prefix string, plan PlanSettings) []string {
	rules := []string{
		"resetkeys", "~" + globEscape(prefix) + "*",
		"resetchannels", "&" + globEscape(prefix) + "*",
	}
	rules = append(rules, plan.rules()...)
	return append(rules, tenancyGuards()...)
}

// instanceUsers finds the instance's binding users by name prefix, so that
// users whose Bind result was lost are still found.
func (a *Adapter) instanceUsers(ctx context.Context, instanceID string) ([]string, error) {
	all, err := a.client.ACLUsers(ctx).Result()
	if err != nil {
		return nil, err
	}
	prefix := instanceUserPrefix(instanceID)
	var mine []string
	for _, u := range all {
		if strings.HasPrefix(u, prefix) {
			mine = append(mine, u)
		}
	}
	sort.Strings(mine)
	return mine, nil
}

// deleteUsers kills each user's connections and deletes it, all in one
// pipeline. Redis 7 also drops a deleted user's clients on its own; the
// explicit CLIENT KILL keeps that guarantee visible and version-proof.
func (a *Adapter) deleteUsers(ctx context.Context, users []string) error {
	if len(users) == 0 {
		return nil
	}
	pipe := a.client.Pipeline()
	kills := make([]*goredis.IntCmd, len(users))
	dels := make([]*goredis.IntCmd, len(users))
	for i, u := range users {
		kills[i] = pipe.ClientKillByFilter(ctx, "USER", u)
		dels[i] = pipe.ACLDelUser(ctx, u)
	}
	save := pipe.Do(ctx, "ACL", "SAVE")
	_, _ = pipe.Exec(ctx) // errors are checked per command below
	var errs []error
	for i, u := range users {
		// "No such user" means a repeat: the user is already gone.
		if err := kills[i].Err(); err != nil && !goredis.HasErrorPrefix(err, "No such user") {
			errs = append(errs, fmt.Errorf("CLIENT KILL USER %s: %w", u, err))
		}
		if err := dels[i].Err(); err != nil {
			errs = append(errs, fmt.Errorf("ACL DELUSER %s: %w", u, err))
		}
	}
	if len(errs) == 0 {
		a.checkSaved(ctx, save, "delete users")
	}
	return errors.Join(errs...)
}

// checkSaved looks at the ACL SAVE sent in the same pipeline as a user
// change. Users made with ACL SETUSER live in memory only; with an aclfile
// configured, ACL SAVE makes them survive a Redis restart, which would
// otherwise silently revoke every binding. Without an aclfile there is
// nothing to save (the operator's choice, see README), and a failed save
// does not undo the change the caller asked for, so it is logged, not
// returned.
func (a *Adapter) checkSaved(ctx context.Context, save *goredis.Cmd, op string) {
	err := save.Err()
	if err == nil || goredis.HasErrorPrefix(err, "This Redis instance is not configured to use an ACL file") {
		return
	}
	a.logger.WarnContext(ctx, "redis ACL SAVE failed: ACL users are not persisted and would be lost on a Redis restart",
		"addr", a.settings.Addr, "op", op, "error", err)
}

// deleteKeys walks the namespace with SCAN and unlinks each batch. It
// checks ctx between batches so a sync deprovision that runs out of time
// stops cleanly; the repeat continues where the keys remain.
func (a *Adapter) deleteKeys(ctx context.Context, prefix string) (deleted int64, batches int, err error) {
	match := globEscape(prefix) + "*"
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return deleted, batches, err
		}
		keys, next, err := a.client.Scan(ctx, cursor, match, scanBatch).Result()
		if err != nil {
			return deleted, batches, fmt.Errorf("SCAN: %w", err)
		}
		if len(keys) > 0 {
			n, err := a.client.Unlink(ctx, keys...).Result()
			if err != nil {
				return deleted, batches, fmt.Errorf("UNLINK: %w", err)
			}
			deleted += n
			batches++
		}
		if next == 0 {
			return deleted, batches, nil
		}
		cursor = next
	}
}

// wrap names the backend in every error, and marks rejected admin
// credentials or missing admin privileges as terminal: retrying cannot fix
// a configuration problem.
func (a *Adapter) wrap(op string, err error) error {
	if goredis.IsAuthError(err) || goredis.IsPermissionError(err) {
		return adapters.Terminal(fmt.Errorf("redis at %s: %s: admin credentials rejected or lacking ACL privileges (check admin_username/admin_password): %w", a.settings.Addr, op, err))
	}
	return fmt.Errorf("redis at %s: %s: %w", a.settings.Addr, op, err)
}

// Compile-time guards: the capabilities Agora finds by type assertion.
var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Updater = (*Adapter)(nil)
	_ adapters.Pinger  = (*Adapter)(nil)
	_ adapters.Closer  = (*Adapter)(nil)
)
