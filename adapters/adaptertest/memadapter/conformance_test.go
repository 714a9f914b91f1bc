package memadapter_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/conformance"
)

// TestConformance is the file every producer writes for her adapter: the
// Backend stands in for her real server, and the Check functions play the
// bound application.
func TestConformance(t *testing.T) {
	backend := memadapter.NewBackend()
	adaptertest.RunT(t, conformance.Options{
		Factory:                    memadapter.Factory(backend),
		Settings:                   adapters.MapSettings(map[string]any{"prefix": "ct-"}),
		Plans:                      []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}}},
		ProvisionParameters:        map[string]any{"max_keys": 5},
		InvalidProvisionParameters: map[string]any{"max_keys": 0},
		CheckCredentials: func(_ context.Context, creds map[string]any) error {
			return backend.Put(creds, "probe", "ok")
		},
		CheckRevoked: func(_ context.Context, creds map[string]any) error {
			if backend.Put(creds, "probe", "after unbind") == nil {
				return errors.New("the credentials still work")
			}
			return nil
		},
		CheckIsolation: func(_ context.Context, credsA, credsB map[string]any) error {
			intruder := maps.Clone(credsA)
			intruder["database"] = credsB["database"]
			if _, err := backend.Get(intruder, "probe"); !errors.Is(err, memadapter.ErrAuthentication) {
				return errors.New("instance A's login reads instance B's data")
			}
			return nil
		},
	})
	if left := backend.Databases(); len(left) > 0 {
		t.Errorf("the conformance run left databases behind: %q", left)
	}
}

func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	_, err := memadapter.New(adapters.Config{
		Settings: adapters.MapSettings(map[string]any{"prefix": "Not Valid!"}),
		Plans: []adapters.PlanConfig{
			{Plan: adapters.Plan{ID: "p1", Name: "small"}, Settings: adapters.MapSettings(map[string]any{"typo": 1})},
		},
	}, nil)
	if err == nil {
		t.Fatal("New accepted an invalid prefix and an unknown plan field")
	}
	for _, want := range []string{"config.prefix", `plans[0] (small).config`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}
