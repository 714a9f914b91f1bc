package adaptertest

import (
	"testing"

	"github.com/agora-osb/agora/adapters/conformance"
)

// RunT runs conformance.Run with the test's context and reports each check
// as its own subtest. Skipped checks call t.Skip; failed ones t.Errorf
// with their hint. Unless opts.Logf is set, progress goes to t.Logf.
func RunT(t *testing.T, opts conformance.Options) conformance.Report {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	report := conformance.Run(t.Context(), opts)
	for _, c := range report.Results {
		t.Run(c.Name, func(t *testing.T) {
			switch {
			case c.Skipped:
				t.Skip(c.Detail)
			case !c.Passed:
				t.Errorf("%s\nhint: %s", c.Detail, c.Hint)
			}
		})
	}
	t.Logf("conformance of adapter %q: %s", opts.Factory.Name, report.Summary())
	return report
}
