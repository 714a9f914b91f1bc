package producers

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/broker/catalog"
)

// sliceSource names the slice being checked in catalog errors; errors of
// this source are the producer's to fix, and are shown to her.
const sliceSource = "slice"

// remoteAdapter is the only adapter a slice may use: a producer's code runs
// in her own service, behind the remote protocol, never inside Agora.
const remoteAdapter = "remote"

// slice is one producer's slice, held twice: as a YAML node tree, which is
// what Agora edits (secret to reference, deprecation, removal) and stores,
// and as a catalog.File, which is what the catalog validates and builds.
type slice struct {
	root *yaml.Node // the mapping of the producers[] item
	file *catalog.File
}

// parseSlice decodes a slice: one producers[] item of catalog.yml, as YAML
// or JSON. Problems come back as an *Error of kind ErrInvalid, each at a
// path relative to the slice ("offerings[0].name") and its line in body.
// With unknown fields or mistyped values it returns the slice, decoded
// around them, with that error: checking it reports them together with
// every other problem (catalog.Check repeats them).
func parseSlice(source string, body []byte) (*slice, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, invalid([]FieldProblem{{Message: "the slice is empty: send one producers[] item of catalog.yml (name, contact, offerings)"}})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(body, &doc); err != nil {
		// The strict parse below words syntax errors with their line.
		if _, perr := catalog.ParseSource(source, wrap(body)); perr != nil {
			return nil, invalidFrom(perr)
		}
		return nil, invalid([]FieldProblem{{Message: err.Error()}})
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, invalid([]FieldProblem{{Message: "the slice must be a mapping: one producers[] item of catalog.yml (name, contact, offerings)"}})
	}
	root := doc.Content[0]
	if mapValue(root, "producers") != nil {
		return nil, invalid([]FieldProblem{{Path: "producers", Line: root.Line, Message: "send one item of producers[], not a whole catalog: drop the `producers:` level"}})
	}
	f, err := catalog.ParseSource(source, wrap(body))
	if f == nil {
		return nil, invalidFrom(err)
	}
	if len(f.Producers) != 1 {
		if err != nil {
			return nil, invalidFrom(err)
		}
		return nil, invalid([]FieldProblem{{Message: "the slice must hold exactly one producer section"}})
	}
	sl := &slice{root: root, file: f}
	if err != nil {
		return sl, invalidFrom(err)
	}
	return sl, nil
}

// wrap turns a producers[] item into a catalog source, keeping every line
// two lines further down (undone by relocate):
//
//	producers:
//	-
//	  <the item, indented by two>
func wrap(body []byte) []byte {
	var b strings.Builder
	b.Grow(len(body) + len(body)/8 + 16)
	b.WriteString("producers:\n-\n")
	leading := true
	for line := range strings.SplitSeq(string(body), "\n") {
		line = strings.TrimRight(line, "\r")
		if leading && strings.TrimSpace(line) == "---" {
			line = "" // a document marker, which cannot be indented
		}
		if strings.TrimSpace(line) != "" {
			leading = false
		}
		b.WriteString("  ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// wrapLineOffset is how many lines wrap adds in front.
const wrapLineOffset = 2

// relocate turns a catalog error of the wrapped slice into the slice's own
// terms: paths without "producers[0].", lines as in the body.
func relocate(fe catalog.FieldError) FieldProblem {
	fp := FieldProblem{Path: relPath(fe.Path), Message: strings.ReplaceAll(fe.Message, "of producers[0].", "of ")}
	if fe.Line > wrapLineOffset {
		fp.Line = fe.Line - wrapLineOffset
	}
	return fp
}

func relPath(p string) string {
	switch {
	case p == "producers" || p == "producers[0]":
		return ""
	case strings.HasPrefix(p, "producers[0]."):
		return strings.TrimPrefix(p, "producers[0].")
	}
	return p
}

func invalid(problems []FieldProblem) *Error {
	n := len(problems)
	word := "problems"
	if n == 1 {
		word = "problem"
	}
	return &Error{Kind: ErrInvalid, Message: fmt.Sprintf("the slice is not valid (%d %s)", n, word), Problems: problems}
}

// invalidFrom converts a catalog error (of the slice alone).
func invalidFrom(err error) error {
	var ve *catalog.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	problems := make([]FieldProblem, 0, len(ve.Errors))
	for _, fe := range ve.Errors {
		problems = append(problems, relocate(fe))
	}
	return invalid(problems)
}

// fileFromText parses a stored slice for building the catalog.
func fileFromText(source, text string) (*catalog.File, error) {
	f, err := catalog.ParseSource(source, wrap([]byte(text)))
	if err != nil {
		return nil, err
	}
	for i := range f.Producers {
		for j := range f.Producers[i].Offerings {
			legacyCapabilities(&f.Producers[i].Offerings[j])
		}
	}
	return f, nil
}

// legacyCapabilities gives a remote offering without config.capabilities
// what the remote client once assumed of every adapter: update and
// status. The gate writes config.capabilities into every slice it stores,
// so in a stored slice its absence marks a version from before; without
// this, an upgrade would silently drop updates (or, for a plan that is
// updateable, fail the whole catalog build). Re-applying the slice, or
// restoring it, records what the adapter really declares. A slice being
// applied is checked with the same assumption until the gate has asked
// the adapter (Service.recheck).
func legacyCapabilities(o *catalog.OfferingSpec) {
	if o.Adapter != remoteAdapter || o.Config.Kind != yaml.MappingNode || mapValue(&o.Config, "capabilities") != nil {
		return
	}
	setMapValue(&o.Config, "capabilities", capabilitiesNode([]string{"update", "status"}))
}

// encode renders the node tree as block YAML, the stored form.
func (s *slice) encode() (string, error) {
	blockStyle(s.root)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(s.root); err != nil {
		return "", fmt.Errorf("encode slice: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("encode slice: %w", err)
	}
	return b.String(), nil
}

// reparse refreshes file from the edited node tree.
func (s *slice) reparse(source string) error {
	text, err := s.encode()
	if err != nil {
		return err
	}
	f, err := fileFromText(source, text)
	if err != nil {
		return invalidFrom(err)
	}
	s.file = f
	return nil
}

// producer is the one producer section of the slice.
func (s *slice) producer() *catalog.Producer { return &s.file.Producers[0] }

// offeringNode returns the node of offerings[i].
func (s *slice) offeringNode(i int) *yaml.Node {
	seq := mapValue(s.root, "offerings")
	if seq == nil || seq.Kind != yaml.SequenceNode || i >= len(seq.Content) {
		return nil
	}
	return seq.Content[i]
}

// offeringIndex finds an offering by name.
func (s *slice) offeringIndex(name string) int {
	for i, o := range s.producer().Offerings {
		if o.Name == name {
			return i
		}
	}
	return -1
}

// removeOffering drops offerings[i] from the node tree.
func (s *slice) removeOffering(i int) {
	seq := mapValue(s.root, "offerings")
	seq.Content = append(seq.Content[:i], seq.Content[i+1:]...)
}

// deprecatePlan marks offerings[oi].plans[pi] deprecated in the node tree.
func (s *slice) deprecatePlan(oi, pi int) {
	plans := mapValue(s.offeringNode(oi), "plans")
	setMapValue(plans.Content[pi], "deprecated", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
}

// setDefault sets a top-level scalar when the producer left it out, at
// the top, where a reader of the stored slice looks for name and contact.
func (s *slice) setDefault(key, value string) {
	if mapValue(s.root, key) != nil {
		return
	}
	pair := []*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: value},
	}
	s.root.Content = append(pair, s.root.Content...)
}

// offeringID is the ID the catalog gives an offering: its own, or derived.
func offeringID(producer string, o *catalog.OfferingSpec) string {
	if o.ID != "" {
		return o.ID
	}
	return catalog.DeriveOfferingID(producer, o.Name)
}

func planID(producer string, o *catalog.OfferingSpec, p *catalog.PlanSpec) string {
	if p.ID != "" {
		return p.ID
	}
	return catalog.DerivePlanID(producer, o.Name, p.Name)
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setMapValue(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// blockStyle turns JSON's flow style into block YAML, for readable
// history; scalars keep their quoting.
func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style &^= yaml.FlowStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// walkStrings calls fn for every string scalar under n, with its path.
func walkStrings(n *yaml.Node, path string, fn func(path string, n *yaml.Node)) {
	if n == nil {
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			walkStrings(n.Content[i+1], joinPath(path, n.Content[i].Value), fn)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			walkStrings(c, path+"["+strconv.Itoa(i)+"]", fn)
		}
	case yaml.ScalarNode:
		if n.Tag == "!!str" || n.Tag == "" {
			fn(path, n)
		}
	case yaml.AliasNode:
		walkStrings(n.Alias, path, fn)
	}
}

func joinPath(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}
