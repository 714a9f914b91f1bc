package remote_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/examples/remote-adapter-go/files"
	"github.com/agora-osb/agora/internal/syncbuf"
)

// conformFiles runs the full conformance (protocol checks and kit)
// against a files adapter at url, whose instances live under root.
func conformFiles(t *testing.T, url, root string) conformance.Report {
	t.Helper()
	check, revoked, isolation := fileChecks()
	report, err := remote.Conformance(t.Context(), remote.ConformanceOptions{
		URL: url, Secret: testSecret, Plan: testPlan,
		InvalidProvisionParameters: map[string]any{"bogus": 1},
		CheckCredentials:           check, CheckRevoked: revoked, CheckIsolation: isolation,
		Timeout: 10 * time.Second, Logf: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(root); len(left) > 0 {
		t.Errorf("the run left %d instance directories behind in %s", len(left), root)
	}
	return report
}

// TestGoExample serves the Go example's adapter in process.
func TestGoExample(t *testing.T) {
	root := t.TempDir()
	srv := httptest.NewServer(remote.Handler(&files.Adapter{Root: root},
		remote.HandlerOptions{Name: "files-go", Version: "test", Secret: testSecret}))
	defer srv.Close()
	requireAllPassed(t, conformFiles(t, srv.URL, root))
}

// TestPythonExample starts examples/remote-adapter-python/adapter.py as
// its own process, the way a producer runs it.
func TestPythonExample(t *testing.T) {
	root := t.TempDir()
	url := startExample(t, "python3", "install Python 3.11+", "../../examples/remote-adapter-python/adapter.py", root)
	requireAllPassed(t, conformFiles(t, url, root))
}

// TestNodeExample starts examples/remote-adapter-node/adapter.js the same
// way: the Node SDK must pass the whole kit too.
func TestNodeExample(t *testing.T) {
	root := t.TempDir()
	url := startExample(t, "node", "install Node 20+", "../../examples/remote-adapter-node/adapter.js", root)
	requireAllPassed(t, conformFiles(t, url, root))
}

// TestPythonExampleIsShort holds the Python example to what the README
// and the producer guide promise: on the SDK, a whole adapter is at most
// 60 lines, not counting blank lines and comments (docstrings count).
func TestPythonExampleIsShort(t *testing.T) {
	src, err := os.ReadFile("../../examples/remote-adapter-python/adapter.py")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for line := range strings.SplitSeq(string(src), "\n") {
		if trimmed := strings.TrimSpace(line); trimmed != "" && !strings.HasPrefix(trimmed, "#") {
			lines++
		}
	}
	t.Logf("examples/remote-adapter-python/adapter.py: %d lines of code", lines)
	if lines > 60 {
		t.Errorf("examples/remote-adapter-python/adapter.py has %d lines of code (not blank, not a comment); the promise is 60 at most: "+
			"move plumbing into sdk/python/agora_adapter.py instead", lines)
	}
}

// startExample starts an example adapter script with interpreter on a
// free port (port 0; it prints the address it got) and stops it when the
// test ends.
func startExample(t *testing.T, interpreter, install, script, root string) string {
	t.Helper()
	if testing.Short() {
		t.Skipf("starts a %s process; skipped with -short", interpreter)
	}
	bin, err := exec.LookPath(interpreter)
	if err != nil {
		t.Fatalf("%s is needed to test %s (%s, or run go test -short): %v", interpreter, script, install, err)
	}
	script, err = filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	// Stat also makes go test's cache notice when the script changes.
	if _, err := os.Stat(script); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, script, "--listen", "127.0.0.1:0", "--secret", testSecret, "--root", root)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", script, err)
	}
	name := filepath.Base(script)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, stderr.String())
		}
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	select {
	case line := <-lines:
		url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
		if !ok {
			t.Fatalf("%s did not start: %q\n%s", name, line, stderr.String())
		}
		return url
	case <-time.After(20 * time.Second):
		t.Fatalf("%s printed no address within 20s\n%s", name, stderr.String())
	}
	return ""
}

// The kit must be able to fail: each broken adapter below fails the check
// that guards against its fault, and only the checks that should.

func TestConformanceFailsWithoutSignatureChecks(t *testing.T) {
	srv, _ := serveMemadapter(t, remote.HandlerOptions{Name: "memory", SkipSignature: true})
	report := conformMem(t, srv.URL)
	for _, name := range []string{remote.CheckRejectsUnsigned, remote.CheckRejectsBadSignature, remote.CheckRejectsStale, remote.CheckRejectsReplay} {
		if c := result(report, name); !c.Failed() || c.Hint == "" {
			t.Errorf("%s: want a failure with a hint against an adapter that skips signature checks, got %+v", name, c)
		}
	}
	if c := result(report, "provision"); !c.Passed {
		t.Errorf("provision should still pass: %+v", c)
	}
}

func TestConformanceFailsWithoutReplayCache(t *testing.T) {
	// A handler built afresh for every request forgets every signature:
	// it checks them, but lets a captured request through again.
	mem := memAdapter(t)
	forgetful := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		remote.Handler(mem, remote.HandlerOptions{Name: "memory", Secret: testSecret}).ServeHTTP(w, r)
	}))
	defer forgetful.Close()
	report := conformMem(t, forgetful.URL)
	if c := result(report, remote.CheckRejectsReplay); !c.Failed() || !strings.Contains(c.Detail, "second time") {
		t.Errorf("rejects-replay: want a failure, got %+v", c)
	}
	for _, name := range []string{remote.CheckRejectsUnsigned, remote.CheckRejectsBadSignature, remote.CheckRejectsStale, "provision"} {
		if c := result(report, name); !c.Passed {
			t.Errorf("%s should pass: %+v", name, c)
		}
	}
}

func TestConformanceFailsForABrokenAdapter(t *testing.T) {
	srv := httptest.NewServer(remote.Handler(strictDeprovision{memAdapter(t)}, remote.HandlerOptions{Name: "broken", Secret: testSecret}))
	defer srv.Close()
	report := conformMem(t, srv.URL)
	if c := result(report, "deprovision-missing"); !c.Failed() {
		t.Errorf("deprovision-missing: want a failure, got %+v", c)
	}
	if !report.Failed() {
		t.Error("the report does not count as failed")
	}
}

func TestConformanceOfAWrongURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	report, err := remote.Conformance(t.Context(), remote.ConformanceOptions{URL: srv.URL, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	c := result(report, remote.CheckCapabilities)
	if !c.Failed() || !strings.Contains(c.Detail, srv.URL) || !strings.Contains(c.Detail, "protocol error body") {
		t.Errorf("capabilities: want a failure naming the URL, got %+v", c)
	}
	if c := result(report, "kit"); !c.Skipped {
		t.Errorf("the kit should not run against an adapter that does not speak the protocol: %+v", c)
	}
}

func TestConformanceRejectsBadOptions(t *testing.T) {
	_, err := remote.Conformance(t.Context(), remote.ConformanceOptions{URL: "ftp://x"})
	if err == nil || !strings.Contains(err.Error(), "scheme") || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("want every problem with the options at once, got %v", err)
	}
}

func conformMem(t *testing.T, url string) conformance.Report {
	t.Helper()
	report, err := remote.Conformance(t.Context(), remote.ConformanceOptions{
		URL: url, Secret: testSecret, ProvisionParameters: map[string]any{"max_keys": 5}, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return report
}

func memAdapter(t *testing.T) adapters.Adapter {
	t.Helper()
	mem, err := memadapter.New(adapters.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// strictDeprovision breaks the contract: a missing instance is an error.
type strictDeprovision struct{ adapters.Adapter }

func (s strictDeprovision) Deprovision(ctx context.Context, req adapters.DeprovisionRequest) (adapters.DeprovisionResult, error) {
	res, err := s.Adapter.Deprovision(ctx, req)
	if errors.Is(err, adapters.ErrNotFound) {
		return res, fmt.Errorf("deprovision %s: no such database", req.InstanceID)
	}
	return res, err
}
