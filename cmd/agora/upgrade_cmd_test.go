package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agora-osb/agora/broker"
)

// TestProducerUpgradeWaitsAndReports: the producer's bulk upgrade goes to
// her routes with her token, prints progress while it waits, then the
// per-instance outcomes, and fails naming the retry command when an
// instance failed. A dry run prints what would be upgraded.
func TestProducerUpgradeWaitsAndReports(t *testing.T) {
	var polls atomic.Int64
	var started []byte
	run := func(state string, items ...broker.UpgradeItem) broker.Upgrade {
		u := broker.Upgrade{ID: "run-1", Offering: "team-x-db", Plan: "small", Version: "1.1.0", Concurrency: 5, State: state, Instances: items}
		for _, it := range items {
			u.Counts.Total++
			switch it.State {
			case broker.UpgradeUpgraded:
				u.Counts.Done++
			case broker.UpgradeFailed:
				u.Counts.Failed++
			default:
				u.Counts.Remaining++
			}
		}
		return u
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer agp_team-x_secret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Method + " " + r.URL.Path {
		case "POST /producers/team-x/offerings/team-x-db/plans/small/upgrades":
			started, _ = io.ReadAll(r.Body)
			state := broker.RunRunning
			if strings.Contains(string(started), "dry_run") {
				state = broker.RunDryRun
			}
			_ = json.NewEncoder(w).Encode(run(state, broker.UpgradeItem{InstanceID: "i-1", State: broker.UpgradePending, From: "1.0.0"},
				broker.UpgradeItem{InstanceID: "i-2", State: broker.UpgradePending, From: "1.0.0"}))
		case "GET /producers/team-x/upgrades/run-1":
			if polls.Add(1) == 1 {
				_ = json.NewEncoder(w).Encode(run(broker.RunRunning, broker.UpgradeItem{InstanceID: "i-1", State: broker.UpgradeUpgraded, From: "1.0.0"},
					broker.UpgradeItem{InstanceID: "i-2", State: broker.UpgradeRunning, From: "1.0.0"}))
				return
			}
			_ = json.NewEncoder(w).Encode(run(broker.RunFinished, broker.UpgradeItem{InstanceID: "i-1", State: broker.UpgradeUpgraded, From: "1.0.0"},
				broker.UpgradeItem{InstanceID: "i-2", State: broker.UpgradeFailed, From: "1.0.0", Detail: "disk full"}))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("AGORA_PRODUCER_CONFIG", filepath.Join(t.TempDir(), "producer.json"))
	t.Setenv("AGORA_URL", srv.URL)
	t.Setenv("AGORA_PRODUCER", "team-x")
	t.Setenv("AGORA_PRODUCER_TOKEN", "agp_team-x_secret")

	var out, errOut bytes.Buffer
	err := upgradeCmd(context.Background(), "producer", []string{"team-x-db", "small", "--concurrency", "3", "--interval", "1ms"}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 instances failed") || !strings.Contains(err.Error(), "agora producer upgrade retry run-1") {
		t.Fatalf("err = %v, want the failure and the retry command\n%s", err, out.String())
	}
	if !strings.Contains(string(started), `"concurrency":3`) {
		t.Errorf("the start sent %s, want concurrency 3", started)
	}
	for _, want := range []string{"done 0  failed 0  remaining 2", "done 1  failed 0  remaining 1", "done 1  failed 1  remaining 0",
		"upgraded 1  failed 1  remaining 0  of 2", "i-2", "disk full"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	if err := upgradeCmd(context.Background(), "producer", []string{"team-x-db", "small", "--dry-run"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "dry run, nothing changed") || strings.Count(out.String(), "would upgrade") != 2 {
		t.Errorf("dry run output:\n%s", out.String())
	}
}
