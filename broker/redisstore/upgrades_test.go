package redisstore_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/agora-osb/agora/broker"
)

// TestUpgradeClaims: one holder at a time; a save needs the claim, and
// releases it; the active set follows the saves.
func TestUpgradeClaims(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := t.Context()
	u := &broker.Upgrade{ID: "u1", Offering: "o", Plan: "p", State: broker.RunRunning,
		Instances: []broker.UpgradeItem{{InstanceID: "i1", State: broker.UpgradePending}}}
	if err := s.CreateUpgrade(ctx, u); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.ActiveUpgrades(ctx); !slices.Equal(ids, []string{"u1"}) {
		t.Fatalf("active %v, want u1", ids)
	}
	if ok, err := s.ClaimUpgrade(ctx, "u1", "a", time.Minute); !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if ok, _ := s.ClaimUpgrade(ctx, "u1", "b", time.Minute); ok {
		t.Fatal("a second holder claimed a held run")
	}
	u.Instances[0].State = broker.UpgradeUpgraded
	if err := s.SaveUpgrade(ctx, u, "b", false); !errors.Is(err, broker.ErrStale) {
		t.Fatalf("save without the claim: %v, want ErrStale", err)
	}
	if got, _ := s.GetUpgrade(ctx, "u1"); got.Instances[0].State != broker.UpgradePending {
		t.Fatal("a save without the claim changed the record")
	}
	if err := s.SaveUpgrade(ctx, u, "a", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUpgrade(ctx, "u1"); got.Instances[0].State != broker.UpgradeUpgraded {
		t.Fatal("the save did not land")
	}
	if ids, _ := s.ActiveUpgrades(ctx); len(ids) != 0 {
		t.Errorf("a finished run is still active: %v", ids)
	}
	// The save released the claim; a claim that runs out frees it too.
	if ok, _ := s.ClaimUpgrade(ctx, "u1", "b", time.Second); !ok {
		t.Fatal("the save did not release the claim")
	}
	mr.FastForward(2 * time.Second)
	if ok, _ := s.ClaimUpgrade(ctx, "u1", "c", time.Second); !ok {
		t.Fatal("an expired claim still held the run")
	}
	if _, err := s.GetUpgrade(ctx, "absent"); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("absent run: %v", err)
	}
}

// TestActiveEntryWithoutRecord: a save of an empty record under the
// claim only takes the run off the active list.
func TestActiveEntryWithoutRecord(t *testing.T) {
	mr, _, s := newStore(t)
	ctx := t.Context()
	if err := s.CreateUpgrade(ctx, &broker.Upgrade{ID: "gone", Offering: "o", State: broker.RunRunning}); err != nil {
		t.Fatal(err)
	}
	mr.Del("t:{upgrades}:run:gone")
	if ok, _ := s.ClaimUpgrade(ctx, "gone", "t", time.Minute); !ok {
		t.Fatal("claim")
	}
	if err := s.SaveUpgrade(ctx, &broker.Upgrade{ID: "gone", State: broker.RunFinished}, "t", false); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.ActiveUpgrades(ctx); len(ids) != 0 {
		t.Errorf("active %v, want none", ids)
	}
	if _, err := s.GetUpgrade(ctx, "gone"); !errors.Is(err, broker.ErrNotFound) {
		t.Errorf("the empty save wrote a record: %v", err)
	}
}
