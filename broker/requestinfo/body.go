package requestinfo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Body is an OSB request body (provision, update or bind), decoded once
// with every field's JSON type checked, so that a malformed body gets a
// 400 that names the field and the type it must have instead of Go's
// unmarshal text. Fields the spec does not define are ignored, as the spec
// asks; absent and null fields are zero.
type Body struct {
	ServiceID        string
	PlanID           string
	OrganizationGUID string
	SpaceGUID        string
	// AppGUID is the deprecated top-level app_guid of a bind.
	AppGUID string
	// BindResource is the bind_resource object as sent (nil when absent);
	// BindResourceAppGUID its app_guid.
	BindResource        map[string]any
	BindResourceAppGUID string
	// PredecessorBindingID is OSB 2.17's binding rotation field.
	PredecessorBindingID string
	MaintenanceInfo      *MaintenanceInfo
	// Context is the raw context object (nil when absent or null);
	// Platform its "platform" field.
	Context  json.RawMessage
	Platform string
	// Parameters is the parameters object, numbers kept as json.Number;
	// empty (never nil) when absent or null. It may hold secrets: never
	// log or store it.
	Parameters map[string]any

	present map[string]bool
}

// MaintenanceInfo is the OSB maintenance_info object of a request.
type MaintenanceInfo struct {
	Version     string
	Description string
}

// Has reports whether the body carried field with a non-null value, for
// rules that treat "absent" and "present but empty" differently.
func (b *Body) Has(field string) bool { return b != nil && b.present[field] }

// EmptyField returns the first field that the spec says MUST be a
// non-empty string and that the body carries as "": organization_guid,
// space_guid (deprecated, so their absence is fine) and context.platform.
func (b *Body) EmptyField() (string, bool) {
	for _, f := range []struct {
		name, value string
	}{
		{"organization_guid", b.OrganizationGUID},
		{"space_guid", b.SpaceGUID},
		{"context.platform", b.Platform},
	} {
		if b.Has(f.name) && f.value == "" {
			return f.name, true
		}
	}
	return "", false
}

// FieldError is a body field of the wrong JSON type. Its message is meant
// for the app developer: plain words, no Go type names.
type FieldError struct {
	Field string
	Want  string // "a string", "a JSON object"
	Got   string // "a number", "an array"
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s must be %s, not %s", e.Field, e.Want, e.Got)
}

// DecodeBody decodes an OSB request body that the edge has already
// checked to be exactly one JSON object.
func DecodeBody(raw []byte) (*Body, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, &FieldError{Field: "the request body", Want: "a JSON object", Got: kindOf(bytes.TrimSpace(raw))}
	}
	d := bodyDecoder{fields: fields, body: &Body{present: make(map[string]bool, len(fields)), Parameters: map[string]any{}}}
	b := d.body
	d.str("service_id", &b.ServiceID)
	d.str("plan_id", &b.PlanID)
	d.str("organization_guid", &b.OrganizationGUID)
	d.str("space_guid", &b.SpaceGUID)
	d.str("app_guid", &b.AppGUID)
	d.str("predecessor_binding_id", &b.PredecessorBindingID)
	if obj, ok := d.object("maintenance_info"); ok {
		b.MaintenanceInfo = &MaintenanceInfo{}
		sub := bodyDecoder{fields: obj, body: b, prefix: "maintenance_info."}
		sub.str("version", &b.MaintenanceInfo.Version)
		sub.str("description", &b.MaintenanceInfo.Description)
		d.adopt(sub)
	}
	if obj, ok := d.object("bind_resource"); ok {
		sub := bodyDecoder{fields: obj, body: b, prefix: "bind_resource."}
		sub.str("app_guid", &b.BindResourceAppGUID)
		d.adopt(sub)
		if d.err == nil {
			d.err = decodeNumbers("bind_resource", fields["bind_resource"], &b.BindResource)
		}
	}
	if obj, ok := d.object("context"); ok {
		b.Context = bytes.TrimSpace(fields["context"])
		sub := bodyDecoder{fields: obj, body: b, prefix: "context."}
		sub.str("platform", &b.Platform)
		d.adopt(sub)
	}
	// Parameters can be large: decoded once, straight into their map.
	if raw, ok := d.value("parameters"); ok && d.err == nil {
		if raw[0] != '{' {
			d.err = &FieldError{Field: "parameters", Want: "a JSON object", Got: kindOf(raw)}
		} else {
			d.err = decodeNumbers("parameters", raw, &b.Parameters)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return b, nil
}

// bodyDecoder keeps the first problem; the platform fixes one field at a
// time anyway, and later fields may only fail because of the first.
type bodyDecoder struct {
	fields map[string]json.RawMessage
	body   *Body
	prefix string
	err    error
}

func (d *bodyDecoder) adopt(sub bodyDecoder) {
	if d.err == nil {
		d.err = sub.err
	}
}

// value returns the raw value of name unless it is absent or null.
func (d *bodyDecoder) value(name string) (json.RawMessage, bool) {
	raw, ok := d.fields[name]
	if !ok {
		return nil, false
	}
	raw = bytes.TrimSpace(raw)
	if bytes.Equal(raw, []byte("null")) {
		return nil, false
	}
	d.body.present[d.prefix+name] = true
	return raw, true
}

func (d *bodyDecoder) str(name string, into *string) {
	raw, ok := d.value(name)
	if !ok || d.err != nil {
		return
	}
	if raw[0] != '"' {
		d.err = &FieldError{Field: d.prefix + name, Want: "a string", Got: kindOf(raw)}
		return
	}
	if err := json.Unmarshal(raw, into); err != nil || !utf8.ValidString(*into) {
		d.err = &FieldError{Field: d.prefix + name, Want: "a string of valid UTF-8", Got: "something else"}
	}
}

func (d *bodyDecoder) object(name string) (map[string]json.RawMessage, bool) {
	raw, ok := d.value(name)
	if !ok || d.err != nil {
		return nil, false
	}
	if raw[0] != '{' {
		d.err = &FieldError{Field: d.prefix + name, Want: "a JSON object", Got: kindOf(raw)}
		return nil, false
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		d.err = &FieldError{Field: d.prefix + name, Want: "a JSON object", Got: "malformed JSON"}
		return nil, false
	}
	return obj, true
}

// decodeNumbers decodes an object keeping numbers exact (json.Number), as
// JSON schema validation and fingerprints need them.
func decodeNumbers(field string, raw json.RawMessage, into *map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(into); err != nil {
		return &FieldError{Field: field, Want: "a JSON object", Got: "malformed JSON"}
	}
	return nil
}

// kindOf names the JSON type of a raw value in plain words.
func kindOf(raw []byte) string {
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "a JSON object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
