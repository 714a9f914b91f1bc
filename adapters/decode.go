package adapters

import (
	"errors"
	"fmt"
)

// Validator is implemented by settings types that can check themselves.
// Validate should report every problem at once (errors.Join), each one
// naming its field: "port: 0 is not between 1 and 65535".
type Validator interface {
	Validate() error
}

// Defaulter is implemented (on the pointer) by settings types with
// optional fields. DecodeConfig calls ApplyDefaults after decoding and
// before Validate, so Validate checks the values the adapter will use.
type Defaulter interface {
	ApplyDefaults()
}

// PlanSettings holds the decoded settings of an offering's plans by plan ID
// and by plan name, because a request may carry either.
type PlanSettings[P any] struct {
	byID, byName map[string]P
}

// For returns the settings of plan p, looked up by ID, then by name.
func (s PlanSettings[P]) For(p Plan) (P, bool) {
	if v, ok := s.byID[p.ID]; ok && p.ID != "" {
		return v, true
	}
	if v, ok := s.byName[p.Name]; ok && p.Name != "" {
		return v, true
	}
	var zero P
	return zero, false
}

// Lookup is For for a request's plan. A plan it does not know means the
// catalog and the adapter disagree, which no retry can fix: the error is
// terminal and wraps ErrNotSupported.
func (s PlanSettings[P]) Lookup(p Plan) (P, error) {
	if v, ok := s.For(p); ok {
		return v, nil
	}
	var zero P
	return zero, Terminal(fmt.Errorf("%w: plan %q (%s) is not configured for this offering", ErrNotSupported, p.Name, p.ID))
}

// DecodeConfig decodes cfg.Settings into S and every plan's settings into
// P, strictly, fills in their defaults when *S or *P implements Defaulter,
// and validates both when they implement Validator. It reports
// every problem at once: the error joins one error per problem, each
// labelled with its place ("config: port: 0 is not ...", "plans[1] (small):
// max_queues: ..."), because Agora's catalog report shows each line as a
// finding of its own. Settings that are missing or do not decode are still
// validated, as far as they decoded, so that one round shows every
// problem. A plan may leave its settings out: it then gets the zero P,
// validated like any other.
//
// A Factory's New returns this error as it is: Agora's catalog report
// names the adapter and the offering itself and shows each line, one
// problem, as a finding of its own, so a prefix would label the first
// line only.
//
// DecodeConfig is ConfigDecoder's zero value, and what every built-in
// adapter uses; adapters that must label their problems differently use a
// ConfigDecoder.
func DecodeConfig[S, P any](cfg Config) (S, PlanSettings[P], error) {
	return ConfigDecoder[S, P]{}.Decode(cfg)
}

// ConfigDecoder is DecodeConfig with the choices that differ between
// adapters. Its zero value behaves like DecodeConfig.
type ConfigDecoder[S, P any] struct {
	// Label names the offering's settings in their problems: "config" when
	// empty.
	Label string
	// PlanLabel names a plan's settings when they are missing or do not
	// decode, as "config" does in "plans[0] (small): config: missing".
	// When empty, such a problem follows the plan's label directly.
	PlanLabel string
	// RequirePlanSettings makes a plan without settings a problem instead
	// of a plan with the zero P.
	RequirePlanSettings bool
}

// Decode decodes and validates cfg as DecodeConfig describes. When it
// returns an error, the settings it returns are incomplete.
func (d ConfigDecoder[S, P]) Decode(cfg Config) (S, PlanSettings[P], error) {
	label := d.Label
	if label == "" {
		label = "config"
	}
	var errs []error
	var s S
	// The section is validated even when it is missing or did not decode:
	// encoding/json keeps going past an unknown field, so Validate still
	// finds the problems in the rest of it.
	errs = appendProblems(errs, label, decode(cfg.Settings, &s))
	applyDefaults(&s)
	errs = appendProblems(errs, label, validate(&s))

	plans := PlanSettings[P]{byID: make(map[string]P, len(cfg.Plans)), byName: make(map[string]P, len(cfg.Plans))}
	for i, pc := range cfg.Plans {
		planLabel := fmt.Sprintf("plans[%d] (%s)", i, pc.Name)
		sectionLabel := planLabel
		if d.PlanLabel != "" {
			sectionLabel += ": " + d.PlanLabel
		}
		var p P
		var perrs []error
		if pc.Settings != nil || d.RequirePlanSettings {
			perrs = appendProblems(perrs, sectionLabel, decode(pc.Settings, &p))
		}
		applyDefaults(&p)
		perrs = appendProblems(perrs, planLabel, validate(&p))
		if len(perrs) > 0 {
			errs = append(errs, perrs...)
			continue
		}
		plans.byID[pc.ID] = p
		plans.byName[pc.Name] = p
	}
	return s, plans, errors.Join(errs...)
}

var errMissing = errors.New("missing")

func decode(d Decoder, v any) error {
	if d == nil {
		return errMissing
	}
	return d.Decode(v)
}

func applyDefaults(v any) {
	if d, ok := v.(Defaulter); ok {
		d.ApplyDefaults()
	}
}

func validate(v any) error {
	if val, ok := v.(Validator); ok {
		return val.Validate()
	}
	return nil
}

// appendProblems appends every problem in err to errs, each labelled, so
// that a joined error becomes one line per problem with its place.
func appendProblems(errs []error, label string, err error) []error {
	for _, p := range problems(err) {
		errs = append(errs, fmt.Errorf("%s: %w", label, p))
	}
	return errs
}

// problems splits an errors.Join result, however nested, into its parts.
func problems(err error) []error {
	if err == nil {
		return nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range joined.Unwrap() {
		out = append(out, problems(e)...)
	}
	return out
}
