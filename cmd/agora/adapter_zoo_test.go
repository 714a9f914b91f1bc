package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/agora-osb/agora/internal/zoo"
)

// zooRedis is the real Redis the zoo adapters work on.
const zooRedis = "127.0.0.1:6379"

// TestAdapterTestCatchesTheZoo runs `agora adapter test` with only --url
// and --secret (and --timeout for the adapter that hangs) against each
// broken adapter of the zoo and proves the kit fails it with the check
// and words that name the defect, cleans up what it created even when
// checks fail halfway, and passes the correct adapter with no failure
// and no unverified credential type.
func TestAdapterTestCatchesTheZoo(t *testing.T) {
	admin := zooAdmin(t)
	tests := []struct {
		defect zoo.Defect
		flags  []string
		// failed maps each check that must fail to words its detail must
		// hold; no other check may fail.
		failed map[string]string
	}{
		{defect: zoo.None},
		{defect: zoo.DeprovisionDeletesNothing, failed: map[string]string{
			"deprovision-revokes-bindings": "still work after its instance",
		}},
		{defect: zoo.UnbindRevokesNothing, failed: map[string]string{
			"credentials-revoked": "still authenticates",
		}},
		{defect: zoo.BindWithoutInstance, failed: map[string]string{
			"bind-missing-instance": "returned credentials",
		}},
		{defect: zoo.CredentialsNeverWork, failed: map[string]string{
			"credentials-work": "WRONGPASS",
			"idempotent-bind":  "WRONGPASS", // its credentials do not work either
		}},
		{defect: zoo.SharedKeyspace, failed: map[string]string{
			"isolation": "which another instance's credentials wrote",
		}},
		// The transport faults strike every successful bind, so each check
		// that binds fails with the same words. --timeout keeps the hang
		// short: each bind waits that long.
		{defect: zoo.Hang, flags: []string{"--timeout", "2s"}, failed: binds("no answer before the call's deadline", map[string]string{
			"timeouts": "exceeded --timeout (2s)",
		})},
		{defect: zoo.Garbage, failed: binds("answered 200 with a body that is not a protocol v1 result", nil)},
		{defect: zoo.HugeBody, failed: binds("answer larger than 1048576 bytes", nil)},
		{defect: zoo.ClosesConnection, failed: binds("closed the connection without a complete answer", nil)},
	}
	for _, tt := range tests {
		name := string(tt.defect)
		if name == "" {
			name = "correct"
		}
		t.Run(name, func(t *testing.T) {
			root := zooRoot(t)
			t.Cleanup(func() { _ = zoo.Remove(context.WithoutCancel(t.Context()), admin, root) })
			secret := "zoo-secret-" + root
			srv := httptest.NewServer(zoo.Handler(zoo.New(admin, zooRedis, root, tt.defect), secret))
			t.Cleanup(srv.Close)

			res, out := runAdapterTest(t, append([]string{"--url", srv.URL, "--secret", secret}, tt.flags...))
			var failed []string
			for _, c := range res.Checks {
				// A producer of a remote adapter reads flags and protocol
				// fields, never the Go names of the kit or the adapters package.
				for _, goName := range goNames {
					if strings.Contains(c.Detail+c.Hint, goName) {
						t.Errorf("%s speaks Go (%s) to a CLI user: %s / %s", c.Name, goName, c.Detail, c.Hint)
					}
				}
				if c.Result != "fail" {
					continue
				}
				failed = append(failed, c.Name)
				want, ok := tt.failed[c.Name]
				switch {
				case !ok:
					t.Errorf("%s failed, which this defect must not fail: %s", c.Name, c.Detail)
				case !strings.Contains(c.Detail, want):
					t.Errorf("%s detail = %q, want it to say %q", c.Name, c.Detail, want)
				case c.Hint == "":
					t.Errorf("%s failed without a hint", c.Name)
				}
			}
			for name := range tt.failed {
				if !slices.Contains(failed, name) {
					t.Errorf("%s did not fail", name)
				}
			}
			if res.Passed != (len(tt.failed) == 0) {
				t.Errorf("passed = %v with %d expected failures", res.Passed, len(tt.failed))
			}
			if len(res.Unverified) > 0 {
				t.Errorf("unverified types %q: the zoo's credentials are typed redis", res.Unverified)
			}
			// Whatever failed, the kit removed what it created, unless
			// the defect is that deprovision removes nothing.
			if tt.defect != zoo.DeprovisionDeletesNothing && tt.defect != zoo.UnbindRevokesNothing {
				left, err := zoo.Leftovers(t.Context(), admin, root)
				if err != nil {
					t.Fatal(err)
				}
				if len(left) > 0 {
					t.Errorf("the run left behind: %q", left)
				}
			}
			if t.Failed() {
				t.Logf("agora adapter test printed:\n%s", out)
			}
		})
	}
}

// goNames are Go identifiers no CLI line may contain.
var goNames = []string{"Options.", "adapters.", "conformance.", "BindResult", "ErrNotFound", "ErrInvalidParameters", "CallTimeout", "Poller", "Factory.New"}

// binds expects the checks that bind to fail with words, and more.
func binds(words string, more map[string]string) map[string]string {
	m := map[string]string{"bind": words, "concurrent-repeat": words, "deprovision-revokes-bindings": words}
	maps.Copy(m, more)
	return m
}

type zooReport struct {
	Passed     bool
	Unverified []string
	Checks     []struct{ Name, Result, Detail, Hint string }
}

func runAdapterTest(t *testing.T, args []string) (zooReport, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := adapterCmd(t.Context(), append([]string{"test", "-o", "json"}, args...), &out, &errOut)
	var res zooReport
	if jerr := json.Unmarshal(out.Bytes(), &res); jerr != nil {
		t.Fatalf("agora adapter test: %v, %v\n%s%s", err, jerr, out.String(), errOut.String())
	}
	if (err == nil) != res.Passed {
		t.Errorf("exit error %v, but passed = %v", err, res.Passed)
	}
	return res, out.String()
}

// zooAdmin is a client of the real Redis the zoo adapters work on; the
// test is skipped with -short or without that Redis.
func zooAdmin(t *testing.T) *goredis.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real Redis at " + zooRedis)
	}
	admin := goredis.NewClient(&goredis.Options{Addr: zooRedis})
	t.Cleanup(func() { _ = admin.Close() })
	if err := admin.Ping(t.Context()).Err(); err != nil {
		t.Skipf("no Redis at %s: %v", zooRedis, err)
	}
	return admin
}

func zooRoot(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "agoratest-zoo-" + hex.EncodeToString(b[:])
}
