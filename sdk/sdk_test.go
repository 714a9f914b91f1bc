package sdk_test

import (
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// TestPythonSDK runs sdk/python's unittest suite (signing vectors,
// verification, routing, error codes, idempotency helpers, one request
// over HTTP).
func TestPythonSDK(t *testing.T) {
	runSDKTests(t, pythonRan, "python3", "install Python 3.11+", "-B", "-m", "unittest", "discover", "-s", "python", "-t", "python", "-v")
}

// TestNodeSDK runs sdk/node's node:test suite, the same ground in Node.
func TestNodeSDK(t *testing.T) {
	runSDKTests(t, nodePassed, "node", "install Node 20+", "--test", "node/")
}

// pythonRan and nodePassed find how many tests ran: Python 3.11 exits 0
// when discovery finds none, which must not count as a pass.
var (
	pythonRan  = regexp.MustCompile(`(?m)^Ran (\d+) tests? in`)
	nodePassed = regexp.MustCompile(`(?m)^# pass (\d+)$`)
)

func runSDKTests(t *testing.T, ran *regexp.Regexp, interpreter, install string, args ...string) {
	if testing.Short() {
		t.Skipf("starts %s; skipped with -short", interpreter)
	}
	bin, err := exec.LookPath(interpreter)
	if err != nil {
		t.Fatalf("%s is needed to test its SDK (%s, or run go test -short): %v", interpreter, install, err)
	}
	cmd := exec.CommandContext(t.Context(), bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", interpreter, args, err, out)
	}
	t.Logf("%s", out)
	n := 0
	if m := ran.FindSubmatch(out); m != nil {
		n, _ = strconv.Atoi(string(m[1]))
	}
	if n < 10 {
		t.Fatalf("%s %v ran %d tests; did a test file move?", interpreter, args, n)
	}
}
