package main

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// completionScript writes agora's completion script for shell to a file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "completion", shell)
	if code != 0 || out == "" {
		t.Fatalf("agora completion %s: exit %d, %s", shell, code, errOut)
	}
	path := filepath.Join(t.TempDir(), "agora."+shell)
	writeFile(t, path, out)
	return path
}

// TestBashCompletion sources the generated script in a real bash and asks
// it to complete command lines, as the shell does on Tab.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on PATH")
	}
	script := completionScript(t, "bash")
	if out, err := exec.CommandContext(t.Context(), bash, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	for line, want := range map[string]string{
		"agora ":                          "serve dev catalog adapters adapter producer admin version completion",
		"agora pro":                       "producer",
		"agora producer lo":               "login logins",
		"agora admin producers ":          "list create approve suspend auto-approve token",
		"agora admin instances list --st": "--state --stuck-for",
		"agora serve -":                   "--config",
		"agora adapter test --u":          "--url",
		"agora catalog check -o ":         "text json",
		"agora producer status -o js":     "json",
		"agora completion ":               "",
	} {
		// COMP_WORDS as bash splits the line; a trailing space starts
		// an empty word, the one being completed.
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_agora\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.CommandContext(t.Context(), bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: bash: %v\n%s", line, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("completing %q: got %q, want %q", line, got, want)
		}
	}
}

// TestZshCompletionCoversTheTable: zsh is not on every machine, so the
// script's cases are checked against the table; zsh -n runs when it is.
func TestZshCompletionCoversTheTable(t *testing.T) {
	script := completionScript(t, "zsh")
	if zsh, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.CommandContext(t.Context(), zsh, "-n", script).CombinedOutput(); err != nil {
			t.Fatalf("zsh -n: %v\n%s", err, out)
		}
	}
	code, out, _ := runCLI(t, "completion", "zsh")
	if code != 0 || !strings.HasPrefix(out, "#compdef agora\n") || !strings.Contains(out, "compdef _agora agora") {
		t.Fatalf("zsh script header or compdef missing:\n%s", out)
	}
	for _, want := range []string{
		`"/producer") subs=('login:check and save your token`,
		`"/admin/instances/list") subs=() flags=(`,
		`'--stuck-for:with --state stuck: in progress for this long'`,
		`'-o:format of the output: text or json'`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("zsh script lacks %q", want)
		}
	}
	walk(commands(), nil, func(_ command, path []string) {
		if !strings.Contains(out, "\t"+`"`+pathKey(path)+`") subs=`) {
			t.Errorf("zsh script has no case for %q", pathKey(path))
		}
	})
	if code, _, errOut := runCLI(t, "completion", "fish"); code != 2 || !strings.Contains(errOut, `no completion for "fish"`) {
		t.Errorf("completion fish: exit %d, %s", code, errOut)
	}
}
