package vaultstore

import (
	"net/http"
	"sync/atomic"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// CallObserver hears about every HTTP call to Vault, for metrics.
type CallObserver func(method string, err error, took time.Duration)

// observedTransport is the transport of every client NewClient makes: it
// tells an observer, set once the process has one (Observe), about each
// call. An answer with a 5xx status counts as an error; a 404 is an answer
// (a secret that is not there).
type observedTransport struct {
	next     http.RoundTripper
	observer atomic.Pointer[CallObserver]
}

func (t *observedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	if obs := t.observer.Load(); obs != nil {
		failed := err
		if err == nil && resp.StatusCode >= 500 {
			failed = &statusError{status: resp.Status}
		}
		(*obs)(r.Method, failed, time.Since(start))
	}
	return resp, err
}

type statusError struct{ status string }

func (e *statusError) Error() string { return "vault answered " + e.status }

// Observe makes client (made by NewClient) tell obs about every call from
// now on. vault/api copies its http.Client on CloneConfig but shares the
// transport, which is what this sets.
func Observe(client *vault.Client, obs CallObserver) {
	if t, ok := client.CloneConfig().HttpClient.Transport.(*observedTransport); ok {
		t.observer.Store(&obs)
	}
}
