package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

func TestLifecycle(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	if err := a.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	id := provisioned(t, a, smallPlan, nil)
	n := namesFor(id)

	var owner string
	var connLimit int
	if err := adminConn(t, ctx, "postgres").QueryRow(ctx,
		`SELECT pg_get_userbyid(datdba), datconnlimit FROM pg_database WHERE datname = $1`, n.database).Scan(&owner, &connLimit); err != nil {
		t.Fatalf("read database %s: %v", n.database, err)
	}
	if owner != n.owner || connLimit != 10 {
		t.Errorf("database owner, limit = %s, %d; want %s, 10", owner, connLimit, n.owner)
	}

	bidA, resA := bind(t, a, id)
	credsA := resA.Credentials
	for _, k := range []string{"host", "port", "database", "username", "password", "uri", "jdbcUrl"} {
		if _, ok := credsA[k]; !ok {
			t.Errorf("credentials lack %q", k)
		}
	}
	if pw, _ := credsA["password"].(string); len(pw) < 32 {
		t.Errorf("password has %d characters; want at least 32", len(pw))
	}
	if got := resA.Endpoints; len(got) != 1 || got[0].Host != testHost || got[0].Ports[0] != "5432" || got[0].Protocol != "tcp" {
		t.Errorf("Endpoints = %+v", got)
	}
	if !strings.HasPrefix(credsA["jdbcUrl"].(string), "jdbc:postgresql://127.0.0.1:5432/"+n.database+"?") {
		t.Errorf("jdbcUrl = %v", credsA["jdbcUrl"])
	}
	if !passwordMatches(t, credsA["username"].(string), credsA["password"].(string)) {
		t.Errorf("the server does not store the issued password for %s", credsA["username"])
	}
	if err := checkCredentials(ctx, credsA); err != nil {
		t.Fatalf("first binding: %v", err)
	}

	// The second binding uses the table the first one created: the owner
	// role owns it, not binding A.
	_, resB := bind(t, a, id)
	credsB := resB.Credentials
	if credsB["username"] == credsA["username"] || credsB["password"] == credsA["password"] {
		t.Errorf("two bindings share a user name or password")
	}
	if err := checkCredentials(ctx, credsB); err != nil {
		t.Fatalf("second binding on the first one's table: %v", err)
	}
	var tableOwner string
	if err := adminConn(t, ctx, n.database).QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE tablename = 'agora_check'`).Scan(&tableOwner); err != nil {
		t.Fatal(err)
	}
	if tableOwner != n.owner {
		t.Errorf("table owned by %s; want the owner role %s", tableOwner, n.owner)
	}

	// A session of A that is open during unbind is ended.
	sessionA, err := connect(ctx, credsA)
	if err != nil {
		t.Fatal(err)
	}
	defer sessionA.Close(ctx)
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bidA}); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
	if err := sessionA.Ping(ctx); err == nil {
		t.Errorf("the unbound binding's open session still works")
	}
	if err := checkRevoked(ctx, credsA); err != nil {
		t.Error(err)
	}
	// The data binding A wrote stays, for binding B.
	if err := checkCredentials(ctx, credsB); err != nil {
		t.Errorf("after unbinding A, B: %v", err)
	}

	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id, Plan: smallPlan}); err != nil {
		t.Fatalf("Deprovision: %v", err)
	}
	if err := checkRevoked(ctx, credsB); err != nil {
		t.Error(err)
	}
	if left := leftovers(t, ctx, id); len(left) > 0 {
		t.Errorf("left behind after deprovision: %v", left)
	}
}

func TestIsolation(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	id1 := provisioned(t, a, smallPlan, nil)
	id2 := provisioned(t, a, smallPlan, nil)
	_, res1 := bind(t, a, id1)
	_, res2 := bind(t, a, id2)
	if err := checkCredentials(ctx, res2.Credentials); err != nil {
		t.Fatal(err)
	}
	if err := checkIsolation(ctx, res1.Credentials, res2.Credentials); err != nil {
		t.Error(err)
	}
	if err := checkIsolation(ctx, res2.Credentials, res1.Credentials); err != nil {
		t.Error(err)
	}
	// Nor can it take over the other instance's owner role.
	c, err := connect(ctx, res1.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "SET ROLE "+ident(namesFor(id2).owner)); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("SET ROLE to the other instance's owner: err = %v; want permission denied", err)
	}
}

func TestRepeatsAndCrashes(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	admin := adminConn(t, ctx, "postgres")

	t.Run("provision and bind twice", func(t *testing.T) {
		id := provisioned(t, a, smallPlan, nil)
		if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan}); err != nil {
			t.Fatalf("repeated Provision: %v", err)
		}
		bid, first := bind(t, a, id)
		second, err := a.Bind(ctx, adapters.BindRequest{InstanceID: id, BindingID: bid, Plan: smallPlan})
		if err != nil {
			t.Fatalf("repeated Bind: %v", err)
		}
		user := second.Credentials["username"].(string)
		if user != first.Credentials["username"] {
			t.Errorf("repeat changed the user name: %s, then %s", first.Credentials["username"], user)
		}
		if second.Credentials["password"] == first.Credentials["password"] {
			t.Errorf("repeated Bind returned the same password; it should reset it")
		}
		if !passwordMatches(t, user, second.Credentials["password"].(string)) || passwordMatches(t, user, first.Credentials["password"].(string)) {
			t.Errorf("after the repeat, the server should hold the new password and not the old one")
		}
		if serverEnforcesPasswords(t, first.Credentials) {
			if err := checkRevoked(ctx, first.Credentials); err != nil {
				t.Errorf("old password: %v", err)
			}
		} else {
			t.Log("the server trusts 127.0.0.1: old and new passwords were checked in pg_authid instead of by logging in")
		}
		if err := checkCredentials(ctx, second.Credentials); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); err != nil {
			t.Fatalf("Unbind: %v", err)
		}
		if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("repeated Unbind: err = %v; want ErrNotFound", err)
		}
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil {
			t.Fatalf("Deprovision: %v", err)
		}
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("repeated Deprovision: err = %v; want ErrNotFound", err)
		}
	})

	t.Run("provision finds a database without its owner role", func(t *testing.T) {
		id := uniqueID(t, "inst")
		cleanupInstance(t, id)
		n := namesFor(id)
		// What a crash between the two steps of an older layout, or a
		// hand repair, leaves: a database owned by someone else.
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident(n.database)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: largePlan}); err != nil {
			t.Fatalf("Provision over a half-made instance: %v", err)
		}
		var owner string
		var limit int
		var publicConnect bool
		if err := admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba), datconnlimit, has_database_privilege('public', datname, 'CONNECT')
			FROM pg_database WHERE datname = $1`, n.database).Scan(&owner, &limit, &publicConnect); err != nil {
			t.Fatal(err)
		}
		if owner != n.owner || limit != 100 || publicConnect {
			t.Errorf("owner %s, limit %d, PUBLIC may connect %v; want %s, 100, false", owner, limit, publicConnect, n.owner)
		}
		_, res := bind(t, a, id)
		if err := checkCredentials(ctx, res.Credentials); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unbind after the role was dropped by hand", func(t *testing.T) {
		id := provisioned(t, a, smallPlan, nil)
		bid, res := bind(t, a, id)
		if _, err := admin.Exec(ctx, "DROP ROLE "+ident(res.Credentials["username"].(string))); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); err != nil && !errors.Is(err, adapters.ErrNotFound) {
			t.Fatalf("Unbind: %v", err)
		}
	})

	t.Run("unbind keeps what the binding created as itself", func(t *testing.T) {
		id := provisioned(t, a, smallPlan, nil)
		bid, res := bind(t, a, id)
		c, err := connect(ctx, res.Credentials)
		if err != nil {
			t.Fatal(err)
		}
		// RESET ROLE escapes the owner role; the table then belongs to the
		// binding role and unbind must hand it over, not lose it.
		if _, err := c.Exec(ctx, "RESET ROLE; CREATE TABLE own_table (x int); INSERT INTO own_table VALUES (42)"); err != nil {
			t.Fatal(err)
		}
		_ = c.Close(ctx)
		if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); err != nil {
			t.Fatalf("Unbind: %v", err)
		}
		_, other := bind(t, a, id)
		c2, err := connect(ctx, other.Credentials)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close(ctx)
		var x int
		if err := c2.QueryRow(ctx, "SELECT x FROM own_table").Scan(&x); err != nil || x != 42 {
			t.Errorf("after unbind the other binding reads %d, %v; want 42", x, err)
		}
	})

	t.Run("deprovision after the owner role was dropped by hand", func(t *testing.T) {
		id := provisioned(t, a, smallPlan, nil)
		bind(t, a, id)
		n := namesFor(id)
		// Dropping the owner takes the memberships with it: deprovision
		// must still find the binding role, by name.
		for _, stmt := range []string{"DROP DATABASE " + ident(n.database) + " WITH (FORCE)", "DROP ROLE " + ident(n.owner)} {
			if _, err := admin.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil {
			t.Fatalf("Deprovision: %v", err)
		}
		if left := leftovers(t, ctx, id); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})

	t.Run("deprovision with a binding still connected", func(t *testing.T) {
		id := provisioned(t, a, smallPlan, nil)
		_, res := bind(t, a, id)
		c, err := connect(ctx, res.Credentials)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil {
			t.Fatalf("Deprovision: %v", err)
		}
		if left := leftovers(t, ctx, id); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})

	t.Run("bind to a missing instance", func(t *testing.T) {
		_, err := a.Bind(ctx, adapters.BindRequest{InstanceID: uniqueID(t, "absent"), BindingID: uniqueID(t, "bind")})
		if !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("err = %v; want ErrNotFound", err)
		}
	})
}

func TestBackendDown(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	down := testSettings()
	down["port"] = 1
	a := newAdapter(t, down)
	want := "postgres at 127.0.0.1:1"
	if err := a.Ping(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Ping: err = %v; want one naming %q", err, want)
	}
	id := uniqueID(t, "inst")
	cleanupInstance(t, id)
	req := adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan}
	_, err := a.Provision(ctx, req)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Provision: err = %v; want one naming %q", err, want)
	}
	if adapters.IsTerminal(err) {
		t.Errorf("a backend that is down is worth retrying, but the error is terminal: %v", err)
	}
	// The retry reaches the real server and completes.
	up := newAdapter(t, testSettings())
	if _, err := up.Provision(ctx, req); err != nil {
		t.Fatalf("retried Provision: %v", err)
	}
	_, res := bind(t, up, id)
	if err := checkCredentials(ctx, res.Credentials); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateChangesConnectionLimit(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	id := provisioned(t, a, smallPlan, nil)
	if _, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: id, Plan: largePlan, PreviousPlan: smallPlan}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	var limit int
	if err := adminConn(t, ctx, "postgres").QueryRow(ctx, `SELECT datconnlimit FROM pg_database WHERE datname = $1`, namesFor(id).database).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit != 100 {
		t.Errorf("connection limit = %d; want 100", limit)
	}
	_, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: uniqueID(t, "absent"), Plan: largePlan})
	if !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Update of a missing instance: err = %v; want ErrNotFound", err)
	}
}

func TestProvisionParameters(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	id := provisioned(t, a, smallPlan, map[string]any{"extensions": []any{"pgcrypto", "uuid-ossp"}})
	_, res := bind(t, a, id)
	c, err := connect(ctx, res.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var digest, uuid string
	if err := c.QueryRow(ctx, `SELECT encode(digest('x', 'sha256'), 'hex'), uuid_generate_v4()::text`).Scan(&digest, &uuid); err != nil {
		t.Errorf("the requested extensions are not usable: %v", err)
	}

	for name, tc := range map[string]struct {
		plan   adapters.Plan
		params map[string]any
		want   []string
	}{
		"unknown parameter":     {smallPlan, map[string]any{"extensions": []any{}, "size": 3, "colour": "red"}, []string{`"colour"`, `"size"`}},
		"extension not allowed": {smallPlan, map[string]any{"extensions": []any{"pgcrypto", "plpython3u", "adminpack"}}, []string{`"plpython3u"`, `"adminpack"`}},
		"plan allows none":      {largePlan, map[string]any{"extensions": []any{"hstore"}}, []string{`"hstore"`, "allowed: none"}},
		"not a list":            {smallPlan, map[string]any{"extensions": "hstore"}, []string{"list"}},
	} {
		t.Run(name, func(t *testing.T) {
			id := uniqueID(t, "inst")
			cleanupInstance(t, id)
			_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: tc.plan, Parameters: tc.params})
			if !errors.Is(err, adapters.ErrInvalidParameters) {
				t.Fatalf("err = %v; want ErrInvalidParameters", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %s", err, w)
				}
			}
			// A bad request changes nothing.
			if left := leftovers(t, ctx, id); len(left) > 0 {
				t.Errorf("a refused provision created %v", left)
			}
		})
	}
}

// TestNonSuperuserAdmin proves the privileges the README asks for are
// enough: CREATEDB, CREATEROLE and pg_signal_backend, no superuser.
func TestNonSuperuserAdmin(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	admin := adminConn(t, ctx, "postgres")
	adminRole := "agora_" + adapters.ShortHash(uniqueID(t, "admin"), 16) + "_admin"
	if _, err := admin.Exec(ctx, "CREATE ROLE "+ident(adminRole)+" LOGIN CREATEDB CREATEROLE IN ROLE pg_signal_backend"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident(adminRole)); err != nil {
			t.Errorf("drop test admin role: %v", err)
		}
	})
	settings := testSettings()
	settings["admin_user"] = adminRole
	a := newAdapter(t, settings)
	id := provisioned(t, a, smallPlan, map[string]any{"extensions": []any{"hstore"}})
	bid, res := bind(t, a, id)
	if err := checkCredentials(ctx, res.Credentials); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
	bind(t, a, id)
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil {
		t.Fatalf("Deprovision: %v", err)
	}
	if left := leftovers(t, ctx, id); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestScramVerifierMatchesServer checks the client-side verifier against
// the one PostgreSQL computes itself for the same password and salt.
func TestScramVerifierMatchesServer(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	admin := adminConn(t, ctx, "postgres")
	role := "agora_" + adapters.ShortHash(uniqueID(t, "scram"), 16) + "_scram"
	password, err := adapters.NewPassword(adapters.PasswordLength)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := quoteLiteral(password)
	if _, err := admin.Exec(ctx, "SET password_encryption = 'scram-sha-256'; CREATE ROLE "+ident(role)+" PASSWORD "+pw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+ident(role)) })
	var stored string
	if err := admin.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	iter, salt := parseVerifier(t, stored)
	ours, err := scramVerifierWithSalt(password, salt, iter)
	if err != nil {
		t.Fatal(err)
	}
	if ours != stored {
		t.Errorf("our verifier differs from PostgreSQL's for the same password and salt")
	}
}

// TestQuoteLiteralRoundTrip has the server read back what quoteLiteral
// wrote, under both settings of standard_conforming_strings.
func TestQuoteLiteralRoundTrip(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	admin := adminConn(t, ctx, "postgres")
	for _, scs := range []string{"on", "off"} {
		for _, s := range []string{"plain", "it's", `back\slash`, `'; DROP ROLE postgres; --`, `\'`, "ünïcode ✓", `$$dollar$$`} {
			q, err := quoteLiteral(s)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if err := admin.QueryRow(ctx, "SELECT set_config('standard_conforming_strings', '"+scs+"', false)").Scan(&got); err != nil {
				t.Fatal(err)
			}
			// An argument makes pgx use the extended protocol, which it
			// allows with standard_conforming_strings off.
			if err := admin.QueryRow(ctx, "SELECT ("+q+")::text WHERE $1::bool", true).Scan(&got); err != nil {
				t.Errorf("scs=%s: SELECT %s: %v", scs, q, err)
				continue
			}
			if got != s {
				t.Errorf("scs=%s: %s read back as %q; want %q", scs, q, got, s)
			}
		}
	}
	if _, err := quoteLiteral("nul\x00byte"); err == nil {
		t.Errorf("quoteLiteral accepted a NUL byte")
	}
}
