package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
)

// rotating is an adapter that records the bind it got and answers with
// binding times written in another zone than UTC.
type rotating struct {
	scripted
	got adapters.BindRequest
}

func (r *rotating) Bind(_ context.Context, req adapters.BindRequest) (adapters.BindResult, error) {
	r.got = req
	cet := time.FixedZone("CET", 3600)
	return adapters.BindResult{Credentials: map[string]any{"token": "t"},
		ExpiresAt:   time.Date(2030, 1, 2, 16, 4, 5, 0, cet),
		RenewBefore: time.Date(2030, 1, 2, 15, 4, 5, 500_000_000, cet)}, nil
}

// TestBindCarriesRotation: the predecessor reaches a Go adapter behind
// remote.Handler, and its binding times come back as the same instants.
func TestBindCarriesRotation(t *testing.T) {
	a := &rotating{}
	c := newClient(t, serve(t, a).URL, remote.Options{})
	pred := &adapters.Predecessor{BindingID: "b-old", Receipt: adapters.Receipt{"role": "r-old"}}
	res, err := c.Bind(t.Context(), adapters.BindRequest{InstanceID: "i-1", BindingID: "b-new", Offering: "o", Plan: testPlan, Predecessor: pred})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.got.Predecessor, pred) {
		t.Errorf("the adapter got predecessor %+v, want %+v", a.got.Predecessor, pred)
	}
	if want := time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC); !res.ExpiresAt.Equal(want) {
		t.Errorf("expires_at %v, want %v", res.ExpiresAt, want)
	}
	if want := time.Date(2030, 1, 2, 14, 4, 5, 500_000_000, time.UTC); !res.RenewBefore.Equal(want) {
		t.Errorf("renew_before %v, want %v", res.RenewBefore, want)
	}

	// A bind that is no rotation sends no predecessor at all.
	if _, err := c.Bind(t.Context(), adapters.BindRequest{InstanceID: "i-1", BindingID: "b-2", Offering: "o", Plan: testPlan}); err != nil {
		t.Fatal(err)
	}
	if a.got.Predecessor != nil {
		t.Errorf("a plain bind reached the adapter with predecessor %+v", a.got.Predecessor)
	}
}

// TestBindTimesMustBeUTC: the protocol carries RFC 3339 in UTC with a
// literal Z; anything else is the adapter's protocol error, terminal,
// naming the field.
func TestBindTimesMustBeUTC(t *testing.T) {
	for _, tc := range []struct{ field, value string }{
		{"expires_at", "2030-01-02T15:04:05+02:00"},
		{"expires_at", "2030-01-02 15:04:05Z"},
		{"renew_before", "tomorrow"},
	} {
		t.Run(tc.field+"="+tc.value, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if strings.HasSuffix(r.URL.Path, "/capabilities") {
					_ = json.NewEncoder(w).Encode(map[string]any{"protocol": remote.ProtocolVersion, "name": "x", "version": "1", "capabilities": []string{}})
					return
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"credentials": map[string]any{"token": "t"}, tc.field: tc.value})
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL, remote.Options{})
			_, err := c.Bind(t.Context(), adapters.BindRequest{InstanceID: "i-1", BindingID: "b-1", Offering: "o", Plan: testPlan})
			if err == nil || !adapters.IsTerminal(err) || !errors.Is(err, remote.ErrProtocolMismatch) {
				t.Fatalf("Bind: %v, want a terminal protocol mismatch", err)
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "literal Z") {
				t.Errorf("error %q does not name %s and the rule", err, tc.field)
			}
		})
	}
}
