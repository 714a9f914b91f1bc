package adapters

import (
	"maps"
	"slices"
	"strings"
)

// NoParameters rejects any parameter, for offerings that define none: a
// silently ignored parameter (a typo, the wrong offering) misleads the
// app developer. The error names every parameter it got.
func NoParameters(offering string, params map[string]any) error {
	if len(params) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(params))
	return InvalidParameters("the %s offering takes no parameters; got %s", offering, strings.Join(names, ", "))
}
