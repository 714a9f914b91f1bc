package check

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// ChartDir is the chart, relative to this package.
var ChartDir = filepath.Join("..", "helm", "agora")

// Manifests are the objects one rendering produced, decoded strictly.
type Manifests struct {
	ConfigMaps      map[string]*corev1.ConfigMap
	Services        map[string]*corev1.Service
	ServiceAccounts map[string]*corev1.ServiceAccount
	Deployments     map[string]*appsv1.Deployment
	PDBs            map[string]*policyv1.PodDisruptionBudget
	ServiceMonitors map[string]*monitoringv1.ServiceMonitor
	// Notes is NOTES.txt as rendered.
	Notes string
}

// Render renders the chart with values (over values.yaml) as release
// "agora" in namespace "platform", and decodes every manifest strictly.
func Render(values map[string]any) (*Manifests, error) {
	chrt, err := loader.Load(ChartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	vals, err := util.ToRenderValues(chrt, values, common.ReleaseOptions{Name: "agora", Namespace: "platform", IsInstall: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	files, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, err
	}
	m := &Manifests{
		ConfigMaps: map[string]*corev1.ConfigMap{}, Services: map[string]*corev1.Service{},
		ServiceAccounts: map[string]*corev1.ServiceAccount{}, Deployments: map[string]*appsv1.Deployment{},
		PDBs: map[string]*policyv1.PodDisruptionBudget{}, ServiceMonitors: map[string]*monitoringv1.ServiceMonitor{},
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, "NOTES.txt"):
			m.Notes = files[name]
		case strings.HasSuffix(name, ".yaml"):
			for i, doc := range splitDocuments(files[name]) {
				if err := m.add(doc); err != nil {
					return nil, fmt.Errorf("%s, document %d: %w", name, i, err)
				}
			}
		}
	}
	return m, nil
}

var documentSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// splitDocuments returns the non-empty YAML documents of a rendered file.
func splitDocuments(s string) []string {
	var out []string
	for _, doc := range documentSeparator.Split(s, -1) {
		if strings.TrimSpace(stripComments(doc)) != "" {
			out = append(out, doc)
		}
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// add decodes one manifest into its API type, refusing unknown fields,
// and checks its name and labels as the API server would.
func (m *Manifests) add(doc string) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return err
	}
	var (
		target any
		meta   func() (string, map[string]string)
	)
	switch head.APIVersion + "/" + head.Kind {
	case "v1/ConfigMap":
		o := &corev1.ConfigMap{}
		target, meta = o, func() (string, map[string]string) { m.ConfigMaps[o.Name] = o; return o.Name, o.Labels }
	case "v1/Service":
		o := &corev1.Service{}
		target, meta = o, func() (string, map[string]string) { m.Services[o.Name] = o; return o.Name, o.Labels }
	case "v1/ServiceAccount":
		o := &corev1.ServiceAccount{}
		target, meta = o, func() (string, map[string]string) { m.ServiceAccounts[o.Name] = o; return o.Name, o.Labels }
	case "apps/v1/Deployment":
		o := &appsv1.Deployment{}
		target, meta = o, func() (string, map[string]string) { m.Deployments[o.Name] = o; return o.Name, o.Labels }
	case "policy/v1/PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		target, meta = o, func() (string, map[string]string) { m.PDBs[o.Name] = o; return o.Name, o.Labels }
	case "monitoring.coreos.com/v1/ServiceMonitor":
		o := &monitoringv1.ServiceMonitor{}
		target, meta = o, func() (string, map[string]string) { m.ServiceMonitors[o.Name] = o; return o.Name, o.Labels }
	default:
		return fmt.Errorf("%s %s: a kind this check does not know; add it to check.Manifests", head.APIVersion, head.Kind)
	}
	if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
		return fmt.Errorf("%s: %w", head.Kind, err)
	}
	name, labels := meta()
	var problems []string
	problems = append(problems, validation.IsDNS1123Subdomain(name)...)
	for k, v := range labels {
		problems = append(problems, validation.IsQualifiedName(k)...)
		problems = append(problems, validation.IsValidLabelValue(v)...)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s %q: %s", head.Kind, name, strings.Join(problems, "; "))
	}
	return nil
}
