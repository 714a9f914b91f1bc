package redis

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/adapters"
)

// testRoot keeps every key these tests write under one root that no real
// offering uses, on a Redis server shared with other tests and with Agora.
const testRoot = "agoratest-redis"

func redisAddr() string {
	if a := os.Getenv("AGORA_TEST_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// needRedis skips in -short mode. Otherwise an unreachable server fails the
// test: a silently skipped integration test proves nothing.
func needRedis(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs Redis at " + redisAddr())
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

func testSettings(addr string) map[string]any {
	return map[string]any{
		"addr":            addr,
		"admin_username":  "",
		"admin_password":  "",
		"public_host":     "",
		"key_prefix_root": testRoot,
	}
}

// testPlans mirrors catalog-section.yml, plus a read-only plan for Update.
func testPlans() []adapters.PlanConfig {
	rw := map[string]any{"acl_categories": []string{"+@read", "+@write", "+@connection", "+@pubsub", "-@dangerous", "-@admin"}}
	ro := map[string]any{"acl_categories": []string{"+@read", "+@connection", "-@dangerous", "-@admin"}}
	return []adapters.PlanConfig{
		{Plan: adapters.Plan{ID: "redis-small-id", Name: "small"}, Settings: adapters.MapSettings(rw)},
		{Plan: adapters.Plan{ID: "redis-async-id", Name: "async"}, Settings: adapters.MapSettings(rw)},
		{Plan: adapters.Plan{ID: "redis-readonly-id", Name: "readonly"}, Settings: adapters.MapSettings(ro)},
	}
}

func smallPlan() adapters.Plan    { return adapters.Plan{ID: "redis-small-id", Name: "small"} }
func readonlyPlan() adapters.Plan { return adapters.Plan{ID: "redis-readonly-id", Name: "readonly"} }

func newTestAdapter(t *testing.T, settings map[string]any, logger *slog.Logger) *Adapter {
	t.Helper()
	a, err := New(context.Background(), adapters.Config{
		Offering: "redis",
		Producer: "cache-team",
		Settings: adapters.MapSettings(settings),
		Plans:    testPlans(),
		Logger:   logger,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func adminClient(t *testing.T) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr(), DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("redis at %s is not reachable: %v", redisAddr(), err)
	}
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// provisioned provisions a fresh instance and, at cleanup, deprovisions it
// and fails the test if anything of it is left on the server.
func provisioned(t *testing.T, a *Adapter) string {
	t.Helper()
	id := newUUID(t)
	if _, err := a.Provision(testCtx(t), adapters.ProvisionRequest{InstanceID: id, Offering: "redis", Plan: smallPlan()}); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	admin := adminClient(t)
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := a.Deprovision(ctx, adapters.DeprovisionRequest{InstanceID: id, Offering: "redis", Plan: smallPlan()}); err != nil {
			t.Errorf("cleanup Deprovision: %v", err)
		}
		assertNothingLeft(t, admin, id)
	})
	return id
}

func assertNothingLeft(t *testing.T, admin *goredis.Client, instanceID string) {
	t.Helper()
	ctx := context.Background()
	prefix := keyPrefix(testRoot, instanceID)
	keys, _, err := admin.Scan(ctx, 0, prefix+"*", 100000).Result()
	if err != nil {
		t.Fatalf("SCAN: %v", err)
	}
	if len(keys) > 0 {
		t.Errorf("%d keys left under %s, e.g. %q", len(keys), prefix, keys[0])
	}
	users, err := admin.ACLUsers(ctx).Result()
	if err != nil {
		t.Fatalf("ACL USERS: %v", err)
	}
	for _, u := range users {
		if strings.HasPrefix(u, instanceUserPrefix(instanceID)) {
			t.Errorf("ACL user %s left behind", u)
		}
	}
}

// bindingClient connects with exactly what an application receives: the uri.
func bindingClient(creds map[string]any) (*goredis.Client, error) {
	uri, _ := creds["uri"].(string)
	opts, err := goredis.ParseURL(uri)
	if err != nil {
		return nil, fmt.Errorf("parse uri: %w", err)
	}
	opts.DisableIdentity = true
	opts.MaxRetries = -1
	return goredis.NewClient(opts), nil
}

// checkCredentials proves the credentials do real work inside the prefix and
// nothing outside it.
func checkCredentials(ctx context.Context, creds map[string]any) error {
	for _, k := range []string{"host", "port", "username", "password", "key_prefix", "uri"} {
		if _, ok := creds[k]; !ok {
			return fmt.Errorf("credentials lack %q", k)
		}
	}
	c, err := bindingClient(creds)
	if err != nil {
		return err
	}
	defer c.Close()
	prefix := creds["key_prefix"].(string)
	key := prefix + "greeting"
	if err := c.Set(ctx, key, "hello", 0).Err(); err != nil {
		return fmt.Errorf("SET inside the prefix: %w", err)
	}
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "hello" {
		return fmt.Errorf("GET inside the prefix = %q, %v", got, err)
	}
	// The outside key is denied, so it is never written.
	outside := testRoot + ":outside:" + key
	if err := c.Set(ctx, outside, "x", 0).Err(); !goredis.IsPermissionError(err) {
		if err == nil {
			c.Del(ctx, outside) // leave nothing behind on the shared server
		}
		return fmt.Errorf("SET %s outside the prefix: want NOPERM, got %v", outside, err)
	}
	if err := c.Get(ctx, "agora:some-state-key").Err(); !goredis.IsPermissionError(err) {
		return fmt.Errorf("GET of Agora's own keys: want NOPERM, got %v", err)
	}
	return nil
}

// checkRevoked proves the credentials no longer authenticate.
func checkRevoked(ctx context.Context, creds map[string]any) error {
	c, err := bindingClient(creds)
	if err != nil {
		return err
	}
	defer c.Close()
	err = c.Ping(ctx).Err()
	if err == nil {
		return errors.New("revoked credentials still authenticate")
	}
	if !goredis.IsAuthError(err) {
		return fmt.Errorf("revoked credentials: want WRONGPASS, got %v", err)
	}
	return nil
}

// checkIsolation proves that binding A cannot read or write B's namespace.
func checkIsolation(ctx context.Context, credsA, credsB map[string]any) error {
	b, err := bindingClient(credsB)
	if err != nil {
		return err
	}
	defer b.Close()
	keyB := credsB["key_prefix"].(string) + "secret"
	if err := b.Set(ctx, keyB, "b-only", 0).Err(); err != nil {
		return fmt.Errorf("B writes its own key: %w", err)
	}
	a, err := bindingClient(credsA)
	if err != nil {
		return err
	}
	defer a.Close()
	if err := a.Get(ctx, keyB).Err(); !goredis.IsPermissionError(err) {
		return fmt.Errorf("A reads B's key: want NOPERM, got %v", err)
	}
	if err := a.Set(ctx, keyB, "a-was-here", 0).Err(); !goredis.IsPermissionError(err) {
		return fmt.Errorf("A writes B's key: want NOPERM, got %v", err)
	}
	if err := a.Del(ctx, keyB).Err(); !goredis.IsPermissionError(err) {
		return fmt.Errorf("A deletes B's key: want NOPERM, got %v", err)
	}
	// A key-less command must not reveal B's key names either.
	if err := a.Scan(ctx, 0, "*", 10).Err(); !goredis.IsPermissionError(err) {
		return fmt.Errorf("A runs SCAN: want NOPERM, got %v", err)
	}
	if got, err := b.Get(ctx, keyB).Result(); err != nil || got != "b-only" {
		return fmt.Errorf("B's key after A's attempts = %q, %v", got, err)
	}
	return nil
}

// forwarder relays TCP connections from a port to target; tests start it
// on a port that was closed a moment ago to model a backend coming back.
type forwarder struct {
	ln net.Listener
	wg sync.WaitGroup
}

func startForwarder(t *testing.T, listenAddr, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		t.Fatalf("listen %s: %v", listenAddr, err)
	}
	f := &forwarder{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
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
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
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
