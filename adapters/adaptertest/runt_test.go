package adaptertest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/conformance"
)

// helperEnv makes TestRunTHelper run its deliberately failing kit only
// when TestRunTReportsChecksAsSubtests starts it in a child process.
const helperEnv = "AGORA_ADAPTERTEST_HELPER"

// brokenPing is the reference adapter with a Ping that always fails, so
// exactly one check (ping) fails.
type brokenPing struct{ *memadapter.Adapter }

func (brokenPing) Ping(context.Context) error { return errors.New("backend unreachable") }

func brokenPingFactory(backend *memadapter.Backend) adapters.Factory {
	return adapters.Factory{Name: "broken-ping", New: func(_ context.Context, cfg adapters.Config) (adapters.Adapter, error) {
		a, err := memadapter.New(cfg, backend)
		if err != nil {
			return nil, err
		}
		return brokenPing{a}, nil
	}}
}

func options(factory adapters.Factory) conformance.Options {
	return conformance.Options{
		Factory:  factory,
		Settings: adapters.MapSettings(map[string]any{"prefix": "rt-"}),
		Plans:    []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}}},
	}
}

func TestRunTAgainstReferenceAdapter(t *testing.T) {
	backend := memadapter.NewBackend()
	report := adaptertest.RunT(t, options(memadapter.Factory(backend)))
	if report.Failed() || len(report.Results) == 0 {
		t.Fatalf("the reference adapter must pass every check: %s", report.Summary())
	}
	if left := backend.Databases(); len(left) > 0 {
		t.Errorf("the run left databases behind: %q", left)
	}
}

// TestRunTHelper is not a test of its own: run by the test below in a
// child process, it fails on purpose.
func TestRunTHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("runs only as the child process of TestRunTReportsChecksAsSubtests")
	}
	adaptertest.RunT(t, options(brokenPingFactory(memadapter.NewBackend())))
}

// A failed check must fail the Go test as a subtest of its own name, with
// its hint, and a skipped one must show as skipped, not as passed.
func TestRunTReportsChecksAsSubtests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the test binary again")
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRunTHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the helper must fail with a failed check, got err %v:\n%s", err, out)
	}
	for _, want := range []string{
		"--- FAIL: TestRunTHelper/ping",
		"backend unreachable",
		"hint: ",
		"--- PASS: TestRunTHelper/provision",
		"--- SKIP: TestRunTHelper/credentials-work",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
