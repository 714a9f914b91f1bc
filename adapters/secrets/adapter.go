package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/vault/api"

	"github.com/agora-osb/agora/adapters"
)

// Factory returns the factory catalog.yml refers to as `adapter: secrets`.
func Factory() adapters.Factory {
	return adapters.Factory{
		Name:        "secrets",
		Description: "A private Vault KV v2 folder per instance, AppRole credentials per binding (platform-team)",
		New:         adapters.Constructor(New),
		Check:       adapters.CheckConfig[Settings, PlanSettings, Adapter](),
	}
}

// Adapter provisions per-instance secret spaces in one Vault.
type Adapter struct {
	settings   Settings
	plans      adapters.PlanSettings[PlanSettings]
	offering   string
	client     *api.Client
	httpClient *http.Client
	logger     *slog.Logger

	// accessors caches the AppRole mount's accessor per mount path, so a
	// bind does not list sys/auth every time. An accessor changes only when
	// the mount is disabled and enabled again; a bind that fails after
	// using a cached one drops it (see forgetAccessor).
	accessorsMu sync.Mutex
	accessors   map[string]string
}

// New decodes and validates cfg, reporting every problem at once, and
// prepares a Vault client. It does not contact Vault: a Vault that is down
// at startup is reported by Ping.
func New(_ context.Context, cfg adapters.Config) (*Adapter, error) {
	s, plans, err := adapters.DecodeConfig[Settings, PlanSettings](cfg)
	if err != nil {
		return nil, err // as is: see DecodeConfig
	}
	client, httpClient, err := newVaultClient(s)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", s.VaultAddr, err)
	}
	return &Adapter{
		settings:   s,
		plans:      plans,
		offering:   cfg.Offering,
		client:     client,
		httpClient: httpClient,
		logger:     cfg.Logger,
		accessors:  map[string]string{},
	}, nil
}

// newVaultClient builds a client that depends on the settings alone.
//
// api.DefaultConfig() reads VAULT_ADDR, VAULT_CACERT, VAULT_SKIP_VERIFY,
// VAULT_AGENT_ADDR, VAULT_RATE_LIMIT and more from the environment, so an
// unrelated variable on Agora's host (say, an operator's VAULT_ADDR for
// Agora's own credential store) would silently redirect or weaken this
// client. We therefore hand NewClient a Config of our own. NewClient still
// copies VAULT_TOKEN, VAULT_NAMESPACE and VAULT_HEADERS from the
// environment into the client, so we overwrite all three right after.
func newVaultClient(s Settings) (*api.Client, *http.Client, error) {
	httpClient := cleanhttp.DefaultPooledClient()
	// vault/api follows Vault's redirects itself (standby to active node);
	// the HTTP client must hand them back instead of following them.
	httpClient.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client, err := api.NewClient(&api.Config{
		Address:    s.VaultAddr,
		HttpClient: httpClient,
		// A request should fail well inside Cloud Foundry's 60 s broker
		// timeout; the caller's context can only shorten this.
		Timeout:      30 * time.Second,
		MaxRetries:   2,
		MinRetryWait: 250 * time.Millisecond,
		MaxRetryWait: time.Second,
	})
	if err != nil {
		return nil, nil, err
	}
	client.SetToken(s.Token)
	client.ClearNamespace()
	client.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	return client, httpClient, nil
}

// Provision checks that the KV v2 engine is there and writes the
// instance's policy. KV v2 folders need no creation: the policy is what
// makes the space exist for the instance's bindings.
func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.ProvisionResult{}, err
	}
	plan, err := a.plan(req.Plan)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	sp := a.spaceFor(req.InstanceID)
	if err := a.checkKVv2(ctx, sp.kvMount); err != nil {
		return adapters.ProvisionResult{}, err
	}
	// Writing a policy is an upsert, so a repeat converges on the same rules.
	if err := a.client.Sys().PutPolicyWithContext(ctx, sp.policy, sp.policyHCL()); err != nil {
		return adapters.ProvisionResult{}, a.vaultError("write policy "+sp.policy, err)
	}
	attrs := map[string]any{"kv_mount": sp.kvMount, "path": sp.path}
	if plan.maxSecrets > 0 {
		attrs["max_secrets"] = plan.maxSecrets
	}
	a.logger.InfoContext(ctx, "provisioned secret space", "instance", req.InstanceID, "path", sp.kvMount+"/"+sp.path, "policy", sp.policy)
	return adapters.ProvisionResult{
		Metadata: adapters.Metadata{Attributes: attrs},
		// The receipt says the instance's bindings are recorded, which is
		// what lets Deprovision skip the scan of every role (see
		// deleteBindingsOf).
		Receipt: withRecords(sp.receipt()),
	}, nil
}

// checkKVv2 fails early, and for good, when kv_mount is not a KV v2 engine:
// otherwise every app would fail later with a confusing 403 or 404.
func (a *Adapter) checkKVv2(ctx context.Context, mount string) error {
	m, err := a.client.Sys().GetMountWithContext(ctx, mount)
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest {
			return adapters.Terminal(fmt.Errorf("secrets adapter: vault at %s: kv_mount %q is not a mounted secrets engine: %w", a.settings.VaultAddr, mount, err))
		}
		return a.vaultError("read mount "+mount+"/", err)
	}
	if m.Type != "kv" || m.Options["version"] != "2" {
		return adapters.Terminal(fmt.Errorf("secrets adapter: vault at %s: kv_mount %q is a %q engine with options %v, not KV version 2",
			a.settings.VaultAddr, mount, m.Type, m.Options))
	}
	return nil
}

// Bind gives the binding its own AppRole role, scoped by the instance's
// policy, and one secret_id. Round trips: record the binding under the
// instance, read entity, create entity (first time only), write role, read
// role_id, create entity alias (first time only), create secret_id; one
// more (list auth methods) the first time a replica uses the AppRole
// mount, two more when AppRole has to be enabled first, and one (read the
// instance's policy) when the request carries no receipt from Provision.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	if err := adapters.NoParameters(req.Offering, req.Parameters); err != nil {
		return adapters.BindResult{}, err
	}
	plan, err := a.plan(req.Plan)
	if err != nil {
		return adapters.BindResult{}, err
	}
	sp := a.spaceFromReceipt(req.InstanceID, req.InstanceReceipt)
	if req.InstanceReceipt[receiptRecords] == "" {
		// Only Provision writes that receipt key, so the broker's bind
		// of an instance this adapter provisioned skips the lookup;
		// anyone else's word is checked before anything is written.
		if err := a.requireInstance(ctx, req.InstanceID, sp); err != nil {
			return adapters.BindResult{}, err
		}
	}
	mount := a.settings.ApproleMount

	accessor, cached, err := a.approleAccessor(ctx, mount)
	if err != nil {
		return adapters.BindResult{}, err
	}
	res, err := a.bind(ctx, req, plan, sp, mount, accessor)
	if err == nil || !cached {
		return res, err
	}
	// The mount may have been disabled (and enabled again) since the
	// accessor was cached: ask Vault afresh, and when the accessor did
	// change, bind once more. Every step of bind is a repeatable upsert.
	a.forgetAccessor(mount)
	fresh, _, ferr := a.approleAccessor(ctx, mount)
	if ferr != nil || fresh == accessor {
		return adapters.BindResult{}, err
	}
	a.logger.InfoContext(ctx, "the approle mount changed its accessor; binding again", "mount", mount+"/", "binding", req.BindingID)
	return a.bind(ctx, req, plan, sp, mount, fresh)
}

// requireInstance answers ErrNotFound unless the instance's policy, which
// Provision writes and Deprovision deletes, is in Vault (as Inspect does).
func (a *Adapter) requireInstance(ctx context.Context, instanceID string, sp space) error {
	rules, err := a.client.Sys().GetPolicyWithContext(ctx, sp.policy)
	if err != nil && !isNotFound(err) {
		return a.vaultError("read policy "+sp.policy, err)
	}
	if rules == "" {
		return fmt.Errorf("secrets adapter: vault at %s: instance %s is not provisioned (no policy %s): %w",
			a.settings.VaultAddr, instanceID, sp.policy, adapters.ErrNotFound)
	}
	return nil
}

func (a *Adapter) bind(ctx context.Context, req adapters.BindRequest, plan planConfig, sp space, mount, accessor string) (adapters.BindResult, error) {
	role, entity := roleName(req.BindingID), entityName(req.BindingID)
	rolePath := "auth/" + mount + "/role/" + role
	// The record comes before the role, so a crash between the two leaves
	// a record Deprovision cleans up, never a role nothing points to.
	if err := a.recordBinding(ctx, sp, mount, role, entity); err != nil {
		return adapters.BindResult{}, err
	}
	// The entity comes first: it claims the binding for this instance, so a
	// binding ID reused for another instance is refused before its role
	// (and so its existing credentials) could be re-scoped.
	ent, err := a.ensureEntity(ctx, entity, sp.policy, req.BindingID)
	if err != nil {
		return adapters.BindResult{}, err
	}
	if _, err := a.client.Logical().WriteWithContext(ctx, rolePath, map[string]any{
		"token_policies": []string{sp.policy},
		"token_ttl":      int64(plan.tokenTTL / time.Second),
		"secret_id_ttl":  int64(plan.secretIDTTL / time.Second),
		// Service tokens, so the tokens show in the token store and can be
		// looked up and revoked like any other.
		"token_type": "service",
	}); err != nil {
		return adapters.BindResult{}, a.vaultError("write approle role "+role, err)
	}
	sec, err := a.client.Logical().ReadWithContext(ctx, rolePath+"/role-id")
	if err != nil {
		return adapters.BindResult{}, a.vaultError("read role_id of "+role, err)
	}
	roleID := dataString(sec, "role_id")
	if roleID == "" {
		return adapters.BindResult{}, fmt.Errorf("secrets adapter: vault at %s: read role_id of %s: no role_id in the answer", a.settings.VaultAddr, role)
	}
	if err := a.ensureAlias(ctx, ent, roleID, accessor); err != nil {
		return adapters.BindResult{}, err
	}
	// Read before the secret_id exists, so the expiry Agora is told is at
	// or before the one Vault enforces.
	issued := time.Now()
	meta, err := json.Marshal(map[string]string{"agora_offering": a.offering, "agora_binding": vaultName(req.BindingID)})
	if err != nil {
		return adapters.BindResult{}, fmt.Errorf("secrets adapter: encode secret_id metadata: %w", err)
	}
	sec, err = a.client.Logical().WriteWithContext(ctx, rolePath+"/secret-id", map[string]any{"metadata": string(meta)})
	if err != nil {
		return adapters.BindResult{}, a.vaultError("create secret_id for "+role, err)
	}
	secretID, secretIDAccessor := dataString(sec, "secret_id"), dataString(sec, "secret_id_accessor")
	if secretID == "" {
		return adapters.BindResult{}, fmt.Errorf("secrets adapter: vault at %s: create secret_id for %s: no secret_id in the answer", a.settings.VaultAddr, role)
	}

	log := []any{"instance", req.InstanceID, "binding", req.BindingID, "role", role, "secret_id_accessor", secretIDAccessor}
	if req.Predecessor != nil {
		// A rotation needs nothing of the predecessor: the new binding's
		// role gets the same instance policy, which is all the access a
		// binding has. The predecessor's role stays until it is unbound.
		log = append(log, "rotates", req.Predecessor.BindingID)
	}
	a.logger.InfoContext(ctx, "bound secret space", log...)
	var expires, renew time.Time
	if plan.secretIDTTL > 0 {
		expires = issued.Add(plan.secretIDTTL)
		renew = expires.Add(-plan.renewWindow)
	}
	return adapters.BindResult{
		ExpiresAt:   expires,
		RenewBefore: renew,
		Credentials: adapters.Typed(adapters.TypeVault, map[string]any{
			"vault_addr": a.settings.PublicVaultAddr,
			"role_id":    roleID,
			"secret_id":  secretID,
			"auth_path":  "auth/" + mount + "/login",
			"kv_mount":   sp.kvMount,
			"path":       sp.path,
			"policy":     sp.policy,
		}),
		Endpoints: publicEndpoints(a.settings.PublicVaultAddr),
		// Names and an accessor only: Agora keeps receipts in Redis.
		Receipt: adapters.Receipt{
			receiptRole:             role,
			receiptEntity:           entity,
			receiptApproleMount:     mount,
			receiptPolicy:           sp.policy,
			receiptSecretIDAccessor: secretIDAccessor,
		},
	}, nil
}

// approleAccessor returns the AppRole mount's accessor, from the cache
// (cached true) when a bind of this adapter has already asked Vault.
func (a *Adapter) approleAccessor(ctx context.Context, mount string) (accessor string, cached bool, err error) {
	a.accessorsMu.Lock()
	acc, ok := a.accessors[mount]
	a.accessorsMu.Unlock()
	if ok {
		return acc, true, nil
	}
	acc, err = a.ensureApprole(ctx, mount)
	if err != nil {
		return "", false, err
	}
	a.accessorsMu.Lock()
	a.accessors[mount] = acc
	a.accessorsMu.Unlock()
	return acc, false, nil
}

func (a *Adapter) forgetAccessor(mount string) {
	a.accessorsMu.Lock()
	delete(a.accessors, mount)
	a.accessorsMu.Unlock()
}

// ensureApprole returns the accessor of the AppRole mount, enabling the
// method when it is missing. Another replica may enable it at the same
// moment; "already in use" then means the work is done.
func (a *Adapter) ensureApprole(ctx context.Context, mount string) (string, error) {
	for attempt := 0; ; attempt++ {
		auths, err := a.client.Sys().ListAuthWithContext(ctx)
		if err != nil {
			return "", a.vaultError("list auth methods", err)
		}
		if m, ok := auths[mount+"/"]; ok {
			if m.Type != "approle" {
				return "", adapters.Terminal(fmt.Errorf("secrets adapter: vault at %s: auth method at %s/ is %q, not approle; set approle_mount to a free path or an approle mount", a.settings.VaultAddr, mount, m.Type))
			}
			return m.Accessor, nil
		}
		if attempt > 0 {
			return "", fmt.Errorf("secrets adapter: vault at %s: approle auth method at %s/ still missing after enabling it", a.settings.VaultAddr, mount)
		}
		err = a.client.Sys().EnableAuthWithOptionsWithContext(ctx, mount, &api.EnableAuthOptions{
			Type:        "approle",
			Description: "AppRole for Agora's secrets adapter bindings",
		})
		switch {
		case err == nil:
			a.logger.InfoContext(ctx, "enabled the approle auth method", "mount", mount+"/")
		case !isAlreadyInUse(err):
			return "", a.vaultError("enable approle auth method at "+mount+"/", err)
		}
	}
}

// entityInfo is what Bind needs to know of a binding's identity entity.
type entityInfo struct {
	id      string
	aliases []aliasInfo
}

type aliasInfo struct{ id, name, mountAccessor string }

// ensureEntity creates the binding's identity entity, or checks that the
// existing one belongs to the same instance. Every login of the binding's
// role attaches to it, which is what lets Unbind kill their tokens.
func (a *Adapter) ensureEntity(ctx context.Context, name, policy, bindingID string) (entityInfo, error) {
	path := "identity/entity/name/" + name
	for attempt := 0; ; attempt++ {
		sec, err := a.client.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return entityInfo{}, a.vaultError("read identity entity "+name, err)
		}
		if sec != nil {
			meta, _ := sec.Data["metadata"].(map[string]any)
			if owner, _ := meta["agora_policy"].(string); owner != policy {
				return entityInfo{}, fmt.Errorf("secrets adapter: binding %q: identity entity %s belongs to %q, not %s: %w",
					bindingID, name, owner, policy, adapters.ErrAlreadyExists)
			}
			return entityInfo{id: dataString(sec, "id"), aliases: aliasesOf(sec)}, nil
		}
		if attempt > 0 {
			return entityInfo{}, fmt.Errorf("secrets adapter: vault at %s: identity entity %s missing right after creating it", a.settings.VaultAddr, name)
		}
		sec, err = a.client.Logical().WriteWithContext(ctx, path, map[string]any{
			"metadata": map[string]string{
				"agora_adapter": "secrets",
				"agora_policy":  policy,
				"agora_binding": vaultName(bindingID),
			},
		})
		if err != nil {
			return entityInfo{}, a.vaultError("create identity entity "+name, err)
		}
		if id := dataString(sec, "id"); id != "" {
			return entityInfo{id: id}, nil
		}
		// No body means the entity already existed (a concurrent repeat
		// created it first): read it again to check whose it is.
	}
}

func aliasesOf(sec *api.Secret) []aliasInfo {
	raw, _ := sec.Data["aliases"].([]any)
	out := make([]aliasInfo, 0, len(raw))
	for _, r := range raw {
		m, _ := r.(map[string]any)
		id, _ := m["id"].(string)
		name, _ := m["name"].(string)
		acc, _ := m["mount_accessor"].(string)
		out = append(out, aliasInfo{id: id, name: name, mountAccessor: acc})
	}
	return out
}

// ensureAlias ties AppRole logins with roleID to the binding's entity.
// AppRole names its aliases after the role_id, so this is what makes
// Vault attach the binding's logins to our entity instead of creating a
// fresh, anonymous one.
func (a *Adapter) ensureAlias(ctx context.Context, ent entityInfo, roleID, accessor string) error {
	for _, al := range ent.aliases {
		if al.mountAccessor != accessor {
			continue
		}
		if al.name == roleID {
			return nil
		}
		// A leftover from a role that was deleted and created again: an
		// entity holds one alias per mount, so it has to go first.
		if _, err := a.client.Logical().DeleteWithContext(ctx, "identity/entity-alias/id/"+al.id); err != nil && !isNotFound(err) {
			return a.vaultError("delete stale entity alias "+al.id, err)
		}
	}
	// Creating by (name, mount_accessor) is an upsert in Vault.
	if _, err := a.client.Logical().WriteWithContext(ctx, "identity/entity-alias", map[string]any{
		"name":           roleID,
		"mount_accessor": accessor,
		"canonical_id":   ent.id,
	}); err != nil {
		return a.vaultError("create entity alias for entity "+ent.id, err)
	}
	return nil
}

// Unbind deletes the binding's role, which deletes its secret_ids and
// stops new logins, then its entity, which makes Vault refuse every token
// already issued to the binding. Vault has no "revoke tokens by role"; a
// token whose entity is gone is refused on every request. The role goes
// first so no login can slip in and create a fresh entity after ours.
func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	role, entity, mount := req.Receipt[receiptRole], req.Receipt[receiptEntity], req.Receipt[receiptApproleMount]
	if role == "" {
		role = roleName(req.BindingID)
	}
	if entity == "" {
		entity = entityName(req.BindingID)
	}
	if mount == "" {
		mount = a.settings.ApproleMount
	}
	if err := a.deleteBinding(ctx, mount, role, entity); err != nil {
		return adapters.UnbindResult{}, err
	}
	// Bindings made before records existed have none; deleting an absent
	// record is a no-op.
	if err := a.forgetBinding(ctx, a.spaceFromReceipt(req.InstanceID, req.InstanceReceipt), role); err != nil {
		return adapters.UnbindResult{}, err
	}
	a.logger.InfoContext(ctx, "unbound secret space", "instance", req.InstanceID, "binding", req.BindingID, "role", role)
	return adapters.UnbindResult{}, nil
}

func (a *Adapter) deleteBinding(ctx context.Context, mount, role, entity string) error {
	if _, err := a.client.Logical().DeleteWithContext(ctx, "auth/"+mount+"/role/"+role); err != nil && !isNotFound(err) {
		return a.vaultError("delete approle role "+role, err)
	}
	if _, err := a.client.Logical().DeleteWithContext(ctx, "identity/entity/name/"+entity); err != nil && !isNotFound(err) {
		return a.vaultError("delete identity entity "+entity, err)
	}
	return nil
}

// Deprovision cuts access first (roles of bindings still left, then the
// policy) so no app writes into the folder while it is being emptied,
// then deletes every secret with all its versions. Each step is a no-op
// when already done, so a repeat after a crash finishes the job.
func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	sp := a.spaceFromReceipt(req.InstanceID, req.Receipt)
	removed, err := a.deleteBindingsOf(ctx, sp, req.Receipt[receiptRecords] != "")
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	if err := a.client.Sys().DeletePolicyWithContext(ctx, sp.policy); err != nil && !isNotFound(err) {
		return adapters.DeprovisionResult{}, a.vaultError("delete policy "+sp.policy, err)
	}
	deleted, err := a.deleteTree(ctx, sp)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	a.logger.InfoContext(ctx, "deprovisioned secret space", "instance", req.InstanceID,
		"path", sp.kvMount+"/"+sp.path, "secrets_deleted", deleted, "leftover_bindings_removed", removed)
	return adapters.DeprovisionResult{}, nil
}

// deleteBindingsOf removes the roles (and entities) of bindings that were
// never unbound. Platforms normally unbind first (and Agora's own cascade
// unbinds every binding it knows), so this is a safety net for binds that
// failed half-way. Bind records each binding under the instance (see
// recordBinding), so the net costs one LIST of the instance's own records
// whatever the number of roles in Vault.
//
// An instance provisioned before records existed has no "records" key in
// its receipt; its bindings may be unrecorded, so for it alone the old
// scan runs: list every AppRole role and read those named like ours,
// matching their token_policies against the instance's policy.
func (a *Adapter) deleteBindingsOf(ctx context.Context, sp space, recorded bool) (int, error) {
	removed := 0
	recs, err := a.bindingRecords(ctx, sp)
	if err != nil {
		return 0, err
	}
	for _, r := range recs {
		if err := a.deleteBinding(ctx, r.mount, r.role, r.entity); err != nil {
			return removed, err
		}
		if err := a.forgetBinding(ctx, sp, r.role); err != nil {
			return removed, err
		}
		removed++
	}
	if recorded {
		return removed, nil
	}
	n, err := a.scanBindingsOf(ctx, sp.policy)
	return removed + n, err
}

// scanBindingsOf is the fallback of deleteBindingsOf for instances
// provisioned before bindings were recorded: O(every role on the mount).
func (a *Adapter) scanBindingsOf(ctx context.Context, policy string) (int, error) {
	mount := a.settings.ApproleMount
	sec, err := a.client.Logical().ListWithContext(ctx, "auth/"+mount+"/role")
	if err != nil {
		if isNotFound(err) {
			return 0, nil
		}
		return 0, a.vaultError("list approle roles", err)
	}
	removed := 0
	for _, role := range listKeys(sec) {
		if !strings.HasPrefix(role, "agora-") {
			continue
		}
		rs, err := a.client.Logical().ReadWithContext(ctx, "auth/"+mount+"/role/"+role)
		if err != nil {
			return removed, a.vaultError("read approle role "+role, err)
		}
		if rs == nil || !slices.Contains(stringList(rs.Data["token_policies"]), policy) {
			continue
		}
		// Entity and role share the binding's name (see entityName).
		if err := a.deleteBinding(ctx, mount, role, role); err != nil {
			return removed, err
		}
		removed++
	}
	return removed, nil
}

// deleteTree deletes the metadata, and with it every version, of every
// secret under the instance folder, walking the folder with LIST.
func (a *Adapter) deleteTree(ctx context.Context, sp space) (int, error) {
	kv := a.client.KVv2(sp.kvMount)
	deleted := 0
	// An explicit stack, not recursion: apps choose the folder depth.
	folders := []string{sp.path}
	for len(folders) > 0 {
		dir := folders[len(folders)-1]
		folders = folders[:len(folders)-1]
		sec, err := a.client.Logical().ListWithContext(ctx, sp.kvMount+"/metadata/"+dir)
		if err != nil && !isNotFound(err) {
			return deleted, a.vaultError("list "+sp.kvMount+"/metadata/"+dir, err)
		}
		for _, key := range listKeys(sec) {
			if sub, ok := strings.CutSuffix(key, "/"); ok {
				folders = append(folders, dir+"/"+sub)
				continue
			}
			if err := kv.DeleteMetadata(ctx, dir+"/"+key); err != nil && !isNotFound(err) {
				return deleted, a.vaultError("delete secret "+dir+"/"+key, err)
			}
			deleted++
		}
	}
	// The policy also grants the base path itself as a secret.
	if err := kv.DeleteMetadata(ctx, sp.path); err != nil && !isNotFound(err) {
		return deleted, a.vaultError("delete secret "+sp.path, err)
	}
	return deleted, nil
}

// Ping reports whether Vault answers and can serve requests.
func (a *Adapter) Ping(ctx context.Context) error {
	h, err := a.client.Sys().HealthWithContext(ctx)
	if err != nil {
		return a.vaultError("health check", err)
	}
	switch {
	case !h.Initialized:
		return fmt.Errorf("secrets adapter: vault at %s: not initialized", a.settings.VaultAddr)
	case h.Sealed:
		return fmt.Errorf("secrets adapter: vault at %s: sealed", a.settings.VaultAddr)
	}
	return nil
}

// Close releases the idle connections of the adapter's own HTTP client.
func (a *Adapter) Close() error {
	a.httpClient.CloseIdleConnections()
	return nil
}

// plan returns the parsed settings of the request's plan.
func (a *Adapter) plan(p adapters.Plan) (planConfig, error) {
	ps, err := a.plans.Lookup(p)
	if err != nil {
		return planConfig{}, err
	}
	return ps.parse() // New checked it: this cannot fail
}

// vaultError names Vault and its address, as the operator must know which
// backend to look at, and marks permission problems terminal: retrying
// with the same token cannot help.
func (a *Adapter) vaultError(op string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
		return adapters.Terminal(fmt.Errorf(
			"secrets adapter: vault at %s: %s: permission denied: the adapter's token is invalid or lacks a policy allowing this (see adapters/secrets/README.md): %w",
			a.settings.VaultAddr, op, err))
	}
	if isNotFound(err) {
		return fmt.Errorf("secrets adapter: vault at %s: %s: %w: %w", a.settings.VaultAddr, op, adapters.ErrNotFound, err)
	}
	return fmt.Errorf("secrets adapter: vault at %s: %s: %w", a.settings.VaultAddr, op, err)
}

func isNotFound(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func isAlreadyInUse(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	return slices.ContainsFunc(re.Errors, func(e string) bool { return strings.Contains(e, "already in use") })
}

func dataString(sec *api.Secret, key string) string {
	if sec == nil {
		return ""
	}
	s, _ := sec.Data[key].(string)
	return s
}

func listKeys(sec *api.Secret) []string {
	if sec == nil {
		return nil
	}
	return stringList(sec.Data["keys"])
}

func stringList(v any) []string {
	raw, _ := v.([]any)
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// publicEndpoints tells the platform which host and port bound apps must
// reach, so network policies can allow it.
func publicEndpoints(addr string) []adapters.Endpoint {
	u, err := url.Parse(addr)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return []adapters.Endpoint{{Host: u.Hostname(), Ports: []string{port}, Protocol: "tcp"}}
}

// Compile-time guards: the capabilities Agora finds by type assertion.
var (
	_ adapters.Adapter = (*Adapter)(nil)
	_ adapters.Pinger  = (*Adapter)(nil)
	_ adapters.Closer  = (*Adapter)(nil)
)
