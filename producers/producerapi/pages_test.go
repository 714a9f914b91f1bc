package producerapi_test

import (
	"fmt"
	"net/http"
	"sort"
	"testing"
)

// TestListingsWalkPageByPage provisions instances on both of her
// offerings and walks them in small pages: every instance comes back,
// none twice, and each page is one bounded read.
func TestListingsWalkPageByPage(t *testing.T) {
	f := newFixture(t)
	x := f.producer("team-x", true)
	two := string(readFile(t, "testdata/team-x.yml")) + `  - name: team-x-cache
    description: X's cache.
    adapter: remote
    config: {url: "http://cache.team-x.test", secret: s3cr3t-protocol-secret-x}
    plans: [{name: small, description: Small.}]
`
	if _, err := x.Apply(ctx, "team-x", []byte(two)); err != nil {
		t.Fatal(err)
	}
	f.reload()
	offs, err := x.Offerings(ctx, "team-x")
	if err != nil || len(offs) < 2 {
		t.Fatalf("offerings %+v %v, want two", offs, err)
	}
	want := map[string]bool{}
	for i := range 25 {
		o := offs[i%2]
		iid := fmt.Sprintf("inst-%02d", i)
		osb(t, f, http.MethodPut, "/v2/service_instances/"+iid, map[string]any{"service_id": o.ID, "plan_id": o.Plans[0].ID, "organization_guid": "o", "space_guid": "s"}, http.StatusCreated)
		want[iid] = true
	}

	seen := map[string]int{}
	pages := 0
	for cursor := ""; ; {
		page, err := x.InstancePage(ctx, "team-x", cursor, 7)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, in := range page.Instances {
			seen[in.ID]++
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
		if pages > 50 {
			t.Fatal("the walk does not end")
		}
	}
	if pages < 2 {
		t.Errorf("25 instances in pages of 7 came in %d page(s)", pages)
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("instance %s seen %d times, want once", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("walk saw %d instances, want %d", len(seen), len(want))
	}
	all, err := x.Instances(ctx, "team-x")
	if err != nil || len(all) != 25 {
		t.Fatalf("the client's full walk: %d instances, %v", len(all), err)
	}
	ids := make([]string, 0, len(all))
	for _, in := range all {
		ids = append(ids, in.ID)
	}
	sort.Strings(ids)
	if ids[0] != "inst-00" || ids[24] != "inst-24" {
		t.Errorf("full walk %v", ids)
	}
	if offs, _ := x.Offerings(ctx, "team-x"); offs[0].Instances+offs[1].Instances != 25 {
		t.Errorf("offering counts %d + %d, want 25", offs[0].Instances, offs[1].Instances)
	}

	for _, bad := range []struct {
		cursor string
		limit  int
	}{{"nonsense", 0}, {"OTk6MA", 0}, {"", 100000}} { // OTk6MA: offering 99
		_, err := x.InstancePage(ctx, "team-x", bad.cursor, bad.limit)
		apiErr(t, err, http.StatusBadRequest)
	}
}
