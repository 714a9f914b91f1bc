package check

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/agora-osb/agora/broker/catalog"
	"github.com/agora-osb/agora/internal/config"
)

// required are the values every install must give: the Secret with the
// broker's credentials.
func required() map[string]any {
	return map[string]any{"brokerCredentials": map[string]any{"existingSecret": "agora-broker"}}
}

// with merges overrides into required().
func with(overrides map[string]any) map[string]any {
	v := required()
	for k, val := range overrides {
		v[k] = val
	}
	return v
}

// secretEnv is what the Secrets the values name put in the environment,
// as Kubernetes would.
var secretEnv = map[string]string{"AGORA_CREDENTIALS": "platform:s3cret", "AGORA_VAULT_TOKEN": "hvs.token"}

func TestHelmLint(t *testing.T) {
	for name, values := range variants() {
		t.Run(name, func(t *testing.T) {
			result := lint.RunAll(ChartDir, values, "platform")
			for _, msg := range result.Messages {
				if msg.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", msg)
				}
			}
		})
	}
}

// variants are the installs the chart must render correctly.
func variants() map[string]map[string]any {
	return map[string]map[string]any{
		"defaults (Kubernetes auth)": required(),
		"AppRole, mTLS, ServiceMonitor, Vault CA": with(map[string]any{
			"vault": map[string]any{"auth": "approle", "caConfigMap": "vault-ca",
				"approle": map[string]any{"roleId": "7f3c-role", "existingSecret": "agora-approle"}},
			"tls":            map[string]any{"enabled": true, "existingSecret": "agora-tls", "clientCA": map[string]any{"existingSecret": "platform-ca"}},
			"serviceMonitor": map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
		}),
		"token, TLS without client certificates, 3 replicas": with(map[string]any{
			"replicaCount": 3,
			"vault":        map[string]any{"auth": "token", "token": map[string]any{"existingSecret": "agora-vault-token"}},
			"tls":          map[string]any{"enabled": true, "existingSecret": "agora-tls"},
			"redis":        map[string]any{"existingSecret": "agora-redis"},
		}),
	}
}

func TestEveryVariantRendersAWorkingDeployment(t *testing.T) {
	for name, values := range variants() {
		t.Run(name, func(t *testing.T) {
			m, err := Render(values)
			if err != nil {
				t.Fatal(err)
			}
			checkDeployment(t, m, values)
		})
	}
}

// checkDeployment asserts what every install needs, on the decoded objects.
func checkDeployment(t *testing.T, m *Manifests, values map[string]any) {
	t.Helper()
	d := only(t, m.Deployments, "Deployment")
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Fatalf("replicas %d, want 2 or more", ptrValue(d.Spec.Replicas))
	}
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not match its pods %v", d.Spec.Selector, pod.Labels)
	}

	pdb := only(t, m.PDBs, "PodDisruptionBudget")
	if !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(podLabels) {
		t.Errorf("the PodDisruptionBudget selects %v, not the pods %v", pdb.Spec.Selector, pod.Labels)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget minAvailable %v with %d replicas: a drain must keep one, and be able to move one", pdb.Spec.MinAvailable, *d.Spec.Replicas)
	}

	svc := only(t, m.Services, "Service")
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("the Service selects %v, not the pods %v", svc.Spec.Selector, pod.Labels)
	}

	if pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.RunAsNonRoot == nil || !*pod.Spec.SecurityContext.RunAsNonRoot {
		t.Error("the pod may run as root")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container's root filesystem is writable or it may escalate privileges")
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for _, sp := range svc.Spec.Ports {
		if _, ok := ports[sp.TargetPort.String()]; !ok {
			t.Errorf("Service port %s targets %q, which the container does not name", sp.Name, sp.TargetPort.String())
		}
	}

	cfg := agoraConfig(t, m, d)
	checkProbes(t, c, cfg, ports)
	checkVolumes(t, m, pod.Spec, c)
	checkServiceAccount(t, m, pod.Spec, cfg)

	vault := sub(values, "vault")
	if auth, _ := vault["auth"].(string); auth != "" && cfg.Vault.Auth != auth {
		t.Errorf("vault.auth %q in agora.yml, values say %q", cfg.Vault.Auth, auth)
	}
	if len(vault) == 0 && cfg.Vault.Auth != "kubernetes" {
		t.Errorf("the default Vault login is %q, want kubernetes", cfg.Vault.Auth)
	}
	if sm := sub(values, "serviceMonitor"); sm["enabled"] == true {
		mon := only(t, m.ServiceMonitors, "ServiceMonitor")
		svcPorts := map[string]bool{}
		for _, p := range svc.Spec.Ports {
			svcPorts[p.Name] = true
		}
		for _, ep := range mon.Spec.Endpoints {
			if !svcPorts[ep.Port] || ep.Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoint %s%s: not a port of the Service %v, or not /metrics", ep.Port, ep.Path, svcPorts)
			}
		}
		if mon.Labels["release"] != "prometheus" {
			t.Errorf("ServiceMonitor labels %v lack the configured ones", mon.Labels)
		}
	} else if len(m.ServiceMonitors) > 0 {
		t.Error("a ServiceMonitor without serviceMonitor.enabled")
	}
}

// agoraConfig loads the rendered agora.yml with Agora's own config
// loader, the environment coming from the Secrets the pod reads: the
// chart must produce a configuration agora serve accepts.
func agoraConfig(t *testing.T, m *Manifests, d *appsv1.Deployment) config.Config {
	t.Helper()
	cm := m.ConfigMaps[d.Spec.Template.Spec.Volumes[0].ConfigMap.Name]
	if cm == nil {
		t.Fatalf("no ConfigMap %q", d.Spec.Template.Spec.Volumes[0].ConfigMap.Name)
	}
	path := filepath.Join(t.TempDir(), "agora.yml")
	if err := os.WriteFile(path, []byte(cm.Data["agora.yml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, from := range d.Spec.Template.Spec.Containers[0].EnvFrom {
		if from.SecretRef != nil {
			maps := map[string]string{"agora-broker": "AGORA_CREDENTIALS", "agora-vault-token": "AGORA_VAULT_TOKEN", "agora-redis": "REDIS_URL"}
			if key := maps[from.SecretRef.Name]; key != "" {
				env[key] = secretEnv[key]
				if key == "REDIS_URL" {
					env[key] = "redis://:pw@redis-master:6379/0"
				}
			} else {
				t.Errorf("envFrom Secret %q is not one the values name", from.SecretRef.Name)
			}
		}
	}
	cfg, err := config.Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("agora serve refuses the chart's agora.yml:\n%v\n--- agora.yml ---\n%s", err, cm.Data["agora.yml"])
	}
	if catalogYAML, ok := cm.Data["catalog.yml"]; ok {
		if _, err := catalog.ParseSource("catalog.yml", []byte(catalogYAML)); err != nil {
			t.Errorf("the chart's catalog.yml does not parse: %v", err)
		}
	}
	if strings.Contains(cm.Data["agora.yml"], "s3cret") || strings.Contains(cm.Data["agora.yml"], "hvs.") {
		t.Error("a secret is in the ConfigMap")
	}
	return cfg
}

// checkProbes: liveness on /healthz and readiness on /readyz, on a port
// that serves them without a client certificate.
func checkProbes(t *testing.T, c corev1.Container, cfg config.Config, ports map[string]int32) {
	t.Helper()
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", p.name)
			continue
		}
		get := p.probe.HTTPGet
		if get.Path != p.path {
			t.Errorf("%s probe on %s, want %s", p.name, get.Path, p.path)
		}
		port, ok := ports[get.Port.String()]
		if !ok {
			t.Errorf("%s probe on port %q, which the container does not name", p.name, get.Port.String())
		}
		requiresCert := cfg.TLS.ClientCAFile != "" && cfg.TLS.ClientAuth != "verify_if_given"
		if requiresCert && !strings.HasSuffix(cfg.ProbeListen, ":"+strconv.Itoa(int(port))) {
			t.Errorf("%s probe on port %d needs a client certificate (probe_listen is %q)", p.name, port, cfg.ProbeListen)
		}
		wantScheme := corev1.URISchemeHTTP
		if cfg.TLS.Enabled() && !strings.HasSuffix(cfg.ProbeListen, ":"+strconv.Itoa(int(port))) {
			wantScheme = corev1.URISchemeHTTPS
		}
		if get.Scheme != wantScheme {
			t.Errorf("%s probe scheme %s, want %s", p.name, get.Scheme, wantScheme)
		}
	}
}

// checkVolumes: every mount names a volume, every file agora.yml names is
// mounted, every ConfigMap is rendered or given.
func checkVolumes(t *testing.T, m *Manifests, pod corev1.PodSpec, c corev1.Container) {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
		if v.ConfigMap != nil && m.ConfigMaps[v.ConfigMap.Name] == nil && v.ConfigMap.Name != "vault-ca" {
			t.Errorf("volume %s: ConfigMap %q is neither rendered nor a value", v.Name, v.ConfigMap.Name)
		}
	}
	for _, mount := range c.VolumeMounts {
		if _, ok := volumes[mount.Name]; !ok {
			t.Errorf("mount %s names no volume", mount.Name)
		}
		if !mount.ReadOnly {
			t.Errorf("mount %s is writable", mount.Name)
		}
	}
	cm := m.ConfigMaps[pod.Volumes[0].ConfigMap.Name]
	for _, line := range strings.Split(cm.Data["agora.yml"], "\n") {
		_, value, ok := strings.Cut(line, ": ")
		if !ok || !strings.HasPrefix(value, "/etc/agora/") {
			continue
		}
		mounted := slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
			return strings.HasPrefix(value, strings.TrimSuffix(vm.MountPath, "/")+"/") || value == vm.MountPath
		})
		if !mounted {
			t.Errorf("agora.yml names %s, which no volume mounts", value)
		}
	}
}

// checkServiceAccount: Kubernetes auth needs the pod's token mounted.
func checkServiceAccount(t *testing.T, m *Manifests, pod corev1.PodSpec, cfg config.Config) {
	t.Helper()
	if _, ok := m.ServiceAccounts[pod.ServiceAccountName]; !ok {
		t.Errorf("serviceAccountName %q is not rendered", pod.ServiceAccountName)
	}
	mounted := pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken
	if cfg.Vault.Auth == "kubernetes" && !mounted {
		t.Error("Kubernetes auth without the service-account token mounted")
	}
	if cfg.Vault.Auth != "kubernetes" && mounted {
		t.Error("the service-account token is mounted though nothing uses it")
	}
}

func TestMissingSecretsAreRefusedWithTheirValueNames(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no broker credentials", map[string]any{}, "brokerCredentials.existingSecret"},
		{"AppRole without its secret_id", with(map[string]any{"vault": map[string]any{"auth": "approle"}}), "vault.approle.existingSecret"},
		{"token without its Secret", with(map[string]any{"vault": map[string]any{"auth": "token"}}), "vault.token.existingSecret"},
		{"TLS without a certificate", with(map[string]any{"tls": map[string]any{"enabled": true}}), "tls.existingSecret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Render: %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestDecodingIsStrict(t *testing.T) {
	m := &Manifests{Deployments: map[string]*appsv1.Deployment{}}
	err := m.add("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n")
	if err == nil || !strings.Contains(err.Error(), "replica") {
		t.Errorf("a misspelt field passed: %v", err)
	}
	err = m.add("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: Not_A_Name}\n")
	if err == nil {
		t.Error("an invalid name passed")
	}
}

func only[T any](t *testing.T, objs map[string]*T, kind string) *T {
	t.Helper()
	if len(objs) != 1 {
		t.Fatalf("%d %s objects, want 1", len(objs), kind)
	}
	for _, o := range objs {
		return o
	}
	return nil
}

func sub(values map[string]any, key string) map[string]any {
	m, _ := values[key].(map[string]any)
	return m
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
