package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agora-osb/agora/adapters"
	"github.com/agora-osb/agora/broker"
)

// waitUpgrade polls the run until it is finished and returns it.
func (e *env) waitUpgrade(id string) *broker.Upgrade {
	e.t.Helper()
	var u *broker.Upgrade
	eventually(e.t, func() bool {
		var err error
		u, err = e.broker.GetUpgrade(context.Background(), id, "")
		if err != nil {
			e.t.Fatal(err)
		}
		return u.State == broker.RunFinished
	}, func() string { return fmt.Sprintf("the bulk upgrade never finished: %+v", u.Counts) })
	return u
}

// TestBulkUpgrade: the producer publishes 1.1.0; a dry run lists the
// plan's six instances on 1.0.0 and changes nothing; the run upgrades
// them with at most two at once on the async engine, one failure does not
// block the others, and a retry upgrades the failed one. Another plan's
// instance is never touched.
func TestBulkUpgrade(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 6 {
		expect(t, "provision", e.provision(fmt.Sprintf("inst-bulk-%d", i), planSync, nil, false), http.StatusCreated, "")
	}
	expect(t, "provision on another plan", e.provision("inst-other", planSyncLarge, nil, false), http.StatusCreated, "")
	e.broker.SetCatalog(e.buildCatalog(publishSync11...))

	_, err := e.broker.StartUpgrade(ctx, broker.UpgradeRequest{Offering: "store", Plan: "sync"}, "another-team", "producer:another-team")
	if !errors.Is(err, broker.ErrUpgradeForbidden) {
		t.Fatalf("another producer's upgrade: %v, want ErrUpgradeForbidden", err)
	}
	_, err = e.broker.StartUpgrade(ctx, broker.UpgradeRequest{Offering: "store", Plan: "sync", InstanceIDs: []string{"inst-other", "nope"}}, "", "admin:a")
	if !errors.Is(err, broker.ErrUpgradeRefused) || !contains(err.Error(), `"inst-other" is not an instance of plan "sync"`, `"nope" does not exist`) {
		t.Fatalf("bad instance_ids: %v, want both named", err)
	}

	dry, err := e.broker.StartUpgrade(ctx, broker.UpgradeRequest{Offering: "store", Plan: "sync", DryRun: true}, "test-team", "producer:test-team")
	if err != nil {
		t.Fatal(err)
	}
	if dry.State != broker.RunDryRun || dry.Counts.Remaining != 6 || dry.Version != "1.1.0" || dry.ID != "" {
		t.Fatalf("dry run: %+v, want 6 instances to go to 1.1.0, nothing stored", dry)
	}
	e.startWorkersWith(broker.WorkerConfig{Consumer: "w", Concurrency: 4, PerProducer: 4, Heartbeat: 50 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond, Requeue: 20 * time.Millisecond, UpgradeScan: 10 * time.Millisecond})
	time.Sleep(50 * time.Millisecond)
	if n := e.adapter.count(adapters.OpUpdate); n != 0 {
		t.Fatalf("the dry run reached the adapter %d times", n)
	}

	e.adapter.failNext(adapters.OpUpdate, adapters.Terminal(adapters.Said("disk full")))
	held := e.adapter.hold(t, adapters.OpUpdate)
	run, err := e.broker.StartUpgrade(ctx, broker.UpgradeRequest{Offering: "store", Plan: "sync", Concurrency: 2}, "test-team", "producer:test-team")
	if err != nil {
		t.Fatal(err)
	}
	held.waitEntered(t)
	held.waitEntered(t)
	time.Sleep(100 * time.Millisecond) // ten steps of the run: none may start a third
	if cur, _ := e.broker.GetUpgrade(ctx, run.ID, ""); e.adapter.count(adapters.OpUpdate) != 2 || cur.Counts.Running != 2 {
		t.Errorf("with concurrency 2: %d update calls, counts %+v", e.adapter.count(adapters.OpUpdate), cur.Counts)
	}
	held.open()
	u := e.waitUpgrade(run.ID)
	if u.Counts.Done != 5 || u.Counts.Failed != 1 {
		t.Fatalf("after the run: %+v, want 5 upgraded and 1 failed", u.Counts)
	}
	for _, it := range u.Instances {
		if it.State == broker.UpgradeFailed && !contains(it.Detail, "disk full") {
			t.Errorf("failed instance %s says %q, want the adapter's reason", it.InstanceID, it.Detail)
		}
	}
	if e.adapter.maxOverlap() > 1 {
		t.Errorf("an instance had %d adapter calls at once", e.adapter.maxOverlap())
	}

	u, err = e.broker.RetryUpgrade(ctx, run.ID, "test-team")
	if err != nil || u.State != broker.RunRunning || u.Counts.Remaining != 1 {
		t.Fatalf("retry: %+v, %v, want one instance pending again", u, err)
	}
	u = e.waitUpgrade(run.ID)
	if u.Counts.Done != 6 || u.Counts.Failed != 0 {
		t.Fatalf("after the retry: %+v, want 6 upgraded", u.Counts)
	}
	for i := range 6 {
		if inst := e.storedInstance(fmt.Sprintf("inst-bulk-%d", i)); inst.MaintenanceInfo != "1.1.0" || inst.State != broker.InstanceReady {
			t.Errorf("instance %d: version %q state %s, want 1.1.0 ready", i, inst.MaintenanceInfo, inst.State)
		}
	}
	if e.adapter.count(adapters.OpUpdate) != 7 {
		t.Errorf("%d update calls, want 7 (6 + the retried one)", e.adapter.count(adapters.OpUpdate))
	}
	if inst := e.storedInstance("inst-other"); inst.MaintenanceInfo != "" {
		t.Errorf("the other plan's instance changed: %+v", inst)
	}
	if _, err := e.broker.GetUpgrade(ctx, run.ID, "another-team"); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("another producer read the run: %v", err)
	}

	// Everything is on 1.1.0 now: a new run has nothing to do.
	again, err := e.broker.StartUpgrade(ctx, broker.UpgradeRequest{Offering: "store", Plan: "sync"}, "", "admin:a")
	if err != nil || again.Counts.Total != 0 || again.State != broker.RunFinished {
		t.Errorf("a run with nothing left: %+v, %v", again, err)
	}
}

func contains(s string, fragments ...string) bool {
	for _, f := range fragments {
		if !strings.Contains(s, f) {
			return false
		}
	}
	return true
}
