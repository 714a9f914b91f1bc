package catalog

import (
	"sort"
	"strconv"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// FieldError is one problem in a catalog source, at one field.
type FieldError struct {
	// Source names the file or slice ("catalog.yml"); empty when unnamed.
	Source string
	// Path is the field path inside the source, such as
	// "producers[1].offerings[0].plans[2].id". Empty for a problem with the
	// source as a whole (a YAML syntax error).
	Path string
	// Line is where the field (or its nearest parent) starts; 0 if unknown.
	Line    int
	Message string
}

func (e FieldError) String() string {
	var b strings.Builder
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	if e.Line > 0 {
		b.WriteString(" (line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(")")
	}
	return b.String()
}

// ValidationError reports every problem found in the catalog sources at
// once, so a producer fixes them in one round rather than one per deploy.
type ValidationError struct {
	// Errors are sorted by source (in the order the sources were given),
	// then by line, then in the order they were found.
	Errors []FieldError
}

// Error prints one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		lines[i] = fe.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders errors by appearance. sourceOrder ranks sources by the order
// they were passed to Build; unknown sources sort first.
func (e *ValidationError) sort(sourceOrder map[string]int) {
	sort.SliceStable(e.Errors, func(i, j int) bool {
		a, b := e.Errors[i], e.Errors[j]
		if sa, sb := sourceOrder[a.Source], sourceOrder[b.Source]; sa != sb {
			return sa < sb
		}
		return a.Line < b.Line
	})
}

// Violation is one way the parameters break the plan's schema.
type Violation struct {
	// Field is the dotted path of the offending parameter ("size",
	// "limits.max", "servers[0].host"), or "" for the parameters object.
	Field string
	// Reason says what is wrong, in words an app developer understands.
	Reason string
}

func (v Violation) String() string {
	if v.Field == "" {
		return "parameters: " + v.Reason
	}
	return "parameters." + v.Field + ": " + v.Reason
}

// ParameterError reports parameters that do not match the plan's schema.
// It wraps adapters.ErrInvalidParameters, so the broker maps it to a 400
// in the same place as an adapter's own parameter errors, and its message
// is meant to be shown to the app developer as it is.
type ParameterError struct {
	// Field and Reason are the first violation, for callers that show one.
	Field  string
	Reason string
	// Violations lists every violation, Field/Reason first, sorted by field.
	Violations []Violation
}

// Error joins every violation with "; ", each as "parameters.<field>: <reason>".
func (e *ParameterError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}

// Unwrap makes errors.Is(err, adapters.ErrInvalidParameters) true.
func (e *ParameterError) Unwrap() error { return adapters.ErrInvalidParameters }
