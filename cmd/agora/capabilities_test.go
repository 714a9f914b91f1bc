package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/adaptertest/memadapter"
	"github.com/agora-osb/agora/adapters/remote"
	"github.com/agora-osb/agora/producers"
)

// remoteCatalog is a catalog with one remote offering that promises
// updates, with the given lines added to its config.
func remoteCatalog(config string) string {
	return `producers:
  - name: team-x
    contact: x@example.com
    offerings:
      - name: files
        description: Files.
        adapter: remote
        plan_updateable: true
        config:
          url: https://files.example.com
          secret: s3cr3t
` + config + `        plans:
          - name: small
            description: Small.
            schemas:
              service_instance:
                update:
                  parameters:
                    $schema: http://json-schema.org/draft-04/schema#
                    type: object
`
}

// What a remote offering may promise follows config.capabilities: the
// catalog check, offline, refuses updates on a config without "update",
// at each field that promises one, and says how to fix it.
func TestCatalogCheckRefusesUpdatesARemoteConfigDoesNotList(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config string
		want   []string // in the report; none: the catalog is valid
	}{
		{"no capabilities", "", []string{
			"producers[0].offerings[0].plan_updateable: must be false",
			"producers[0].offerings[0].plans[0].schemas.service_instance.update: must be left out",
			`add "update" to config.capabilities if your adapter declares it`,
		}},
		{"status only", "          capabilities: [status]\n", []string{"producers[0].offerings[0].plan_updateable: must be false"}},
		{"unknown capability", "          capabilities: [update, backup]\n", []string{
			`producers[0].offerings[0].config: adapter "remote": capabilities[1]: "backup" is not a capability of protocol v1; allowed: update, status`,
		}},
		{"update", "          capabilities: [update]\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/catalog.yml"
			writeFile(t, path, remoteCatalog(tc.config))
			err := catalogCmd(context.Background(), []string{"check", "-catalog", path}, &bytes.Buffer{})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("the catalog passed the check")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("report does not say %q:\n%v", want, err)
				}
			}
		})
	}
}

// The producer gate checks a slice's own config.capabilities against
// what the adapter declares, and reports what it declared either way.
func TestRemoteGateChecksConfiguredCapabilities(t *testing.T) {
	const secret = "gate-test-secret"
	srv := serveMemadapter(t, secret)

	for _, tc := range []struct {
		name         string
		capabilities any
		failed       bool
	}{
		{"not listed", nil, false},
		{"declared", []any{"update"}, false},
		{"not declared", []any{"update", "status"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := map[string]any{"url": srv.URL, "secret": secret, "timeout": "10s"}
			if tc.capabilities != nil {
				settings["capabilities"] = tc.capabilities
			}
			report, err := remoteGate(t.Context(), producers.GateRequest{
				Producer: "team-x", Offering: "team-x-files", URL: srv.URL, Secret: secret, Timeout: "10s", Settings: settings,
				Plans: []adapters.PlanConfig{{Plan: adapters.Plan{ID: "p1", Name: "small"}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if report.Failed() != tc.failed {
				var out bytes.Buffer
				report.Print(&out)
				t.Errorf("report failed %v, want %v:\n%s", report.Failed(), tc.failed, out.String())
			}
			if !slices.Equal(report.Capabilities, []string{"update", "inspect"}) {
				t.Errorf("report.Capabilities %q, want [update inspect]", report.Capabilities)
			}
		})
	}
}

// `agora adapter test` tells the producer what her adapter declares and
// where that goes in catalog.yml, in text and in JSON.
func TestAdapterTestPrintsTheDeclaredCapabilities(t *testing.T) {
	const secret = "cli-test-secret"
	srv := serveMemadapter(t, secret)

	var text, stderr bytes.Buffer
	if err := adapterCmd(t.Context(), []string{"test", "--url", srv.URL, "--secret", secret}, &text, &stderr); err != nil {
		t.Fatalf("%v\n%s%s", err, text.String(), stderr.String())
	}
	if want := "declared capabilities: [update, inspect]; list them in the offering's config.capabilities"; !strings.Contains(text.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, text.String())
	}
	var js bytes.Buffer
	if err := adapterCmd(t.Context(), []string{"test", "--url", srv.URL, "--secret", secret, "-o", "json"}, &js, &stderr); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Capabilities []string `json:"capabilities"`
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil || !slices.Equal(out.Capabilities, []string{"update", "inspect"}) {
		t.Errorf("JSON capabilities %q (%v):\n%s", out.Capabilities, err, js.String())
	}
}

// serveMemadapter serves the reference adapter over the remote protocol;
// it declares "update" (it has Update) and not "status".
func serveMemadapter(t *testing.T, secret string) *httptest.Server {
	t.Helper()
	mem, err := memadapter.New(adapters.Config{Settings: adapters.MapSettings(map[string]any{"prefix": "cmd-"})}, memadapter.NewBackend())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(remote.Handler(mem, remote.HandlerOptions{Name: "memory", Version: "test", Secret: secret}))
	t.Cleanup(srv.Close)
	return srv
}
