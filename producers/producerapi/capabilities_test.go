package producerapi_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/agora-osb/agora/adapters/conformance"
	"github.com/agora-osb/agora/producers"
)

// declaringGate passes every adapter and reports the capabilities it
// declared, as remote.Conformance does after GET /v1/capabilities.
type declaringGate struct {
	declared []string
	mu       sync.Mutex
	settings []map[string]any
}

func (g *declaringGate) run(_ context.Context, req producers.GateRequest) (conformance.Report, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.settings = append(g.settings, req.Settings)
	return conformance.Report{
		Results:      []conformance.CheckResult{{Name: "capabilities", Passed: true}},
		Capabilities: g.declared,
	}, nil
}

// storedCapabilities reads offerings[0].config.capabilities from a stored
// slice; nil when it has none.
func storedCapabilities(t *testing.T, slice string) []string {
	t.Helper()
	var doc struct {
		Offerings []struct {
			Config struct {
				Capabilities []string `yaml:"capabilities"`
			} `yaml:"config"`
		} `yaml:"offerings"`
	}
	if err := yaml.Unmarshal([]byte(slice), &doc); err != nil || len(doc.Offerings) == 0 {
		t.Fatalf("stored slice does not parse (%v):\n%s", err, slice)
	}
	return doc.Offerings[0].Config.Capabilities
}

// A producer does not write config.capabilities: the gate fills in what
// her adapter declares before the version is stored. A list she wrote
// herself is kept as she wrote it, and reaches the gate to be checked.
func TestApplyFillsInTheCapabilitiesTheAdapterDeclares(t *testing.T) {
	gate := &declaringGate{declared: []string{"update", "status"}}
	f := newFixture(t, func(cfg *producers.Config) { cfg.Gate = gate.run })
	x := f.producer("team-x", false)
	slice := string(readFile(t, "testdata/team-x.yml"))

	for _, tc := range []struct {
		name   string
		config string // added under config:
		want   []string
	}{
		{"left out", "", []string{"update", "status"}},
		{"her own", "      capabilities: [update]\n", []string{"update"}},
		{"explicitly none", "      capabilities: []\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(slice, "    config:\n", "    config:\n"+tc.config, 1)
			res, err := x.Apply(ctx, "team-x", []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			v, err := x.Version(ctx, "team-x", res.Version)
			if err != nil {
				t.Fatal(err)
			}
			if got := storedCapabilities(t, v.Slice); !slices.Equal(got, tc.want) {
				t.Errorf("stored config.capabilities %q, want %q:\n%s", got, tc.want, v.Slice)
			}
			gate.mu.Lock()
			seen := gate.settings[len(gate.settings)-1]
			gate.mu.Unlock()
			if _, listed := seen["capabilities"]; listed != (tc.config != "") {
				t.Errorf("the gate saw config %v: capabilities present %v, want %v", seen, listed, tc.config != "")
			}
		})
	}
}
