package mysql

import (
	"errors"
	"strings"
	"testing"
	"time"

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
	id := provisioned(t, a, smallPlan)
	n := namesFor(id)

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
	if u, _ := credsA["username"].(string); len(u) > 32 {
		t.Errorf("user name %q is longer than MySQL's 32 characters", u)
	}
	if got := resA.Endpoints; len(got) != 1 || got[0].Host != "127.0.0.1" || got[0].Ports[0] != "3306" || got[0].Protocol != "tcp" {
		t.Errorf("Endpoints = %+v", got)
	}
	if !strings.HasPrefix(credsA["jdbcUrl"].(string), "jdbc:mysql://127.0.0.1:3306/"+n.database+"?") ||
		!strings.HasPrefix(credsA["uri"].(string), "mysql://") {
		t.Errorf("uri %v, jdbcUrl %v", credsA["uri"], credsA["jdbcUrl"])
	}
	if err := checkCredentials(ctx, credsA); err != nil {
		t.Fatalf("first binding: %v", err)
	}

	_, resB := bind(t, a, id)
	credsB := resB.Credentials
	if credsB["username"] == credsA["username"] || credsB["password"] == credsA["password"] {
		t.Errorf("two bindings share a user name or password")
	}
	if err := checkCredentials(ctx, credsB); err != nil {
		t.Fatalf("second binding on the first one's table: %v", err)
	}

	// The plan's cap holds: 3 sessions, not 4.
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	var capErr error
	for range 4 {
		_, done, err := session(ctx, credsB)
		if err != nil {
			capErr = err
			break
		}
		closers = append(closers, done)
	}
	if errNumber(capErr) != 1226 { // ER_USER_LIMIT_REACHED
		t.Errorf("4th session with max_user_connections 3: err = %v; want error 1226", capErr)
	}

	// A session of A that is open during unbind is ended.
	sessA, doneA, err := session(ctx, credsA)
	if err != nil {
		t.Fatal(err)
	}
	defer doneA()
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bidA}); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
	if err := sessA.PingContext(ctx); err == nil {
		t.Errorf("the unbound binding's open session still works")
	}
	if err := checkRevoked(ctx, credsA); err != nil {
		t.Error(err)
	}
	for _, c := range closers {
		c()
	}
	closers = nil
	// The server frees a closed session's slot when its thread notices the
	// client hung up, a moment after the close: until then B is at its cap.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := checkCredentials(ctx, credsB)
		if errNumber(err) == 1226 && time.Now().Before(deadline) {
			continue
		}
		if err != nil {
			t.Errorf("after unbinding A, B: %v", err)
		}
		break
	}

	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil {
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
	id1 := provisioned(t, a, smallPlan)
	id2 := provisioned(t, a, smallPlan)
	_, res1 := bind(t, a, id1)
	_, res2 := bind(t, a, id2)
	for _, c := range []map[string]any{res1.Credentials, res2.Credentials} {
		if err := checkCredentials(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkIsolation(ctx, res1.Credentials, res2.Credentials); err != nil {
		t.Error(err)
	}
	if err := checkIsolation(ctx, res2.Credentials, res1.Credentials); err != nil {
		t.Error(err)
	}

	// '_' is a wildcard in GRANT: a grant on agora_x.* unescaped would
	// also open agoraXx. Make such a lookalike and try it.
	db := adminDB(t)
	lookalike := strings.Replace(namesFor(id1).database, "_", "X", 1)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(lookalike)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec("DROP DATABASE IF EXISTS " + quoteIdent(lookalike)) })
	if err := checkIsolation(ctx, res1.Credentials, map[string]any{"database": lookalike}); err != nil {
		t.Errorf("lookalike database: %v", err)
	}
}

func TestRepeatsAndCrashes(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	admin := adminDB(t)

	t.Run("every step twice", func(t *testing.T) {
		id := provisioned(t, a, smallPlan)
		if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan}); err != nil {
			t.Fatalf("repeated Provision: %v", err)
		}
		bid, first := bind(t, a, id)
		second, err := a.Bind(ctx, adapters.BindRequest{InstanceID: id, BindingID: bid, Plan: smallPlan})
		if err != nil {
			t.Fatalf("repeated Bind: %v", err)
		}
		if second.Credentials["username"] != first.Credentials["username"] || second.Credentials["password"] == first.Credentials["password"] {
			t.Errorf("a repeated Bind should keep the user and reset the password")
		}
		if err := checkRevoked(ctx, first.Credentials); err != nil {
			t.Errorf("the password before the repeat: %v", err)
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

	t.Run("provision finds its database made by hand", func(t *testing.T) {
		id := uniqueID(t, "inst")
		cleanupInstance(t, id)
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(namesFor(id).database)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan}); err != nil {
			t.Fatalf("Provision: %v", err)
		}
		_, res := bind(t, a, id)
		if err := checkCredentials(ctx, res.Credentials); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unbind after the user was dropped by hand", func(t *testing.T) {
		id := provisioned(t, a, smallPlan)
		bid, res := bind(t, a, id)
		if _, err := admin.ExecContext(ctx, "DROP USER ?@'%'", res.Credentials["username"]); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); err != nil && !errors.Is(err, adapters.ErrNotFound) {
			t.Fatalf("Unbind: %v", err)
		}
	})

	t.Run("unbind after a crash between drop and kill", func(t *testing.T) {
		id := provisioned(t, a, smallPlan)
		bid, res := bind(t, a, id)
		s, done, err := session(ctx, res.Credentials)
		if err != nil {
			t.Fatal(err)
		}
		defer done()
		if _, err := admin.ExecContext(ctx, "DROP USER ?@'%'", res.Credentials["username"]); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); err != nil {
			t.Fatalf("Unbind: %v", err)
		}
		if err := s.PingContext(ctx); err == nil {
			t.Errorf("the session of the dropped user survived the repeated unbind")
		}
	})

	t.Run("deprovision after the database was dropped by hand", func(t *testing.T) {
		id := provisioned(t, a, smallPlan)
		bind(t, a, id)
		if _, err := admin.ExecContext(ctx, "DROP DATABASE "+quoteIdent(namesFor(id).database)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil {
			t.Fatalf("Deprovision: %v", err)
		}
		if left := leftovers(t, ctx, id); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})

	t.Run("deprovision with a binding in a transaction", func(t *testing.T) {
		id := provisioned(t, a, smallPlan)
		_, res := bind(t, a, id)
		if err := checkCredentials(ctx, res.Credentials); err != nil {
			t.Fatal(err)
		}
		s, done, err := session(ctx, res.Credentials)
		if err != nil {
			t.Fatal(err)
		}
		defer done()
		// An open transaction holds a metadata lock DROP DATABASE would
		// wait for, were the session not killed first.
		if _, err := s.ExecContext(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ExecContext(ctx, "INSERT INTO agora_check (note) VALUES ('in flight')"); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil {
			t.Fatalf("Deprovision: %v", err)
		}
		if left := leftovers(t, ctx, id); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})

	t.Run("bind to a missing instance", func(t *testing.T) {
		_, err := a.Bind(ctx, adapters.BindRequest{InstanceID: uniqueID(t, "absent"), BindingID: uniqueID(t, "bind"), Plan: smallPlan})
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
	want := "mysql at 127.0.0.1:1"
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
	up := newAdapter(t, testSettings())
	if _, err := up.Provision(ctx, req); err != nil {
		t.Fatalf("retried Provision: %v", err)
	}
	_, res := bind(t, up, id)
	if err := checkCredentials(ctx, res.Credentials); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateChangesMaxUserConnections(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	id := provisioned(t, a, smallPlan)
	_, res := bind(t, a, id)
	if _, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: id, Plan: asyncPlan, PreviousPlan: smallPlan}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	var limit int
	if err := adminDB(t).QueryRowContext(ctx, "SELECT max_user_connections FROM mysql.user WHERE User = ? AND Host = '%'", res.Credentials["username"]).Scan(&limit); err != nil {
		t.Fatal(err)
	}
	if limit != 10 {
		t.Errorf("max_user_connections = %d; want 10", limit)
	}
	if err := checkCredentials(ctx, res.Credentials); err != nil {
		t.Errorf("after the update: %v", err)
	}
	_, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: uniqueID(t, "absent"), Plan: asyncPlan})
	if !errors.Is(err, adapters.ErrNotFound) {
		t.Errorf("Update of a missing instance: err = %v; want ErrNotFound", err)
	}
}

func TestProvisionParametersRefused(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	id := uniqueID(t, "inst")
	cleanupInstance(t, id)
	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Offering: "mysql", Plan: smallPlan, Parameters: map[string]any{"charset": "latin1", "size": 2}})
	if !errors.Is(err, adapters.ErrInvalidParameters) || !strings.Contains(err.Error(), "the mysql offering takes no parameters; got charset, size") {
		t.Errorf("err = %v; want ErrInvalidParameters naming both", err)
	}
	if left := leftovers(t, ctx, id); len(left) > 0 {
		t.Errorf("a refused provision created %v", left)
	}
}

// TestLeastPrivilegeAdmin proves the grants the README lists are enough
// for the whole lifecycle: no SUPER, no global ALL.
func TestLeastPrivilegeAdmin(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	admin := adminDB(t)
	user := "agora_admin_" + adapters.ShortHash(uniqueID(t, "admin"), 12)
	password, err := adapters.NewPassword(adapters.PasswordLength)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP USER IF EXISTS ?@'%'", user) })
	for _, stmt := range []string{
		"CREATE USER ?@'%' IDENTIFIED BY '" + password + "'",
		"GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO ?@'%'",
		"GRANT SELECT ON mysql.* TO ?@'%'",
		"GRANT ALL PRIVILEGES ON `agora\\_%`.* TO ?@'%' WITH GRANT OPTION",
	} {
		if _, err := admin.ExecContext(ctx, stmt, user); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	settings := testSettings()
	settings["admin_user"], settings["admin_password"] = user, password
	a := newAdapter(t, settings)
	id := provisioned(t, a, smallPlan)
	bid, res := bind(t, a, id)
	if err := checkCredentials(ctx, res.Credentials); err != nil {
		t.Fatal(err)
	}
	// A live session makes Unbind need PROCESS and CONNECTION ADMIN too.
	_, done, err := session(ctx, res.Credentials)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
	bind(t, a, id)
	if _, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: id, Plan: asyncPlan}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id}); err != nil {
		t.Fatalf("Deprovision: %v", err)
	}
	if left := leftovers(t, ctx, id); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
