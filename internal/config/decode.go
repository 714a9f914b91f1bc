package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// decodeYAML decodes data into cfg and reports every problem at once, in
// the file's words: the field's path and line, never a Go type name
// (yaml.v3 says "cannot unmarshal !!str into config.Vault"; an operator
// should read "vault: must be a mapping").
func decodeYAML(data []byte, cfg *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err // a syntax error: yaml.v3 says the line, and no type
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	fields := fieldIndex{}
	var errs []error
	fields.walk(root, reflect.TypeFor[Config](), "", &errs)
	if err := root.Decode(cfg); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return errors.Join(append(errs, err)...)
		}
		for _, msg := range te.Errors {
			errs = append(errs, errors.New(fields.plain(msg)))
		}
	}
	return errors.Join(errs...)
}

// fieldIndex remembers which field each line holds, to name the field in
// yaml.v3's type errors, which only say the line.
type fieldIndex map[int]string

// walk reports every key that is not a field of t (recursively), and
// records each value's line and path.
func (idx fieldIndex) walk(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		known := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			sub := joinPath(path, key.Value)
			f, ok := known[key.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("line %d: %s: unknown field (known: %s)", key.Line, sub, strings.Join(slices.Sorted(maps.Keys(known)), ", ")))
				continue
			}
			idx[val.Line] = sub
			idx.walk(val, f.Type, sub, errs)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, el := range n.Content {
			sub := fmt.Sprintf("%s[%d]", path, i)
			idx[el.Line] = sub
			idx.walk(el, t.Elem(), sub, errs)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			out[name] = f
		}
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// lineRE and typeErrorRE are yaml.v3's wording: every message starts
// with its line, and a value of the wrong kind names a Go type.
var (
	lineRE      = regexp.MustCompile(`^line (\d+): (.*)$`)
	typeErrorRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")
	secretishRE = regexp.MustCompile(`(?i)password|token|secret|credential`)
)

// plain rewrites one of yaml.v3's messages without Go type names, naming
// the field the line holds. A value is quoted back unless its field may
// hold a secret.
func (idx fieldIndex) plain(msg string) string {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	line, _ := strconv.Atoi(m[1])
	where, path := "line "+m[1], idx[line]
	if path != "" {
		where += ": " + path
	}
	t := typeErrorRE.FindStringSubmatch(m[2])
	if t == nil {
		return where + ": " + m[2] // our own messages (Duration) are already plain
	}
	got := map[string]string{"str": "text", "int": "a number", "bool": "true/false", "float": "a number", "map": "a mapping", "seq": "a list", "null": "empty"}[t[1]]
	if got == "" {
		got = "this value"
	}
	if t[2] != "" && !secretishRE.MatchString(path) {
		got = strconv.Quote(t[2])
	}
	return fmt.Sprintf("%s: %s is not %s", where, got, kindOf(t[3]))
}

// kindOf says in words what a Go type from yaml.v3's message holds.
func kindOf(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "text"
	case goType == "config.Duration":
		return "a duration like 30s or 5m"
	}
	return "a mapping" // one of this package's structs
}
