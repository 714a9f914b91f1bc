package postgres

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/agora-osb/agora/adapters"
)

func version(v string) adapters.MaintenanceInfo { return adapters.MaintenanceInfo{Version: v} }

// extensionsOf lists the extensions created in the instance's database.
func extensionsOf(t *testing.T, ctx context.Context, id string) []string {
	t.Helper()
	rows, err := adminConn(t, ctx, namesFor(id).database).Query(ctx, `SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY extname`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// TestUpgradeCreatesTheVersionsExtension: an instance provisioned on
// 1.0.0 has no pg_trgm; the upgrade to 1.1.0 creates it (a real
// similarity() query works), a repeat of the upgrade is harmless, and an
// instance provisioned on 1.1.0 has it from the start.
func TestUpgradeCreatesTheVersionsExtension(t *testing.T) {
	integration(t)
	t.Parallel()
	ctx := t.Context()
	a := newAdapter(t, testSettings())
	id := uniqueID(t, "inst")
	cleanupInstance(t, id)
	if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: id, Plan: smallPlan,
		Maintenance: adapters.Maintenance{Requested: version("1.0.0")}}); err != nil {
		t.Fatalf("Provision on 1.0.0: %v", err)
	}
	if got := extensionsOf(t, ctx, id); slices.Contains(got, "pg_trgm") {
		t.Fatalf("an instance on 1.0.0 has pg_trgm: %v", got)
	}
	up := adapters.UpdateRequest{InstanceID: id, Plan: smallPlan, PreviousPlan: smallPlan,
		Maintenance: adapters.Maintenance{Current: version("1.0.0"), Requested: version("1.1.0")}}
	for i := range 2 {
		if _, err := a.Update(ctx, up); err != nil {
			t.Fatalf("upgrade to 1.1.0 (call %d): %v", i+1, err)
		}
	}
	if got := extensionsOf(t, ctx, id); !slices.Contains(got, "pg_trgm") {
		t.Fatalf("after the upgrade to 1.1.0 the extensions are %v, want pg_trgm", got)
	}
	var sim float64
	if err := adminConn(t, ctx, namesFor(id).database).QueryRow(ctx, `SELECT similarity('agora', 'agoras')`).Scan(&sim); err != nil || sim <= 0 {
		t.Errorf("pg_trgm's similarity() after the upgrade: %v, %v", sim, err)
	}

	fresh := uniqueID(t, "inst")
	cleanupInstance(t, fresh)
	if _, err := a.Provision(ctx, adapters.ProvisionRequest{InstanceID: fresh, Plan: smallPlan,
		Maintenance: adapters.Maintenance{Requested: version("1.1.0")}}); err != nil {
		t.Fatalf("Provision on 1.1.0: %v", err)
	}
	if got := extensionsOf(t, ctx, fresh); !slices.Contains(got, "pg_trgm") {
		t.Errorf("an instance provisioned on 1.1.0 has %v, want pg_trgm", got)
	}
}

func TestVersionExtensions(t *testing.T) {
	p := PlanSettings{Versions: map[string]VersionSettings{
		"1.1.0":  {Extensions: []string{"pg_trgm"}},
		"1.10.0": {Extensions: []string{"citext"}},
		"1.2.0":  {Extensions: []string{"hstore", "pg_trgm"}},
	}}
	for v, want := range map[string]string{
		"": "", "1.0.0": "", "1.1.0": "pg_trgm", "1.2.0": "pg_trgm,hstore", "1.9.9": "pg_trgm,hstore", "2.0.0": "pg_trgm,hstore,citext",
	} {
		if got := strings.Join(p.versionExtensions(v), ","); got != want {
			t.Errorf("versionExtensions(%q) = %q, want %q", v, got, want)
		}
	}
	err := PlanSettings{Versions: map[string]VersionSettings{"1.1": {}, "1.2.0": {Extensions: []string{"DROP TABLE"}}}}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"1.1" is not a semantic version`) || !strings.Contains(err.Error(), "versions.1.2.0.extensions[0]") {
		t.Errorf("Validate: %v, want both problems named", err)
	}
}
