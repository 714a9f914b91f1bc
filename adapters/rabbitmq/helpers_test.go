package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/agora-osb/agora/adapters"
)

func managementURL() string {
	if u := os.Getenv("AGORA_TEST_RABBITMQ_MANAGEMENT_URL"); u != "" {
		return u
	}
	return "http://127.0.0.1:15672"
}

func amqpAddr() (string, int) {
	host, port := "127.0.0.1", 5672
	if h := os.Getenv("AGORA_TEST_RABBITMQ_AMQP_HOST"); h != "" {
		host = h
	}
	if p, err := strconv.Atoi(os.Getenv("AGORA_TEST_RABBITMQ_AMQP_PORT")); err == nil {
		port = p
	}
	return host, port
}

// needRabbitMQ skips in -short mode. Otherwise an unreachable server fails
// the test: a silently skipped integration test proves nothing.
func needRabbitMQ(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs RabbitMQ with the management plugin at " + managementURL())
	}
	if err := getJSON(context.Background(), "overview", nil); err != nil {
		t.Fatalf("RabbitMQ management API is not reachable (enable it: rabbitmq-plugins enable rabbitmq_management): %v", err)
	}
}

// newUUID returns a random canonical UUID, like the IDs platforms send, so
// concurrent runs never share an instance.
func newUUID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func testSettings(mgmt string) map[string]any {
	host, port := amqpAddr()
	return map[string]any{
		"management_url": mgmt,
		"admin_user":     "guest",
		"admin_password": "guest",
		"amqp_host":      host,
		"amqp_port":      port,
		"public_host":    "",
	}
}

// testPlans mirrors catalog-section.yml, plus a tiny plan for limit tests.
func testPlans() []adapters.PlanConfig {
	standard := map[string]any{"max_connections": 100, "max_queues": 200}
	tiny := map[string]any{"max_connections": 1, "max_queues": 1}
	return []adapters.PlanConfig{
		{Plan: standardPlan(), Settings: adapters.MapSettings(standard)},
		{Plan: adapters.Plan{ID: "rabbitmq-async-id", Name: "async"}, Settings: adapters.MapSettings(standard)},
		{Plan: tinyPlan(), Settings: adapters.MapSettings(tiny)},
		{Plan: unlimitedPlan(), Settings: adapters.MapSettings(map[string]any{})},
	}
}

func standardPlan() adapters.Plan { return adapters.Plan{ID: "rabbitmq-standard-id", Name: "standard"} }
func tinyPlan() adapters.Plan     { return adapters.Plan{ID: "rabbitmq-tiny-id", Name: "tiny"} }
func unlimitedPlan() adapters.Plan {
	return adapters.Plan{ID: "rabbitmq-unlimited-id", Name: "unlimited"}
}

func newTestAdapter(t *testing.T, settings map[string]any) *Adapter {
	t.Helper()
	a, err := New(context.Background(), adapters.Config{
		Offering: "rabbitmq",
		Producer: "messaging-team",
		Settings: adapters.MapSettings(settings),
		Plans:    testPlans(),
		Logger:   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// provisioned provisions a fresh instance on plan and, at cleanup,
// deprovisions it and fails the test if anything of it is left.
func provisioned(t *testing.T, a *Adapter, plan adapters.Plan) string {
	t.Helper()
	id := newUUID(t)
	// Registered first: a Provision that fails half-way may leave a vhost.
	t.Cleanup(func() {
		if _, err := a.Deprovision(context.Background(), adapters.DeprovisionRequest{InstanceID: id, Plan: plan}); err != nil {
			t.Errorf("cleanup Deprovision: %v", err)
		}
		assertNothingLeft(t, id)
	})
	if _, err := a.Provision(testCtx(t), adapters.ProvisionRequest{InstanceID: id, Offering: "rabbitmq", Plan: plan}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return id
}

// getJSON reads the management API as the admin, independently of the
// adapter's own client, so the tests check what an operator would see.
func getJSON(ctx context.Context, apiPath string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(managementURL(), "/")+"/api/"+apiPath, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &apiError{Status: resp.StatusCode, Reason: string(body)}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

func adminDelete(t *testing.T, apiPath string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, strings.TrimRight(managementURL(), "/")+"/api/"+apiPath, nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE %s: HTTP %d", apiPath, resp.StatusCode)
	}
}

func vhostExists(t *testing.T, vhost string) bool {
	t.Helper()
	err := getJSON(context.Background(), path("vhosts", vhost), nil)
	var apiErr *apiError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		return false
	}
	if err != nil {
		t.Fatalf("GET vhost %s: %v", vhost, err)
	}
	return true
}

func usersWithPrefix(t *testing.T, prefix string) []string {
	t.Helper()
	var users []struct {
		Name string `json:"name"`
	}
	if err := getJSON(context.Background(), "users", &users); err != nil {
		t.Fatalf("GET users: %v", err)
	}
	var out []string
	for _, u := range users {
		if strings.HasPrefix(u.Name, prefix) {
			out = append(out, u.Name)
		}
	}
	return out
}

func assertNothingLeft(t *testing.T, instanceID string) {
	t.Helper()
	if vhostExists(t, vhostName(instanceID)) {
		t.Errorf("vhost %s left behind", vhostName(instanceID))
	}
	if left := usersWithPrefix(t, instanceUserPrefix(instanceID)); len(left) > 0 {
		t.Errorf("users left behind: %v", left)
	}
}

func dial(uri string) (*amqp.Connection, error) {
	return amqp.DialConfig(uri, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
}

// checkCredentials proves the credentials do real work: declare a queue,
// publish a message and consume it back, on the instance's vhost.
func checkCredentials(ctx context.Context, creds map[string]any) error {
	for _, k := range []string{"uri", "host", "port", "vhost", "username", "password", "management_url"} {
		if _, ok := creds[k]; !ok {
			return fmt.Errorf("credentials lack %q", k)
		}
	}
	uri, _ := creds["uri"].(string)
	conn, err := dial(uri)
	if err != nil {
		return fmt.Errorf("dial the vhost: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open a channel: %w", err)
	}
	q, err := ch.QueueDeclare("work", false, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("declare a queue: %w", err)
	}
	body := "hello " + fmt.Sprint(time.Now().UnixNano())
	if err := ch.PublishWithContext(ctx, "", q.Name, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	msgs, err := ch.ConsumeWithContext(ctx, q.Name, "", true, false, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return errors.New("consumer closed before the message arrived")
			}
			if string(m.Body) == body {
				return nil
			}
		case <-timeout.C:
			return errors.New("published message was not consumed within 10s")
		}
	}
}

// refused reports whether err is RabbitMQ turning a login or vhost down.
func refused(err error) bool {
	var amqpErr *amqp.Error
	return errors.As(err, &amqpErr) && (amqpErr.Code == amqp.AccessRefused || amqpErr.Code == amqp.NotAllowed)
}

// checkRevoked proves the credentials no longer log in.
func checkRevoked(_ context.Context, creds map[string]any) error {
	conn, err := dial(creds["uri"].(string))
	if err == nil {
		conn.Close()
		return errors.New("revoked credentials still log in")
	}
	if !refused(err) {
		return fmt.Errorf("revoked credentials: want ACCESS_REFUSED, got %w", err)
	}
	return nil
}

// checkIsolation proves that A's user cannot open B's vhost at all, so it
// can neither read nor write B's queues.
func checkIsolation(_ context.Context, credsA, credsB map[string]any) error {
	uri, err := url.Parse(credsA["uri"].(string))
	if err != nil {
		return err
	}
	vhostB := credsB["vhost"].(string)
	uri.Path, uri.RawPath = "/"+vhostB, "/"+url.PathEscape(vhostB)
	conn, err := dial(uri.String())
	if err == nil {
		conn.Close()
		return fmt.Errorf("A's user opened B's vhost %s", vhostB)
	}
	if !refused(err) {
		return fmt.Errorf("A on B's vhost: want NOT_ALLOWED, got %w", err)
	}
	// And not the default vhost either.
	uri.Path, uri.RawPath = "/", "/%2F"
	if conn, err := dial(uri.String()); err == nil {
		conn.Close()
		return errors.New("A's user opened the default vhost /")
	}
	return nil
}

// forwarder relays TCP connections from a port to target; tests start it
// on a port that was closed a moment ago to model a backend coming back.
func startForwarder(t *testing.T, listenAddr, target string) {
	t.Helper()
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		t.Fatalf("listen %s: %v", listenAddr, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
}

// closedPort returns an address on which nothing listens right now.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
