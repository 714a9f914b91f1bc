package remote_test

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/remote"
)

// The gate's and the canary's options reach every connection and the
// kit: Dial makes the protocol checks' and the kit's connections alike,
// and CleanupAttempts retries what a run left.
func TestConformanceDialsThroughDialAndRetriesCleanup(t *testing.T) {
	for _, attempts := range []int{1, 3} {
		backend := memadapter.NewBackend()
		mem, err := memadapter.New(adapters.Config{Settings: adapters.MapSettings(map[string]any{"prefix": "go-"})}, backend)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(remote.Handler(memadapter.NewFlakyDeprovision(mem, 2), remote.HandlerOptions{Name: "flaky", Secret: testSecret}))
		var dials atomic.Int64
		dialer := &net.Dialer{}
		report, err := remote.Conformance(t.Context(), remote.ConformanceOptions{
			URL: srv.URL, Secret: testSecret, ProvisionParameters: map[string]any{"max_keys": 5}, Timeout: 5 * time.Second,
			CleanupAttempts: attempts,
			Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
				dials.Add(1)
				return dialer.DialContext(ctx, network, address)
			},
		})
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		// One transport for the protocol checks, another for the kit's
		// client: both must have dialled through Dial.
		if dials.Load() < 2 {
			t.Errorf("%d connection(s) went through Dial; the kit's client must use it too", dials.Load())
		}
		c, left := result(report, "cleanup"), backend.Databases()
		switch attempts {
		case 1:
			if c.Passed || len(left) == 0 {
				t.Errorf("one attempt: cleanup %+v, left %q; want the leftovers reported", c, left)
			}
		default:
			if !c.Passed || len(left) != 0 {
				t.Errorf("%d attempts: cleanup %+v, left %q; want everything removed", attempts, c, left)
			}
		}
	}
}

// Refused at dial time: a Dial that refuses fails the run's first check
// with its reason, and nothing reaches the adapter.
func TestConformanceWithARefusingDial(t *testing.T) {
	srv, backend := serveMemadapter(t, remote.HandlerOptions{Name: "memory"})
	report, err := remote.Conformance(t.Context(), remote.ConformanceOptions{
		URL: srv.URL, Secret: testSecret, Timeout: 5 * time.Second,
		Dial: func(context.Context, string, string) (net.Conn, error) {
			return nil, errors.New("egress refused (rule: loopback)")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := result(report, remote.CheckCapabilities); !c.Failed() {
		t.Errorf("capabilities: %+v, want a failure", c)
	}
	if len(backend.Databases()) != 0 {
		t.Error("the adapter was reached")
	}
}
