package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// A replica's workers move what an earlier version indexed (an unordered
// set of IDs) into the ordered index when they start, so the instance
// keeps its place in listings and the set is gone.
func TestWorkersAdoptTheEarlierIndexAtStart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	expect(t, "provision", e.provision("inst-old", planSync, nil, false), http.StatusCreated, "")
	ordered, earlier := prefix+":offering:{"+serviceID+"}:by-creation", prefix+":offering:{"+serviceID+"}:instances"
	// Make it look indexed by an earlier version.
	members, err := e.rdb.ZRange(ctx, ordered, 0, -1).Result()
	if err != nil || len(members) != 1 {
		t.Fatalf("ordered index after provision: %v %v", members, err)
	}
	if err := e.rdb.Del(ctx, ordered).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.SAdd(ctx, earlier, "inst-old").Err(); err != nil {
		t.Fatal(err)
	}

	e.startWorkers("adopt")
	eventually(t, func() bool {
		n, _ := e.rdb.Exists(ctx, earlier).Result()
		return n == 0
	}, func() string { return "the earlier index is still there" })
	got, err := e.rdb.ZRange(ctx, ordered, 0, -1).Result()
	if err != nil || fmt.Sprint(got) != fmt.Sprint(members) {
		t.Errorf("ordered index after the move: %v %v, want %v (the record's creation time)", got, err, members)
	}
}
