package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/agora-osb/agora/adapters"
)

func bind(t *testing.T, a *Adapter, instanceID, bindingID string) map[string]any {
	t.Helper()
	res, err := a.Bind(testCtx(t), adapters.BindRequest{InstanceID: instanceID, BindingID: bindingID, Offering: "rabbitmq", Plan: standardPlan()})
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
	if _, err := a.Unbind(testCtx(t), adapters.UnbindRequest{InstanceID: instanceID, BindingID: bindingID, Offering: "rabbitmq", Plan: standardPlan()}); err != nil {
		t.Fatalf("Unbind: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	needRabbitMQ(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(managementURL()))
	instanceID, bindingID := newUUID(t), newUUID(t)
	t.Cleanup(func() { // a safety net when the test stops half-way
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: instanceID, Plan: standardPlan()})
	})
	vhost := "agora-" + strings.ReplaceAll(instanceID, "-", "")

	for i := range 2 { // a repeat must succeed
		res, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: instanceID, Offering: "rabbitmq", Plan: standardPlan()})
		if err != nil {
			t.Fatalf("Provision #%d: %v", i+1, err)
		}
		if res.Receipt["vhost"] != vhost {
			t.Fatalf("receipt vhost = %q, want %q", res.Receipt["vhost"], vhost)
		}
	}
	var limits []struct {
		Value map[string]int `json:"value"`
	}
	if err := getJSON(ctx, path("vhost-limits", vhost), &limits); err != nil {
		t.Fatal(err)
	}
	if len(limits) != 1 || limits[0].Value["max-connections"] != 100 || limits[0].Value["max-queues"] != 200 {
		t.Errorf("vhost limits = %+v, want max-connections 100 and max-queues 200", limits)
	}

	first := bind(t, a, instanceID, bindingID)
	creds := bind(t, a, instanceID, bindingID) // a repeat resets the password
	if first["password"] == creds["password"] {
		t.Error("repeat Bind returned the same password")
	}
	if err := checkRevoked(ctx, first); err != nil {
		t.Errorf("first bind's password after the repeat: %v", err)
	}
	host, port := amqpAddr()
	wantUser := vhost + "-" + strings.ReplaceAll(bindingID, "-", "")
	wantURI := fmt.Sprintf("amqp://%s:%s@%s:%d/%s", wantUser, creds["password"], host, port, vhost)
	if creds["uri"] != wantURI {
		t.Errorf("uri = %v, want %s", creds["uri"], wantURI)
	}
	if creds["vhost"] != vhost || creds["username"] != wantUser || creds["host"] != host || creds["port"] != port {
		t.Errorf("credentials = vhost %v user %v host %v port %v", creds["vhost"], creds["username"], creds["host"], creds["port"])
	}
	if creds["management_url"] != strings.TrimRight(managementURL(), "/")+"/" {
		t.Errorf("management_url = %v", creds["management_url"])
	}
	if err := checkCredentials(ctx, creds); err != nil {
		t.Fatalf("credentials: %v", err)
	}

	// Unbind revokes at once: the open connection is closed, logins fail.
	conn, err := dial(creds["uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	unbind(t, a, instanceID, bindingID)
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Error("a connection opened before Unbind is still open 15s later")
		conn.Close()
	}
	if err := checkRevoked(ctx, creds); err != nil {
		t.Error(err)
	}
	unbind(t, a, instanceID, bindingID) // idempotent

	for i := range 2 {
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: instanceID, Plan: standardPlan()}); err != nil {
			t.Fatalf("Deprovision #%d: %v", i+1, err)
		}
	}
	assertNothingLeft(t, instanceID)
}

func TestIsolationBetweenInstances(t *testing.T) {
	needRabbitMQ(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(managementURL()))
	one, two := provisioned(t, a, standardPlan()), provisioned(t, a, standardPlan())
	credsA, credsB := bind(t, a, one, newUUID(t)), bind(t, a, two, newUUID(t))
	if err := checkIsolation(ctx, credsA, credsB); err != nil {
		t.Error(err)
	}
	if err := checkIsolation(ctx, credsB, credsA); err != nil {
		t.Error(err)
	}
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: one, Plan: standardPlan()}); err != nil {
		t.Fatal(err)
	}
	if err := checkCredentials(ctx, credsB); err != nil {
		t.Errorf("instance two after deprovisioning instance one: %v", err)
	}
}

// TestSimilarIDsDoNotShareUsers guards the user-name prefix: instance "a"
// must not own the users of instance "a0" or "a-b".
func TestSimilarIDsDoNotShareUsers(t *testing.T) {
	needRabbitMQ(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(managementURL()))
	run := newUUID(t)[:8]
	short, longer, dashed := "r"+run, "r"+run+"0", "r"+run+"-b"
	for _, id := range []string{short, longer, dashed} {
		t.Cleanup(func() {
			_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: id, Plan: standardPlan()})
			assertNothingLeft(t, id)
		})
		if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: standardPlan()}); err != nil {
			t.Fatal(err)
		}
	}
	others := map[string]map[string]any{longer: bind(t, a, longer, "b"), dashed: bind(t, a, dashed, "b")}
	bind(t, a, short, "b")
	if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: short, Plan: standardPlan()}); err != nil {
		t.Fatal(err)
	}
	for id, creds := range others {
		if err := checkCredentials(ctx, creds); err != nil {
			t.Errorf("instance %q's binding after deprovisioning %q: %v", id, short, err)
		}
	}
}

func TestCrashHalfway(t *testing.T) {
	needRabbitMQ(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(managementURL()))

	t.Run("user exists but has no permissions", func(t *testing.T) {
		id, bid := provisioned(t, a, standardPlan()), newUUID(t)
		bind(t, a, id, bid)
		adminDelete(t, path("permissions", vhostName(id), bindingUserName(id, bid)))
		creds := bind(t, a, id, bid)
		if err := checkCredentials(ctx, creds); err != nil {
			t.Error(err)
		}
	})

	t.Run("user already deleted before Unbind", func(t *testing.T) {
		id, bid := provisioned(t, a, standardPlan()), newUUID(t)
		bind(t, a, id, bid)
		adminDelete(t, path("users", bindingUserName(id, bid)))
		unbind(t, a, id, bid)
	})

	t.Run("Unbind without Bind", func(t *testing.T) {
		unbind(t, a, provisioned(t, a, standardPlan()), newUUID(t))
	})

	t.Run("vhost already deleted, user left", func(t *testing.T) {
		id := provisioned(t, a, standardPlan())
		creds := bind(t, a, id, newUUID(t))
		adminDelete(t, path("vhosts", vhostName(id)))
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id, Plan: standardPlan()}); err != nil {
			t.Fatal(err)
		}
		if err := checkRevoked(ctx, creds); err != nil {
			t.Error(err)
		}
		assertNothingLeft(t, id)
	})

	t.Run("Bind on a missing vhost leaves no user", func(t *testing.T) {
		id, bid := newUUID(t), newUUID(t)
		_, err := a.Bind(ctx, adapters.BindRequest{InstanceID: id, BindingID: bid, Plan: standardPlan()})
		if !errors.Is(err, adapters.ErrNotFound) {
			t.Errorf("Bind without a vhost = %v, want ErrNotFound", err)
		}
		assertNothingLeft(t, id)
	})

	t.Run("Provision repeated after Bind keeps the binding", func(t *testing.T) {
		id := provisioned(t, a, standardPlan())
		creds := bind(t, a, id, newUUID(t))
		if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: standardPlan()}); err != nil {
			t.Fatal(err)
		}
		if err := checkCredentials(ctx, creds); err != nil {
			t.Error(err)
		}
	})
}

func TestPlanLimitsAndUpdate(t *testing.T) {
	needRabbitMQ(t)
	ctx := testCtx(t)
	a := newTestAdapter(t, testSettings(managementURL()))
	id := provisioned(t, a, tinyPlan())
	creds := bind(t, a, id, newUUID(t))
	uri := creds["uri"].(string)

	conn, err := dial(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("one", false, false, false, false, nil); err != nil {
		t.Fatalf("first queue on the tiny plan: %v", err)
	}
	if _, err := ch.QueueDeclare("two", false, false, false, false, nil); err == nil {
		t.Error("a second queue was allowed with max_queues 1")
	}
	if c2, err := dial(uri); err == nil {
		c2.Close()
		t.Error("a second connection was allowed with max_connections 1")
	}
	conn.Close()

	// Up to a plan without limits: both limits must go, not just change.
	if _, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: id, Plan: unlimitedPlan(), PreviousPlan: tinyPlan()}); err != nil {
		t.Fatal(err)
	}
	var limits []map[string]any
	if err := getJSON(ctx, path("vhost-limits", vhostName(id)), &limits); err != nil {
		t.Fatal(err)
	}
	if len(limits) != 0 {
		t.Errorf("limits after moving to the unlimited plan: %v", limits)
	}
	if err := checkCredentials(ctx, creds); err != nil { // declares a second queue
		t.Error(err)
	}

	if _, err := a.Update(ctx, adapters.UpdateRequest{InstanceID: id, Plan: standardPlan(), PreviousPlan: unlimitedPlan()}); err != nil {
		t.Fatal(err)
	}
	var set []struct {
		Value map[string]int `json:"value"`
	}
	if err := getJSON(ctx, path("vhost-limits", vhostName(id)), &set); err != nil {
		t.Fatal(err)
	}
	if len(set) != 1 || set[0].Value["max-queues"] != 200 {
		t.Errorf("limits after moving to standard: %+v", set)
	}
}

func TestBackendDown(t *testing.T) {
	needRabbitMQ(t)
	ctx := testCtx(t)
	addr := closedPort(t)
	down := "http://" + addr
	a := newTestAdapter(t, testSettings(down))
	want := "rabbitmq management at " + down

	if err := a.Ping(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Ping with RabbitMQ down = %v, want an error naming %q", err, want)
	}
	id, bid := newUUID(t), newUUID(t)
	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: standardPlan()})
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Provision with RabbitMQ down = %v, want an error naming %q", err, want)
	}
	if adapters.IsTerminal(err) {
		t.Errorf("an outage must be retryable, got terminal %v", err)
	}
	if _, err := a.Unbind(ctx, adapters.UnbindRequest{InstanceID: id, BindingID: bid}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Unbind with RabbitMQ down = %v, want an error naming %q", err, want)
	}

	// The management API comes back on the same address; the same
	// adapter completes the retried calls.
	u, _ := url.Parse(managementURL())
	startForwarder(t, addr, u.Host)
	t.Cleanup(func() {
		_, _ = a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: id, Plan: standardPlan()})
		assertNothingLeft(t, id)
	})
	if err := a.Ping(ctx); err != nil {
		t.Errorf("Ping after RabbitMQ came back: %v", err)
	}
	if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: standardPlan()}); err != nil {
		t.Fatalf("Provision after RabbitMQ came back: %v", err)
	}
	res, err := a.Bind(ctx, adapters.BindRequest{InstanceID: id, BindingID: bid, Plan: standardPlan()})
	if err != nil {
		t.Fatalf("Bind after RabbitMQ came back: %v", err)
	}
	if err := checkCredentials(ctx, res.Credentials); err != nil {
		t.Error(err)
	}
}

func TestRejectedAdminCredentialsAreTerminal(t *testing.T) {
	needRabbitMQ(t)
	s := testSettings(managementURL())
	s["admin_password"] = "not-the-password"
	a := newTestAdapter(t, s)
	ctx := testCtx(t)
	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: newUUID(t), Plan: standardPlan()})
	if err == nil || !adapters.IsTerminal(err) || !strings.Contains(err.Error(), "credentials") || !strings.Contains(err.Error(), "rabbitmq management") {
		t.Errorf("Provision with a wrong admin password = %v, want a terminal error naming the rabbitmq management credentials", err)
	}
	var apiErr *apiError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Errorf("want the 401 in the chain, got %v", err)
	}
	if strings.Contains(err.Error(), "not-the-password") {
		t.Error("the error leaks the admin password")
	}
	if err := a.Ping(ctx); !adapters.IsTerminal(err) {
		t.Errorf("Ping with a wrong admin password = %v, want terminal", err)
	}
}

func TestRejectsParametersAndUnknownPlans(t *testing.T) {
	a := newTestAdapter(t, testSettings("http://127.0.0.1:15672"))
	ctx := context.Background()
	_, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: "i", Plan: standardPlan(), Parameters: map[string]any{"max_queues": 5.0}})
	if !errors.Is(err, adapters.ErrInvalidParameters) || !strings.Contains(err.Error(), "max_queues") {
		t.Errorf("Provision with parameters = %v, want ErrInvalidParameters naming max_queues", err)
	}
	_, err = a.Bind(ctx, adapters.BindRequest{InstanceID: "i", BindingID: "b", Plan: adapters.Plan{ID: "nope", Name: "nope"}})
	if err == nil || !adapters.IsTerminal(err) {
		t.Errorf("Bind with an unknown plan = %v, want a terminal error", err)
	}
}
