package producerapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/agora-osb/agora/producers/producerapi"
)

// TestUpgradeRoutes: the routes reach the broker with the caller's scope
// and word its refusals: another producer's offering is 403, a plan
// without maintenance_info 409, an unknown run or offering 404.
func TestUpgradeRoutes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := f.producer("team-x", true)
	status := func(err error) int {
		var ae *producerapi.APIError
		if !errors.As(err, &ae) {
			t.Fatalf("want an API error, got %v", err)
		}
		return ae.Status
	}

	_, err := other.StartUpgrade(ctx, "team-x", producerapi.StartUpgradeRequest{Offering: "shared-cache", Plan: "small", DryRun: true})
	if status(err) != http.StatusForbidden || !strings.Contains(err.Error(), "data-team") {
		t.Errorf("another producer's offering: %v, want 403 naming its owner", err)
	}
	_, err = f.admin.StartUpgrade(ctx, "", producerapi.StartUpgradeRequest{Offering: "shared-cache", Plan: "small", DryRun: true})
	if status(err) != http.StatusConflict || !strings.Contains(err.Error(), "no maintenance_info") {
		t.Errorf("a plan without versions: %v, want 409", err)
	}
	_, err = f.admin.StartUpgrade(ctx, "", producerapi.StartUpgradeRequest{Offering: "nope", Plan: "small"})
	if status(err) != http.StatusNotFound {
		t.Errorf("an unknown offering: %v, want 404", err)
	}
	if _, err := other.Upgrade(ctx, "team-x", "no-such-run"); status(err) != http.StatusNotFound {
		t.Errorf("an unknown run: %v, want 404", err)
	}
	if _, err := other.RetryUpgrade(ctx, "data-team", "no-such-run"); status(err) != http.StatusForbidden {
		t.Errorf("another producer's path: %v, want 403", err)
	}
}
