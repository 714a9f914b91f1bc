package adaptertest

import (
	"slices"
	"testing"

	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/adapters/conformance/credcheck"
)

// RunT runs conformance.Run with the test's context and reports each check
// as its own subtest. Unless opts.Verifiers is set, the kit uses typed
// credentials through credcheck.Defaults. Skipped checks call t.Skip; failed ones t.Errorf
// with their hint. Unless opts.Logf is set, progress goes to t.Logf.
func RunT(t *testing.T, opts conformance.Options) conformance.Report {
	t.Helper()
	return RunTExcept(t, opts, nil)
}

// RunTExcept is RunT for an adapter with a documented limitation: a check
// named in except that fails is reported as skipped, with the reason
// given and the failure's detail, instead of failing the test. Keep the
// list short and say why each entry cannot be fixed in the adapter.
func RunTExcept(t *testing.T, opts conformance.Options, except map[string]string) conformance.Report {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	if opts.Verifiers == nil {
		opts.Verifiers = credcheck.Defaults(nil)
	}
	report := conformance.Run(t.Context(), opts)
	for _, c := range report.Results {
		t.Run(c.Name, func(t *testing.T) {
			switch {
			case c.Skipped:
				t.Skip(c.Detail)
			case !c.Passed && except[c.Name] != "":
				t.Skipf("known limitation: %s\nthe check said: %s", except[c.Name], c.Detail)
			case !c.Passed:
				t.Errorf("%s\nhint: %s", c.Detail, c.Hint)
			}
		})
	}
	t.Logf("conformance of adapter %q: %s", opts.Factory.Name, report.Summary())
	return report
}

// credentialChecks are the checks that use the credentials themselves.
var credentialChecks = []string{"credentials-work", "credentials-revoked", "isolation", "deprovision-revokes-bindings"}

// RequireVerified fails t unless the kit used the adapter's credentials
// in every check that needs them: none skipped, no unverified type. A
// built-in adapter's test calls it, so its credentials stay typed.
func RequireVerified(t *testing.T, report conformance.Report) {
	t.Helper()
	if len(report.Unverified) > 0 {
		t.Errorf("the kit could not use credentials of type %q", report.Unverified)
	}
	for _, c := range report.Results {
		if c.Skipped && slices.Contains(credentialChecks, c.Name) {
			t.Errorf("credential check %s skipped: %s", c.Name, c.Detail)
		}
	}
}
