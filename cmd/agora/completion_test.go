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
		n, array := completionWords(line)
		prog := "source " + script + "\nCOMP_WORDS=" + array + "\nCOMP_CWORD=" + strconv.Itoa(n-1) + "\n_agora\necho \"${COMPREPLY[*]}\"\n"
		out, err := exec.CommandContext(t.Context(), bash, "--norc", "--noprofile", "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: bash: %v\n%s", line, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != want {
			t.Errorf("completing %q: got %q, want %q", line, got, want)
		}
	}
}

// TestZshCompletion: zsh is not on every machine, so the script's cases
// are checked against the table; where zsh is, the script is parsed and
// run with zsh's completion helpers (_describe, _files, _values) replaced
// by ones that print what they were given.
func TestZshCompletion(t *testing.T) {
	script := completionScript(t, "zsh")
	if zsh, err := exec.LookPath("zsh"); err == nil {
		if out, err := exec.CommandContext(t.Context(), zsh, "-n", script).CombinedOutput(); err != nil {
			t.Fatalf("zsh -n: %v\n%s", err, out)
		}
		for line, want := range map[string]string{
			"agora pro":                     "producer:a producer's self-service (login, apply, status, ...)",
			"agora producer lo":             "login:check and save your token",
			"agora serve -":                 "--config:config file (YAML)",
			"agora catalog check -o ":       "text\njson",
			"agora adapter init --lang ":    "FILES",
			"agora admin instances list --": "--stuck-for:with --state stuck",
		} {
			n, array := completionWords(line)
			prog := `compdef() { :; }
_describe() { local arr=${@[-1]}; print -l -- ${(P)arr}; }
_files() { print -- FILES; }
_values() { shift; print -l -- "$@"; }
source ` + script + `
words=` + array + `; CURRENT=` + strconv.Itoa(n) + `
_agora
`
			out, err := exec.CommandContext(t.Context(), zsh, "-f", "-c", prog).CombinedOutput()
			if err != nil || !strings.Contains(string(out), want) {
				t.Errorf("zsh completing %q: %v, output lacks %q:\n%s", line, err, want, out)
			}
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

// completionWords splits a command line as the shell does for completion
// (a trailing space starts an empty word: the one being completed) and
// returns how many words there are and the words as a shell array.
func completionWords(line string) (int, string) {
	words := strings.Fields(line)
	if strings.HasSuffix(line, " ") {
		words = append(words, "")
	}
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = "'" + w + "'"
	}
	return len(words), "(" + strings.Join(quoted, " ") + ")"
}
