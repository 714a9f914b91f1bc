package adapters

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// JSONSettings returns a strict Decoder over a JSON document: unknown
// fields and trailing data are errors. An empty document decodes as {}.
// Agora turns every YAML `config:` section into JSON first, so adapters
// declare their settings with `json` tags only.
func JSONSettings(raw []byte) Decoder {
	return jsonSettings(raw)
}

// MapSettings is JSONSettings for a Go map, handy in tests.
func MapSettings(m map[string]any) Decoder {
	raw, err := json.Marshal(m)
	if err != nil {
		return failingDecoder{err: fmt.Errorf("encode settings: %w", err)}
	}
	return jsonSettings(raw)
}

type jsonSettings []byte

func (s jsonSettings) Decode(v any) error {
	raw := bytes.TrimSpace(s)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("unexpected data after the settings object")
	}
	return nil
}

type failingDecoder struct{ err error }

func (f failingDecoder) Decode(any) error { return f.err }
