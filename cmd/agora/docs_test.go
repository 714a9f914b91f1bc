package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// documentedCommand finds agora command lines in prose and code blocks:
// "agora producer apply -f slice.yml", "go run ./cmd/agora dev". A line
// ends at a comment, a pipe, a redirection or the end of a code span.
var documentedCommand = regexp.MustCompile("(?:go run \\./cmd/agora|\\bagora) ((?:serve|dev|catalog|adapters|adapter|producer|admin|version|completion)(?:[ \\t][^`#|;&>\\\\\\n]*)?)(?:$|[`#|;&>\\\\\\n])")

// joinWrappedSpans puts an inline code span that prose wrapped onto the
// next line ("(`agora producer apply -f" / "slice.yml`)") back on one
// line: a line outside a fence with an odd number of backticks continues.
func joinWrappedSpans(text string) string {
	lines := strings.Split(text, "\n")
	out := make([]string, 0, len(lines))
	fence := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			out = append(out, line)
			continue
		}
		for !fence && strings.Count(line, "`")%2 == 1 && i+1 < len(lines) {
			i++
			line += " " + strings.TrimSpace(lines[i])
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// deliberatelyWrong are documented examples of what a typo does.
var deliberatelyWrong = map[string]bool{"producer stauts": true}

// TestDocumentedCommandLinesParse: every agora command line in the README
// and docs/ names commands of the table and flags they declare, so docs
// and the CLI cannot drift apart. Usage lines with [optional] parts or
// alternatives (a|b) are left out: they are not command lines.
func TestDocumentedCommandLinesParse(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md")
	root := commands()
	checked := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := joinWrappedSpans(string(data))
		for _, m := range documentedCommand.FindAllStringSubmatch(text, -1) {
			line := strings.TrimSpace(m[1])
			if strings.ContainsAny(line, "[|") || strings.Contains(line, "...") || deliberatelyWrong[line] {
				continue
			}
			words := shellWords(line)
			c, path := root, []string{"agora"}
			for len(c.Subcommands) > 0 && len(words) > 0 {
				sub, ok := c.sub(words[0])
				if !ok {
					break
				}
				c, path, words = sub, append(path, words[0]), words[1:]
			}
			if len(c.Subcommands) > 0 {
				// Prose ("agora producer's commands") names no
				// subcommand, but a word near one is a typo.
				if len(words) > 0 {
					if near := suggestion(words[0], c.names()); near != "" {
						t.Errorf("%s: %q: %q is not a command of %s%s", file, line, words[0], strings.Join(path, " "), near)
					}
				}
				continue
			}
			checked++
			words = slices.DeleteFunc(words, func(w string) bool { return isHelpFlag(strings.TrimRight(w, ":,.")) })
			if _, err := parseArgs(c.flagSet(), words); err != nil {
				t.Errorf("%s: %q: %v", file, line, err)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d documented command lines found: the pattern no longer matches the docs", checked)
	}
}

// shellWords splits a documented command line the way a shell would for
// these simple cases: on blanks, with '…' and "…" quoting.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	quote, in := rune(0), false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
