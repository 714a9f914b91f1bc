package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-osb/agora/producers"
)

// fakeAgoraOf answers status and register for several producers, each
// with her own token, as one Agora does.
func fakeAgoraOf(t *testing.T, tokens map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost && r.URL.Path == "/producers/register" {
			var req producers.CreateRequest
			_ = json.NewDecoder(r.Body).Decode(&req)
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(producers.Created{Producer: producers.Producer{Name: req.Name, State: producers.StatePending}, Token: "agp_" + req.Name + "_new"})
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/producers/")
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "Bearer "+tokens[name] {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"unauthenticated","description":"missing or invalid producer token"}`)
			return
		}
		_ = json.NewEncoder(w).Encode(producers.Status{Producer: producers.Producer{Name: name, State: producers.StateActive}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// loginEnv points the login file at a temporary one and clears the
// variables that override it.
func loginEnv(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agora", "producer.json")
	t.Setenv("AGORA_PRODUCER_CONFIG", path)
	for _, v := range []string{"AGORA_URL", "AGORA_PRODUCER", "AGORA_PRODUCER_TOKEN"} {
		t.Setenv(v, "")
	}
	return path
}

func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := dispatch(t.Context(), commands(), args, streams{in: strings.NewReader(stdin), out: &out, errOut: &errOut})
	if code != 0 {
		t.Fatalf("agora %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	}
	return out.String()
}

func savedLogins(t *testing.T) []loginView {
	t.Helper()
	var views []loginView
	if err := json.Unmarshal([]byte(mustRun(t, "", "producer", "logins", "-o", "json")), &views); err != nil {
		t.Fatal(err)
	}
	return views
}

// TestOneLoginPerProducerAndAgora: a second producer's login keeps the
// first, register adds a login rather than overwriting, and --as acts as
// (or switches to) any saved one.
func TestOneLoginPerProducerAndAgora(t *testing.T) {
	path := loginEnv(t)
	srv := fakeAgoraOf(t, map[string]string{"team-x": "agp_x", "team-y": "agp_y", "team-z": "agp_team-z_new"})
	mustRun(t, "agp_x\n", "producer", "login", "--url", srv.URL, "--name", "team-x")
	out := mustRun(t, "agp_y\n", "producer", "login", "--url", srv.URL, "--name", "team-y")
	if !strings.Contains(out, "your login as team-x at "+srv.URL+" stays saved: agora producer login --as team-x switches back") {
		t.Errorf("the second login does not say the first is kept:\n%s", out)
	}
	if got := savedLogins(t); len(got) != 2 || got[0] != (loginView{URL: srv.URL, Name: "team-x"}) || got[1] != (loginView{URL: srv.URL, Name: "team-y", Active: true}) {
		t.Errorf("logins: %+v", got)
	}
	// Status acts as the active login (team-y's token), or as --as says.
	if out := mustRun(t, "", "producer", "status", "-o", "json"); !strings.Contains(out, `"name": "team-y"`) {
		t.Errorf("status as the active login:\n%s", out)
	}
	if out := mustRun(t, "", "producer", "status", "--as", "team-x", "-o", "json"); !strings.Contains(out, `"name": "team-x"`) {
		t.Errorf("status --as team-x:\n%s", out)
	}
	mustRun(t, "", "producer", "login", "--as", "team-x")
	if got := savedLogins(t); !got[0].Active || got[1].Active {
		t.Errorf("login --as team-x did not switch: %+v", got)
	}
	if out := mustRun(t, "", "producer", "logins"); !strings.Contains(out, "*       team-x") {
		t.Errorf("logins does not mark the active one:\n%s", out)
	}

	out = mustRun(t, "", "producer", "register", "--url", srv.URL, "--name", "team-z", "--contact", "z@example.com")
	if !strings.Contains(out, "your login as team-x at "+srv.URL+" stays saved") {
		t.Errorf("register does not say the login it replaced as active is kept:\n%s", out)
	}
	data, _ := os.ReadFile(path)
	var f loginFile
	if err := json.Unmarshal(data, &f); err != nil || len(f.Logins) != 3 || f.Logins[0].Token != "agp_x" || f.Logins[1].Token != "agp_y" || f.Active.Name != "team-z" {
		t.Errorf("after register the file holds %s", data)
	}

	var errOut bytes.Buffer
	if code := dispatch(t.Context(), commands(), []string{"producer", "status", "--as", "team-q"}, streams{out: io.Discard, errOut: &errOut}); code == 0 ||
		!strings.Contains(errOut.String(), "no saved login for producer team-q") {
		t.Errorf("--as an unknown producer: exit %d, %s", code, errOut.String())
	}
}

// TestTheSingleLoginFileIsMigrated: the file agora wrote before it kept
// several logins still works, and its login survives the next one.
func TestTheSingleLoginFileIsMigrated(t *testing.T) {
	path := loginEnv(t)
	srv := fakeAgoraOf(t, map[string]string{"team-x": "agp_x", "team-y": "agp_y"})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, `{"url": "`+srv.URL+`", "name": "team-x", "token": "agp_x"}`)
	if got := savedLogins(t); len(got) != 1 || got[0] != (loginView{URL: srv.URL, Name: "team-x", Active: true}) {
		t.Fatalf("the old file reads as %+v", got)
	}
	if out := mustRun(t, "", "producer", "status", "-o", "json"); !strings.Contains(out, `"name": "team-x"`) {
		t.Errorf("status with the old file:\n%s", out)
	}
	mustRun(t, "agp_y", "producer", "login", "--url", srv.URL, "--name", "team-y")
	data, _ := os.ReadFile(path)
	var f loginFile
	if err := json.Unmarshal(data, &f); err != nil || len(f.Logins) != 2 || f.Logins[0] != (producerLogin{URL: srv.URL, Name: "team-x", Token: "agp_x"}) || f.URL != "" {
		t.Errorf("after migrating: %s", data)
	}
}

// TestLoginPromptsWithoutEcho runs agora producer login on a real
// terminal (a pty, driven by Python's pty module): it prompts, the token
// typed is not echoed, and the login is saved.
func TestLoginPromptsWithoutEcho(t *testing.T) {
	path := loginEnv(t)
	srv := fakeAgoraOf(t, map[string]string{"team-x": "agp_typed_secret"})
	out, err := loginOnATerminal(t, srv.URL, "agp_typed_secret\n")
	if err != nil {
		t.Fatalf("login on a terminal: %v\n%s", err, out)
	}
	if !strings.Contains(out, "token of producer team-x at "+srv.URL+" (input hidden): ") {
		t.Errorf("no prompt on the terminal:\n%s", out)
	}
	if strings.Contains(out, "agp_typed_secret") {
		t.Errorf("the token was echoed:\n%s", out)
	}
	if !strings.Contains(out, "logged in to "+srv.URL+" as producer team-x") {
		t.Errorf("not logged in:\n%s", out)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "agp_typed_secret") {
		t.Errorf("the typed token was not saved: %s", data)
	}
}

// TestLoginPromptCanBeInterrupted: Ctrl-C at the prompt ends the login
// (agora catches the signal to cancel its context, so the read must give
// way to it) and gives the terminal its echo back.
func TestLoginPromptCanBeInterrupted(t *testing.T) {
	path := loginEnv(t)
	srv := fakeAgoraOf(t, map[string]string{"team-x": "agp_x"})
	out, err := loginOnATerminal(t, srv.URL, "\x03")
	if err == nil || strings.Contains(out, "STILL RUNNING") || !strings.Contains(out, "login cancelled") {
		t.Errorf("Ctrl-C at the prompt: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ECHO after: True") {
		t.Errorf("the terminal's echo was not restored:\n%s", out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a cancelled login saved something: %v", err)
	}
}

// loginOnATerminal runs agora producer login --name team-x against url
// on a pty and types input at its prompt; the test binary is agora
// (TestMain).
func loginOnATerminal(t *testing.T, url, input string) (string, error) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 to drive a terminal with")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), python, "-c", ptyDriver, self, "producer", "login", "--url", url, "--name", "team-x")
	cmd.Env = append(os.Environ(), "AGORA_CLI_TEST_MAIN=1")
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ptyDriver runs argv[1:] on a new pty, waits until the program has
// turned echo off (term.ReadPassword), types stdin's bytes, and prints
// everything the terminal showed, then whether echo was on again after
// the program answered; its exit status is the program's. A program that
// prompts but never turns echo off gets the bytes anyway, after a while,
// and one that never ends after them is killed, so that a test fails on
// what it sees instead of hanging.
const ptyDriver = `
import os, pty, sys, termios, select, signal
line = sys.stdin.buffer.read()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
shown = b""
typed = False
polls_since_prompt = polls_since_typed = 0
echo_after = None
while True:
    if b"(input hidden)" in shown:
        polls_since_prompt += 1
    if typed:
        polls_since_typed += 1
    if polls_since_typed > 400:
        os.kill(pid, signal.SIGKILL)
        shown += b"\nSTILL RUNNING after the input was typed\n"
        break
    if not typed and (not (termios.tcgetattr(fd)[3] & termios.ECHO) or polls_since_prompt > 200):
        os.write(fd, line)
        typed = True
    r, _, _ = select.select([fd], [], [], 0.05)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        shown += data
        if typed:
            try:
                echo_after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
            except OSError:
                pass
sys.stdout.buffer.write(shown)
sys.stdout.write("\nECHO after: %s\n" % echo_after)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`

// TestMain lets a test run the agora command itself (AGORA_CLI_TEST_MAIN),
// as the pty test does: the test binary is the agora binary then.
func TestMain(m *testing.M) {
	if os.Getenv("AGORA_CLI_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}
