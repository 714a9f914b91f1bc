package conformance

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// CheckResult is the verdict of one named check.
type CheckResult struct {
	Name    string
	Passed  bool
	Skipped bool
	// Detail says what went wrong, or why the check was skipped. It never
	// holds a credential value.
	Detail string
	// Hint says how to fix a failure.
	Hint     string
	Duration time.Duration
}

// Failed reports whether the check ran and did not pass.
func (c CheckResult) Failed() bool { return !c.Passed && !c.Skipped }

// Outcome is the result in the one word the JSON reports use: "pass",
// "fail" or "skip".
func (c CheckResult) Outcome() string {
	switch {
	case c.Skipped:
		return "skip"
	case c.Passed:
		return "pass"
	}
	return "fail"
}

// Report is every check of one run, in the order they ran, and what the
// run learnt about the adapter on the way.
type Report struct {
	Results []CheckResult
	// Capabilities are the optional capabilities the adapter declared, in
	// the remote protocol's words ("update", "status"), when the run asked
	// it (adapters/remote's Conformance does); nil when it did not. The
	// producer gate stores them in a slice that lists none of its own.
	Capabilities []string
	// Unverified names the credential types ("type" key of the binding's
	// credentials) that the kit could not verify by using them: a type it
	// has no verifier for. They are a visible note, never a silent pass,
	// and the producer gate refuses automatic approval while any remain
	// that the platform engineer has not allowed.
	Unverified []string
}

// Failed reports whether any check failed. Skipped checks do not count:
// they are skipped because an option was not set or the adapter lacks an
// optional capability, or because a check they build on already failed.
func (r Report) Failed() bool {
	for _, c := range r.Results {
		if c.Failed() {
			return true
		}
	}
	return false
}

// Summary counts the results, e.g. "12 passed, 1 failed, 2 skipped".
func (r Report) Summary() string {
	var passed, failed, skipped int
	for _, c := range r.Results {
		switch {
		case c.Skipped:
			skipped++
		case c.Passed:
			passed++
		default:
			failed++
		}
	}
	s := fmt.Sprintf("%d passed, %d failed, %d skipped", passed, failed, skipped)
	for _, t := range r.Unverified {
		s += fmt.Sprintf(", unverified: type %s", t)
	}
	return s
}

// Print writes one line per check, a failure's hint under it, and the
// summary last.
func (r Report) Print(w io.Writer) {
	for _, c := range r.Results {
		fmt.Fprintln(w, c.line())
	}
	fmt.Fprintln(w, r.Summary())
}

// detailIndent lines continuation text up under the check name.
const detailIndent = "      "

func (c CheckResult) line() string {
	switch {
	case c.Skipped:
		return fmt.Sprintf("SKIP %s: %s", c.Name, indent(c.Detail))
	case c.Passed:
		return fmt.Sprintf("PASS %s (%s)", c.Name, roundDuration(c.Duration))
	default:
		s := fmt.Sprintf("FAIL %s: %s", c.Name, indent(c.Detail))
		if c.Hint != "" {
			s += "\n" + detailIndent + "hint: " + indent(c.Hint)
		}
		return s
	}
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+detailIndent)
}

// roundDuration keeps durations readable: "120ms", not "120.431772ms".
func roundDuration(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
