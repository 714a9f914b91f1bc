package marketplace

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on what one schema's documentation shows. A schema is at most
// 64 kB (the catalog enforces the OSB limit), but nesting and references
// can still make a tree far larger than anyone reads; past these the
// documentation says it is cut short.
const (
	maxParamDepth = 8
	maxParams     = 300
	maxValueRunes = 200
	maxRefHops    = 16
)

// SchemaDoc is one plan schema (create, update or bind parameters)
// rendered for people: a flat list of parameters, nested ones named by
// their path ("limits.max_connections", "servers[].host").
type SchemaDoc struct {
	Title       string
	Description string
	Params      []Param
	// Closed says the schema refuses parameters it does not list
	// (additionalProperties: false).
	Closed bool
	// Forms counts the top level's alternatives (oneOf or anyOf), whose
	// own parameters are not listed; 0 when there are none.
	Forms int
	// Truncated says parameters were left out (deeper than maxParamDepth,
	// or more than maxParams).
	Truncated bool
}

// Param is one parameter as the page documents it. Every string in it
// comes from a producer's schema: the template escapes it, and nothing
// here is HTML.
type Param struct {
	Name        string
	Depth       int
	Type        string
	Required    bool
	Title       string
	Description string
	// Default is the default value as JSON text ("" when there is none).
	Default string
	// Enum are the allowed values; of each item when EnumOfItems (an
	// array whose items are enumerated).
	Enum        []string
	EnumOfItems bool
	Examples    []string
	Constraints []string
}

// documentSchema turns a JSON schema (draft-04, as the catalog accepts
// it) into its documentation. It never fails: what it cannot read it
// shows as "any".
func documentSchema(root map[string]any) *SchemaDoc {
	w := &schemaWalker{root: root, doc: &SchemaDoc{}}
	top := w.resolve(root)
	w.doc.Title, _ = top["title"].(string)
	w.doc.Description, _ = top["description"].(string)
	w.doc.Closed = top["additionalProperties"] == false
	for _, k := range []string{"oneOf", "anyOf"} {
		if alts, ok := top[k].([]any); ok {
			w.doc.Forms = len(alts)
		}
	}
	w.properties(top, "", 0, []string{"#"})
	return w.doc
}

type schemaWalker struct {
	root map[string]any
	doc  *SchemaDoc
}

// resolve follows local $refs ("#/definitions/size") and merges allOf, so
// the caller sees one schema object. Anything unreadable becomes an empty
// schema (any value).
func (w *schemaWalker) resolve(s map[string]any) map[string]any {
	for range maxRefHops {
		ref, ok := s["$ref"].(string)
		if !ok {
			break
		}
		target, ok := pointer(w.root, ref).(map[string]any)
		if !ok {
			return map[string]any{}
		}
		s = target
	}
	all, ok := s["allOf"].([]any)
	if !ok {
		return s
	}
	merged := maps.Clone(s)
	delete(merged, "allOf")
	props := map[string]any{}
	if own, ok := s["properties"].(map[string]any); ok {
		maps.Copy(props, own)
	}
	required, _ := s["required"].([]any)
	required = slices.Clone(required)
	for _, part := range all {
		sub, ok := part.(map[string]any)
		if !ok {
			continue
		}
		sub = w.resolve(sub)
		if p, ok := sub["properties"].(map[string]any); ok {
			maps.Copy(props, p)
		}
		if r, ok := sub["required"].([]any); ok {
			required = append(required, r...)
		}
		for k, v := range sub {
			if _, set := merged[k]; !set && k != "properties" && k != "required" {
				merged[k] = v
			}
		}
	}
	if len(props) > 0 {
		merged["properties"] = props
	}
	if len(required) > 0 {
		merged["required"] = required
	}
	return merged
}

// pointer follows a local JSON pointer ("#/definitions/a~1b").
func pointer(root map[string]any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil
	}
	var cur any = root
	for tok := range strings.SplitSeq(strings.TrimPrefix(rest, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// properties lists s's properties under prefix: the required ones first,
// then by name (a schema's own order does not survive JSON decoding).
// refs are the $refs on the way here, so a recursive schema is listed
// once, not forever.
func (w *schemaWalker) properties(s map[string]any, prefix string, depth int, refs []string) {
	props, _ := s["properties"].(map[string]any)
	if len(props) == 0 {
		return
	}
	if depth >= maxParamDepth {
		w.doc.Truncated = true
		return
	}
	required := map[string]bool{}
	if r, ok := s["required"].([]any); ok {
		for _, name := range r {
			if n, ok := name.(string); ok {
				required[n] = true
			}
		}
	}
	names := slices.SortedFunc(maps.Keys(props), func(a, b string) int {
		if required[a] != required[b] {
			if required[a] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		if len(w.doc.Params) >= maxParams {
			w.doc.Truncated = true
			return
		}
		raw, _ := props[name].(map[string]any)
		prop, path, recursive := w.follow(raw, refs)
		p := w.param(prefix+name, depth, prop)
		p.Required = required[name]
		if recursive {
			p.Constraints = append(p.Constraints, "recursive: the same structure as an enclosing parameter")
		}
		w.doc.Params = append(w.doc.Params, p)
		if recursive {
			continue
		}
		w.properties(prop, prefix+name+".", depth+1, path)
		if raw, ok := prop["items"].(map[string]any); ok {
			if items, itemsPath, recursive := w.follow(raw, path); !recursive {
				w.properties(items, prefix+name+"[].", depth+1, itemsPath)
			}
		}
	}
}

// follow resolves s and says whether its $ref is one of refs (a schema
// that contains itself), returning the refs of the way down into it.
func (w *schemaWalker) follow(s map[string]any, refs []string) (resolved map[string]any, path []string, recursive bool) {
	ref, _ := s["$ref"].(string)
	if ref == "" {
		return w.resolve(s), refs, false
	}
	if slices.Contains(refs, ref) {
		return w.resolve(s), refs, true
	}
	return w.resolve(s), append(slices.Clip(refs), ref), false
}

// param documents one resolved property.
func (w *schemaWalker) param(name string, depth int, s map[string]any) Param {
	p := Param{Name: name, Depth: depth, Type: w.typeOf(s)}
	p.Title, _ = s["title"].(string)
	p.Description, _ = s["description"].(string)
	if d, ok := s["default"]; ok {
		p.Default = jsonText(d)
	}
	if enum, ok := s["enum"].([]any); ok {
		for _, v := range enum {
			p.Enum = append(p.Enum, jsonText(v))
		}
	}
	if ex, ok := s["examples"].([]any); ok {
		for _, v := range ex {
			p.Examples = append(p.Examples, jsonText(v))
		}
	} else if ex, ok := s["example"]; ok {
		p.Examples = []string{jsonText(ex)}
	}
	p.Constraints = constraints(s)
	// An array of simple values says what each value may be.
	if raw, ok := s["items"].(map[string]any); ok {
		items := w.resolve(raw)
		if enum, ok := items["enum"].([]any); ok && p.Enum == nil {
			for _, v := range enum {
				p.Enum = append(p.Enum, jsonText(v))
			}
			p.EnumOfItems = true
		}
		for _, c := range constraints(items) {
			p.Constraints = append(p.Constraints, "each item "+c)
		}
	}
	return p
}

// typeOf words a schema's type: "integer", "string (email)", "string or
// null", "array of string", "object", "one of: string, integer", "any".
func (w *schemaWalker) typeOf(s map[string]any) string {
	var t string
	switch v := s["type"].(type) {
	case string:
		t = v
	case []any:
		names := make([]string, 0, len(v))
		for _, n := range v {
			if str, ok := n.(string); ok {
				names = append(names, str)
			}
		}
		t = strings.Join(names, " or ")
	}
	if t == "" {
		switch {
		case s["properties"] != nil:
			t = "object"
		case s["items"] != nil:
			t = "array"
		case s["enum"] != nil:
			t = enumType(s["enum"])
		}
	}
	for _, k := range []string{"oneOf", "anyOf"} {
		if alts, ok := s[k].([]any); ok && t == "" {
			forms := make([]string, 0, len(alts))
			for _, a := range alts {
				if m, ok := a.(map[string]any); ok {
					forms = append(forms, w.typeOf(w.resolve(m)))
				}
			}
			t = "one of: " + strings.Join(slices.Compact(slices.Sorted(slices.Values(forms))), ", ")
		}
	}
	if t == "" {
		t = "any"
	}
	if f, ok := s["format"].(string); ok && f != "" {
		t += " (" + f + ")"
	}
	if items, ok := s["items"].(map[string]any); ok && strings.HasPrefix(t, "array") {
		if it := w.typeOf(w.resolve(items)); it != "any" {
			t = "array of " + it
		}
	}
	return t
}

// enumType names the JSON type every enum value shares ("" when mixed).
func enumType(enum any) string {
	values, _ := enum.([]any)
	t := ""
	for _, v := range values {
		var vt string
		switch v.(type) {
		case string:
			vt = "string"
		case bool:
			vt = "boolean"
		case nil:
			vt = "null"
		case float64, int, int64, json.Number:
			vt = "number"
		default:
			return ""
		}
		if t != "" && t != vt {
			return ""
		}
		t = vt
	}
	return t
}

// constraints words the validation keywords people need to know before
// they send a value.
func constraints(s map[string]any) []string {
	var out []string
	bound := func(key, exclusiveKey, inclusive, exclusive string) {
		v, ok := s[key]
		if !ok {
			return
		}
		word := inclusive
		if s[exclusiveKey] == true { // draft-04: a boolean beside the bound
			word = exclusive
		}
		out = append(out, word+" "+jsonText(v))
	}
	bound("minimum", "exclusiveMinimum", "at least", "more than")
	bound("maximum", "exclusiveMaximum", "at most", "less than")
	count := func(key, format string) {
		if v, ok := s[key]; ok {
			out = append(out, fmt.Sprintf(format, jsonText(v)))
		}
	}
	count("multipleOf", "a multiple of %s")
	count("minLength", "at least %s characters")
	count("maxLength", "at most %s characters")
	count("pattern", "matches %s")
	count("minItems", "at least %s items")
	count("maxItems", "at most %s items")
	count("minProperties", "at least %s entries")
	count("maxProperties", "at most %s entries")
	if s["uniqueItems"] == true {
		out = append(out, "no duplicate items")
	}
	if s["additionalProperties"] == false && s["properties"] != nil {
		out = append(out, "no other keys")
	}
	return out
}

// jsonText prints a value as someone would type it in JSON, cut short
// when it is long.
func jsonText(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // shown as typed; the template escapes it
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	s := strings.TrimSuffix(b.String(), "\n")
	if utf8.RuneCountInString(s) > maxValueRunes {
		s = string([]rune(s)[:maxValueRunes]) + "…"
	}
	return s
}
