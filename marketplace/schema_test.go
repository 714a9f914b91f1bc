package marketplace

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// row prints a parameter on one line, for comparing.
func row(p Param) string {
	s := fmt.Sprintf("%s%s: %s", strings.Repeat("  ", p.Depth), p.Name, p.Type)
	if p.Required {
		s += " required"
	}
	if p.Default != "" {
		s += " default=" + p.Default
	}
	if len(p.Enum) > 0 {
		if p.EnumOfItems {
			s += " item"
		}
		s += " enum=" + strings.Join(p.Enum, "|")
	}
	if len(p.Examples) > 0 {
		s += " examples=" + strings.Join(p.Examples, "|")
	}
	if len(p.Constraints) > 0 {
		s += " [" + strings.Join(p.Constraints, "; ") + "]"
	}
	if p.Title != "" || p.Description != "" {
		s += " — " + strings.TrimSpace(p.Title+" "+p.Description)
	}
	return s
}

func TestDocumentSchema(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		rows   []string
		check  func(t *testing.T, d *SchemaDoc)
	}{
		{
			name: "required first, then by name; defaults, enums, examples, bounds",
			schema: `{"type":"object","title":"T","description":"D","properties":{
				"b":{"type":"string","enum":["x","y"],"default":"x","description":"the b"},
				"a":{"type":"integer","minimum":1,"maximum":10,"examples":[2,3]},
				"z":{"type":["string","null"],"format":"email","example":"a@b.c","maxLength":64}
			},"required":["z"]}`,
			rows: []string{
				`z: string or null (email) required examples="a@b.c" [at most 64 characters]`,
				`a: integer examples=2|3 [at least 1; at most 10]`,
				`b: string default="x" enum="x"|"y" — the b`,
			},
			check: func(t *testing.T, d *SchemaDoc) {
				if d.Title != "T" || d.Description != "D" || d.Closed || d.Truncated {
					t.Errorf("doc %+v", d)
				}
			},
		},
		{
			name: "nested objects and arrays of objects are named by path",
			schema: `{"type":"object","additionalProperties":false,"properties":{
				"limits":{"type":"object","required":["max"],"additionalProperties":false,"properties":{"max":{"type":"integer"},"min":{"type":"integer"}}},
				"servers":{"type":"array","minItems":1,"uniqueItems":true,"items":{"type":"object","properties":{"host":{"type":"string","pattern":"^[a-z]+$"}}}},
				"tags":{"type":"array","items":{"type":"string","maxLength":8}},
				"exts":{"type":"array","items":{"enum":["a","b"]}}
			}}`,
			rows: []string{
				`exts: array of string item enum="a"|"b"`,
				`limits: object [no other keys]`,
				`  limits.max: integer required`,
				`  limits.min: integer`,
				`servers: array of object [at least 1 items; no duplicate items]`,
				`  servers[].host: string [matches "^[a-z]+$"]`,
				`tags: array of string [each item at most 8 characters]`,
			},
			check: func(t *testing.T, d *SchemaDoc) {
				if !d.Closed {
					t.Error("additionalProperties false is not noted")
				}
			},
		},
		{
			name: "local references, allOf, and a schema that contains itself",
			schema: `{"type":"object","definitions":{
				"node":{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/definitions/node"}},"parent":{"$ref":"#/definitions/node"}}},
				"sized":{"properties":{"size":{"type":"integer","default":1}},"required":["size"]}
			},
			"allOf":[{"$ref":"#/definitions/sized"}],
			"properties":{"tree":{"$ref":"#/definitions/node"},"self":{"$ref":"#"},"broken":{"$ref":"#/definitions/missing"}}}`,
			rows: []string{
				`size: integer required default=1`,
				`broken: any`,
				`self: object [recursive: the same structure as an enclosing parameter]`,
				`tree: object`,
				`  tree.children: array of object`,
				`  tree.name: string`,
				`  tree.parent: object [recursive: the same structure as an enclosing parameter]`,
			},
		},
		{
			name:   "draft-04 exclusive bounds, multiples, types inferred",
			schema: `{"properties":{"r":{"type":"number","minimum":0,"exclusiveMinimum":true,"maximum":1,"exclusiveMaximum":true,"multipleOf":0.1},"e":{"enum":[1,2]},"m":{"enum":[1,"a"]},"o":{"oneOf":[{"type":"string"},{"type":"integer"},{"type":"string"}]},"n":{}}}`,
			rows: []string{
				`e: number enum=1|2`,
				`m: any enum=1|"a"`,
				`n: any`,
				`o: one of: integer, string`,
				`r: number [more than 0; less than 1; a multiple of 0.1]`,
			},
		},
		{
			name:   "top-level alternatives are counted, not expanded",
			schema: `{"oneOf":[{"properties":{"a":{"type":"string"}}},{"properties":{"b":{"type":"string"}}}]}`,
			check: func(t *testing.T, d *SchemaDoc) {
				if d.Forms != 2 || len(d.Params) != 0 {
					t.Errorf("forms %d, params %v", d.Forms, d.Params)
				}
			},
		},
		{
			name:   "long values are cut short",
			schema: `{"properties":{"a":{"type":"string","default":"` + strings.Repeat("x", 300) + `"}}}`,
			check: func(t *testing.T, d *SchemaDoc) {
				if got := d.Params[0].Default; len([]rune(got)) != maxValueRunes+1 || !strings.HasSuffix(got, "…") {
					t.Errorf("default %q", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var schema map[string]any
			if err := json.Unmarshal([]byte(tt.schema), &schema); err != nil {
				t.Fatal(err)
			}
			d := documentSchema(schema)
			if tt.rows != nil {
				got := make([]string, len(d.Params))
				for i, p := range d.Params {
					got[i] = row(p)
				}
				if strings.Join(got, "\n") != strings.Join(tt.rows, "\n") {
					t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.rows, "\n"))
				}
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

// TestDocumentSchemaIsBounded: a deep or wide schema is cut short and
// says so, rather than growing the page without end.
func TestDocumentSchemaIsBounded(t *testing.T) {
	deep := `{"type":"string"}`
	for i := range maxParamDepth + 4 {
		deep = fmt.Sprintf(`{"type":"object","properties":{"l%d":%s}}`, i, deep)
	}
	var wide strings.Builder
	wide.WriteString(`{"properties":{`)
	for i := range maxParams + 50 {
		if i > 0 {
			wide.WriteString(",")
		}
		fmt.Fprintf(&wide, `"p%04d":{"type":"string"}`, i)
	}
	wide.WriteString(`}}`)
	for name, src := range map[string]string{"deep": deep, "wide": wide.String()} {
		var schema map[string]any
		if err := json.Unmarshal([]byte(src), &schema); err != nil {
			t.Fatal(err)
		}
		d := documentSchema(schema)
		if !d.Truncated || len(d.Params) > maxParams {
			t.Errorf("%s: truncated %v with %d params", name, d.Truncated, len(d.Params))
		}
		for _, p := range d.Params {
			if p.Depth >= maxParamDepth {
				t.Errorf("%s: %s is at depth %d", name, p.Name, p.Depth)
			}
		}
	}
}
