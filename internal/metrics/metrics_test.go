package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
)

func TestAdapterOutcomes(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for err, want := range map[error]string{
		nil:                             "ok",
		adapters.InvalidParameters("x"): "invalid_parameters",
		fmt.Errorf("gone: %w", adapters.ErrNotFound):     "not_found",
		adapters.ErrAlreadyExists:                        "already_exists",
		adapters.ErrNotSupported:                         "not_supported",
		fmt.Errorf("slow: %w", context.DeadlineExceeded): "timeout",
		fmt.Errorf("POST /v1/instances: %w", refused):    "unreachable",
		adapters.Terminal(errors.New("quota")):           "terminal",
		errors.New("500 internal"):                       "error",
	} {
		if got := outcome(err); got != want {
			t.Errorf("outcome(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestAScrapeNeverHangs: a scrape while Redis hangs and Vault fails
// answers 200, with the failures counted and the dependencies down.
func TestAScrapeNeverHangs(t *testing.T) {
	hang := func(ctx context.Context) error { <-make(chan struct{}); return nil }
	m := New(Sources{
		Counts: func(ctx context.Context) ([]PlanCount, error) { <-make(chan struct{}); return nil, nil },
		Queue:  func(context.Context) (QueueDepth, error) { return QueueDepth{}, errors.New("redis down") },
		Checks: map[string]func(context.Context) error{"redis": hang, "vault": func(context.Context) error { return errors.New("sealed") }},
	})
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		w := httptest.NewRecorder()
		m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		done <- w
	}()
	var w *httptest.ResponseRecorder
	select {
	case w = <-done:
	case <-time.After(time.Minute): // far beyond scrapeTimeout: only a hang gets here
		t.Fatal("the scrape hung")
	}
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, body)
	}
	for _, want := range []string{
		`agora_dependency_up{dependency="redis"} 0`,
		`agora_dependency_up{dependency="vault"} 0`,
		`agora_scrape_errors_total{source="counts"} 1`,
		`agora_scrape_errors_total{source="queue"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s", want)
		}
	}
}
