package broker_test

import (
	"net/http"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

// publishSync11 is the producer publishing version 1.1.0 of plan sync.
var publishSync11 = []string{"version: 1.0.0\n              description: Base image.", "version: 1.1.0\n              description: Adds search."}

// upgradeBody is what `cf update-service --upgrade` sends: the plan the
// instance is on and the new maintenance_info, nothing else.
func upgradeBody(planID, version string) map[string]any {
	return map[string]any{
		"service_id": serviceID, "plan_id": planID,
		"maintenance_info": map[string]any{"version": version},
		"previous_values":  map[string]any{"plan_id": planID, "maintenance_info": map[string]any{"version": "1.0.0"}},
	}
}

func maintenanceOf(r response) map[string]any {
	mi, _ := r.body["maintenance_info"].(map[string]any)
	return mi
}

// TestUpgradeThroughPATCH: an instance created on 1.0.0 reports it, the
// producer publishes 1.1.0, the platform's PATCH reaches the adapter with
// both versions, and GET instance then reports 1.1.0. A stale PATCH and a
// downgrade get 422 MaintenanceInfoConflict and change nothing.
func TestUpgradeThroughPATCH(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision without maintenance_info", e.provision("inst-up", planSync, nil, false), http.StatusCreated, "")
	if got := e.adapter.callsOf(adapters.OpProvision)[0].Maintenance; got.Requested.Version != "1.0.0" || got.Current.Version != "" || got.Requested.Description != "Base image." {
		t.Errorf("provision told the adapter %+v, want requested 1.0.0 (Base image.), no current", got)
	}
	r := e.do(http.MethodGet, instancePath("inst-up", false), nil)
	if mi := maintenanceOf(r); r.status != http.StatusOK || mi["version"] != "1.0.0" || mi["description"] != "Base image." {
		t.Fatalf("GET instance: %d %s, want maintenance_info 1.0.0", r.status, r.raw)
	}

	e.broker.SetCatalog(e.buildCatalog(publishSync11...))
	// A platform that has not fetched the new catalog yet.
	expectFailure(t, "PATCH with the old version", e.update("inst-up", upgradeBody(planSync, "1.0.0"), false), http.StatusUnprocessableEntity, "MaintenanceInfoConflict", "catalog")
	if n := e.adapter.count(adapters.OpUpdate); n != 0 {
		t.Fatalf("a refused PATCH reached the adapter %d times", n)
	}
	r = e.do(http.MethodGet, instancePath("inst-up", false), nil)
	if mi := maintenanceOf(r); mi["version"] != "1.0.0" || mi["description"] != nil {
		t.Errorf("GET instance before the upgrade: %s, want 1.0.0 without the catalog's (newer) description", r.raw)
	}

	expect(t, "upgrade", e.update("inst-up", upgradeBody(planSync, "1.1.0"), false), http.StatusOK, "")
	calls := e.adapter.callsOf(adapters.OpUpdate)
	if len(calls) != 1 {
		t.Fatalf("the upgrade made %d update calls, want 1", len(calls))
	}
	want := adapters.Maintenance{Current: adapters.MaintenanceInfo{Version: "1.0.0"}, Requested: adapters.MaintenanceInfo{Version: "1.1.0", Description: "Adds search."}}
	if calls[0].Maintenance != want {
		t.Errorf("the adapter got %+v, want %+v", calls[0].Maintenance, want)
	}
	r = e.do(http.MethodGet, instancePath("inst-up", false), nil)
	if mi := maintenanceOf(r); mi["version"] != "1.1.0" || mi["description"] != "Adds search." {
		t.Errorf("GET instance after the upgrade: %s, want 1.1.0", r.raw)
	}

	// The same PATCH again: nothing left to do, no adapter call.
	expect(t, "repeated upgrade", e.update("inst-up", upgradeBody(planSync, "1.1.0"), false), http.StatusOK, "")
	// A params-free PATCH without maintenance_info keeps the version.
	expect(t, "plain PATCH", e.update("inst-up", map[string]any{"service_id": serviceID, "plan_id": planSync}, false), http.StatusOK, "")
	if n := e.adapter.count(adapters.OpUpdate); n != 1 {
		t.Errorf("no-op PATCHes reached the adapter: %d update calls, want 1", n)
	}

	// The producer goes back to 1.0.0: the instance must not follow.
	e.broker.SetCatalog(e.buildCatalog())
	expectFailure(t, "downgrade", e.update("inst-up", upgradeBody(planSync, "1.0.0"), false), http.StatusUnprocessableEntity, "MaintenanceInfoConflict", "downgrade", "1.1.0")
	if inst := e.storedInstance("inst-up"); inst.MaintenanceInfo != "1.1.0" || e.adapter.count(adapters.OpUpdate) != 1 {
		t.Errorf("the refused downgrade changed something: version %q, %d update calls", inst.MaintenanceInfo, e.adapter.count(adapters.OpUpdate))
	}
}

// TestAsyncUpgradeRepeatGetsSameOperation: on an async plan the upgrade
// runs on the async engine; the platform repeating its PATCH while it runs
// gets 202 with the same operation, and the adapter works once.
func TestAsyncUpgradeRepeatGetsSameOperation(t *testing.T) {
	e := newEnv(t)
	withVersion := func(v string) []string {
		return []string{"            async: true\n            operation_timeout: 1m\n          - name: schema",
			"            async: true\n            operation_timeout: 1m\n            maintenance_info: {version: " + v + "}\n          - name: schema"}
	}
	e.broker.SetCatalog(e.buildCatalog(withVersion("1.0.0")...))
	e.startWorkers("w1")
	r := e.provision("inst-aup", planAsync, nil, true)
	expect(t, "async provision", r, http.StatusAccepted, "")
	e.waitState("inst-aup", r.str("operation"), "succeeded")

	e.broker.SetCatalog(e.buildCatalog(withVersion("1.1.0")...))
	held := e.adapter.hold(t, adapters.OpUpdate)
	first := e.update("inst-aup", upgradeBody(planAsync, "1.1.0"), true)
	expect(t, "upgrade", first, http.StatusAccepted, "")
	held.waitEntered(t)
	again := e.update("inst-aup", upgradeBody(planAsync, "1.1.0"), true)
	expect(t, "repeated upgrade while it runs", again, http.StatusAccepted, "")
	if again.str("operation") != first.str("operation") {
		t.Errorf("the repeat got operation %q, want the running %q", again.str("operation"), first.str("operation"))
	}
	held.open()
	e.waitState("inst-aup", first.str("operation"), "succeeded")
	if n := e.adapter.count(adapters.OpUpdate); n != 1 {
		t.Errorf("%d update calls, want 1", n)
	}
	if mi := maintenanceOf(e.do(http.MethodGet, instancePath("inst-aup", false), nil)); mi["version"] != "1.1.0" {
		t.Errorf("GET instance after the async upgrade: %v, want 1.1.0", mi)
	}
}
