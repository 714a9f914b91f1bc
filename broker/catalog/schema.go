package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

const (
	// draft04 is the only $schema accepted: the OSB spec requires platforms
	// to support draft-04, and Cloud Foundry validates with it.
	draft04 = "http://json-schema.org/draft-04/schema#"
	// maxSchemaBytes is the OSB limit on one serialized schema ("64kB").
	maxSchemaBytes = 64 * 1024
	// schemaURL is where each schema is registered for compiling. Nothing is
	// served there; a relative $ref would resolve under it and be refused.
	schemaURL = "https://schemas.agora.invalid/parameters.json"
)

// paramSchema is one compiled input parameters schema of a plan.
type paramSchema struct {
	compiled *jsonschema.Schema
	// wire is the compact JSON served in the catalog body.
	wire json.RawMessage
	// doc is the schema as a map, for domain.Schema.
	doc map[string]any
}

// refuseLoader stops the compiler from reading anything but the schema it
// was given: the OSB spec forbids external references, and a catalog must
// never make Agora fetch a URL or read a local file.
type refuseLoader struct{}

func (refuseLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external references are not allowed (%s)", url)
}

// compileSchema checks and compiles the `parameters` schema at path. A left
// out schema is nil: any JSON object is accepted.
func compileSchema(n *yaml.Node, path string) (*paramSchema, []pathError) {
	if isAbsent(n) {
		return nil, nil
	}
	raw, err := nodeValue(n)
	if err != nil {
		return nil, []pathError{{path, err.Error()}}
	}
	var errs []pathError
	v := jsonValue(raw, path, nil, &errs)
	if len(errs) > 0 {
		return nil, errs
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, []pathError{{path, "must be a JSON schema object"}}
	}
	switch s, present := doc["$schema"]; {
	case !present:
		errs = append(errs, pathError{path, fmt.Sprintf("$schema is required and must be %q", draft04)})
	case s != draft04:
		errs = append(errs, pathError{joinPath(path, "$schema"), fmt.Sprintf("must be %q (JSON Schema draft-04), got %q", draft04, fmt.Sprint(s))})
	}
	findExternalRefs(doc, path, &errs)

	wire, err := json.Marshal(doc)
	if err != nil {
		return nil, append(errs, pathError{path, err.Error()})
	}
	if len(wire) > maxSchemaBytes {
		errs = append(errs, pathError{path, fmt.Sprintf("schema is %d bytes serialized; the OSB limit is %d", len(wire), maxSchemaBytes)})
	}
	if len(errs) > 0 {
		return nil, errs
	}

	// Recode with json.Number so the compiler sees exact numbers
	// (a multipleOf of 0.1 must not become 0.1000000000000000055).
	exact, err := jsonschema.UnmarshalJSON(bytes.NewReader(wire))
	if err != nil {
		return nil, []pathError{{path, err.Error()}}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft4)
	c.UseLoader(refuseLoader{})
	if err := c.AddResource(schemaURL, exact); err != nil {
		return nil, []pathError{{path, err.Error()}}
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		return nil, schemaCompileErrors(err, path)
	}
	return &paramSchema{compiled: compiled, wire: wire, doc: doc}, nil
}

// schemaKeywordsWithNames are the keywords whose object keys are names
// (of properties, definitions ...) rather than keywords, and whose
// non-schema values must not be taken for a $ref.
var schemaKeywordsWithNames = map[string]bool{
	"properties": true, "patternProperties": true, "definitions": true, "dependencies": true,
}

// findExternalRefs reports every $ref that does not point inside the schema.
// The compiler's loader refuses them too; this names the field.
func findExternalRefs(v any, path string, errs *[]pathError) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(x)) {
			child := joinPath(path, k)
			switch {
			case k == "$ref":
				if ref, ok := x[k].(string); ok && !strings.HasPrefix(ref, "#") {
					*errs = append(*errs, pathError{child, fmt.Sprintf("external reference %q not allowed; only local references (#/...) are", ref)})
				}
			case k == "enum" || k == "default":
				// Data, not schemas: a "$ref" key in there is a value.
			case schemaKeywordsWithNames[k]:
				if named, ok := x[k].(map[string]any); ok {
					for _, name := range slices.Sorted(maps.Keys(named)) {
						findExternalRefs(named[name], joinPath(child, name), errs)
					}
				}
			default:
				findExternalRefs(x[k], child, errs)
			}
		}
	case []any:
		for i, e := range x {
			findExternalRefs(e, fmt.Sprintf("%s[%d]", path, i), errs)
		}
	}
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// schemaCompileErrors turns a compile failure into field errors. A schema
// that breaks the draft-04 metaschema yields one error per offending
// keyword, at its path inside the catalog.
func schemaCompileErrors(err error, path string) []pathError {
	var sve *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if !errors.As(err, &sve) || !errors.As(sve.Err, &ve) {
		return []pathError{{path, "invalid JSON schema: " + err.Error()}}
	}
	var out []pathError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		switch e.ErrorKind.(type) {
		case *kind.AnyOf, *kind.OneOf:
			// The metaschema's alternatives (type: a name, or a list of
			// names) each fail; the first one reads as the intended rule.
			if len(e.Causes) > 0 {
				walk(e.Causes[0])
				return
			}
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		p := path
		for _, tok := range e.InstanceLocation {
			p = joinPath(p, tok)
		}
		out = append(out, pathError{p, "invalid JSON schema (draft-04): " + e.ErrorKind.LocalizedString(printer)})
	}
	walk(ve)
	return out
}

// printer renders the library's own messages for kinds without a custom one.
var printer = message.NewPrinter(language.English)

// validate checks params against the schema. A nil schema accepts any
// object.
func (s *paramSchema) validate(params map[string]any) error {
	if s == nil {
		return nil
	}
	var instance any = params
	if params == nil {
		instance = map[string]any{}
	}
	err := s.compiled.Validate(instance)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ParameterError{Reason: err.Error(), Violations: []Violation{{Reason: err.Error()}}}
	}
	var vs []Violation
	collectViolations(ve, instance, &vs)
	slices.SortFunc(vs, func(a, b Violation) int {
		if c := strings.Compare(a.Field, b.Field); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	vs = slices.Compact(vs)
	if len(vs) == 0 {
		vs = []Violation{{Reason: "do not match the plan's schema"}}
	}
	return &ParameterError{Field: vs[0].Field, Reason: vs[0].Reason, Violations: vs}
}

// collectViolations flattens the library's error tree into one violation
// per leaf. Branches of anyOf/oneOf/not are not descended: their leaves
// describe alternatives, and listing them reads as contradictory demands.
func collectViolations(e *jsonschema.ValidationError, instance any, out *[]Violation) {
	switch e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group, *kind.AllOf, *kind.Reference:
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				collectViolations(c, instance, out)
			}
			return
		}
	}
	field := fieldName(e.InstanceLocation, instance)
	for _, reason := range reasons(e.ErrorKind) {
		*out = append(*out, Violation{Field: field, Reason: reason})
	}
}

// fieldName renders a JSON pointer as "limits.max" or "servers[0].host",
// looking at the instance to tell array indexes from object keys.
func fieldName(tokens []string, instance any) string {
	var b strings.Builder
	cur := instance
	for _, tok := range tokens {
		switch c := cur.(type) {
		case []any:
			b.WriteString("[" + tok + "]")
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(c) {
				cur = c[i]
			} else {
				cur = nil
			}
			continue
		case map[string]any:
			cur = c[tok]
		default:
			cur = nil
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// reasons words one error kind for an app developer. String values are
// never echoed back: parameters may carry passwords, and these messages
// end up in logs.
func reasons(k jsonschema.ErrorKind) []string {
	switch k := k.(type) {
	case *kind.AdditionalProperties:
		rs := make([]string, len(k.Properties))
		for i, p := range k.Properties {
			rs[i] = fmt.Sprintf("unknown parameter %q (additionalProperties not allowed)", p)
		}
		return rs
	case *kind.Required:
		rs := make([]string, len(k.Missing))
		for i, p := range k.Missing {
			rs[i] = fmt.Sprintf("missing required parameter %q", p)
		}
		return rs
	case *kind.Type:
		return []string{fmt.Sprintf("must be of type %s (got %s)", strings.Join(k.Want, " or "), k.Got)}
	case *kind.Enum:
		if len(k.Want) == 1 {
			return []string{"must be " + jsonText(k.Want[0]) + gotNonString(k.Got)}
		}
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = jsonText(w)
		}
		return []string{"must be one of " + strings.Join(want, ", ") + gotNonString(k.Got)}
	case *kind.Const:
		return []string{"must be " + jsonText(k.Want) + gotNonString(k.Got)}
	case *kind.Minimum:
		return []string{fmt.Sprintf("must be >= %s (got %s)", ratString(k.Want), ratString(k.Got))}
	case *kind.Maximum:
		return []string{fmt.Sprintf("must be <= %s (got %s)", ratString(k.Want), ratString(k.Got))}
	case *kind.ExclusiveMinimum:
		return []string{fmt.Sprintf("must be > %s (got %s)", ratString(k.Want), ratString(k.Got))}
	case *kind.ExclusiveMaximum:
		return []string{fmt.Sprintf("must be < %s (got %s)", ratString(k.Want), ratString(k.Got))}
	case *kind.MultipleOf:
		return []string{fmt.Sprintf("must be a multiple of %s (got %s)", ratString(k.Want), ratString(k.Got))}
	case *kind.MinLength:
		return []string{fmt.Sprintf("must be at least %d characters long (got %d)", k.Want, k.Got)}
	case *kind.MaxLength:
		return []string{fmt.Sprintf("must be at most %d characters long (got %d)", k.Want, k.Got)}
	case *kind.Pattern:
		return []string{fmt.Sprintf("must match the pattern %q", k.Want)}
	case *kind.Format:
		return []string{fmt.Sprintf("must be a valid %s", k.Want)}
	case *kind.MinItems:
		return []string{fmt.Sprintf("must have at least %d items (got %d)", k.Want, k.Got)}
	case *kind.MaxItems:
		return []string{fmt.Sprintf("must have at most %d items (got %d)", k.Want, k.Got)}
	case *kind.MinProperties:
		return []string{fmt.Sprintf("must have at least %d properties (got %d)", k.Want, k.Got)}
	case *kind.MaxProperties:
		return []string{fmt.Sprintf("must have at most %d properties (got %d)", k.Want, k.Got)}
	case *kind.UniqueItems:
		return []string{fmt.Sprintf("must not contain duplicates (items %d and %d are equal)", k.Duplicates[0], k.Duplicates[1])}
	case *kind.AdditionalItems:
		return []string{fmt.Sprintf("has %d more items than allowed", k.Count)}
	case *kind.Dependency:
		return []string{fmt.Sprintf("parameter %q also requires %s", k.Prop, quoteAll(k.Missing))}
	case *kind.FalseSchema:
		return []string{"is not allowed"}
	case *kind.AnyOf:
		return []string{"must match at least one of the allowed forms (anyOf)"}
	case *kind.OneOf:
		if k.Subschemas == nil {
			return []string{"must match exactly one of the allowed forms (oneOf), but matches none"}
		}
		return []string{"must match exactly one of the allowed forms (oneOf), but matches several"}
	case *kind.Not:
		return []string{"must not match the excluded form (not)"}
	case *kind.InvalidJsonValue:
		return []string{fmt.Sprintf("is not a JSON value (%T)", k.Value)}
	default:
		return []string{k.LocalizedString(printer)}
	}
}

// jsonText prints an allowed value as the app developer would write it.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// gotNonString adds the offending value for numbers, booleans and null,
// which cannot hold a secret.
func gotNonString(v any) string {
	switch v.(type) {
	case nil, bool, float64, float32, int, int64, json.Number:
		b, err := json.Marshal(v)
		if err == nil {
			return " (got " + string(b) + ")"
		}
	}
	return ""
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
