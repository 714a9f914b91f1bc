package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/adapters/remote"
)

// versioned records the maintenance a provision and an update carried.
type versioned struct {
	scripted
	provisioned, updated adapters.Maintenance
}

func (v *versioned) Provision(_ context.Context, req adapters.ProvisionRequest) (adapters.ProvisionResult, error) {
	v.provisioned = req.Maintenance
	return adapters.ProvisionResult{}, nil
}

func (v *versioned) Update(_ context.Context, req adapters.UpdateRequest) (adapters.UpdateResult, error) {
	v.updated = req.Maintenance
	return adapters.UpdateResult{}, nil
}

// TestMaintenanceCrossesTheWire: a Go adapter behind remote.Handler gets
// the versions Agora sent, on provision and on an upgrade, and the
// handler answers protocol v1 with its minor.
func TestMaintenanceCrossesTheWire(t *testing.T) {
	a := &versioned{}
	c := newClient(t, serve(t, a).URL, remote.Options{}, func(s *remote.Settings) {
		s.Capabilities = []string{remote.CapabilityUpdate}
	})
	req := provisionReq()
	req.Maintenance = adapters.Maintenance{Requested: adapters.MaintenanceInfo{Version: "1.0.0", Description: "first"}}
	if _, err := c.Adapter().Provision(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if a.provisioned != req.Maintenance {
		t.Errorf("provision carried %+v, want %+v", a.provisioned, req.Maintenance)
	}
	up := adapters.Maintenance{Current: adapters.MaintenanceInfo{Version: "1.0.0"}, Requested: adapters.MaintenanceInfo{Version: "1.1.0", Description: "adds pg_trgm"}}
	if _, err := c.Adapter().(adapters.Updater).Update(t.Context(), adapters.UpdateRequest{InstanceID: "i-1", Plan: testPlan, PreviousPlan: testPlan, Maintenance: up}); err != nil {
		t.Fatal(err)
	}
	if a.updated != up || !a.updated.Upgrade() {
		t.Errorf("update carried %+v, want the upgrade %+v", a.updated, up)
	}
	protocol, _, _, _, err := c.Capabilities(t.Context())
	if err != nil || protocol != remote.ProtocolVersion {
		t.Errorf("capabilities: protocol %q, %v", protocol, err)
	}
}

// TestMaintenanceWireShapeAndV10Adapters: the bodies carry
// maintenance_info.current/requested as documented, a plan without
// versions sends no maintenance_info at all, and an adapter that answers
// plain "agora.adapter/v1" without a minor (v1.0) still works.
func TestMaintenanceWireShapeAndV10Adapters(t *testing.T) {
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/capabilities") {
			_ = json.NewEncoder(w).Encode(map[string]any{"protocol": "agora.adapter/v1", "name": "old", "version": "1", "capabilities": []string{"update"}})
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var b map[string]any
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Errorf("body %s: %v", raw, err)
		}
		bodies = append(bodies, b)
		_, _ = io.WriteString(w, `{"pending": false}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, remote.Options{}, func(s *remote.Settings) {
		s.Capabilities = []string{remote.CapabilityUpdate}
	})
	if _, err := c.Adapter().Provision(t.Context(), provisionReq()); err != nil {
		t.Fatalf("a v1.0 adapter: %v", err)
	}
	up := adapters.Maintenance{Current: adapters.MaintenanceInfo{Version: "1.0.0"}, Requested: adapters.MaintenanceInfo{Version: "1.1.0", Description: "d"}}
	if _, err := c.Adapter().(adapters.Updater).Update(t.Context(), adapters.UpdateRequest{InstanceID: "i-1", Plan: testPlan, Maintenance: up}); err != nil {
		t.Fatalf("a v1.0 adapter ignoring maintenance_info: %v", err)
	}
	if len(bodies) != 2 {
		t.Fatalf("got %d bodies, want 2", len(bodies))
	}
	if _, ok := bodies[0]["maintenance_info"]; ok {
		t.Errorf("a provision without versions sent maintenance_info: %v", bodies[0])
	}
	got, _ := json.Marshal(bodies[1]["maintenance_info"])
	if want := `{"current":{"version":"1.0.0"},"requested":{"description":"d","version":"1.1.0"}}`; string(got) != want {
		t.Errorf("update maintenance_info %s, want %s", got, want)
	}
}

// TestPythonExampleUpgrades: examples/remote-adapter-python, over the
// protocol, creates no public/ directory on 1.0.0 and creates it when an
// update asks for 1.1.0 (its upgrade work), repeatably.
func TestPythonExampleUpgrades(t *testing.T) {
	root := t.TempDir()
	url := startExample(t, "python3", "install Python 3.11+", "../../examples/remote-adapter-python/adapter.py", root)
	c := newClient(t, url, remote.Options{}, func(s *remote.Settings) {
		s.Capabilities = []string{remote.CapabilityUpdate}
	})
	req := provisionReq()
	req.Maintenance.Requested.Version = "1.0.0"
	if _, err := c.Adapter().Provision(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	public := filepath.Join(root, req.InstanceID, "public")
	if _, err := os.Stat(public); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an instance on 1.0.0 has %s (%v)", public, err)
	}
	up := adapters.UpdateRequest{InstanceID: req.InstanceID, Plan: testPlan, PreviousPlan: testPlan,
		Maintenance: adapters.Maintenance{Current: adapters.MaintenanceInfo{Version: "1.0.0"}, Requested: adapters.MaintenanceInfo{Version: "1.1.0"}}}
	for range 2 {
		res, err := c.Adapter().(adapters.Updater).Update(t.Context(), up)
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		if res.Metadata.Labels["version"] != "1.1.0" {
			t.Errorf("upgrade answered labels %v, want version 1.1.0", res.Metadata.Labels)
		}
	}
	if st, err := os.Stat(public); err != nil || !st.IsDir() {
		t.Errorf("after the upgrade to 1.1.0: %v, want the directory %s", err, public)
	}
}
