package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/internal/devvault"
)

// appChecks are the kit's checks the CLI cannot run against these
// projects: they use the credentials, whose type ("files" storage with a
// token) the kit has no verifier for, or need parameters the adapter must
// refuse.
var appChecks = []string{"credentials-work", "credentials-revoked", "isolation", "deprovision-revokes-bindings", "invalid-parameters"}

// TestAdapterInitProjectsPassTheKit is the producer's first minutes, for
// each language: `agora adapter init`, `DIR/run --listen --secret` with
// the secret init wrote into slice.yml, and `agora adapter test` against
// it, which must pass with no failure.
func TestAdapterInitProjectsPassTheKit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Python, Node and a go build; skipped with -short")
	}
	repo, err := devvault.FindRepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"python", "node", "go"} {
		t.Run(lang, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "files-"+lang)
			var out, errOut bytes.Buffer
			args := []string{"init", "--lang", lang, "--offering", "team-x-files", dir}
			if lang == "go" {
				args = append(args, "--agora-module", repo)
			}
			if err := adapterCmd(t.Context(), args, &out, &errOut); err != nil {
				t.Fatalf("init: %v\n%s%s", err, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), "./run --listen") || !strings.Contains(out.String(), "agora adapter test --url") {
				t.Errorf("init does not say what to run next:\n%s", out.String())
			}
			secret := sliceSecret(t, filepath.Join(dir, "slice.yml"))
			url := startRun(t, dir, secret)

			var report, stderr bytes.Buffer
			err := adapterCmd(t.Context(), []string{"test", "--url", url, "--secret", secret, "-o", "json"}, &report, &stderr)
			var res struct {
				Passed bool
				Checks []struct{ Name, Result, Detail string }
			}
			if jerr := json.Unmarshal(report.Bytes(), &res); jerr != nil {
				t.Fatalf("agora adapter test: %v, %v\n%s%s", err, jerr, report.String(), stderr.String())
			}
			if err != nil || !res.Passed {
				t.Errorf("agora adapter test failed (%v):\n%s", err, report.String())
			}
			passed := 0
			for _, c := range res.Checks {
				switch {
				case c.Result == "pass":
					passed++
				case c.Result == "skip" && slices.Contains(appChecks, c.Name):
				default:
					t.Errorf("%s: %s %s", c.Name, c.Result, c.Detail)
				}
			}
			if passed < 20 {
				t.Errorf("only %d checks passed", passed)
			}
			t.Logf("%s: %d of %d checks passed", lang, passed, len(res.Checks))
			if left, _ := os.ReadDir(filepath.Join(dir, "data")); len(left) > 0 {
				t.Errorf("the kit's instances are still in %s/data: %d entries", dir, len(left))
			}
		})
	}
}

// sliceSecret reads config.secret as the README's awk line does.
func sliceSecret(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "secret:" {
			return f[1]
		}
	}
	t.Fatalf("%s has no secret:\n%s", path, data)
	return ""
}

// startRun starts DIR/run on a free port and returns its URL; it is
// stopped when the test ends. A Go project builds first, which may take
// a while on a busy machine.
func startRun(t *testing.T, dir, secret string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(dir, "run"), "--listen", "127.0.0.1:0", "--secret", secret)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s/run: %v", dir, err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s/run log:\n%s", dir, stderr.String())
		}
	})
	select {
	case line := <-lines:
		url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
		if !ok {
			t.Fatalf("%s/run did not start: %q", dir, line)
		}
		return url
	case <-time.After(3 * time.Minute):
		t.Fatalf("%s/run printed no address within 3 minutes", dir)
	}
	return ""
}

// TestAdapterInitRefusesToOverwrite: a directory that is not empty is
// refused, with the files init would replace named and left alone;
// --force replaces them and says which.
func TestAdapterInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slice.yml"), "mine\n")
	var out, errOut bytes.Buffer
	err := adapterCmd(t.Context(), []string{"init", "--lang", "node", dir}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "would replace slice.yml") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("want a refusal naming slice.yml and --force, got %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "slice.yml")); string(got) != "mine\n" {
		t.Error("the refused init changed slice.yml")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("the refused init wrote %d files", len(entries)-1)
	}
	if err := adapterCmd(t.Context(), []string{"init", "--force", "--lang", "node", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "replaced (they existed): slice.yml") {
		t.Errorf("--force must say what it replaced:\n%s", out.String())
	}
	for _, args := range [][]string{{"init", dir}, {"init", "--lang", "cobol", t.TempDir()}, {"init", "--lang", "go"}} {
		if err := adapterCmd(t.Context(), args, &out, &errOut); err == nil {
			t.Errorf("agora adapter %q: want an error", args)
		}
	}
}
