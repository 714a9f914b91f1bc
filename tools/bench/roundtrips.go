package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/broker"
	"github.com/agora-osb/agora/broker/redisstore"
)

// roundTripCounter is a go-redis hook that counts round trips: one per
// command sent alone, one per pipeline (a MULTI/EXEC or a script is one
// command, or one pipeline).
type roundTripCounter struct {
	n atomic.Int64
	// what names the commands of each round trip, for -roundtrips' detail.
	mu   sync.Mutex
	what []string
}

func (c *roundTripCounter) record(names string) {
	switch names {
	case "hello", "client", "[client client]":
		return // a new connection's handshake, once per connection
	}
	c.n.Add(1)
	c.mu.Lock()
	c.what = append(c.what, names)
	c.mu.Unlock()
}

// take returns what was recorded since the last take.
func (c *roundTripCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.what
	c.what = nil
	return out
}

func (c *roundTripCounter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

func (c *roundTripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.record(cmd.Name())
		return next(ctx, cmd)
	}
}

func (c *roundTripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		for i, cmd := range cmds {
			names[i] = cmd.Name()
		}
		c.record("[" + strings.Join(names, " ") + "]")
		return next(ctx, cmds)
	}
}

// printRoundTrips runs each OSB operation once through an Agora of its
// own, on a Redis client that counts, and prints the round trips each
// took. That Agora runs no workers, whose queue reads would be counted
// too, so the operations are the sync plan's.
func (e *env) printRoundTrips(ctx context.Context) error {
	counter := &roundTripCounter{}
	rdb := redis.NewClient(e.redisOpts)
	defer rdb.Close()
	rdb.AddHook(counter)
	state := redisstore.New(rdb, e.prefix)
	b, err := broker.New(broker.Config{
		Catalog: e.cat, State: state, Credentials: e.creds, Logger: slog.New(slog.DiscardHandler),
		Jobs: redisstore.NewQueue(rdb, redisstore.QueueOptions{Prefix: e.prefix}),
	})
	if err != nil {
		return err
	}
	h, err := e.handler(b, nil, false)
	if err != nil {
		return err
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	c := newClient(1)
	body := fmt.Sprintf(`{"service_id":%q,"plan_id":%q}`, e.syncService, e.syncPlan)
	query := fmt.Sprintf("?service_id=%s&plan_id=%s", e.syncService, e.syncPlan)
	inst := srv.URL + "/v2/service_instances/bench-roundtrips"
	steps := []struct {
		name, method, url, body string
		want                    int
	}{
		{"provision (sync)", http.MethodPut, inst, body, http.StatusCreated},
		{"bind", http.MethodPut, inst + "/service_bindings/b1", body, http.StatusCreated},
		{"last_operation", http.MethodGet, inst + "/last_operation", "", http.StatusOK},
		{"GET instance", http.MethodGet, inst, "", http.StatusOK},
		{"unbind", http.MethodDelete, inst + "/service_bindings/b1" + query, "", http.StatusOK},
		{"deprovision (sync)", http.MethodDelete, inst + query, "", http.StatusOK},
		{"last_operation, unknown instance", http.MethodGet, srv.URL + "/v2/service_instances/bench-none/last_operation", "", http.StatusNotFound},
	}
	fmt.Println("Redis round trips per OSB operation:")
	for _, s := range steps {
		req, _ := http.NewRequestWithContext(ctx, s.method, s.url, strings.NewReader(s.body))
		req.SetBasicAuth(user, pass)
		req.Header.Set("X-Broker-API-Version", apiVersion)
		if s.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		counter.take()
		err := do(c, req, s.want)
		trips := counter.take()
		fmt.Printf("  %-34s %2d  %s", s.name, len(trips), strings.Join(trips, " "))
		if err != nil {
			fmt.Printf("  (%v)", err)
		}
		fmt.Println()
	}
	fmt.Println()
	return nil
}
