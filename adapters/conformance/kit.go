package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agora-osb/agora/adapters"
)

// Options configures one conformance run.
type Options struct {
	// Factory builds the adapter under test, exactly as Agora would.
	Factory adapters.Factory
	// Settings is the offering's `config:` section. Nil means {}.
	Settings adapters.Decoder
	// Plans are the offering's plans; at least one.
	Plans []adapters.PlanConfig
	// Plan is the ID or name of the plan to test; empty means Plans[0].
	Plan string
	// Offering is the offering name the adapter sees; default "conformance".
	Offering string

	// ProvisionParameters and BindParameters are valid parameters for the
	// chosen plan (may be nil). They reach the adapter as Agora decodes
	// them from JSON: numbers arrive as float64.
	ProvisionParameters, BindParameters map[string]any
	// InvalidProvisionParameters are parameters the adapter must reject
	// with ErrInvalidParameters. Nil derives them from ProvisionSchema;
	// without either the invalid-parameters check is skipped.
	InvalidProvisionParameters map[string]any
	// ProvisionSchema is the tested plan's JSON schema for provision
	// parameters (the catalog's schemas.service_instance.create
	// .parameters). The kit derives invalid parameters from it: a value
	// past a bound, off an enum or of the wrong type.
	ProvisionSchema map[string]any

	// Verifiers use the credentials Bind returns, picked by their
	// servicebinding.io "type" key, for the credentials-work,
	// credentials-revoked, deprovision-revokes-bindings and isolation
	// checks. credcheck.Defaults(dial) has postgresql, mysql, redis,
	// rabbitmq and vault; adaptertest.RunT and `agora adapter test` use it
	// with a plain dialer, and the producer gate with one that enforces
	// its egress allow-list. (The kit core does not import credcheck, so
	// a program that serves an adapter does not link five client
	// libraries.) Credentials of a type without a verifier, and without
	// the Check functions below, are reported in Report.Unverified.
	Verifiers map[string]Verifier

	// Audience decides whose words the report speaks: Go names (the
	// default, for RunT) or the protocol's fields and the CLI's flags
	// (remote.Conformance sets it).
	Audience Audience

	// CheckCredentials, CheckRevoked and CheckIsolation override the
	// typed verifier, for a Go adapter whose credentials have no type the
	// kit knows.
	//
	// CheckCredentials proves that credentials work: it connects and does
	// real work. It must return an error when they do not work.
	CheckCredentials func(ctx context.Context, creds map[string]any) error
	// CheckRevoked proves that credentials no longer work after Unbind: it
	// returns nil when the backend correctly rejects them.
	CheckRevoked func(ctx context.Context, creds map[string]any) error
	// CheckIsolation proves that the holder of credsA cannot read or write
	// the data of the instance credsB belongs to; nil means isolated. The
	// kit calls it both ways.
	CheckIsolation func(ctx context.Context, credsA, credsB map[string]any) error

	// CallTimeout bounds each adapter operation, including the polling of
	// a Pending result; default 2m. An operation that exceeds it fails the
	// timeouts check. The kit waits as long again for an adapter that
	// ignores its ctx, then abandons the call.
	CallTimeout time.Duration
	// PollInterval is the wait between Poll calls; default 500ms.
	PollInterval time.Duration
	// CleanupAttempts is how many times the final cleanup is tried for
	// what is still left (a second after the first, two after that...);
	// default 1. The canary, which runs unattended against live
	// backends, retries.
	CleanupAttempts int
	// Logf receives progress lines and the adapter's own log; default
	// silent. Credentials are never logged.
	Logf func(format string, args ...any)

	// invalidWhy says which rule of ProvisionSchema the derived invalid
	// parameters break; empty when they were given.
	invalidWhy string
}

const (
	defaultOffering     = "conformance"
	defaultCallTimeout  = 2 * time.Minute
	defaultPollInterval = 500 * time.Millisecond
)

// prepare fills in defaults and rejects options no run could use,
// reporting every problem at once.
func (o Options) prepare() (Options, adapters.Plan, error) {
	var errs []error
	if o.Factory.New == nil {
		errs = append(errs, errors.New("no Factory.New: set Options.Factory to the adapter's factory"))
	}
	if len(o.Plans) == 0 {
		errs = append(errs, errors.New("no plans: give at least one in Options.Plans"))
	}
	if o.CallTimeout < 0 {
		errs = append(errs, fmt.Errorf("CallTimeout is negative (%s)", o.CallTimeout))
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("PollInterval is negative (%s)", o.PollInterval))
	}
	var plan adapters.Plan
	if len(o.Plans) > 0 {
		plan = o.Plans[0].Plan
		if o.Plan != "" {
			found := false
			for _, p := range o.Plans {
				if p.ID == o.Plan || p.Name == o.Plan {
					plan, found = p.Plan, true
					break
				}
			}
			if !found {
				errs = append(errs, fmt.Errorf("no plan in Plans has %q (Options.Plan) as its ID or name", o.Plan))
			}
		}
	}
	// Agora hands parameters to adapters decoded from JSON, so the kit
	// does too: an adapter that only copes with Go ints would pass here and
	// fail in production otherwise.
	for _, p := range []struct {
		field string
		m     *map[string]any
	}{
		{"ProvisionParameters", &o.ProvisionParameters},
		{"BindParameters", &o.BindParameters},
		{"InvalidProvisionParameters", &o.InvalidProvisionParameters},
	} {
		m, err := viaJSON(*p.m)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.field, err))
		}
		*p.m = m
	}
	if err := errors.Join(errs...); err != nil {
		return o, plan, err
	}
	if o.InvalidProvisionParameters == nil && o.ProvisionSchema != nil {
		o.InvalidProvisionParameters, o.invalidWhy = invalidFromSchema(o.ProvisionSchema)
	}

	if o.Settings == nil {
		o.Settings = adapters.JSONSettings(nil)
	}
	// Copy the plans so that filling in nil settings never writes to the
	// caller's slice.
	plans := make([]adapters.PlanConfig, len(o.Plans))
	for i, p := range o.Plans {
		if p.Settings == nil {
			p.Settings = adapters.JSONSettings(nil)
		}
		plans[i] = p
	}
	o.Plans = plans
	if o.Offering == "" {
		o.Offering = defaultOffering
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = defaultCallTimeout
	}
	if o.PollInterval == 0 {
		o.PollInterval = defaultPollInterval
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, plan, nil
}

// viaJSON returns a deep copy of m as JSON would decode it. Nil stays nil.
func viaJSON(m map[string]any) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("not JSON-encodable: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("not JSON-decodable: %w", err)
	}
	return out, nil
}

// Run runs every check against the adapter that opts.Factory builds and
// returns one result per check. It removes everything it created before
// it returns, whatever failed. Cancelling ctx fails the checks that have
// not run yet, but never skips the cleanup.
func Run(ctx context.Context, opts Options) Report {
	opts, plan, err := opts.prepare()
	if err != nil {
		return Report{Results: []CheckResult{{
			Name:   "options",
			Detail: err.Error(),
			Hint:   "Fix the conformance.Options passed to Run or adaptertest.RunT",
		}}}
	}
	r := newRunner(ctx, opts, plan)
	// The adapter keeps its logger after Run returns; a line logged then
	// must not reach a testing.T that has finished.
	defer r.log.close()
	r.run()
	return Report{Results: r.results, Unverified: r.unverifiedTypes()}
}
