package broker_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

// getParameters GETs an instance (bindingID "") or a binding and returns
// its parameters, and whether the field was there at all.
func (e *env) getParameters(iid, bid string) (map[string]any, bool) {
	e.t.Helper()
	path := instancePath(iid, false)
	if bid != "" {
		path = bindingPath(iid, bid)
	}
	r := e.do(http.MethodGet, path, nil)
	expect(e.t, "GET "+path, r, http.StatusOK, "")
	raw, present := r.body["parameters"]
	params, _ := raw.(map[string]any)
	return params, present
}

// number is a JSON number as the platform reads it back.
func number(n float64) any { return n }

// TestInstanceParametersAreKeptAndReadBack: GET instance returns the
// parameters in force, {} when there are none; they live in Vault, one
// secret at a time, and an update merges into them as the spec words it.
func TestInstanceParametersAreKeptAndReadBack(t *testing.T) {
	e := newEnv(t)
	const secret = "param-SECRET-7"

	expect(t, "provision without parameters", e.provision("inst-none", planSync, nil, false), http.StatusCreated, "")
	if r := e.do(http.MethodGet, instancePath("inst-none", false), nil); !strings.Contains(r.raw, `"parameters":{}`) {
		t.Errorf("GET of an instance without parameters: %s, want \"parameters\":{} (provider-osb PATCHes forever when they are missing)", r.raw)
	}
	if inst := e.storedInstance("inst-none"); inst.ParametersRef != "" {
		t.Errorf("an instance without parameters points at %q in Vault", inst.ParametersRef)
	}

	expect(t, "provision", e.provision("inst-p", planSync, map[string]any{"tier": "gold", "size": 2, "password": secret}, false), http.StatusCreated, "")
	want := map[string]any{"tier": "gold", "size": number(2), "password": secret}
	if got, _ := e.getParameters("inst-p", ""); !reflect.DeepEqual(got, want) {
		t.Errorf("GET after provision: parameters %v, want %v", got, want)
	}
	first := e.storedInstance("inst-p").ParametersRef
	if !strings.Contains(first, "/parameters/") {
		t.Fatalf("instance parameters_ref %q", first)
	}
	e.expectNotInRedis(secret)

	// PATCH with a subset changes those keys only; null removes one.
	expect(t, "update", e.update("inst-p", map[string]any{"service_id": serviceID, "parameters": map[string]any{"size": 3, "password": nil}}, false), http.StatusOK, "")
	want = map[string]any{"tier": "gold", "size": number(3)}
	if got, _ := e.getParameters("inst-p", ""); !reflect.DeepEqual(got, want) {
		t.Errorf("GET after a partial update: parameters %v, want %v", got, want)
	}
	second := e.storedInstance("inst-p").ParametersRef
	if second == first {
		t.Error("the update wrote over the parameters in force instead of a secret of its own")
	}
	if _, ok := e.creds.secret(first); ok {
		t.Errorf("the replaced parameters stayed in Vault at %s", first)
	}

	// A PATCH without parameters changes none (spec: MUST NOT).
	expect(t, "context-only update", e.update("inst-p", map[string]any{"service_id": serviceID, "context": map[string]any{"platform": "cloudfoundry", "instance_name": "renamed"}}, false), http.StatusOK, "")
	if inst := e.storedInstance("inst-p"); inst.ParametersRef != second {
		t.Errorf("a context-only update moved the parameters to %q", inst.ParametersRef)
	}

	expect(t, "deprovision", e.deprovision("inst-p", planSync, false), http.StatusOK, "")
	expect(t, "deprovision", e.deprovision("inst-none", planSync, false), http.StatusOK, "")
	if refs := e.creds.refs(); len(refs) != 0 {
		t.Errorf("Vault still holds %v after the instances are gone", refs)
	}
}

// TestAsyncUpdateMergesParameters: the worker merges too, and a failed
// update leaves the parameters in force as they were.
func TestAsyncUpdateMergesParameters(t *testing.T) {
	e := newEnv(t)
	e.startWorkers("w1")
	r := e.provision("inst-a", planAsync, map[string]any{"size": 1, "zone": "a"}, true)
	e.waitState("inst-a", r.str("operation"), "succeeded")

	r = e.update("inst-a", map[string]any{"service_id": serviceID, "parameters": map[string]any{"size": 5}}, true)
	expect(t, "async update", r, http.StatusAccepted, "")
	e.waitState("inst-a", r.str("operation"), "succeeded")
	if got, want := e.mustParameters("inst-a"), (map[string]any{"size": number(5), "zone": "a"}); !reflect.DeepEqual(got, want) {
		t.Errorf("after the async update: %v, want %v", got, want)
	}
	inForce := e.storedInstance("inst-a").ParametersRef

	e.adapter.failNext(adapters.OpUpdate, adapters.Terminal(adapters.Said("disk full")))
	r = e.update("inst-a", map[string]any{"service_id": serviceID, "parameters": map[string]any{"size": 9}}, true)
	e.waitState("inst-a", r.str("operation"), "failed")
	if inst := e.storedInstance("inst-a"); inst.ParametersRef != inForce {
		t.Errorf("a failed update moved the parameters in force to %q", inst.ParametersRef)
	}
	if got := e.mustParameters("inst-a"); got["size"] != number(5) {
		t.Errorf("after a failed update: %v, want size 5 still", got)
	}
}

// TestUpdateWhenVaultFailsKeepsParameters: the parameters cannot be
// written, so the update fails, and the instance keeps what it had.
func TestUpdateWhenVaultFailsKeepsParameters(t *testing.T) {
	e := newEnv(t)
	expect(t, "provision", e.provision("inst-v", planSync, map[string]any{"size": 1}, false), http.StatusCreated, "")
	before := e.storedInstance("inst-v").ParametersRef
	e.creds.setFailPut(true)
	r := e.update("inst-v", map[string]any{"service_id": serviceID, "parameters": map[string]any{"size": 2}}, false)
	expectFailure(t, "update with Vault down", r, http.StatusServiceUnavailable, "", "credential store (Vault)")
	e.creds.setFailPut(false)
	if inst := e.storedInstance("inst-v"); inst.ParametersRef != before || inst.State != broker.InstanceReady {
		t.Errorf("after the failed update: parameters_ref %q (want %q), state %s", inst.ParametersRef, before, inst.State)
	}
	if got := e.mustParameters("inst-v"); got["size"] != number(1) {
		t.Errorf("parameters after the failed update: %v", got)
	}
}

// TestBindingParametersAndSensitivePlans: a binding's parameters read
// back the same way; a plan marked sensitive withholds both, while Agora
// still keeps them.
func TestBindingParametersAndSensitivePlans(t *testing.T) {
	e := newEnv(t)
	for _, plan := range []string{planSync, planSensitive} {
		iid := "inst-" + plan
		expect(t, "provision", e.provision(iid, plan, map[string]any{"admin": "root"}, false), http.StatusCreated, "")
		body := bindBody(plan, "app-1")
		body["parameters"] = map[string]any{"role": "reader"}
		expect(t, "bind", e.do(http.MethodPut, bindingPath(iid, "b1"), body), http.StatusCreated, "")

		instParams, instShown := e.getParameters(iid, "")
		bindParams, bindShown := e.getParameters(iid, "b1")
		if plan == planSensitive {
			if instShown || bindShown {
				t.Errorf("a sensitive plan showed parameters: instance %v, binding %v", instParams, bindParams)
			}
		} else if instParams["admin"] != "root" || bindParams["role"] != "reader" {
			t.Errorf("parameters read back: instance %v, binding %v", instParams, bindParams)
		}
		bnd := e.storedBinding(iid, "b1")
		if s, ok := e.creds.secret(bnd.ParametersRef); !ok || s["role"] != "reader" {
			t.Errorf("%s: the binding's parameters are not kept in Vault at %q", plan, bnd.ParametersRef)
		}
		expect(t, "unbind", e.unbind(iid, "b1", plan), http.StatusOK, "")
		if _, ok := e.creds.secret(bnd.ParametersRef); ok {
			t.Errorf("%s: the binding's parameters outlived it", plan)
		}
	}
}

// TestOmitBindingEndpoints: the offering switch leaves endpoints out of
// bind and GET binding, for clients that cannot decode string ports.
func TestOmitBindingEndpoints(t *testing.T) {
	e := newEnv(t)
	body := provisionBody(planBare, nil)
	body["service_id"] = bareServiceID
	expect(t, "provision", e.do(http.MethodPut, instancePath("inst-bare", false), body), http.StatusCreated, "")
	bind := bindBody(planBare, "app-1")
	bind["service_id"] = bareServiceID
	r := e.do(http.MethodPut, bindingPath("inst-bare", "b1"), bind)
	expect(t, "bind", r, http.StatusCreated, "")
	if _, ok := r.body["endpoints"]; ok || r.body["credentials"] == nil {
		t.Errorf("bind answer %s: want credentials and no endpoints", r.raw)
	}
	r = e.do(http.MethodGet, bindingPath("inst-bare", "b1"), nil)
	if _, ok := r.body["endpoints"]; ok {
		t.Errorf("GET binding %s: want no endpoints", r.raw)
	}
	// The adapter's endpoints are still kept, should the switch go.
	if bnd := e.storedBinding("inst-bare", "b1"); len(bnd.Endpoints) != 1 {
		t.Errorf("stored endpoints %v", bnd.Endpoints)
	}
}

func (e *env) mustParameters(iid string) map[string]any {
	e.t.Helper()
	p, ok := e.getParameters(iid, "")
	if !ok {
		e.t.Fatalf("GET instance %s has no parameters", iid)
	}
	return p
}
