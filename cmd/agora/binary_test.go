package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// forbiddenInBinary are packages that must never be linked into agora:
// testing (with its flags and init) and the Go-test wrappers around the
// conformance kit. The runtime kit is package conformance, which is fine.
var forbiddenInBinary = []string{
	"testing.",
	"testing/",
	"github.com/agora-osb/agora/adapters/adaptertest",
}

// nmLine is one line of `go tool nm`: an address (absent for undefined
// symbols), a one-letter type and the name, which may hold spaces.
var nmLine = regexp.MustCompile(`^\s*(?:[0-9a-f]+\s+)?[A-Za-z]\s+(.+)$`)

// TestBinaryLinksNoTestCode builds the agora binary and reads its symbol
// table: a production import of a test helper (as adaptertest once was,
// through the remote adapter and the producer gate) links package
// testing, its init and its flags into every deployment.
func TestBinaryLinksNoTestCode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agora binary")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "agora")
	build := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(t.Context(), goTool, "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}

	var found []string
	sawMain := false
	for line := range strings.SplitSeq(string(out), "\n") {
		m := nmLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := m[1]
		if name == "main.main" {
			sawMain = true
		}
		for _, prefix := range forbiddenInBinary {
			if strings.HasPrefix(name, prefix) {
				found = append(found, name)
				break
			}
		}
	}
	// Without main.main the symbol table was not read at all, and finding
	// nothing forbidden in it would prove nothing.
	if !sawMain {
		t.Fatalf("main.main is not among the %d lines of go tool nm: the symbol table was not read", strings.Count(string(out), "\n"))
	}
	if len(found) > 0 {
		if len(found) > 20 {
			found = append(found[:20], "...")
		}
		t.Errorf("the agora binary links test code; find the import with `go list -deps ./cmd/agora` "+
			"(production code runs the kit through adapters/conformance, never adapters/adaptertest):\n%s", strings.Join(found, "\n"))
	}
}
