package remote_test

import (
	"context"
	"errors"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/remote"
)

const testSecret = "test-secret-shared-with-agora"

var testPlan = adapters.Plan{ID: "p1", Name: "small"}

// serveMemadapter serves a fresh memadapter through remote.Handler.
func serveMemadapter(t *testing.T, opts remote.HandlerOptions) (*httptest.Server, *memadapter.Backend) {
	t.Helper()
	backend := memadapter.NewBackend()
	mem, err := memadapter.New(adapters.Config{Settings: adapters.MapSettings(map[string]any{"prefix": "rt-"})}, backend)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Secret == "" && !opts.SkipSignature {
		opts.Secret = testSecret
	}
	srv := httptest.NewServer(remote.Handler(mem, opts))
	t.Cleanup(srv.Close)
	return srv, backend
}

// memChecks play the bound application of a memadapter backend.
func memChecks(backend *memadapter.Backend) (check, revoked func(context.Context, map[string]any) error, isolation func(context.Context, map[string]any, map[string]any) error) {
	check = func(_ context.Context, creds map[string]any) error { return backend.Put(creds, "probe", "ok") }
	revoked = func(_ context.Context, creds map[string]any) error {
		if backend.Put(creds, "probe", "after unbind") == nil {
			return errors.New("the credentials still work")
		}
		return nil
	}
	isolation = func(_ context.Context, credsA, credsB map[string]any) error {
		intruder := maps.Clone(credsA)
		intruder["database"] = credsB["database"]
		if _, err := backend.Get(intruder, "probe"); !errors.Is(err, memadapter.ErrAuthentication) {
			return errors.New("instance A's login reads instance B's data")
		}
		return nil
	}
	return check, revoked, isolation
}

// fileChecks play the bound application of the files examples: a token
// works while it is the content of a file in <path>/.tokens.
func fileChecks() (check, revoked func(context.Context, map[string]any) error, isolation func(context.Context, map[string]any, map[string]any) error) {
	holds := func(dir, token string) bool {
		entries, _ := os.ReadDir(filepath.Join(dir, ".tokens"))
		for _, e := range entries {
			if b, err := os.ReadFile(filepath.Join(dir, ".tokens", e.Name())); err == nil && string(b) == token {
				return true
			}
		}
		return false
	}
	str := func(creds map[string]any, key string) string { s, _ := creds[key].(string); return s }
	check = func(_ context.Context, creds map[string]any) error {
		if !holds(str(creds, "path"), str(creds, "token")) {
			return errors.New("the token grants nothing in its directory")
		}
		return nil
	}
	revoked = func(_ context.Context, creds map[string]any) error {
		if holds(str(creds, "path"), str(creds, "token")) {
			return errors.New("the token still works")
		}
		return nil
	}
	isolation = func(_ context.Context, credsA, credsB map[string]any) error {
		if str(credsA, "path") == str(credsB, "path") || holds(str(credsB, "path"), str(credsA, "token")) {
			return errors.New("one instance's token works in the other's directory")
		}
		return nil
	}
	return check, revoked, isolation
}

// requireAllPassed fails the test for every failed or skipped check,
// except the skips listed.
func requireAllPassed(t *testing.T, report conformance.Report, allowSkips ...string) {
	t.Helper()
	for _, c := range report.Results {
		switch {
		case c.Failed():
			t.Errorf("FAIL %s: %s\nhint: %s", c.Name, c.Detail, c.Hint)
		case c.Skipped && !contains(allowSkips, c.Name):
			t.Errorf("SKIP %s: %s", c.Name, c.Detail)
		}
	}
	if t.Failed() {
		var b strings.Builder
		report.Print(&b)
		t.Log("\n" + b.String())
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func result(report conformance.Report, name string) conformance.CheckResult {
	for _, c := range report.Results {
		if c.Name == name {
			return c
		}
	}
	return conformance.CheckResult{Name: name, Detail: "not in the report"}
}

func newClient(t *testing.T, url string, opts remote.Options, edit ...func(*remote.Settings)) *remote.Client {
	t.Helper()
	retries := 0
	s := remote.Settings{URL: url, Secret: testSecret, Timeout: "5s", Retries: &retries, Producer: "test-team"}
	for _, e := range edit {
		e(&s)
	}
	c, err := remote.New(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
