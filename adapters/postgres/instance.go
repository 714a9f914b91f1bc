package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/agora-osb/agora/adapters"
)

// instanceState is what the catalogs say about one instance, read in one
// round trip so every step below knows what a crashed earlier call left.
type instanceState struct {
	databaseExists bool
	ownerExists    bool
	adminIsSuper   bool
}

func (a *Adapter) instanceState(ctx context.Context, n instanceNames) (instanceState, error) {
	var st instanceState
	err := a.pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_database WHERE datname = $1),
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2),
		COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)`,
		n.database, n.owner).Scan(&st.databaseExists, &st.ownerExists, &st.adminIsSuper)
	if err != nil {
		return st, a.fail("read catalogs", err)
	}
	return st, nil
}

// Provision creates the owner role, then the database owned by it, then the
// requested extensions. Each step checks the catalogs first, so a repeat
// after a crash at any point completes the instance.
func (a *Adapter) Provision(ctx context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	plan, err := a.plans.Lookup(req.Plan)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	extensions, err := parseExtensions(req.Parameters, plan)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	extensions = withVersionExtensions(extensions, plan, req.Maintenance.Requested.Version)
	n := namesFor(req.InstanceID)
	st, err := a.instanceState(ctx, n)
	if err != nil {
		return adapters.ProvisionResult{}, err
	}
	if err := a.ensureOwnerRole(ctx, n, st); err != nil {
		return adapters.ProvisionResult{}, err
	}
	if err := a.ensureDatabase(ctx, n, st, plan.connectionLimit()); err != nil {
		return adapters.ProvisionResult{}, err
	}
	if err := a.createExtensions(ctx, n, extensions); err != nil {
		return adapters.ProvisionResult{}, err
	}
	a.logger.InfoContext(ctx, "provisioned", "instance_id", req.InstanceID, "database", n.database)
	return adapters.ProvisionResult{
		Metadata: adapters.Metadata{Attributes: map[string]any{"database": n.database}},
		Receipt:  adapters.Receipt{"database": n.database, "owner_role": n.owner},
	}, nil
}

// withVersionExtensions adds the extensions the plan's versions up to
// version bring to those the parameters asked for.
func withVersionExtensions(extensions []string, plan PlanSettings, version string) []string {
	for _, e := range plan.versionExtensions(version) {
		if !slices.Contains(extensions, e) {
			extensions = append(extensions, e)
		}
	}
	return extensions
}

func (a *Adapter) ensureOwnerRole(ctx context.Context, n instanceNames, st instanceState) error {
	owner := ident(n.owner)
	stmts := []string{n.lockStmt()}
	if st.ownerExists {
		// It may have been created by hand or by an older version: make
		// sure nobody can log in as the owner itself.
		stmts = append(stmts, "ALTER ROLE "+owner+" NOLOGIN")
	} else {
		stmts = append(stmts, "CREATE ROLE "+owner+" NOLOGIN")
	}
	if !st.adminIsSuper {
		// A non-superuser admin (CREATEROLE, CREATEDB) must be a member of
		// the owner role to create a database owned by it and to drop it.
		stmts = append(stmts, "GRANT "+owner+" TO CURRENT_USER")
	}
	_, err := a.pool.Exec(ctx, strings.Join(stmts, "; "), pgx.QueryExecModeSimpleProtocol)
	if err != nil && pgCode(err) == codeDuplicateObject && !st.ownerExists {
		// A concurrent call created it between our check and our CREATE.
		return a.ensureOwnerRole(ctx, n, instanceState{ownerExists: true, adminIsSuper: st.adminIsSuper})
	}
	if err != nil {
		return a.fail("create owner role "+n.owner, err)
	}
	return nil
}

func (a *Adapter) ensureDatabase(ctx context.Context, n instanceNames, st instanceState, connLimit int) error {
	db, owner := ident(n.database), ident(n.owner)
	limit := fmt.Sprint(connLimit)
	if !st.databaseExists {
		// CREATE DATABASE refuses to run inside a transaction, and a
		// multi-statement query is one, so it goes alone.
		_, err := a.pool.Exec(ctx, "CREATE DATABASE "+db+" OWNER "+owner+" CONNECTION LIMIT "+limit)
		switch {
		case err == nil:
		case pgCode(err) == codeDuplicateDatabase:
			st.databaseExists = true
		default:
			return a.fail("create database "+n.database, err)
		}
	}
	stmts := []string{
		n.lockStmt(),
		// PUBLIC has CONNECT on every new database; without this revoke the
		// roles of every other instance could connect to this one.
		"REVOKE ALL ON DATABASE " + db + " FROM PUBLIC",
	}
	if st.databaseExists {
		// Found rather than created: repair owner and limit.
		stmts = append(stmts,
			"ALTER DATABASE "+db+" OWNER TO "+owner,
			"ALTER DATABASE "+db+" CONNECTION LIMIT "+limit)
	}
	if _, err := a.pool.Exec(ctx, strings.Join(stmts, "; "), pgx.QueryExecModeSimpleProtocol); err != nil {
		return a.fail("configure database "+n.database, err)
	}
	return nil
}

func (a *Adapter) createExtensions(ctx context.Context, n instanceNames, extensions []string) error {
	if len(extensions) == 0 {
		return nil
	}
	stmts := make([]string, len(extensions))
	for i, e := range extensions {
		stmts[i] = "CREATE EXTENSION IF NOT EXISTS " + ident(e)
	}
	found, err := a.withInstanceDB(ctx, n.database, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, strings.Join(stmts, "; "), pgx.QueryExecModeSimpleProtocol)
		return err
	})
	if err != nil {
		return a.fail("create extensions "+strings.Join(extensions, ", ")+" in "+n.database, err)
	}
	if !found {
		return a.fail("create extensions", fmt.Errorf("database %s vanished while provisioning", n.database))
	}
	return nil
}

// Update applies the new plan's connection limit and creates any newly
// requested extensions, and those of the plan's versions up to the
// requested maintenance_info version (an upgrade). Extensions are never
// dropped: that would destroy the application's data.
func (a *Adapter) Update(ctx context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	plan, err := a.plans.Lookup(req.Plan)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	extensions, err := parseExtensions(req.Parameters, plan)
	if err != nil {
		return adapters.UpdateResult{}, err
	}
	// An upgrade (Maintenance.Requested above Current) creates what the
	// new version brings; any update repeats what the version has, which
	// is harmless (IF NOT EXISTS) and repairs an instance someone changed.
	extensions = withVersionExtensions(extensions, plan, req.Maintenance.Requested.Version)
	n := namesFor(req.InstanceID)
	sql := n.lockStmt() + "; ALTER DATABASE " + ident(n.database) + " CONNECTION LIMIT " + fmt.Sprint(plan.connectionLimit())
	if _, err := a.pool.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
		if pgCode(err) == codeInvalidCatalog {
			return adapters.UpdateResult{}, fmt.Errorf("postgres at %s: database %s: %w", a.settings.Addr(), n.database, adapters.ErrNotFound)
		}
		return adapters.UpdateResult{}, a.fail("set connection limit of "+n.database, err)
	}
	if err := a.createExtensions(ctx, n, extensions); err != nil {
		return adapters.UpdateResult{}, err
	}
	return adapters.UpdateResult{
		Metadata: adapters.Metadata{Attributes: map[string]any{"database": n.database}},
		Receipt:  adapters.Receipt{"database": n.database, "owner_role": n.owner},
	}, nil
}

// Deprovision drops the database, every binding role of the instance and
// the owner role, in that order: roles can only be dropped once nothing
// they own is left. It returns ErrNotFound when none of them existed.
func (a *Adapter) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	for attempt := 1; ; attempt++ {
		res, err := a.deprovision(ctx, req)
		// A concurrent unbind or deprovision dropped a role this call had
		// listed: read the catalogs again and carry on with what is left.
		if pgCode(err) == codeUndefinedObject && attempt < 3 {
			continue
		}
		return res, err
	}
}

func (a *Adapter) deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	n := namesFor(req.InstanceID)
	st, err := a.instanceState(ctx, n)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	bindingRoles, err := a.bindingRoles(ctx, n)
	if err != nil {
		return adapters.DeprovisionResult{}, err
	}
	if !st.databaseExists && !st.ownerExists && len(bindingRoles) == 0 {
		return adapters.DeprovisionResult{}, fmt.Errorf("postgres at %s: instance %s: %w", a.settings.Addr(), n.database, adapters.ErrNotFound)
	}
	if err := a.lockOut(ctx, n, bindingRoles); err != nil {
		return adapters.DeprovisionResult{}, err
	}
	if st.databaseExists {
		// WITH (FORCE) terminates the sessions still connected (the admin's
		// own included), which the lock-out above already mostly did.
		if _, err := a.pool.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(n.database)+" WITH (FORCE)"); err != nil {
			return adapters.DeprovisionResult{}, a.fail("drop database "+n.database, err)
		}
	}
	roles := make([]string, 0, len(bindingRoles)+1)
	for _, r := range bindingRoles {
		roles = append(roles, ident(r))
	}
	roles = append(roles, ident(n.owner))
	if _, err := a.pool.Exec(ctx, n.lockStmt()+"; DROP ROLE IF EXISTS "+strings.Join(roles, ", "), pgx.QueryExecModeSimpleProtocol); err != nil {
		return adapters.DeprovisionResult{}, a.fail("drop roles of "+n.database, err)
	}
	a.logger.InfoContext(ctx, "deprovisioned", "instance_id", req.InstanceID, "database", n.database, "binding_roles", len(bindingRoles))
	return adapters.DeprovisionResult{}, nil
}

// bindingRoles finds the instance's binding roles by membership in the
// owner role and by name. The name matters when a crash came after the
// owner role was dropped, which takes the memberships with it. A member
// without the binding prefix (the admin itself, when it is not a
// superuser) is never dropped.
func (a *Adapter) bindingRoles(ctx context.Context, n instanceNames) ([]string, error) {
	rows, err := a.pool.Query(ctx, `SELECT r.rolname FROM pg_roles r
		WHERE starts_with(r.rolname, $1)
		   OR r.oid IN (SELECT m.member FROM pg_auth_members m
		                JOIN pg_roles o ON o.oid = m.roleid WHERE o.rolname = $2)
		ORDER BY r.rolname`, n.bindingPrefix, n.owner)
	if err != nil {
		return nil, a.fail("list binding roles", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, a.fail("list binding roles", err)
	}
	out := names[:0]
	for _, r := range names {
		if strings.HasPrefix(r, n.bindingPrefix) {
			out = append(out, r)
		} else {
			a.logger.WarnContext(ctx, "role is a member of the instance owner but not one of its bindings; leaving it", "role", r, "owner", n.owner)
		}
	}
	return out, nil
}

// lockOut stops roles from logging in, then ends their sessions. In that
// order, an application that reconnects at once cannot slip in between.
func (a *Adapter) lockOut(ctx context.Context, n instanceNames, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	stmts := []string{n.lockStmt()}
	for _, r := range roles {
		stmts = append(stmts, "ALTER ROLE "+ident(r)+" NOLOGIN")
	}
	if _, err := a.pool.Exec(ctx, strings.Join(stmts, "; "), pgx.QueryExecModeSimpleProtocol); err != nil {
		return a.fail("revoke login of "+strings.Join(roles, ", "), err)
	}
	if _, err := a.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE usename = ANY($1) AND pid <> pg_backend_pid()`, roles); err != nil {
		return a.fail("terminate sessions of "+strings.Join(roles, ", "), err)
	}
	return nil
}
