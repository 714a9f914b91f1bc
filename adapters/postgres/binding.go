package postgres

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/agora-osb/agora/adapters"
)

// Bind creates the binding's LOGIN role with a fresh password, as a member
// of the instance's owner role. It costs two round trips: one catalog read
// and one multi-statement write, which runs as a single transaction.
//
// A repeat for a binding whose role exists resets the password and returns
// the new credentials: Agora never keeps the old password anywhere it could
// hand back, so a repeat after a lost response must still yield working
// credentials. The previous password stops working.
func (a *Adapter) Bind(ctx context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	n := namesFor(req.InstanceID)
	role := n.bindingRole(req.BindingID)
	if len(req.Parameters) > 0 {
		return adapters.BindResult{}, adapters.InvalidParameters("bindings take no parameters")
	}
	var dbExists, ownerExists, roleExists bool
	err := a.pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_database WHERE datname = $1),
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2),
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $3)`,
		n.database, n.owner, role).Scan(&dbExists, &ownerExists, &roleExists)
	if err != nil {
		return adapters.BindResult{}, a.fail("read catalogs", err)
	}
	if !dbExists || !ownerExists {
		return adapters.BindResult{}, fmt.Errorf("postgres at %s: instance %s is not provisioned: %w", a.settings.Addr(), n.database, adapters.ErrNotFound)
	}
	password, err := adapters.NewPassword(adapters.PasswordLength)
	if err != nil {
		return adapters.BindResult{}, err
	}
	if err := a.writeBindingRole(ctx, n, role, password, roleExists); err != nil {
		return adapters.BindResult{}, err
	}
	a.logger.InfoContext(ctx, "bound", "instance_id", req.InstanceID, "binding_id", req.BindingID, "role", role, "password_reset", roleExists)
	return adapters.DatabaseCredentials{
		Type: adapters.TypePostgreSQL, Scheme: "postgres", JDBCScheme: "postgresql",
		Host: a.settings.AppHost(), Port: a.settings.Port,
		Database: n.database, Username: role, Password: password,
		Query: url.Values{"sslmode": {a.settings.SSLMode}},
	}.BindResult(), nil
}

func (a *Adapter) writeBindingRole(ctx context.Context, n instanceNames, role, password string, exists bool) error {
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	pw, err := quoteLiteral(verifier)
	if err != nil {
		return err
	}
	ownerLit, err := quoteLiteral(n.owner)
	if err != nil {
		return err
	}
	r, owner := ident(role), ident(n.owner)
	// INHERIT gives the role the owner's privileges without SET ROLE;
	// `SET role` makes whatever a session creates belong to the owner, so
	// the instance's other bindings can use it and unbinding loses nothing.
	attrs := " WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " + pw
	stmts := []string{n.lockStmt()}
	if exists {
		stmts = append(stmts, "ALTER ROLE "+r+attrs, "GRANT "+owner+" TO "+r)
	} else {
		stmts = append(stmts, "CREATE ROLE "+r+attrs+" IN ROLE "+owner)
	}
	stmts = append(stmts, "ALTER ROLE "+r+" SET role = "+ownerLit)
	_, err = a.pool.Exec(ctx, strings.Join(stmts, "; "), pgx.QueryExecModeSimpleProtocol)
	if err != nil && !exists && pgCode(err) == codeDuplicateObject {
		// A concurrent repeat created the role first; the last writer's
		// password wins, and it is the one this call returns.
		return a.writeBindingRole(ctx, n, role, password, true)
	}
	if err != nil {
		// The error text cannot hold the password: PostgreSQL does not echo
		// statements in errors, and we sent only the SCRAM verifier.
		return a.fail("write binding role "+role, err)
	}
	return nil
}

// Unbind locks the binding role out, ends its sessions, hands anything it
// owns in the instance database to the owner role, and drops it. It
// returns ErrNotFound when the role is already gone.
func (a *Adapter) Unbind(ctx context.Context, req adapters.UnbindRequest) (adapters.UnbindResult, error) {
	n := namesFor(req.InstanceID)
	role := n.bindingRole(req.BindingID)
	var roleExists, ownerExists, adminIsSuper bool
	err := a.pool.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2),
		COALESCE((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false)`,
		role, n.owner).Scan(&roleExists, &ownerExists, &adminIsSuper)
	if err != nil {
		return adapters.UnbindResult{}, a.fail("read catalogs", err)
	}
	if !roleExists {
		return adapters.UnbindResult{}, fmt.Errorf("postgres at %s: binding role %s: %w", a.settings.Addr(), role, adapters.ErrNotFound)
	}
	if err := a.lockOut(ctx, n, []string{role}); err != nil {
		return adapters.UnbindResult{}, a.goneIfUndefined(role, err)
	}
	// Objects the binding created while it had RESET its role belong to it;
	// hand them to the owner so the application keeps its data.
	stmts := []string{n.lockStmt(), "DROP OWNED BY " + ident(role)}
	if ownerExists {
		stmts = slices.Insert(stmts, 1, "REASSIGN OWNED BY "+ident(role)+" TO "+ident(n.owner))
	}
	if !adminIsSuper {
		// REASSIGN and DROP OWNED need the privileges of the role whose
		// objects they move; a superuser has them, anyone else must be a
		// member. The membership goes away with the role.
		stmts = slices.Insert(stmts, 1, "GRANT "+ident(role)+" TO CURRENT_USER")
	}
	stmt := strings.Join(stmts, "; ")
	_, err = a.withInstanceDB(ctx, n.database, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
		return err
	})
	if err != nil {
		// A deprovision racing with this call ends our session with DROP
		// DATABASE ... WITH (FORCE); what the role owned there is gone too.
		var dbExists bool
		if qerr := a.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, n.database).Scan(&dbExists); qerr != nil || dbExists {
			return adapters.UnbindResult{}, a.goneIfUndefined(role, a.fail("hand over objects of "+role, err))
		}
	}
	if _, err := a.pool.Exec(ctx, n.lockStmt()+"; DROP ROLE IF EXISTS "+ident(role), pgx.QueryExecModeSimpleProtocol); err != nil {
		return adapters.UnbindResult{}, a.fail("drop role "+role, err)
	}
	a.logger.InfoContext(ctx, "unbound", "instance_id", req.InstanceID, "binding_id", req.BindingID, "role", role)
	return adapters.UnbindResult{}, nil
}

// goneIfUndefined turns "role does not exist" into ErrNotFound: a
// concurrent unbind of the same binding dropped the role between our
// check and our statement, and so finished the job.
func (a *Adapter) goneIfUndefined(role string, err error) error {
	if pgCode(err) == codeUndefinedObject {
		return fmt.Errorf("postgres at %s: binding role %s: %w (%w)", a.settings.Addr(), role, adapters.ErrNotFound, err)
	}
	return err
}
