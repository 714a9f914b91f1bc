package adapters

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type testSettings struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

func (s testSettings) Validate() error {
	var errs []error
	if s.Host == "" {
		errs = append(errs, errors.New("host: required"))
	}
	if s.Port < 1 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("port: %d is not between 1 and 65535", s.Port))
	}
	return errors.Join(errs...)
}

type testPlan struct {
	Size int `json:"size"`
}

func (p testPlan) Validate() error {
	if p.Size < 0 {
		return fmt.Errorf("size: %d must not be negative", p.Size)
	}
	return nil
}

// noValidate has no Validate method: DecodeConfig only decodes it.
type noValidate struct {
	Name string `json:"name"`
}

var (
	small = Plan{ID: "id-small", Name: "small"}
	large = Plan{ID: "id-large", Name: "large"}
)

func plan(p Plan, raw string) PlanConfig {
	return PlanConfig{Plan: p, Settings: JSONSettings([]byte(raw))}
}

func TestDecodeConfigProblems(t *testing.T) {
	const valid = `{"host":"db","port":5432}`
	tests := []struct {
		name     string
		decoder  ConfigDecoder[testSettings, testPlan]
		settings Decoder
		plans    []PlanConfig
		// want lists the problems, one per joined error, in order.
		want []string
	}{
		{name: "valid", settings: JSONSettings([]byte(valid)), plans: []PlanConfig{plan(small, `{"size":1}`)}},
		{name: "a plan without settings is the zero plan", settings: JSONSettings([]byte(valid)), plans: []PlanConfig{{Plan: small}}},
		{
			name:     "unknown field rejected, the rest still validated",
			settings: JSONSettings([]byte(`{"host":"db","prot":5432}`)),
			want:     []string{`config: json: unknown field "prot"`, "config: port: 0 is not between 1 and 65535"},
		},
		{
			name:     "missing settings",
			settings: nil,
			want:     []string{"config: missing", "config: host: required", "config: port: 0 is not between 1 and 65535"},
		},
		{
			name:     "plan problems labelled with their plan",
			settings: JSONSettings([]byte(valid)),
			plans:    []PlanConfig{plan(small, `{"size":1}`), plan(large, `{"size":-1,"sise":2}`)},
			want:     []string{`plans[1] (large): json: unknown field "sise"`, "plans[1] (large): size: -1 must not be negative"},
		},
		{
			name:     "every problem at once, joined Validate errors split",
			settings: JSONSettings([]byte(`{"port":70000}`)),
			plans:    []PlanConfig{plan(small, `{"size":-2}`), plan(large, `[]`)},
			want: []string{
				"config: host: required", "config: port: 70000 is not between 1 and 65535",
				"plans[0] (small): size: -2 must not be negative",
				"plans[1] (large): json: cannot unmarshal array into Go value of type adapters.testPlan",
			},
		},
		{
			name:     "labels and required plan settings",
			decoder:  ConfigDecoder[testSettings, testPlan]{Label: "settings", PlanLabel: "config", RequirePlanSettings: true},
			settings: JSONSettings([]byte(`{"host":"db"}`)),
			plans:    []PlanConfig{{Plan: small}, plan(large, `{"sise":1}`)},
			want: []string{
				"settings: port: 0 is not between 1 and 65535",
				"plans[0] (small): config: missing",
				`plans[1] (large): config: json: unknown field "sise"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.decoder.Decode(Config{Offering: "db", Settings: tt.settings, Plans: tt.plans})
			got := problems(err)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tt.want), err)
			}
			for i, want := range tt.want {
				if got[i].Error() != want {
					t.Errorf("problem %d = %q, want %q", i, got[i], want)
				}
			}
		})
	}
}

// defaulted fills in its port, as a Defaulter, before it is validated.
type defaulted struct{ testSettings }

func (d *defaulted) ApplyDefaults() {
	if d.Port == 0 {
		d.Port = 5432
	}
}

func TestDecodeConfigAppliesDefaultsBeforeValidate(t *testing.T) {
	s, plans, err := DecodeConfig[defaulted, defaulted](Config{
		Settings: JSONSettings([]byte(`{"host":"db"}`)),
		Plans:    []PlanConfig{plan(small, `{"host":"p","port":1}`), plan(large, `{}`)},
	})
	if got := problems(err); len(got) != 1 || got[0].Error() != "plans[1] (large): host: required" {
		t.Fatalf("err = %v; want only the plan without a host, its port defaulted", err)
	}
	if s.Port != 5432 {
		t.Errorf("settings = %+v; want the default port", s)
	}
	if p, _ := plans.For(small); p.Port != 1 {
		t.Errorf("plan = %+v; want the port it set", p)
	}
}

func TestPlanSettingsLookup(t *testing.T) {
	_, plans, err := DecodeConfig[noValidate, testPlan](Config{Settings: JSONSettings(nil), Plans: []PlanConfig{plan(small, `{"size":1}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := plans.Lookup(Plan{Name: "small"}); err != nil || p.Size != 1 {
		t.Errorf("Lookup(small) = %+v, %v", p, err)
	}
	_, err = plans.Lookup(Plan{ID: "nope", Name: "huge"})
	if !errors.Is(err, ErrNotSupported) || !IsTerminal(err) || !strings.Contains(err.Error(), `plan "huge" (nope)`) {
		t.Errorf("Lookup(unknown) err = %v; want a terminal ErrNotSupported naming the plan", err)
	}
}

func TestDecodeConfigKeepsTheChain(t *testing.T) {
	sentinel := errors.New("backend says no")
	_, _, err := DecodeConfig[noValidate, noValidate](Config{Settings: failingDecoder{err: sentinel}})
	if !errors.Is(err, sentinel) || err.Error() != "config: backend says no" {
		t.Errorf("err = %v; want the decoder's error, labelled and wrapped", err)
	}
}

func TestPlanSettingsFor(t *testing.T) {
	s, plans, err := DecodeConfig[testSettings, testPlan](Config{
		Settings: MapSettings(map[string]any{"host": "db", "port": 1}),
		Plans: []PlanConfig{
			plan(small, `{"size":1}`),
			plan(large, `{"size":2}`),
			// A name that is another plan's ID must not shadow that plan.
			plan(Plan{ID: "id-odd", Name: "id-small"}, `{"size":3}`),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if s != (testSettings{Host: "db", Port: 1}) {
		t.Errorf("settings = %+v", s)
	}
	tests := []struct {
		name   string
		plan   Plan
		want   int
		wantOK bool
	}{
		{name: "by ID", plan: Plan{ID: "id-large"}, want: 2, wantOK: true},
		{name: "by name", plan: Plan{Name: "large"}, want: 2, wantOK: true},
		{name: "ID before name", plan: Plan{ID: "id-small", Name: "large"}, want: 1, wantOK: true},
		{name: "unknown ID, known name", plan: Plan{ID: "nope", Name: "large"}, want: 2, wantOK: true},
		{name: "another plan's ID as a name", plan: Plan{ID: "id-small"}, want: 1, wantOK: true},
		{name: "that name", plan: Plan{Name: "id-small"}, want: 3, wantOK: true},
		{name: "unknown", plan: Plan{ID: "nope", Name: "nope"}},
		{name: "empty", plan: Plan{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := plans.For(tt.plan)
			if ok != tt.wantOK || got.Size != tt.want {
				t.Errorf("For(%+v) = %+v, %v; want size %d, %v", tt.plan, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if _, ok := (PlanSettings[testPlan]{}).For(small); ok {
		t.Error("the zero PlanSettings found a plan")
	}
}

func TestDecodeConfigLeavesOutPlansWithProblems(t *testing.T) {
	_, plans, err := DecodeConfig[testSettings, testPlan](Config{
		Settings: MapSettings(map[string]any{"host": "db", "port": 1}),
		Plans:    []PlanConfig{plan(small, `{"size":1}`), plan(large, `{"size":-1}`)},
	})
	if err == nil || strings.Contains(err.Error(), "small") {
		t.Fatalf("err = %v; want a problem with large only", err)
	}
	if _, ok := plans.For(large); ok {
		t.Error("a plan with problems was indexed")
	}
	if _, ok := plans.For(small); !ok {
		t.Error("a valid plan was not indexed")
	}
}
