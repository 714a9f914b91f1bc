package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is one parsed, not yet validated catalog source: catalog.yml, or a
// producer's slice applied over HTTP. JSON is valid YAML, so ParseSource
// reads a slice sent as JSON just as well.
type File struct {
	// Source names the file in error reports ("catalog.yml: producers[0]...").
	// ParseFile sets it to the path; ParseSource to the name it is given.
	Source    string     `yaml:"-"`
	Producers []Producer `yaml:"producers"`

	// lines maps a field path ("producers[0].offerings[1].id") to the line
	// it starts on, so validation errors can name the line. Files built in
	// Go rather than parsed have none, and errors then carry no line.
	lines map[string]int
	// decodeProblems are the unknown fields and mistyped values of a
	// parsed source. Parse returns them as its error, and the file with
	// them; Check and Build report them again, together with every rule
	// the rest of the file breaks, so that one unknown field does not
	// hide every other problem.
	decodeProblems []FieldError
}

// Producer is one team's section of the catalog. A producer either lists
// its offerings or names an Upstream broker whose catalog Build imports;
// never both, so there is one place to look for where an offering is
// defined.
type Producer struct {
	Name      string         `yaml:"name"`
	Contact   string         `yaml:"contact"`
	Offerings []OfferingSpec `yaml:"offerings"`
	// Upstream is an existing OSB broker of this producer. Build fetches
	// its catalog through BuildOptions.Import and validates the result
	// like offerings written by hand.
	Upstream *UpstreamSpec `yaml:"upstream"`
}

// OfferingSpec is one service offering as written in the catalog. The
// built, validated form is Offering.
type OfferingSpec struct {
	Name        string `yaml:"name"`
	ID          string `yaml:"id"`
	Description string `yaml:"description"`
	Adapter     string `yaml:"adapter"`
	// Config is the adapter's offering settings. It stays a YAML node until
	// Build turns it into JSON for the adapter's strict decoder.
	Config yaml.Node `yaml:"config"`
	// Pointers tell "left out" (take the default, true) from "false".
	Bindable             *bool      `yaml:"bindable"`
	InstancesRetrievable *bool      `yaml:"instances_retrievable"`
	BindingsRetrievable  *bool      `yaml:"bindings_retrievable"`
	PlanUpdateable       bool       `yaml:"plan_updateable"`
	AllowContextUpdates  bool       `yaml:"allow_context_updates"`
	Tags                 []string   `yaml:"tags"`
	Requires             []string   `yaml:"requires"`
	Metadata             yaml.Node  `yaml:"metadata"`
	Plans                []PlanSpec `yaml:"plans"`
	// OmitBindingEndpoints leaves `endpoints` out of bind and GET binding
	// answers, for platforms whose OSB client cannot decode the spec's
	// string ports (provider-osb's fork of go-open-service-broker-client
	// decodes them as numbers and fails on the whole answer).
	OmitBindingEndpoints bool `yaml:"omit_binding_endpoints"`
}

// PlanSpec is one plan as written in the catalog. The built form is Plan.
type PlanSpec struct {
	Name           string `yaml:"name"`
	ID             string `yaml:"id"`
	Description    string `yaml:"description"`
	Free           *bool  `yaml:"free"`
	Bindable       *bool  `yaml:"bindable"`
	PlanUpdateable *bool  `yaml:"plan_updateable"`
	Async          bool   `yaml:"async"`
	// OperationTimeout is a Go duration ("90m"); empty means one hour.
	OperationTimeout       string               `yaml:"operation_timeout"`
	MaximumPollingDuration *int                 `yaml:"maximum_polling_duration"`
	Metadata               yaml.Node            `yaml:"metadata"`
	MaintenanceInfo        *MaintenanceInfoSpec `yaml:"maintenance_info"`
	Config                 yaml.Node            `yaml:"config"`
	Schemas                *SchemasSpec         `yaml:"schemas"`
	// Deprecated hides the plan from GET /v2/catalog and from the plans a
	// new instance may use, while existing instances of it keep working
	// (update, bind, deprovision), because the broker still resolves it.
	Deprecated bool `yaml:"deprecated"`
	// BindingRotatable is OSB 2.17's binding_rotatable: a platform may
	// create a successor of a binding (predecessor_binding_id). Only on
	// bindable plans.
	BindingRotatable bool `yaml:"binding_rotatable"`
	// SensitiveParameters withholds the stored parameters of the plan's
	// instances and bindings from GET instance and GET binding. Agora
	// still keeps them (in Vault), for updates and rotations.
	SensitiveParameters bool `yaml:"sensitive_parameters"`
}

// MaintenanceInfoSpec is the OSB maintenance_info object.
type MaintenanceInfoSpec struct {
	Version     string `yaml:"version"`
	Description string `yaml:"description"`
}

// SchemasSpec is the OSB schemas object of a plan.
type SchemasSpec struct {
	ServiceInstance *InstanceSchemasSpec `yaml:"service_instance"`
	ServiceBinding  *BindingSchemasSpec  `yaml:"service_binding"`
}

// InstanceSchemasSpec holds the schemas for creating and updating instances.
type InstanceSchemasSpec struct {
	Create *ParametersSpec `yaml:"create"`
	Update *ParametersSpec `yaml:"update"`
}

// BindingSchemasSpec holds the schema for creating bindings.
type BindingSchemasSpec struct {
	Create *ParametersSpec `yaml:"create"`
}

// ParametersSpec wraps one JSON schema, as the OSB input parameters object.
type ParametersSpec struct {
	Parameters yaml.Node `yaml:"parameters"`
}

// Parse strictly decodes a catalog with no source name.
func Parse(data []byte) (*File, error) {
	return ParseSource("", data)
}

// ParseFile reads and strictly decodes the catalog at path, naming the
// source after the path in every error.
func ParseFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	return ParseSource(path, data)
}

// ParseSource strictly decodes one catalog source. Syntax errors, unknown
// fields and wrongly typed values come back as a *ValidationError with
// every problem the decoder found, each with its line. For unknown fields
// and wrongly typed values (not for a syntax error) it also returns the
// file, decoded around them: pass it to Check for every problem at once,
// these included.
func ParseSource(source string, data []byte) (*File, error) {
	f := &File{Source: source}
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}

	// The node tree gives lines for every path; the strict struct decode
	// gives unknown-field errors. yaml.v3 cannot do both in one pass:
	// Node.Decode ignores KnownFields.
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, parseError(source, err, lineIndex{})
	}
	f.lines = map[string]int{}
	at := lineIndex{keys: map[int]string{}, values: map[int]string{}}
	if len(doc.Content) > 0 {
		recordLines(doc.Content[0], "", f.lines, at)
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(f); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		ve := parseError(source, err, at)
		var te *yaml.TypeError
		if errors.As(err, &te) {
			// yaml.v3 decodes everything around unknown fields and
			// mistyped values before it reports them.
			f.decodeProblems = ve.Errors
			return f, ve
		}
		return nil, ve
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &ValidationError{Errors: []FieldError{{
			Source:  source,
			Message: "more than one YAML document; a catalog source is exactly one",
		}}}
	}
	return f, nil
}

// lineIndex maps a line back to a field path, because the decoder's errors
// name only the line: unknown-field errors the key's, type errors the
// value's (which, for a block value, is the line of its first entry).
type lineIndex struct {
	keys, values map[int]string
}

// recordLines walks the node tree and notes where each field path starts,
// and which path the first key and the outermost value on each line
// belong to.
func recordLines(n *yaml.Node, path string, lines map[string]int, at lineIndex) {
	claim := func(m map[int]string, line int, p string) {
		if _, seen := m[line]; !seen {
			m[line] = p
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			p := joinPath(path, key.Value)
			if _, seen := lines[p]; !seen {
				lines[p] = key.Line
			}
			claim(at.keys, key.Line, p)
			claim(at.values, value.Line, p)
			recordLines(value, p, lines, at)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			lines[p] = item.Line
			claim(at.values, item.Line, p)
			recordLines(item, p, lines, at)
		}
	}
}

// line returns the line of path, or of its nearest ancestor that has one
// (a derived id has no line of its own, but its plan has).
func (f *File) line(path string) int {
	if f == nil || f.lines == nil {
		return 0
	}
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := f.lines[p]; ok {
			return l
		}
	}
	return 0
}

func joinPath(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i <= 0 {
		return ""
	}
	return p[:i]
}

var (
	// yaml.v3 reports problems as text only ("line 7: field colour not
	// found in type catalog.PlanSpec"), so the line is read back out of it.
	yamlLineRE     = regexp.MustCompile(`^line (\d+): (.*)$`)
	yamlSyntaxRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlUnknownRE  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	yamlTypeNameRE = regexp.MustCompile(` into (?:\[\])?\*?catalog\.\w+`)
)

func parseError(source string, err error, at lineIndex) *ValidationError {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	ve := &ValidationError{}
	for _, msg := range msgs {
		fe := FieldError{Source: source, Message: strings.TrimPrefix(msg, "yaml: ")}
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			fe.Line, _ = strconv.Atoi(m[1])
			fe.Message = m[2]
			fe.Path = at.values[fe.Line]
			if u := yamlUnknownRE.FindStringSubmatch(m[2]); u != nil {
				fe.Message = fmt.Sprintf("unknown field %q", u[1])
				fe.Path = at.keys[fe.Line]
			}
			// Go type names mean nothing to a producer; the path says
			// where the value sits.
			fe.Message = yamlTypeNameRE.ReplaceAllStringFunc(fe.Message, func(m string) string {
				if strings.Contains(m, "[]") {
					return " into a list"
				}
				return " into a mapping"
			})
		} else if m := yamlSyntaxRE.FindStringSubmatch(msg); m != nil {
			// For syntax errors yaml.v3 often names the line where the
			// enclosing block starts rather than the offending line.
			fe.Line, _ = strconv.Atoi(m[1])
			fe.Message = "YAML syntax error: " + m[2]
		}
		ve.Errors = append(ve.Errors, fe)
	}
	ve.sort(nil)
	return ve
}
