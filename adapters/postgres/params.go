package postgres

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/agora-osb/agora/adapters"
)

// parseExtensions reads the `extensions` parameter of a provision or an
// update. The catalog's JSON schema normally rejects bad input first, but
// the adapter checks again because the schema is the operator's to edit
// and the plan's allowed list is not in it.
func parseExtensions(params map[string]any, plan PlanSettings) ([]string, error) {
	var unknown []string
	for k := range params {
		if k != "extensions" {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, adapters.InvalidParameters("unknown parameter(s) %s; the only parameter is \"extensions\"", quoteAll(unknown))
	}
	raw, ok := params["extensions"]
	if !ok || raw == nil {
		return nil, nil
	}
	var requested []string
	switch v := raw.(type) {
	case []string:
		requested = v
	case []any:
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, adapters.InvalidParameters("extensions[%d] must be a string, not %T", i, e)
			}
			requested = append(requested, s)
		}
	default:
		return nil, adapters.InvalidParameters("extensions must be a list of extension names, not %T", raw)
	}
	var out, refused []string
	seen := map[string]bool{}
	for _, e := range requested {
		if seen[e] {
			continue
		}
		seen[e] = true
		if !slices.Contains(plan.AllowedExtensions, e) {
			refused = append(refused, e)
			continue
		}
		out = append(out, e)
	}
	if len(refused) > 0 {
		allowed := "none"
		if len(plan.AllowedExtensions) > 0 {
			allowed = strings.Join(plan.AllowedExtensions, ", ")
		}
		return nil, adapters.InvalidParameters("extension(s) %s not allowed on this plan (allowed: %s)", quoteAll(refused), allowed)
	}
	return out, nil
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
