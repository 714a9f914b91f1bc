package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"
)

// exported is every metric name the registry can export, histogram and
// summary suffixes included, read from the collectors' descriptions (a
// vector without series is not gathered, but it is described).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	m := New(Sources{})
	descs := make(chan *prometheus.Desc, 256)
	go func() {
		for _, c := range m.collectors() {
			c.Describe(descs)
		}
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
	}
	return names
}

var metricName = regexp.MustCompile(`\bagora_[a-z_]+\b`)

// checkExpr fails on a metric the registry does not export, and on
// brackets that do not balance (what a typo in PromQL usually breaks).
func checkExpr(t *testing.T, where, expr string, names map[string]bool) {
	t.Helper()
	for _, name := range metricName.FindAllString(expr, -1) {
		if !names[name] {
			t.Errorf("%s names %s, which Agora does not export", where, name)
		}
	}
	depth := 0
	for _, r := range expr {
		switch r {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		}
		if depth < 0 {
			break
		}
	}
	if depth != 0 {
		t.Errorf("%s: brackets do not balance in %q", where, expr)
	}
}

func TestAlertRules(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/prometheus/agora-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("the rules file does not parse: %v", err)
	}
	names := exported(t)
	rules := 0
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			rules++
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" || r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %q lacks an alert name, expr, severity or summary", r.Alert)
			}
			if r.For != "" {
				if _, err := model.ParseDuration(r.For); err != nil {
					t.Errorf("rule %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			checkExpr(t, "rule "+r.Alert, r.Expr, names)
		}
	}
	if rules < 5 {
		t.Errorf("%d rules; the adapter error ratio, old async jobs, Redis and Vault down are the least", rules)
	}
}

func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana/agora-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	names := exported(t)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "panel "+p.Title, tg.Expr, names)
		}
	}
}
