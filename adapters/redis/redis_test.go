package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
)

func bind(t *testing.T, a *Adapter, instanceID, bindingID string) map[string]any {
	t.Helper()
	res, err := a.Bind(testCtx(t), adapters.BindRequest{InstanceID: instanceID, BindingID: bindingID, Offering: "redis", Plan: smallPlan()})
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if len(res.Endpoints) != 1 || res.Endpoints[0].Ports[0] != fmt.Sprint(res.Credentials["port"]) {
		t.Errorf("Endpoints = %+v, want the credentials' host and port", res.Endpoints)
	}
	return res.Credentials
}

func unbind(t *testing.T, a *Adapter, instanceID, bindingID string) {
	t.Helper()
	if _, err := a.Unbind(testCtx(t), adapters.UnbindRequest{InstanceID: instanceID, BindingID: bindingID, Offering: "redis", Plan: smallPlan()}); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	needRedis(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(redisAddr()), slog.New(slog.DiscardHandler))
	admin := adminClient(t)
	instanceID := newUUID(t)
	bindingID := newUUID(t)
	t.Cleanup(func() { // a safety net when the test stops half-way
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: instanceID, Plan: smallPlan()})
	})

	for i := range 2 { // a repeat must succeed
		res, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: instanceID, Offering: "redis", Plan: smallPlan()})
		if err != nil {
			t.Fatalf("Provision #%d: %v", i+1, err)
		}
		if got, want := res.Receipt["key_prefix"], testRoot+":"+strings.ReplaceAll(instanceID, "-", "")+":"; got != want {
			t.Fatalf("receipt key_prefix = %q, want %q", got, want)
		}
	}

	first := bind(t, a, instanceID, bindingID)
	creds := bind(t, a, instanceID, bindingID) // a repeat resets the password
	if first["password"] == creds["password"] {
		t.Error("repeat Bind returned the same password")
	}
	if err := checkRevoked(ctx, first); err != nil {
		t.Errorf("first bind's password after the repeat: %v", err)
	}
	wantUser := "agora-" + strings.ReplaceAll(instanceID, "-", "") + "-" + strings.ReplaceAll(bindingID, "-", "")
	if creds["username"] != wantUser {
		t.Errorf("username = %v, want %s", creds["username"], wantUser)
	}
	if pw, _ := creds["password"].(string); len(pw) < 32 {
		t.Errorf("password %q is too short", pw)
	}
	wantURI := fmt.Sprintf("redis://%s:%s@%s/0", creds["username"], creds["password"], redisAddr())
	if creds["uri"] != wantURI {
		t.Errorf("uri = %v, want %s", creds["uri"], wantURI)
	}
	if err := checkCredentials(ctx, creds); err != nil {
		t.Fatalf("credentials: %v", err)
	}

	// Commands the tenancy guards deny even though the plan grants their
	// categories; each would reach beyond the namespace.
	c, err := bindingClient(creds)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prefix := creds["key_prefix"].(string)
	denied := map[string]*goredis.Cmd{
		"FLUSHALL":     c.Do(ctx, "FLUSHALL"),
		"KEYS":         c.Do(ctx, "KEYS", "*"),
		"SCAN":         c.Do(ctx, "SCAN", "0"),
		"RANDOMKEY":    c.Do(ctx, "RANDOMKEY"),
		"SELECT":       c.Do(ctx, "SELECT", "3"),
		"COPY DB":      c.Do(ctx, "COPY", prefix+"greeting", prefix+"copy", "DB", "3"),
		"PUBSUB":       c.Do(ctx, "PUBSUB", "CHANNELS"),
		"FUNCTION":     c.Do(ctx, "FUNCTION", "FLUSH"),
		"SCRIPT FLUSH": c.Do(ctx, "SCRIPT", "FLUSH"),
		"CONFIG":       c.Do(ctx, "CONFIG", "GET", "*"),
		"ACL":          c.Do(ctx, "ACL", "SETUSER", "default", "off"),
	}
	for name, cmd := range denied {
		if err := cmd.Err(); !goredis.IsPermissionError(err) {
			t.Errorf("%s: want NOPERM, got %v", name, err)
		}
	}
	if err := c.Publish(ctx, prefix+"events", "hi").Err(); err != nil {
		t.Errorf("PUBLISH inside the prefix: %v", err)
	}
	if err := c.Publish(ctx, testRoot+":elsewhere", "hi").Err(); !goredis.IsPermissionError(err) {
		t.Errorf("PUBLISH outside the prefix: want NOPERM, got %v", err)
	}
	for i := range 3 {
		if err := c.Set(ctx, fmt.Sprintf("%sk%d", prefix, i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}

	// Unbind revokes at once: the open connection dies, new logins fail.
	unbind(t, a, instanceID, bindingID)
	if err := c.Ping(ctx).Err(); err == nil {
		t.Error("a connection opened before Unbind still works")
	}
	if err := checkRevoked(ctx, creds); err != nil {
		t.Error(err)
	}
	unbind(t, a, instanceID, bindingID) // idempotent

	for i := range 2 {
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: instanceID, Offering: "redis", Plan: smallPlan()}); err != nil {
			t.Fatalf("Deprovision #%d: %v", i+1, err)
		}
	}
	assertNothingLeft(t, admin, instanceID)
}

func TestIsolationBetweenInstances(t *testing.T) {
	needRedis(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(redisAddr()), slog.New(slog.DiscardHandler))
	one, two := provisioned(t, a), provisioned(t, a)
	credsA := bind(t, a, one, newUUID(t))
	credsB := bind(t, a, two, newUUID(t))
	if err := checkIsolation(ctx, credsA, credsB); err != nil {
		t.Error(err)
	}
	if err := checkIsolation(ctx, credsB, credsA); err != nil {
		t.Error(err)
	}

	// Deprovisioning instance one leaves instance two untouched.
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: one, Plan: smallPlan()}); err != nil {
		t.Fatal(err)
	}
	if err := checkCredentials(ctx, credsB); err != nil {
		t.Errorf("instance two after deprovisioning instance one: %v", err)
	}
}

// TestSimilarIDsDoNotShareUsers guards the user-name prefix: instance "a"
// must not own the users of instance "a0" or "a-b".
func TestSimilarIDsDoNotShareUsers(t *testing.T) {
	needRedis(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(redisAddr()), slog.New(slog.DiscardHandler))
	admin := adminClient(t)
	run := newUUID(t)[:8]
	short, longer, dashed := "r"+run, "r"+run+"0", "r"+run+"-b"
	for _, id := range []string{short, longer, dashed} {
		t.Cleanup(func() {
			_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: id, Plan: smallPlan()})
			assertNothingLeft(t, admin, id)
		})
		if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan()}); err != nil {
			t.Fatal(err)
		}
	}
	others := map[string]map[string]any{longer: bind(t, a, longer, "b"), dashed: bind(t, a, dashed, "b")}
	bind(t, a, short, "b")
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: short, Plan: smallPlan()}); err != nil {
		t.Fatal(err)
	}
	for id, creds := range others {
		if err := checkCredentials(ctx, creds); err != nil {
			t.Errorf("instance %q's binding after deprovisioning %q: %v", id, short, err)
		}
	}
}

func TestCrashHalfway(t *testing.T) {
	needRedis(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(redisAddr()), slog.New(slog.DiscardHandler))
	admin := adminClient(t)

	t.Run("user already deleted before Unbind", func(t *testing.T) {
		id, bid := provisioned(t, a), newUUID(t)
		bind(t, a, id, bid)
		if err := admin.ACLDelUser(ctx, bindingUserName(id, bid)).Err(); err != nil {
			t.Fatal(err)
		}
		unbind(t, a, id, bid)
	})

	t.Run("Unbind without Bind", func(t *testing.T) {
		unbind(t, a, provisioned(t, a), newUUID(t))
	})

	t.Run("Bind lost its result, Unbind still finds the user", func(t *testing.T) {
		id, bid := provisioned(t, a), newUUID(t)
		bind(t, a, id, bid)
		creds := bind(t, a, id, bid)
		unbind(t, a, id, bid)
		if err := checkRevoked(ctx, creds); err != nil {
			t.Error(err)
		}
	})

	t.Run("Deprovision interrupted, then repeated", func(t *testing.T) {
		id := provisioned(t, a)
		creds := bind(t, a, id, newUUID(t))
		writeKeys(t, admin, keyPrefix(testRoot, id), 3000)
		cut, cancel := context.WithCancel(ctx)
		cancel() // the worker died before doing anything
		if _, err := a.Deprovision(cut, adapters.DeprovisionRequest{InstanceID: id, Plan: smallPlan()}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Deprovision with a cancelled ctx: want context.Canceled, got %v", err)
		}
		// Users gone but keys left: the state a crash mid-way leaves.
		if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: "other"}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id, Plan: smallPlan()}); err != nil {
			t.Fatal(err)
		}
		if err := checkRevoked(ctx, creds); err != nil {
			t.Error(err)
		}
		assertNothingLeft(t, admin, id)
	})

	t.Run("Provision repeated after Bind keeps the binding", func(t *testing.T) {
		id := provisioned(t, a)
		creds := bind(t, a, id, newUUID(t))
		if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan()}); err != nil {
			t.Fatal(err)
		}
		if err := checkCredentials(ctx, creds); err != nil {
			t.Error(err)
		}
	})
}

func writeKeys(t *testing.T, c *goredis.Client, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	const chunk = 1000
	for start := 0; start < n; start += chunk {
		pipe := c.Pipeline()
		for i := start; i < min(start+chunk, n); i++ {
			pipe.Set(ctx, fmt.Sprintf("%skey:%06d", prefix, i), i, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("write keys: %v", err)
		}
	}
}

func TestDeprovisionManyKeysInBatches(t *testing.T) {
	needRedis(t)
	ctx := testCtx(t)
	var logs bytes.Buffer
	a := newTestAdapter(t, testSettings(redisAddr()), slog.New(slog.NewJSONHandler(&logs, nil)))
	admin := adminClient(t)
	id := provisioned(t, a)
	prefix := keyPrefix(testRoot, id)
	const n = 20000
	writeKeys(t, admin, prefix, n)
	if keys, _, _ := admin.Scan(ctx, 0, prefix+"*", n*2).Result(); len(keys) != n {
		t.Fatalf("wrote %d keys, want %d", len(keys), n)
	}

	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id, Plan: smallPlan()}); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, admin, id)
	// The log line proves the keys went in many small UNLINKs, not one
	// command that would block the shared server.
	if !strings.Contains(logs.String(), fmt.Sprintf(`"keys_deleted":%d`, n)) {
		t.Errorf("log does not report %d deleted keys: %s", n, logs.String())
	}
	if strings.Contains(logs.String(), `"unlink_batches":1,`) || strings.Contains(logs.String(), `"unlink_batches":0`) {
		t.Errorf("keys were not deleted in batches: %s", logs.String())
	}
}

func TestBackendDown(t *testing.T) {
	needRedis(t)
	ctx := testCtx(t)
	addr := closedPort(t)
	a := newTestAdapter(t, testSettings(addr), slog.New(slog.DiscardHandler))
	want := "redis at " + addr

	if err := a.Ping(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Ping with Redis down = %v, want an error naming %q", err, want)
	}
	id, bid := newUUID(t), newUUID(t)
	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan()})
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Provision with Redis down = %v, want an error naming %q", err, want)
	}
	if adapters.IsTerminal(err) {
		t.Errorf("a backend outage must be retryable, got terminal %v", err)
	}
	_, err = a.Bind(ctx, adapters.BindRequest{InstanceID: id, BindingID: bid, Plan: smallPlan()})
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Bind with Redis down = %v, want an error naming %q", err, want)
	}

	// Redis comes back on the same address; the same adapter recovers.
	startForwarder(t, addr, redisAddr())
	admin := adminClient(t)
	t.Cleanup(func() {
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: id, Plan: smallPlan()})
		assertNothingLeft(t, admin, id)
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan()})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Provision after Redis came back: %v", err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping after Redis came back: %v", err)
	}
	res, err := a.Bind(ctx, adapters.BindRequest{InstanceID: id, BindingID: bid, Plan: smallPlan()})
	if err != nil {
		t.Fatalf("Bind after Redis came back: %v", err)
	}
	if err := checkCredentials(ctx, res.Credentials); err != nil {
		t.Error(err)
	}
}

func TestWrongAdminPasswordIsTerminal(t *testing.T) {
	needRedis(t)
	s := testSettings(redisAddr())
	// The default user has no password; AUTH with one it does not have
	// fails with WRONGPASS without changing anything on the server.
	s["admin_username"] = "agora-no-such-admin"
	s["admin_password"] = "wrong"
	a := newTestAdapter(t, s, slog.New(slog.DiscardHandler))
	_, err := a.Provision(testCtx(t), adapters.ProvisionRequest{InstanceID: newUUID(t), Plan: smallPlan()})
	if err == nil || !adapters.IsTerminal(err) || !strings.Contains(err.Error(), "admin credentials") {
		t.Errorf("Provision with a wrong admin password = %v, want a terminal error naming the admin credentials", err)
	}
}

func TestUpdateAppliesNewPlanToExistingBindings(t *testing.T) {
	needRedis(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(redisAddr()), slog.New(slog.DiscardHandler))
	id := provisioned(t, a)
	creds := bind(t, a, id, newUUID(t))
	c, err := bindingClient(creds)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	key := creds["key_prefix"].(string) + "k"
	if err := c.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	if _, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: id, Plan: readonlyPlan(), PreviousPlan: smallPlan()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, key, "v2", 0).Err(); !goredis.IsPermissionError(err) {
		t.Errorf("SET on the read-only plan: want NOPERM, got %v", err)
	}
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Errorf("GET on the read-only plan = %q, %v", got, err)
	}
	if err := c.Get(ctx, testRoot+":elsewhere").Err(); !goredis.IsPermissionError(err) {
		t.Errorf("the key pattern survived the update? GET outside: %v", err)
	}

	if _, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: id, Plan: smallPlan(), PreviousPlan: readonlyPlan()}); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(ctx, key, "v3", 0).Err(); err != nil {
		t.Errorf("SET back on the small plan: %v", err)
	}
}

func TestRejectsParametersAndUnknownPlans(t *testing.T) {
	a := newTestAdapter(t, testSettings("127.0.0.1:6379"), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i", Plan: smallPlan(), Parameters: map[string]any{"maxmemory": "1gb"}})
	if !errors.Is(err, adapters.ErrInvalidParameters) || !strings.Contains(err.Error(), "maxmemory") {
		t.Errorf("Provision with parameters = %v, want ErrInvalidParameters naming maxmemory", err)
	}
	_, err = a.Bind(ctx, adapters.BindRequest{InstanceID: "i", BindingID: "b", Plan: adapters.Plan{ID: "nope", Name: "nope"}})
	if err == nil || !adapters.IsTerminal(err) {
		t.Errorf("Bind with an unknown plan = %v, want a terminal error", err)
	}
}
