package conformance

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// invalidFromSchema derives provision parameters the plan's JSON schema
// (its service_instance.create parameters) forbids, so the
// invalid-parameters check runs without the producer inventing them.
// It prefers a value a declared property cannot take (past a bound, off
// an enum, the wrong type) over an undeclared property, and returns nil
// when the schema forbids nothing it can construct.
func invalidFromSchema(schema map[string]any) (params map[string]any, why string) {
	props, _ := schema["properties"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(props)) {
		prop, _ := props[name].(map[string]any)
		if v, why, ok := invalidValue(prop); ok {
			return map[string]any{name: v}, fmt.Sprintf("%s: %s", name, why)
		}
	}
	if ap, ok := schema["additionalProperties"].(bool); ok && !ap {
		return map[string]any{"agora_conformance_undeclared": true}, "a property the schema does not declare (additionalProperties is false)"
	}
	return nil, ""
}

// invalidValue returns a value prop forbids.
func invalidValue(prop map[string]any) (any, string, bool) {
	if enum, ok := prop["enum"].([]any); ok && len(enum) > 0 {
		v := "agora-conformance-not-in-enum"
		if !slices.Contains(enum, any(v)) {
			return v, "a value outside its enum", true
		}
	}
	typ, _ := prop["type"].(string)
	switch typ {
	case "integer", "number":
		if m, ok := number(prop["maximum"]); ok {
			return m + 1, fmt.Sprintf("%v, above its maximum %v", m+1, m), true
		}
		if m, ok := number(prop["exclusiveMaximum"]); ok {
			return m, fmt.Sprintf("%v, not below its exclusiveMaximum", m), true
		}
		if m, ok := number(prop["minimum"]); ok {
			return m - 1, fmt.Sprintf("%v, below its minimum %v", m-1, m), true
		}
		if m, ok := number(prop["exclusiveMinimum"]); ok {
			return m, fmt.Sprintf("%v, not above its exclusiveMinimum", m), true
		}
		return "not-a-number", "a string where the schema wants a " + typ, true
	case "string":
		if m, ok := number(prop["maxLength"]); ok {
			return strings.Repeat("x", int(m)+1), fmt.Sprintf("%d characters, above its maxLength %v", int(m)+1, m), true
		}
		return 42.0, "a number where the schema wants a string", true
	case "boolean":
		return "not-a-boolean", "a string where the schema wants a boolean", true
	case "array", "object":
		return "not-an-" + typ, "a string where the schema wants an " + typ, true
	}
	return nil, "", false
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// describeParams shows parameters in a report: they are the kit's own
// invented values, never a secret.
func (r *runner) describeParams(p map[string]any) string {
	raw, err := json.Marshal(p)
	if err != nil {
		return "(not JSON)"
	}
	s := string(raw)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
