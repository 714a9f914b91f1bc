package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// runCLI runs agora's command line in process, as main does.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestHelpEverywhere: -h, --help and `help` on every command and
// subcommand of the table print its usage to stdout and exit 0.
func TestHelpEverywhere(t *testing.T) {
	walk(commands(), nil, func(c command, path []string) {
		forms := [][]string{append(path, "-h"), append(path, "--help"), append([]string{"help"}, path...)}
		if len(c.Subcommands) > 0 {
			forms = append(forms, append(path, "help"))
		}
		for _, args := range forms {
			code, out, errOut := runCLI(t, args...)
			want := "Usage: " + strings.Join(append([]string{"agora"}, path...), " ")
			if code != 0 || !strings.HasPrefix(out, want) || errOut != "" {
				t.Errorf("agora %s: exit %d, stdout %q, stderr %q; want 0 and %q", strings.Join(args, " "), code, firstLine(out), errOut, want)
			}
		}
	})
}

func TestHelpListsSubcommandsAndFlags(t *testing.T) {
	_, out, _ := runCLI(t, "producer", "-h")
	for _, want := range []string{"login", "operations", "$AGORA_PRODUCER_TOKEN"} {
		if !strings.Contains(out, want) {
			t.Errorf("agora producer -h lacks %q:\n%s", want, out)
		}
	}
	// -h after other flags is help too, never "flag: help requested".
	code, out, errOut := runCLI(t, "catalog", "check", "-offline", "-h")
	if code != 0 || !strings.Contains(out, "-offline") || strings.Contains(out+errOut, "help requested") {
		t.Errorf("catalog check -offline -h: exit %d\n%s%s", code, out, errOut)
	}
	// Help never shows a password from the environment as a default.
	t.Setenv("AGORA_PASSWORD", "s3cret-in-env")
	_, out, _ = runCLI(t, "admin", "producers", "list", "-h")
	if strings.Contains(out, "s3cret-in-env") || !strings.Contains(out, "-password") {
		t.Errorf("admin help:\n%s", out)
	}
}

func TestUnknownCommandsSayWhatIsKnown(t *testing.T) {
	t.Setenv("AGORA_PRODUCER_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	for _, tc := range []struct {
		args       []string
		say, usage string
		suggest    string
	}{
		{[]string{"bogus"}, `agora: unknown command "bogus"`, "Usage: agora <command>", ""},
		{[]string{"serv"}, `agora: unknown command "serv"`, "Usage: agora <command>", `did you mean "serve"?`},
		{[]string{"producer", "bogus"}, `agora producer: unknown command "bogus"`, "Usage: agora producer <command>", ""},
		{[]string{"producer", "stat"}, `unknown command "stat"`, "Usage: agora producer <command>", `did you mean "status"?`},
		{[]string{"producer", "lgoin"}, `unknown command "lgoin"`, "Usage: agora producer <command>", `did you mean "login"?`},
		{[]string{"admin", "bogus"}, `agora admin: unknown command "bogus"`, "Usage: agora admin <command>", ""},
		{[]string{"admin", "instance", "list"}, `unknown command "instance"`, "Usage: agora admin <command>", `did you mean "instances"?`},
		{[]string{"admin", "producers", "lst"}, `agora admin producers: unknown command "lst"`, "Usage: agora admin producers <command>", `did you mean "list"?`},
		{[]string{"adapter", "tset"}, `agora adapter: unknown command "tset"`, "Usage: agora adapter <command>", `did you mean "test"?`},
		{[]string{"catalog", "chek"}, `agora catalog: unknown command "chek"`, "Usage: agora catalog <command>", `did you mean "check"?`},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		name := strings.Join(tc.args, " ")
		if code != 2 || out != "" {
			t.Errorf("agora %s: exit %d, stdout %q; want 2 and nothing on stdout", name, code, out)
		}
		if !strings.Contains(firstLine(errOut), tc.say) || strings.Count(errOut, "Usage:") != 1 || !strings.Contains(errOut, tc.usage) {
			t.Errorf("agora %s: stderr does not start with %q and show %q once:\n%s", name, tc.say, tc.usage, errOut)
		}
		if strings.Contains(errOut, "not logged in") || strings.Contains(errOut, "did you mean") != (tc.suggest != "") || !strings.Contains(errOut, tc.suggest) {
			t.Errorf("agora %s: want suggestion %q:\n%s", name, tc.suggest, errOut)
		}
	}
	code, _, errOut := runCLI(t, "producer")
	if code != 2 || !strings.Contains(errOut, "missing command") {
		t.Errorf("agora producer: exit %d, %s", code, errOut)
	}
}

func TestSuggestion(t *testing.T) {
	known := []string{"login", "logins", "register", "status", "instances", "operations", "test"}
	for typed, want := range map[string]string{
		"stauts": "status", "tset": "test", "lgoin": "login", "statu": "status", "registr": "register", "op": "operations", "instance": "instances",
		"bogus": "", "x": "", "delete": "",
	} {
		got := suggestion(typed, known)
		if (want == "" && got != "") || (want != "" && !strings.Contains(got, `"`+want+`"`)) {
			t.Errorf("suggestion(%q) = %q, want %q", typed, got, want)
		}
	}
}

func TestVersionReadsTheBuildInfo(t *testing.T) {
	info := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-04T20:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	got := versionOf(info, true, "")
	want := buildVersion{Version: "dev", Commit: "0123abcd", Time: "2026-12-04T20:00:00Z", Modified: true, Go: runtime.Version()}
	if got != want {
		t.Errorf("versionOf(devel build) = %+v, want %+v", got, want)
	}
	info.Main.Version = "v1.4.0"
	if got := versionOf(info, true, ""); got.Version != "v1.4.0" {
		t.Errorf("module version: %+v", got)
	}
	if got := versionOf(info, true, "v2.0.0-rc1"); got.Version != "v2.0.0-rc1" || got.Commit != "0123abcd" {
		t.Errorf("-ldflags override: %+v", got)
	}
	if got := versionOf(nil, false, ""); got.Version != "dev" || got.Go != runtime.Version() {
		t.Errorf("no build info: %+v", got)
	}
	if got, want := want.String(), "agora dev (commit 0123abcd, modified, 2026-12-04T20:00:00Z), built with "+runtime.Version(); got != want {
		t.Errorf("version line %q, want %q", got, want)
	}

	code, out, _ := runCLI(t, "version", "-o", "json")
	var v buildVersion
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Go != runtime.Version() || v.Version == "" {
		t.Errorf("version -o json: exit %d, %s", code, out)
	}
	if code, out, _ := runCLI(t, "version"); code != 0 || !strings.HasPrefix(out, "agora ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: exit %d, %s", code, out)
	}
}

// TestEveryCommandThatPrintsDataTakesOutputJSON: -o text|json on every
// leaf of the table but the few that print no data, and a wrong -o is
// refused before the command does anything.
func TestEveryCommandThatPrintsDataTakesOutputJSON(t *testing.T) {
	printsNoData := map[string]bool{"agora serve": true, "agora dev": true, "agora completion": true}
	walk(commands(), []string{"agora"}, func(c command, path []string) {
		name := strings.Join(path, " ")
		if len(c.Subcommands) > 0 || printsNoData[name] {
			return
		}
		if c.flagSet().Lookup("o") == nil {
			t.Errorf("%s has no -o", name)
		}
	})
	t.Setenv("AGORA_PRODUCER_CONFIG", filepath.Join(t.TempDir(), "none.json"))
	code, _, errOut := runCLI(t, "producer", "apply", "-f", "slice.yml", "-o", "yaml")
	if code != 2 || !strings.Contains(errOut, `invalid value "yaml" for flag -o: want text or json (agora producer apply -h lists its flags)`) || strings.Contains(errOut, "not logged in") {
		t.Errorf("producer apply -o yaml: exit %d, %s", code, errOut)
	}
	// Every bad flag is a usage error: one line, exit 2, and where the
	// flags are listed.
	code, out, errOut := runCLI(t, "serve", "--bogus")
	if code != 2 || out != "" || errOut != "agora serve: flag provided but not defined: -bogus (agora serve -h lists its flags)\n" {
		t.Errorf("serve --bogus: exit %d, %q %q", code, out, errOut)
	}
}
