package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"sync"
)

// serveHealth answers liveness: the process is up and serving HTTP. It
// checks nothing else on purpose, so a Redis outage makes replicas unready
// rather than getting them restarted in a loop.
func serveHealth(w http.ResponseWriter, _ *http.Request) {
	WriteRawJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

type readyBody struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// serveReady runs every check concurrently, so the probe takes as long as
// the slowest check (at most readyCheckTimeout), not their sum.
func readiness(checks []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { serveReady(checks, w, r) }
}

func serveReady(checks []Check, w http.ResponseWriter, r *http.Request) {
	results := make([]error, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() { results[i] = runCheck(r.Context(), c) })
	}
	wg.Wait()

	body := readyBody{Status: "ready", Checks: make(map[string]string, len(checks))}
	status := http.StatusOK
	for i, c := range checks {
		if results[i] == nil {
			body.Checks[c.Name] = "ok"
			continue
		}
		body.Checks[c.Name] = "error: " + results[i].Error()
		if c.Required {
			body.Status = "not ready"
			status = http.StatusServiceUnavailable
		}
	}
	WriteJSON(w, status, body)
}

// runCheck bounds one check by readyCheckTimeout even if it ignores its
// context, and turns a panic into a failure instead of a crashed probe.
func runCheck(ctx context.Context, c Check) error {
	ctx, cancel := context.WithTimeout(ctx, readyCheckTimeout)
	defer cancel()
	done := make(chan error, 1) // buffered: a late check must not block forever
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- fmt.Errorf("check panicked: %v", p)
			}
		}()
		done <- c.Check(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer in time: %w", ctx.Err())
	}
}
